"""`runner sim fault NODE ...`: the words of a fault, parsed, and their effect on NPU state.

Grammar (one fault per command):
    npu K health OK|Warning|Alarm|Critical|UNKNOWN
    npu K busy [PID [NAME]]      a process holds NPU K      npu K idle      frees it
    link K down | link K up      the NPU's network port
    ip K missing | ip K present  the NPU's device IP
    driver VERSION               the installed driver version
    down | restore               node loss (sshd and everything stopped, link down) / back, healthy
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from runner.errors import InputError
from runner.sim.fake_tools import HEALTH_STATES

BUSY_MEMORY_MB = 51277
USAGE = (
    "npu K health OK|Warning|Alarm|Critical|UNKNOWN | npu K busy [PID [NAME]] | npu K idle | "
    "link K down|up | ip K missing|present | driver VERSION | down | restore"
)


@dataclass(frozen=True)
class Fault:
    kind: str  # health, busy, idle, link, ip, driver, down, restore
    npu: int | None = None
    value: str | None = None
    pid: int | None = None

    def describe(self) -> str:
        where = f"NPU {self.npu} " if self.npu is not None else ""
        if self.kind == "health":
            return f"{where}health {self.value}"
        if self.kind == "busy":
            return f"{where}busy (pid {self.pid}, {self.value})"
        if self.kind in ("link", "ip"):
            return f"{where}{self.kind} {self.value}"
        if self.kind == "driver":
            return f"driver {self.value}"
        return f"{where}{self.kind}".strip()


def _bad(words: Sequence[str], why: str) -> InputError:
    return InputError(f"bad fault `{' '.join(words)}`: {why}", hint=f"faults: {USAGE}")


def _npu_index(words: Sequence[str], raw: str, npus: int) -> int:
    if not raw.isdigit() or int(raw) >= npus:
        raise _bad(words, f"NPU index {raw!r} is not one of 0..{npus - 1}")
    return int(raw)


def parse_fault(words: Sequence[str], npus: int) -> Fault:
    """Parse the words after the node name; an InputError says what is valid."""
    w = list(words)
    if not w:
        raise _bad(w, "no fault given")
    head = w[0]
    if head in ("down", "restore"):
        if len(w) != 1:
            raise _bad(w, f"`{head}` takes no arguments")
        return Fault(head)
    if head == "driver":
        if len(w) != 2 or not w[1][:1].isdigit():
            raise _bad(w, "expected `driver VERSION`, e.g. `driver 23.0.3`")
        return Fault("driver", value=w[1])
    if head in ("link", "ip"):
        allowed = ("down", "up") if head == "link" else ("missing", "present")
        if len(w) != 3 or w[2] not in allowed:
            raise _bad(w, f"expected `{head} K {'|'.join(allowed)}`")
        return Fault(head, npu=_npu_index(w, w[1], npus), value=w[2])
    if head == "npu":
        if len(w) < 3:
            raise _bad(w, "expected `npu K health STATE`, `npu K busy` or `npu K idle`")
        k = _npu_index(w, w[1], npus)
        action = w[2]
        if action == "health":
            if len(w) != 4:
                raise _bad(w, f"expected `npu K health {'|'.join(HEALTH_STATES)}`")
            match = [s for s in HEALTH_STATES if s.lower() == w[3].lower()]
            if not match:
                raise _bad(w, f"health {w[3]!r} is not one of {', '.join(HEALTH_STATES)}")
            return Fault("health", npu=k, value=match[0])
        if action == "busy":
            if len(w) > 5 or (len(w) >= 4 and not w[3].isdigit()):
                raise _bad(w, "expected `npu K busy [PID [NAME]]` with a numeric PID")
            pid = int(w[3]) if len(w) >= 4 else 266776 + k
            return Fault("busy", npu=k, value=w[4] if len(w) == 5 else "python3", pid=pid)
        if action == "idle" and len(w) == 3:
            return Fault("idle", npu=k)
        raise _bad(w, f"unknown NPU fault {action!r}")
    raise _bad(w, f"unknown fault {head!r}")


def apply_fault(state: dict[str, Any], fault: Fault) -> dict[str, Any]:
    """The NPU state after an NPU-level fault (a new dict; node-level faults are not handled here)."""
    new = {**state, "npus": [dict(npu) for npu in state["npus"]]}
    if fault.npu is None:
        return new
    npu = new["npus"][fault.npu]
    if fault.kind == "health":
        npu["health"] = fault.value
    elif fault.kind == "busy":
        npu["busy"] = {"pid": fault.pid, "name": fault.value, "memory_mb": BUSY_MEMORY_MB}
    elif fault.kind == "idle":
        npu["busy"] = None
    elif fault.kind == "link":
        npu["link_up"] = fault.value == "up"
    elif fault.kind == "ip":
        npu["ip_present"] = fault.value == "present"
    return new


def describe_state(state: dict[str, Any], healthy: dict[str, Any]) -> list[str]:
    """Human words for every way `state` differs from a healthy node's."""
    notes = []
    for k, (npu, ok) in enumerate(zip(state["npus"], healthy["npus"], strict=False)):
        if npu["health"] != ok["health"]:
            notes.append(f"npu{k} {npu['health']}")
        if npu["busy"]:
            notes.append(f"npu{k} busy (pid {npu['busy']['pid']})")
        if not npu["link_up"]:
            notes.append(f"npu{k} link down")
        if not npu["ip_present"]:
            notes.append(f"npu{k} ip missing")
    return notes
