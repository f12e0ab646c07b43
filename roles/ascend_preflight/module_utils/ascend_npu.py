"""Parsers for Ascend tool output and the preflight checks built on them.

Pure functions, no I/O: the `ascend_npu_probe` module feeds them the text of `npu-smi info`,
`hccn_tool -i N -link/-ip/-net_health -g`, `version.info` files and `/etc/hccn.conf`; the unit
tests feed them the verbatim samples of reference/ascend-provisioning-facts.md section 8.
"""

from __future__ import annotations

import re

_BUS_ID = re.compile(r"^[0-9A-Fa-f]{4}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]$")
_NPU_ROW = re.compile(r"^(\d+)\s+(\S+)$")
_NO_PROC = re.compile(r"No running processes found in NPU (\d+)", re.IGNORECASE)
_HEADER_VERSION = re.compile(r"Version:\s*(\S+)")


def _cells(line: str) -> list[str]:
    """Cells of one `| a | b | c |` table row, stripped."""
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def parse_npu_smi_info(text: str) -> dict:
    """Parse `npu-smi info` into {"version", "npus": [...], "processes": [...]}.

    Each NPU is {"id", "name", "health", "chip", "bus_id"}; each process is
    {"npu", "chip", "pid", "name", "memory_mb"}. Unknown lines are ignored, so newer npu-smi
    releases with extra columns still parse.
    """
    version = None
    npus: list[dict] = []
    processes: list[dict] = []
    in_processes = False
    pending: dict | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if version is None and stripped.startswith("| npu-smi"):
            match = _HEADER_VERSION.search(stripped)
            if match:
                version = match.group(1)
            continue
        if not stripped.startswith("|"):
            continue
        cells = _cells(stripped)
        if cells and cells[0].startswith("NPU") and any(c.startswith("Process id") for c in cells):
            in_processes = True
            continue
        if in_processes:
            if _NO_PROC.search(stripped):
                continue
            if len(cells) >= 3 and re.match(r"^\d+\s+\d+$", cells[0]) and cells[1].isdigit():
                npu_id, chip = cells[0].split()
                memory = cells[-1].split()[0] if cells[-1] else ""
                processes.append(
                    {
                        "npu": int(npu_id),
                        "chip": int(chip),
                        "pid": int(cells[1]),
                        "name": cells[2] if len(cells) > 3 else "",
                        "memory_mb": int(memory) if memory.isdigit() else None,
                    }
                )
            continue
        if len(cells) < 3:
            continue
        row = _NPU_ROW.match(cells[0])
        if row and not _BUS_ID.match(cells[1]):
            pending = {
                "id": int(row.group(1)),
                "name": row.group(2),
                "health": cells[1],
                "chip": None,
                "bus_id": None,
            }
            npus.append(pending)
        elif cells[0].isdigit() and _BUS_ID.match(cells[1]) and pending is not None:
            pending["chip"] = int(cells[0])
            pending["bus_id"] = cells[1]
            pending = None
    return {"version": version, "npus": npus, "processes": processes}


def _key_values(text: str, sep: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        if sep not in line:
            continue
        key, _, value = line.partition(sep)
        values[key.strip().lower()] = value.strip()
    return values


def parse_hccn_link(text: str) -> str | None:
    """`link status: UP` -> "UP"."""
    return _key_values(text, ":").get("link status")


def parse_hccn_net_health(text: str) -> str | None:
    """`net health status: Success` -> "Success"."""
    return _key_values(text, ":").get("net health status")


def parse_hccn_ip(text: str) -> dict[str, str | None]:
    """`ipaddr:10.0.0.2` / `netmask:255.255.255.0` -> {"ipaddr", "netmask"} (None if absent)."""
    values = _key_values(text, ":")
    return {"ipaddr": values.get("ipaddr") or None, "netmask": values.get("netmask") or None}


def parse_version_info(text: str) -> dict[str, str]:
    """`key=value` lines of a version.info or ascend_install.info file."""
    return {key: value for key, value in ((k.strip(), v.strip()) for k, _, v in
            (line.partition("=") for line in text.splitlines() if "=" in line))}


def driver_version(version_info: str) -> str | None:
    """The driver version of /usr/local/Ascend/driver/version.info: package_version, else Version."""
    values = parse_version_info(version_info)
    return values.get("package_version") or values.get("Version")


def firmware_version(version_info: str) -> str | None:
    """The firmware version of /usr/local/Ascend/firmware/version.info (its `Version=` line)."""
    values = parse_version_info(version_info)
    return values.get("Version") or values.get("package_version")


def parse_hccn_conf(text: str) -> dict[int, dict[str, str]]:
    """/etc/hccn.conf -> {device: {"address": ..., "netmask": ..., ...}}."""
    devices: dict[int, dict[str, str]] = {}
    for key, value in parse_version_info(text).items():
        match = re.match(r"^([A-Za-z_]+?)_(\d+)$", key)
        if match:
            devices.setdefault(int(match.group(2)), {})[match.group(1)] = value
    return devices


def version_key(version: str) -> tuple:
    """A sortable key for Ascend versions: 25.3.rc1 < 25.3.0 < 25.3.1; 8.2.RC1 == 8.2.rc1.

    Numeric parts compare as numbers; a part with letters (rc1, b020, alpha) is a pre-release
    and sorts below any number in the same place. Missing trailing parts count as 0.
    """
    parts: list[tuple[int, int, str]] = []
    for token in re.split(r"[.\-_]", version.strip().lower()):
        if not token:
            continue
        if token.isdigit():
            parts.append((1, int(token), ""))
        else:
            digits = re.sub(r"\D", "", token)
            parts.append((0, int(digits) if digits else 0, re.sub(r"\d", "", token)))
    while parts and parts[-1] == (1, 0, ""):
        parts.pop()
    return tuple(parts)


def version_at_least(found: str | None, minimum: str) -> bool:
    if not found:
        return False
    a, b = version_key(found), version_key(minimum)
    width = max(len(a), len(b))

    def padded(key: tuple) -> tuple:
        # 25.3 is the release after 25.3.rc1, but 25.3.rc1.b020 is a build of 25.3.rc1: missing
        # parts after a number count as 0, after a pre-release as less than anything.
        pad = (1, 0, "") if not key or key[-1][0] == 1 else (-1, 0, "")
        return key + (pad,) * (width - len(key))

    return padded(a) >= padded(b)


def _check(name: str, ok: bool, actual: object, expected: object, fix: str, npu: int | None = None) -> dict:
    return {
        "check": name,
        "npu": "-" if npu is None else npu,
        "ok": bool(ok),
        "actual": "" if actual is None else str(actual),
        "expected": "" if expected is None else str(expected),
        "fix": "" if ok else fix,
    }


def evaluate(probe: dict, limits: dict) -> list[dict]:
    """Every preflight check of one host, passing or not.

    `probe` is what `ascend_npu_probe` collected; `limits` holds the expectations:
    npu_count, driver_min, firmware_min, min_free_disk_gb, min_shm_gb, check_hccn, data_dir.
    The clock check needs the controller's receive time and is made there
    (filter_plugins/ascend_preflight.py, ascend_preflight_clock).
    """
    checks: list[dict] = []
    smi_paths = probe.get("npu_smi_candidates", {})
    dirs = [path for path, kind in smi_paths.items() if kind == "directory"]
    found = probe.get("npu_smi_path")
    checks.append(
        _check(
            "npu-smi path",
            bool(found) and not dirs,
            found or ", ".join(f"{p}: {k}" for p, k in smi_paths.items()) or "not found",
            "one of " + ", ".join(smi_paths) if smi_paths else "npu-smi",
            (f"remove the directory {dirs[0]} (left by a container bind mount of a path that did not "
             "exist) and reinstall the driver's npu-smi" if dirs else
             "install the Ascend driver (npu-smi missing from /usr/local/bin and /usr/local/sbin)"),
        )
    )
    if probe.get("npu_smi_error"):
        checks.append(
            _check("npu-smi info", False, probe["npu_smi_error"], "rc 0",
                   "npu-smi could not read the NPUs: check the driver (dcmi -8005 means restart the "
                   "device, -8020 means another container holds it)")
        )
    npus = probe.get("npus", [])
    expected = int(limits["npu_count"])
    checks.append(
        _check("npu count", len(npus) == expected, len(npus), expected,
               f"npu-smi info lists {len(npus)} NPUs; check the cards and the driver, or set "
               f"ascend_npu_count to the number this host really has")
    )
    for npu in npus:
        checks.append(
            _check("npu health", npu["health"] == "OK", npu["health"], "OK",
                   f"NPU {npu['id']} reports {npu['health']}: read `npu-smi info -t health -i "
                   f"{npu['id']} -c 0` for the error code, then repair or reset the card",
                   npu=npu["id"])
        )
    busy: dict[int, list[str]] = {}
    for proc in probe.get("processes", []):
        busy.setdefault(proc["npu"], []).append(f"{proc['pid']} {proc['name']}".strip())
    for npu_id in sorted(busy):
        checks.append(
            _check("npu idle", False, "held by " + ", ".join(busy[npu_id]), "no process",
                   f"stop the process(es) {', '.join(p.split()[0] for p in busy[npu_id])} holding "
                   f"NPU {npu_id} (or the container running them) before training",
                   npu=npu_id)
        )
    if npus and not busy:
        checks.append(_check("npu idle", True, "no process", "no process", ""))
    for label, key, minimum_key in (("driver version", "driver_version", "driver_min"),
                                    ("firmware version", "firmware_version", "firmware_min")):
        minimum = limits.get(minimum_key)
        if not minimum:
            continue
        value = probe.get(key)
        checks.append(
            _check(label, version_at_least(value, minimum), value or "not installed", f">= {minimum}",
                   f"upgrade the Ascend {label.split()[0]} to {minimum} or newer "
                   f"(the manifest versions.yml asks for at least {minimum})")
        )
    if limits.get("check_hccn", True):
        conf = probe.get("hccn_conf", {})
        conf_path = probe.get("hccn_conf_path", "/etc/hccn.conf")
        for npu_id, link in sorted(probe.get("links", {}).items(), key=lambda kv: int(kv[0])):
            npu_id = int(npu_id)
            checks.append(
                _check("npu link", link.get("link") == "UP", link.get("link") or "unknown", "UP",
                       f"NPU {npu_id} port is down: check the cable and switch port "
                       f"(`hccn_tool -i {npu_id} -link_stat -g` shows its history)", npu=npu_id)
            )
            ip = link.get("ipaddr")
            checks.append(
                _check("npu ip", bool(ip), ip or "none", "an address",
                       f"configure NPU {npu_id}: add address_{npu_id}/netmask_{npu_id} to {conf_path} "
                       f"and run `hccn_tool -a -cfg recovery`", npu=npu_id)
            )
            health = link.get("net_health")
            checks.append(
                _check("npu net health", health == "Success", health or "unknown", "Success",
                       f"NPU {npu_id} cannot reach its netdetect address: check netdetect_{npu_id} in "
                       f"{conf_path} and the RoCE network", npu=npu_id)
            )
            conf_ip = conf.get(npu_id, {}).get("address")
            if ip:
                checks.append(
                    _check("hccn.conf agrees", conf_ip == ip, f"{conf_path}: {conf_ip or 'none'}", ip,
                           f"{conf_path} says address_{npu_id}={conf_ip or '(missing)'} but the NPU has {ip}: "
                           f"fix the file or re-apply it with `hccn_tool -a -cfg recovery`", npu=npu_id)
                )
    free = probe.get("disk_free_gb")
    if free is not None:
        need = float(limits["min_free_disk_gb"])
        checks.append(
            _check("free disk", free >= need, f"{free:.1f} GB free on {probe.get('disk_path')}",
                   f">= {need:g} GB", f"free at least {need:g} GB on {probe.get('disk_path')}, point "
                   f"ascend_data_dir at a larger filesystem, or lower ascend_preflight_min_free_disk_gb")
        )
    else:
        checks.append(_check("free disk", False, f"{limits.get('data_dir')} missing", "a directory",
                             "create the data directory (and mount its filesystem)"))
    shm = probe.get("shm_gb")
    need_shm = float(limits["min_shm_gb"])
    checks.append(
        _check("/dev/shm size", shm is not None and shm >= need_shm,
               "missing" if shm is None else f"{shm:.1f} GB", f">= {need_shm:g} GB",
               f"enlarge /dev/shm to at least {need_shm:g} GB (`mount -o remount,size={need_shm:g}G /dev/shm` "
               "and in /etc/fstab), or lower ascend_preflight_min_shm_gb")
    )
    return checks
