#!/usr/bin/python
"""Read-only probe of an Ascend host: NPUs, links, versions, disk, /dev/shm, clock."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ascend_npu_probe
short_description: Probe an Ascend NPU host and evaluate the preflight checks
description:
  - Runs C(npu-smi info) and, for every NPU, C(hccn_tool -i N -link -g), C(-ip -g) and
    C(-net_health -g); reads the driver and firmware C(version.info) files and C(/etc/hccn.conf);
    measures free disk on the data directory, the size of C(/dev/shm) and the clock offset
    from the control machine.
  - Never changes the host and never fails on a failing check; it returns every check so the
    play can report all failures of all hosts at once.
options:
  npu_smi_paths:
    description: Candidate paths of npu-smi, in order of preference.
    type: list
    elements: path
    required: true
  hccn_tool_paths:
    description: Candidate paths of hccn_tool, in order of preference.
    type: list
    elements: path
    required: true
  hccn_conf:
    description: Path of the HCCN configuration file.
    type: path
    default: /etc/hccn.conf
  driver_version_file:
    description: The driver's version.info.
    type: path
    default: /usr/local/Ascend/driver/version.info
  firmware_version_file:
    description: The firmware's version.info.
    type: path
    default: /usr/local/Ascend/firmware/version.info
  data_dir:
    description: The data directory whose filesystem must have free space.
    type: path
    required: true
  controller_time:
    description: Epoch seconds on the control machine when the task was sent.
    type: float
  npu_count:
    description: NPUs expected on the host.
    type: int
    required: true
  driver_min:
    description: Minimum driver version; empty skips the check.
    type: str
    default: ""
  firmware_min:
    description: Minimum firmware version; empty skips the check.
    type: str
    default: ""
  min_free_disk_gb:
    description: Minimum free space on the data directory's filesystem, in GB.
    type: float
    default: 0
  min_shm_gb:
    description: Minimum size of /dev/shm, in GB.
    type: float
    default: 0
  max_clock_skew_s:
    description: Largest tolerated clock offset from the control machine, in seconds.
    type: float
    default: 5
  check_hccn:
    description: Whether to check the NPU network ports with hccn_tool.
    type: bool
    default: true
author:
  - ascend-runner
"""

RETURN = r"""
probe:
  description: What was found (npu_smi_path, driver_version, firmware_version, npus, processes, links, ...).
  type: dict
  returned: always
checks:
  description: Every check as {check, npu, ok, actual, expected, fix}.
  type: list
  returned: always
failed_checks:
  description: The number of checks that did not pass.
  type: int
  returned: always
"""

import os
import time

from ansible.module_utils.ascend_npu import (
    driver_version,
    evaluate,
    firmware_version,
    parse_hccn_conf,
    parse_hccn_ip,
    parse_hccn_link,
    parse_hccn_net_health,
    parse_npu_smi_info,
)
from ansible.module_utils.basic import AnsibleModule

_DRIVER_LIBS = (
    "/usr/local/Ascend/driver/lib64:/usr/local/Ascend/driver/lib64/common:"
    "/usr/local/Ascend/driver/lib64/driver"
)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def _kind(path: str) -> str:
    if os.path.isdir(path):
        return "directory"
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return "executable"
    if os.path.lexists(path):
        return "other"
    return "missing"


def _first_executable(paths: list[str]) -> str | None:
    return next((p for p in paths if _kind(p) == "executable"), None)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "npu_smi_paths": {"type": "list", "elements": "path", "required": True},
            "hccn_tool_paths": {"type": "list", "elements": "path", "required": True},
            "hccn_conf": {"type": "path", "default": "/etc/hccn.conf"},
            "driver_version_file": {"type": "path", "default": "/usr/local/Ascend/driver/version.info"},
            "firmware_version_file": {"type": "path", "default": "/usr/local/Ascend/firmware/version.info"},
            "data_dir": {"type": "path", "required": True},
            "controller_time": {"type": "float"},
            "npu_count": {"type": "int", "required": True},
            "driver_min": {"type": "str", "default": ""},
            "firmware_min": {"type": "str", "default": ""},
            "min_free_disk_gb": {"type": "float", "default": 0},
            "min_shm_gb": {"type": "float", "default": 0},
            "max_clock_skew_s": {"type": "float", "default": 5},
            "check_hccn": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    now = time.time()
    probe: dict = {"npus": [], "processes": [], "links": {}}
    # The clock check needs the time the controller got the answer too: see ascend_preflight_clock.
    probe["host_time"] = now
    probe["controller_time"] = params["controller_time"]
    env = {"LD_LIBRARY_PATH": _DRIVER_LIBS + ":" + os.environ.get("LD_LIBRARY_PATH", "")}

    probe["npu_smi_candidates"] = {p: _kind(p) for p in params["npu_smi_paths"]}
    npu_smi = _first_executable(params["npu_smi_paths"])
    probe["npu_smi_path"] = npu_smi
    if npu_smi:
        rc, out, err = module.run_command([npu_smi, "info"], environ_update=env)
        if rc == 0:
            parsed = parse_npu_smi_info(out)
            probe.update(npus=parsed["npus"], processes=parsed["processes"],
                         npu_smi_version=parsed["version"])
        else:
            probe["npu_smi_error"] = (err or out).strip().splitlines()[-1:] or [f"rc {rc}"]
            probe["npu_smi_error"] = probe["npu_smi_error"][0]

    driver_text = _read(params["driver_version_file"])
    firmware_text = _read(params["firmware_version_file"])
    probe["driver_version"] = driver_version(driver_text) if driver_text else None
    probe["firmware_version"] = firmware_version(firmware_text) if firmware_text else None

    if params["check_hccn"]:
        hccn_tool = _first_executable(params["hccn_tool_paths"])
        probe["hccn_tool_path"] = hccn_tool
        probe["hccn_conf_path"] = params["hccn_conf"]
        conf_text = _read(params["hccn_conf"])
        probe["hccn_conf"] = parse_hccn_conf(conf_text) if conf_text else {}
        ids = [npu["id"] for npu in probe["npus"]] or list(range(params["npu_count"]))
        for npu_id in ids:
            link: dict = {"link": None, "ipaddr": None, "netmask": None, "net_health": None}
            if hccn_tool:
                dev = str(npu_id)
                rc, out, _ = module.run_command([hccn_tool, "-i", dev, "-link", "-g"], environ_update=env)
                link["link"] = parse_hccn_link(out) if rc == 0 else None
                rc, out, _ = module.run_command([hccn_tool, "-i", dev, "-ip", "-g"], environ_update=env)
                if rc == 0:
                    link.update(parse_hccn_ip(out))
                rc, out, _ = module.run_command([hccn_tool, "-i", dev, "-net_health", "-g"],
                                                environ_update=env)
                link["net_health"] = parse_hccn_net_health(out) if rc == 0 else None
            probe["links"][npu_id] = link

    probe["disk_path"] = params["data_dir"]
    path = params["data_dir"]
    while path and not os.path.exists(path):
        path = os.path.dirname(path.rstrip("/")) or "/"
    try:
        stat = os.statvfs(path)
        probe["disk_free_gb"] = round(stat.f_bavail * stat.f_frsize / 1e9, 1)
        probe["disk_path"] = path
    except OSError:
        probe["disk_free_gb"] = None
    try:
        shm = os.statvfs("/dev/shm")
        probe["shm_gb"] = round(shm.f_blocks * shm.f_frsize / 1e9, 1)
    except OSError:
        probe["shm_gb"] = None

    limits = {key: params[key] for key in ("npu_count", "driver_min", "firmware_min", "min_free_disk_gb",
                                           "min_shm_gb", "max_clock_skew_s", "check_hccn", "data_dir")}
    checks = evaluate(probe, limits)
    # JSON object keys must be strings; keep NPU ids readable in the report.
    probe["links"] = {str(k): v for k, v in probe["links"].items()}
    probe["hccn_conf"] = {str(k): v for k, v in probe.get("hccn_conf", {}).items()}
    module.exit_json(changed=False, probe=probe, checks=checks,
                     failed_checks=sum(1 for c in checks if not c["ok"]))


if __name__ == "__main__":
    main()
