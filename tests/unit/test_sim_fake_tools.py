"""The simulator's npu-smi and hccn_tool print what the real tools print on an Atlas 800T A2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runner.sim import fake_tools as ft
from runner.sim.faults import apply_fault, parse_fault

# `npu-smi info` of a real idle 8x 910B3 host (driver 23.0.7), verbatim.
REAL_IDLE = (Path(__file__).resolve().parents[1] / "fixtures" / "npu_smi_info_idle_910b3.txt").read_text()
REAL_BUSY_ROW = "| 0       0                 | 266776        | python3                  | 51277                   |"
REAL_NEW_HEADER = "| npu-smi 25.3.rc1.b020            Version: 25.3.rc1.b020                                        |"


def healthy() -> dict:
    return ft.default_state(0, 8)


def test_idle_host_matches_the_real_output_exactly():
    assert ft.render_info(healthy(), "23.0.7") == REAL_IDLE


def test_busy_npu_appears_in_the_process_table_like_the_real_one():
    state = apply_fault(healthy(), parse_fault(["npu", "0", "busy", "266776"], 8))
    out = ft.render_info(state, "23.0.7")
    assert REAL_BUSY_ROW in out.splitlines()
    assert "No running processes found in NPU 0" not in out
    assert "No running processes found in NPU 1" in out
    assert all(len(line) == 98 for line in out.splitlines())


def test_longer_driver_version_keeps_the_header_columns():
    assert ft.render_info(healthy(), "25.3.rc1.b020").splitlines()[1] == REAL_NEW_HEADER


@pytest.mark.parametrize("health", ["Warning", "Alarm", "Critical", "UNKNOWN"])
def test_health_fault_shows_in_table_and_health_query(health):
    state = apply_fault(healthy(), parse_fault(["npu", "5", "health", health], 8))
    table = ft.render_info(state, "25.2.0")
    assert f"| 5     910B3               | {health:<14}|" in table
    detail = ft.npu_smi(["info", "-t", "health", "-i", "5", "-c", "0"], state, {}, {})
    assert detail.splitlines()[0] == f"Health Status                  : {health}"
    assert "Error Information              : NA" not in detail


def test_healthy_health_query():
    out = ft.npu_smi(["info", "-t", "health", "-i", "0", "-c", "0"], healthy(), {}, {})
    assert out == (
        "Health Status                  : OK\n"
        "Error Code                     : NA\n"
        "Error Information              : NA\n"
    )


def test_list_and_mapping_formats():
    listing = ft.npu_smi(["info", "-l"], healthy(), {}, {})
    assert listing.startswith("Total Count                    : 8\n\nNPU ID                         : 0\n")
    assert listing.count("Chip Count                     : 1") == 8
    mapping = ft.npu_smi(["info", "-m"], healthy(), {}, {}).splitlines()
    assert mapping[0] == "NPU ID            Chip ID            Chip Logic ID            Chip Name"
    assert mapping[1] == "0                   0                     0                   Ascend 910B3"
    assert mapping[2] == "0                   1                     -                   MCU"
    assert len(mapping) == 1 + 16


def test_board_is_an_800t_a2_module_with_driver_and_firmware_versions():
    out = ft.npu_smi(["info", "-t", "board", "-i", "2"], healthy(), {"package_version": "25.2.0"},
                     {"Version": "7.7.0.6.236"})  # fmt: skip
    assert "NPU ID               : 2\n" in out
    assert "Software Version     : 25.2.0\n" in out
    assert "Firmware Version     : 7.7.0.6.236\n" in out
    assert "PCI Device ID        : 0xD802\n" in out
    assert "Subsystem Device ID  : 0x3000\n" in out


def test_invalid_npu_id_is_an_error():
    with pytest.raises(ft.ToolError) as err:
        ft.npu_smi(["info", "-t", "health", "-i", "8", "-c", "0"], healthy(), {}, {})
    assert err.value.code != 0
    assert "8" in str(err.value)


def test_hccn_tool_healthy_outputs():
    s = ft.default_state(1, 8)
    assert ft.hccn_tool(["-i", "3", "-link", "-g"], s) == "link status: UP\n"
    assert "[device 2]link up count       : 2" in ft.hccn_tool(["-i", "2", "-link_stat", "-g"], s)
    assert ft.hccn_tool(["-i", "2", "-link_stat", "-g"], s).splitlines()[3].endswith("LINK UP")
    assert ft.hccn_tool(["-i", "3", "-ip", "-g"], s) == "ipaddr:10.20.1.5\nnetmask:255.255.0.0\n"
    assert ft.hccn_tool(["-i", "3", "-net_health", "-g"], s) == "net health status: Success\n"
    assert ft.hccn_tool(["-i", "3", "-gateway", "-g"], s) == "default gateway:10.20.0.1, Iface:eth3\n"


def test_hccn_tool_link_down_and_missing_ip():
    s = apply_fault(healthy(), parse_fault(["link", "2", "down"], 8))
    s = apply_fault(s, parse_fault(["ip", "4", "missing"], 8))
    assert ft.hccn_tool(["-i", "2", "-link", "-g"], s) == "link status: DOWN\n"
    assert ft.hccn_tool(["-i", "2", "-net_health", "-g"], s) == "net health status: Fault\n"
    assert ft.hccn_tool(["-i", "2", "-link_stat", "-g"], s).splitlines()[3].endswith("LINK DOWN")
    assert "ipaddr" not in ft.hccn_tool(["-i", "4", "-ip", "-g"], s)
    assert ft.hccn_tool(["-i", "4", "-net_health", "-g"], s) == "net health status: Init\n"
    assert ft.hccn_tool(["-i", "3", "-link", "-g"], s) == "link status: UP\n"


def test_installed_script_reads_state_and_driver_files(tmp_path):
    """The file as installed on a node: run by name, state from the state file."""
    state_file = tmp_path / "state.json"
    state = apply_fault(healthy(), parse_fault(["npu", "1", "health", "Alarm"], 8))
    state_file.write_text(json.dumps(state))
    for name in ("npu-smi", "hccn_tool"):
        (tmp_path / name).write_text(Path(ft.__file__).read_text())
    env = {**os.environ, "ASCEND_SIM_STATE": str(state_file)}
    run = subprocess.run([sys.executable, str(tmp_path / "npu-smi"), "info"], capture_output=True, text=True,
                         env=env, check=True)  # fmt: skip
    assert "| 1     910B3               | Alarm         |" in run.stdout
    hccn = subprocess.run([sys.executable, str(tmp_path / "hccn_tool"), "-i", "0", "-link", "-g"],
                          capture_output=True, text=True, env=env, check=True)  # fmt: skip
    assert hccn.stdout == "link status: UP\n"
    missing = subprocess.run([sys.executable, str(tmp_path / "npu-smi"), "info"], capture_output=True, text=True,
                             env={**env, "ASCEND_SIM_STATE": str(tmp_path / "none.json")})  # fmt: skip
    assert missing.returncode != 0
    assert "-8005" in missing.stderr
