"""The simulated node's `npu-smi` and `hccn_tool`.

This file is installed as-is on every simulated node (as /usr/local/bin/npu-smi and
/usr/local/Ascend/driver/tools/hccn_tool, with a shebang naming a Python interpreter), so it
uses the standard library only and imports nothing from `runner`. The tool is chosen by the
name it is called with. What it prints follows the formats of the real tools on an Atlas 800T A2
(8x Ascend 910B3); the values come from the node's state file, which `runner sim fault` edits.

State file (JSON), path from $ASCEND_SIM_STATE or STATE_PATH below:
    {"npus": [{"health": "OK", "busy": null | {"pid": 1, "name": "python3", "memory_mb": 1},
               "link_up": true, "ip_present": true, "ipaddr": "...", "netmask": "...",
               "gateway": "..."}, ...]}
The driver version comes from the driver's version.info, as on a real host.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

STATE_PATH = "/usr/local/Ascend/driver/.sim-npu-state.json"
DRIVER_VERSION_INFO = "/usr/local/Ascend/driver/version.info"
FIRMWARE_VERSION_INFO = "/usr/local/Ascend/firmware/version.info"

HEALTH_STATES = ("OK", "Warning", "Alarm", "Critical", "UNKNOWN")
CHIP_NAME = "910B3"
HBM_TOTAL_MB = 65536

# Idle figures of a real 8x 910B3 host, one tuple per NPU: power W, temp C, bus id, HBM used MB.
_IDLE = (
    ("102.8", 55, "0000:C1:00.0", 3338),
    ("97.6", 54, "0000:C2:00.0", 3337),
    ("96.5", 56, "0000:81:00.0", 3334),
    ("108.7", 57, "0000:82:00.0", 3334),
    ("103.9", 58, "0000:01:00.0", 3334),
    ("99.3", 56, "0000:02:00.0", 3334),
    ("107.7", 58, "0000:41:00.0", 3334),
    ("105.1", 59, "0000:42:00.0", 3338),
)

# What `npu-smi info -t health` reports for a health state other than OK.
_HEALTH_ERRORS = {
    "OK": ("NA", "NA"),
    "Warning": ("80E18402", "node type=HBM, sensor type=Memory, event state=single-bit ECC error"),
    "Alarm": ("80E01801", "node type=AICORE, sensor type=Temperature, event state=over temperature"),
    "Critical": ("80CB8009", "node type=HBM, sensor type=Memory, event state=multi-bit ECC error"),
    "UNKNOWN": ("NA", "the device does not exist or has not started"),
}

WIDTH = 98  # every line of the `npu-smi info` table
RULE = "+" + "-" * (WIDTH - 2) + "+"
COLS_RULE = "+" + "-" * 27 + "+" + "-" * 15 + "+" + "-" * 52 + "+"
COLS_DOUBLE = "+" + "=" * 27 + "+" + "=" * 15 + "+" + "=" * 52 + "+"


# ---- state ---------------------------------------------------------------------------------


def default_npu(node_index: int, npu: int) -> dict[str, Any]:
    """The healthy state of NPU `npu` on node `node_index`."""
    return {
        "health": "OK",
        "busy": None,
        "link_up": True,
        "ip_present": True,
        "ipaddr": f"10.20.{node_index}.{npu + 2}",
        "netmask": "255.255.0.0",
        "gateway": "10.20.0.1",
    }


def default_state(node_index: int, npu_count: int) -> dict[str, Any]:
    """The state of a freshly booted healthy node."""
    return {"npus": [default_npu(node_index, k) for k in range(npu_count)]}


def load_state(path: str | None = None) -> dict[str, Any]:
    with open(path or os.environ.get("ASCEND_SIM_STATE", STATE_PATH), encoding="utf-8") as fh:
        return json.load(fh)


def save_state(state: dict[str, Any], path: str) -> None:
    """Write atomically, so a tool reading concurrently never sees half a file."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(state, fh, indent=1)
    os.replace(tmp, path)


def read_version_info(path: str) -> dict[str, str]:
    """Parse a `key=value` version.info file; a missing file gives {}."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError:
        return {}
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def driver_version(info: dict[str, str]) -> str:
    return info.get("package_version") or info.get("Version") or "NA"


# ---- npu-smi -------------------------------------------------------------------------------


def _cell(text: object, width: int) -> str:
    return (" " + str(text)).ljust(width)


def _row(c1: str, c2: str, c3: str) -> str:
    return "|" + _cell(c1, 27) + "|" + _cell(c2, 15) + "|" + _cell(c3, 52) + "|"


def _figures(k: int) -> tuple[str, int, str, int]:
    return _IDLE[k % len(_IDLE)]


def render_info(state: dict[str, Any], version: str) -> str:
    """`npu-smi info`: the device table, then the process table."""
    out = [RULE, "| " + f"npu-smi {version:<25}Version: {version}".ljust(WIDTH - 3) + "|", COLS_RULE]
    out.append(_row("NPU   Name", "Health", "Power(W)    Temp(C)           Hugepages-Usage(page)"))
    out.append(_row("Chip", "Bus-Id", "AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)"))
    out.append(COLS_DOUBLE)
    for k, npu in enumerate(state["npus"]):
        power, temp, bus, hbm = _figures(k)
        aicore = 0
        if npu["busy"]:
            hbm += int(npu["busy"]["memory_mb"])
            aicore = 87
        out.append(_row(f"{k:<6}{CHIP_NAME}", npu["health"], f"{power:<12}{temp:<18}{0:<5}/ {0}"))
        out.append(_row("0", bus, f"{aicore:<12}{0:<5}/ {0:<11}{hbm:<5}/ {HBM_TOTAL_MB}"))
        out.append(COLS_DOUBLE)
    out.append(COLS_RULE)
    out.append(
        "|"
        + _cell("NPU     Chip", 27)
        + "|"
        + _cell("Process id", 15)
        + "|"
        + _cell("Process name", 26)
        + "|"
        + _cell("Process memory(MB)", 25)
        + "|"
    )
    out.append(COLS_DOUBLE)
    for k, npu in enumerate(state["npus"]):
        busy = npu["busy"]
        if busy:
            out.append(
                "|"
                + _cell(f"{k:<8}0", 27)
                + "|"
                + _cell(busy["pid"], 15)
                + "|"
                + _cell(busy["name"], 26)
                + "|"
                + _cell(busy["memory_mb"], 25)
                + "|"
            )
        else:
            out.append("|" + _cell(f"No running processes found in NPU {k}", WIDTH - 2) + "|")
        out.append(COLS_DOUBLE)
    return "\n".join(out) + "\n"


def _kv(pairs: Sequence[tuple[str, object]]) -> str:
    return "".join(f"{key:<31}: {value}\n" for key, value in pairs)


def render_list(state: dict[str, Any]) -> str:
    """`npu-smi info -l`."""
    blocks = [_kv([("Total Count", len(state["npus"]))])]
    for k in range(len(state["npus"])):
        blocks.append(
            _kv(
                [
                    ("NPU ID", k),
                    ("Product Name", "IT21HMDC_B2"),
                    ("Serial Number", f"033VNY10MB{k:06d}"),
                    ("Chip Count", 1),
                ]
            )
        )
    return "\n".join(blocks)


def render_mapping(state: dict[str, Any]) -> str:
    """`npu-smi info -m`: each NPU's chip and its MCU."""
    out = ["NPU ID            Chip ID            Chip Logic ID            Chip Name"]
    for k in range(len(state["npus"])):
        out.append(f"{k:<20}{0:<22}{k:<20}Ascend {CHIP_NAME}")
        out.append(f"{k:<20}{1:<22}{'-':<20}MCU")
    return "\n".join(out) + "\n"


def render_health(state: dict[str, Any], npu: int) -> str:
    """`npu-smi info -t health -i N -c 0`."""
    health = state["npus"][npu]["health"]
    code, info = _HEALTH_ERRORS.get(health, ("NA", "NA"))
    return _kv([("Health Status", health), ("Error Code", code), ("Error Information", info)])


def render_board(npu: int, version: str, firmware: str) -> str:
    """`npu-smi info -t board -i N`: an Atlas 800T A2 module (subsystem device 0x3000)."""
    _, _, bus, _ = _figures(npu)
    return "".join(
        f"{key:<21}: {value}\n"
        for key, value in [
            ("NPU ID", npu),
            ("Product Name", "IT21HMDC_B2"),
            ("Model", "NA"),
            ("Manufacturer", "Huawei"),
            ("Serial Number", f"033VNY10MB{npu:06d}"),
            ("Software Version", version),
            ("Firmware Version", firmware),
            ("Compatibility", "OK"),
            ("Board ID", "0x67"),
            ("PCB ID", "A"),
            ("BOM ID", "1"),
            ("PCIe Bus Info", bus),
            ("Slot ID", npu),
            ("Class ID", "NA"),
            ("PCI Vendor ID", "0x19E5"),
            ("PCI Device ID", "0xD802"),
            ("Subsystem Vendor ID", "0x19E5"),
            ("Subsystem Device ID", "0x3000"),
            ("Chip Count", 1),
        ]
    )


NPU_SMI_USAGE = """\
Usage: npu-smi info [-l | -m | -t TYPE -i ID [-c CHIP_ID]]
    info                 show the devices and their processes
    info -l              list the NPUs
    info -m              list the chips of each NPU
    info -t health -i ID -c 0
    info -t board -i ID
"""


class ToolError(Exception):
    """A usage error: the message goes to stderr and the tool exits with `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _option(args: Sequence[str], name: str) -> str | None:
    if name not in args:
        return None
    at = list(args).index(name)
    if at + 1 >= len(args):
        raise ToolError(f"Option {name} requires a value.")
    return args[at + 1]


def _npu_id(args: Sequence[str], state: dict[str, Any]) -> int:
    raw = _option(args, "-i")
    if raw is None:
        raise ToolError("Option -i is required.\n" + NPU_SMI_USAGE)
    if not raw.isdigit() or int(raw) >= len(state["npus"]):
        raise ToolError(f"The card id {raw} is invalid (valid: 0-{len(state['npus']) - 1}).", code=2)
    return int(raw)


def npu_smi(args: Sequence[str], state: dict[str, Any], drv: dict[str, str], fw: dict[str, str]) -> str:
    """Answer one `npu-smi` command line (without the program name)."""
    if not args or args[0] != "info":
        raise ToolError(NPU_SMI_USAGE)
    rest = list(args[1:])
    version = driver_version(drv)
    if not rest:
        return render_info(state, version)
    if rest == ["-l"]:
        return render_list(state)
    if rest == ["-m"]:
        return render_mapping(state)
    kind = _option(rest, "-t")
    if kind == "health":
        return render_health(state, _npu_id(rest, state))
    if kind == "board":
        return render_board(_npu_id(rest, state), version, fw.get("Version", "NA"))
    raise ToolError(f"Unsupported command: npu-smi {' '.join(args)}\n" + NPU_SMI_USAGE)


# ---- hccn_tool -----------------------------------------------------------------------------

HCCN_USAGE = """\
Usage: hccn_tool -i ID -link -g | -ip -g | -net_health -g | -gateway -g | -netdetect -g | -mac -g
                 | -link_stat -g | -tls -g
"""


def hccn_tool(args: Sequence[str], state: dict[str, Any]) -> str:
    """Answer one `hccn_tool -i N -<what> -g` command line."""
    if "-g" not in args:
        raise ToolError(HCCN_USAGE)
    npu_index = _npu_id(args, state)
    npu = state["npus"][npu_index]
    if "-link" in args:
        return f"link status: {'UP' if npu['link_up'] else 'DOWN'}\n"
    if "-ip" in args:
        if not npu["ip_present"]:
            return ""
        return f"ipaddr:{npu['ipaddr']}\nnetmask:{npu['netmask']}\n"
    if "-net_health" in args:
        if not npu["link_up"]:
            status = "Fault"
        elif not npu["ip_present"]:
            status = "Init"
        else:
            status = "Success"
        return f"net health status: {status}\n"
    if "-gateway" in args:
        return f"default gateway:{npu['gateway']}, Iface:eth{npu_index}\n"
    if "-netdetect" in args:
        return f"netdetect address: {npu['gateway']}\n"
    if "-link_stat" in args:
        return render_link_stat(npu_index, npu["link_up"])
    if "-tls" in args:
        return (
            f"dev_id:{npu_index}, tls switch[0](0:disable, 1:enable), tls preconfigured[1](0:non-preset, "
            "1:preset), tls alarm time threshold[60]days\n"
        )
    if "-mac" in args:
        return f"mac addr: 06:0c:b4:96:{npu_index:02x}:85\n"
    raise ToolError(HCCN_USAGE)


def render_link_stat(npu_index: int, link_up: bool) -> str:
    """`hccn_tool -i N -link_stat -g`: the port's up count and its recent changes."""
    now = time.strftime("%a %b %e %H:%M:%S %Y")
    tag = f"[device {npu_index}]"
    records = ["Tue Jun  6 16:32:12 2023    LINK UP", "Tue Jun  6 16:32:10 2023    LINK DOWN",
               "Tue Jun  6 16:31:55 2023    LINK UP"]  # fmt: skip
    if not link_up:
        records.insert(0, f"{now}    LINK DOWN")
    lines = [f"{tag}current time        : {now}", f"{tag}link up count       : 2", f"{tag}link change records :"]
    lines += [f"{tag}    {record}" for record in records]
    return "\n".join(lines) + "\n"


# ---- entry point ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    prog, args = os.path.basename(argv[0]), argv[1:]
    try:
        state = load_state()
    except (OSError, ValueError):
        # What a real host says when the driver is not loaded.
        sys.stderr.write("dcmi module initialize failed. ret is -8005\n")
        return 1
    try:
        if prog.startswith("hccn_tool"):
            text = hccn_tool(args, state)
        else:
            text = npu_smi(
                args, state, read_version_info(DRIVER_VERSION_INFO), read_version_info(FIRMWARE_VERSION_INFO)
            )
    except ToolError as exc:
        sys.stderr.write(str(exc).rstrip("\n") + "\n")
        return exc.code
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
