"""Parsers of npu-smi / hccn_tool / version.info output, on the verbatim samples of
reference/ascend-provisioning-facts.md section 8, and the preflight verdicts built on them."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


npu = _load("ascend_npu", ROOT / "roles/ascend_preflight/module_utils/ascend_npu.py")

# Section 8.1, verbatim: Atlas 800T A2, 8x 910B3, idle (vllm-ascend#198); shared with the simulator tests.
NPU_SMI_IDLE = (ROOT / "tests/fixtures/npu_smi_info_idle_910b3.txt").read_text()

# Section 8.1, the busy process-table variant (8x 910B2), and the blank process name one.
NPU_SMI_BUSY_TABLE = """\
| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |
+===========================+===============+====================================================+
| 0       0                 | 266776        | python3                  | 51277                   |
+===========================+===============+====================================================+
| 1       0                 | 267174        | python3                  | 51277                   |
+===========================+===============+====================================================+
| 0       0                 | 1240128       |                          | 14734                   |
"""

DRIVER_VERSION_INFO = """\
Version=25.3.rc1
ascendhal_version=7.35.23
aicpu_version=1.0
tdt_version=1.0
log_version=1.0
prof_version=2.0
dvppkernels_version=1.1
tsfw_version=1.0
Innerversion=V100R001C23SPC002B212
compatible_version=[V100R001C19],[V100R001C20],[V100R001C21],[V100R001C22],[V100R001C23]
compatible_version_fw=[7.0.0,8.9.9]
package_version=25.3.rc1
"""

FIRMWARE_VERSION_INFO = """\
Version=7.7.0.1.231
firmware_version=1.0
package_version=25.0.rc1.1
compatible_version_drv=[23.0.0,23.0.0.],[24.0,24.0.]...
"""

HCCN_CONF = """\
address_0=29.1.137.205
netmask_0=255.255.0.0
netdetect_0=29.1.0.1
gateway_0=29.1.0.1
send_arp_status_0=1
address_7=29.1.170.143
netmask_7=255.255.0.0
netdetect_7=29.1.0.1
gateway_7=29.1.0.1
send_arp_status_7=1
"""


def test_idle_sample_lists_eight_healthy_910b3_with_bus_ids_and_no_process() -> None:
    parsed = npu.parse_npu_smi_info(NPU_SMI_IDLE)
    assert parsed["version"] == "23.0.7"
    assert [n["id"] for n in parsed["npus"]] == list(range(8))
    assert {n["name"] for n in parsed["npus"]} == {"910B3"}
    assert {n["health"] for n in parsed["npus"]} == {"OK"}
    assert parsed["npus"][0]["bus_id"] == "0000:C1:00.0"
    assert parsed["npus"][7]["bus_id"] == "0000:42:00.0"
    assert parsed["processes"] == []


def test_busy_table_names_every_process_and_its_npu() -> None:
    text = NPU_SMI_IDLE.split("| NPU     Chip ")[0] + NPU_SMI_BUSY_TABLE
    procs = npu.parse_npu_smi_info(text)["processes"]
    assert [(p["npu"], p["pid"], p["name"]) for p in procs] == [
        (0, 266776, "python3"), (1, 267174, "python3"), (0, 1240128, "")
    ]
    assert procs[0]["memory_mb"] == 51277


@pytest.mark.parametrize("health", ["Warning", "Alarm", "Critical", "UNKNOWN"])
def test_unhealthy_npu_is_read_as_such(health: str) -> None:
    text = NPU_SMI_IDLE.replace("| 3     910B3               | OK ", f"| 3     910B3               | {health:<3}")
    parsed = npu.parse_npu_smi_info(text)
    assert parsed["npus"][3]["health"] == health
    assert all(n["health"] == "OK" for n in parsed["npus"] if n["id"] != 3)


def test_hccn_tool_outputs() -> None:
    assert npu.parse_hccn_link("link status: UP\n") == "UP"
    assert npu.parse_hccn_link("link status: DOWN\n") == "DOWN"
    assert npu.parse_hccn_net_health("net health status: Success\n") == "Success"
    assert npu.parse_hccn_net_health("net health status: Fault\n") == "Fault"
    assert npu.parse_hccn_ip("ipaddr:11.12.165.80\nnetmask:255.255.255.0\n") == {
        "ipaddr": "11.12.165.80", "netmask": "255.255.255.0"}
    assert npu.parse_hccn_ip("") == {"ipaddr": None, "netmask": None}


def test_version_files_and_hccn_conf() -> None:
    assert npu.driver_version(DRIVER_VERSION_INFO) == "25.3.rc1"
    assert npu.driver_version("Version=24.1.rc1\nascendhal_version=7.35.19\n") == "24.1.rc1"
    assert npu.firmware_version(FIRMWARE_VERSION_INFO) == "7.7.0.1.231"
    conf = npu.parse_hccn_conf(HCCN_CONF)
    assert conf[0]["address"] == "29.1.137.205"
    assert conf[7] == {"address": "29.1.170.143", "netmask": "255.255.0.0", "netdetect": "29.1.0.1",
                       "gateway": "29.1.0.1", "send_arp_status": "1"}


@pytest.mark.parametrize(
    ("found", "minimum", "ok"),
    [
        ("25.3.rc1", "25.2.0", True),
        ("25.2.0", "25.2.0", True),
        ("25.2", "25.2.0", True),
        ("25.3.rc1", "25.3.0", False),
        ("24.1.rc1", "25.2.0", False),
        ("8.2.RC1", "8.2.rc1", True),
        ("7.7.0.1.231", "7.5.0", True),
        ("25.3.rc1.b020", "25.3.rc1", True),
        (None, "25.2.0", False),
    ],
)
def test_version_comparison(found: str | None, minimum: str, ok: bool) -> None:
    assert npu.version_at_least(found, minimum) is ok


LIMITS = {"npu_count": 8, "driver_min": "25.2.0", "firmware_min": "7.5.0", "min_free_disk_gb": 100,
          "min_shm_gb": 16, "max_clock_skew_s": 5, "check_hccn": True, "data_dir": "/mnt/data"}


def _healthy_probe() -> dict:
    parsed = npu.parse_npu_smi_info(NPU_SMI_IDLE)
    return {
        "npu_smi_candidates": {"/usr/local/bin/npu-smi": "executable", "/usr/local/sbin/npu-smi": "missing"},
        "npu_smi_path": "/usr/local/bin/npu-smi",
        "npus": parsed["npus"], "processes": [],
        "driver_version": "25.3.rc1", "firmware_version": "7.7.0.1.231",
        "hccn_conf_path": "/etc/hccn.conf",
        "hccn_conf": {i: {"address": f"10.20.0.{i + 2}"} for i in range(8)},
        "links": {i: {"link": "UP", "ipaddr": f"10.20.0.{i + 2}", "netmask": "255.255.255.0",
                      "net_health": "Success"} for i in range(8)},
        "disk_free_gb": 500.0, "disk_path": "/mnt/data", "shm_gb": 700.0, "clock_skew_s": 0.2,
    }


def test_healthy_host_passes_every_check() -> None:
    checks = npu.evaluate(_healthy_probe(), LIMITS)
    assert [c for c in checks if not c["ok"]] == []
    assert {c["check"] for c in checks} >= {"npu count", "npu health", "npu idle", "driver version",
                                            "firmware version", "npu link", "npu ip", "npu net health",
                                            "hccn.conf agrees", "free disk", "/dev/shm size"}


def test_every_fault_of_a_host_is_reported_at_once_with_npu_and_fix() -> None:
    probe = _healthy_probe()
    probe["npus"][2]["health"] = "Critical"
    probe["processes"] = [{"npu": 5, "chip": 0, "pid": 4242, "name": "python3", "memory_mb": 100}]
    probe["driver_version"] = "24.1.rc1"
    probe["links"][1]["link"] = "DOWN"
    probe["links"][6]["ipaddr"] = None
    probe["links"][4]["net_health"] = "Fault"
    probe["hccn_conf"][3]["address"] = "10.20.0.99"
    probe["disk_free_gb"] = 3.0
    failed = {(c["check"], c["npu"]): c for c in npu.evaluate(probe, LIMITS) if not c["ok"]}
    assert set(failed) == {("npu health", 2), ("npu idle", 5), ("driver version", "-"), ("npu link", 1),
                           ("npu ip", 6), ("npu net health", 4), ("hccn.conf agrees", 3), ("free disk", "-")}
    assert "npu-smi info -t health -i 2" in failed[("npu health", 2)]["fix"]
    assert "4242" in failed[("npu idle", 5)]["fix"]
    assert "25.2.0" in failed[("driver version", "-")]["fix"]
    assert "address_6" in failed[("npu ip", 6)]["fix"]
    assert "10.20.0.99" in failed[("hccn.conf agrees", 3)]["actual"]
    assert all(c["fix"] for c in failed.values())


def test_npu_smi_directory_left_by_a_bad_mount_is_named() -> None:
    probe = _healthy_probe()
    probe["npu_smi_candidates"] = {"/usr/local/bin/npu-smi": "missing", "/usr/local/sbin/npu-smi": "directory"}
    probe["npu_smi_path"] = None
    probe["npus"], probe["links"] = [], {}
    failed = [c for c in npu.evaluate(probe, LIMITS) if not c["ok"]]
    path_check = next(c for c in failed if c["check"] == "npu-smi path")
    assert "remove the directory /usr/local/sbin/npu-smi" in path_check["fix"]
    assert any(c["check"] == "npu count" and c["actual"] == "0" for c in failed)
