"""Filters that turn every host's preflight checks into one summary."""

from __future__ import annotations

DOCUMENTATION = r"""
name: ascend_preflight_failures
short_description: Collect the failing preflight checks of every host
"""

_COLUMNS = ("host", "npu", "check", "actual", "fix")


def ascend_preflight_clock(probe: dict, received: float, limit: float) -> dict:
    """The clock check of one host, from its time and the controller's send and receive times.

    The host read its clock somewhere between the controller sending the task and getting the
    answer, so only an offset outside that window is certain: the check reports the smallest
    offset consistent with the window, never the network or SSH delay.
    """
    host, sent = float(probe["host_time"]), float(probe.get("controller_time") or received)
    skew = (host - received) if host > received else (host - sent) if host < sent else 0.0
    ok = abs(skew) <= float(limit)
    return {
        "check": "clock skew",
        "npu": "-",
        "ok": ok,
        "actual": f"{skew:+.1f} s vs control machine (measured within {received - sent:.1f} s)",
        "expected": f"within {float(limit):g} s",
        "fix": "" if ok else (f"synchronise the clock (chrony or ntp) with the other nodes and the control machine; "
                              f"HCCL needs them within {float(limit):g} s"),
    }


def ascend_preflight_failures(
    hostvars: dict, hosts: list, waived: list | None = None, key: str = "__ascend_preflight_result"
) -> list[dict]:
    """Failing checks of every host as rows {host, npu, check, actual, expected, fix}.

    `hostvars[host][key]` is the probe module's result for the host (absent or unreachable when
    the host was not reached); checks named in `waived` are left out.
    """
    waived_set = set(waived or [])
    rows: list[dict] = []
    for host in hosts:
        host_vars = hostvars.get(host) or {}
        result = host_vars.get(key) or host_vars.get("__ascend_preflight_probe") or {}
        checks = result.get("checks")
        if checks is None:
            reason = result.get("msg") or "the probe did not run (host unreachable or failed earlier)"
            rows.append({"host": host, "npu": "-", "check": "probe", "actual": str(reason).splitlines()[0],
                         "expected": "a result", "fix": "make the host reachable over SSH and re-run"})
            continue
        for check in checks:
            if not check["ok"] and check["check"] not in waived_set:
                rows.append({"host": host, **{k: check[k] for k in ("npu", "check", "actual", "expected",
                                                                   "fix")}})
    return rows


def ascend_preflight_table(rows: list[dict], width: int = 60) -> str:
    """Plain-text table of the rows, one line per failing check (long fixes are wrapped)."""
    headers = [c.upper() for c in _COLUMNS]
    cells = [[str(row.get(c, "")) for c in _COLUMNS] for row in rows]
    widths = [len(h) for h in headers]
    for line in cells:
        for i, value in enumerate(line[:-1]):
            widths[i] = max(widths[i], len(value))
    widths[-1] = width

    def wrap(text: str) -> list[str]:
        words, lines, current = text.split(), [], ""
        for word in words:
            if current and len(current) + 1 + len(word) > width:
                lines.append(current)
                current = word
            else:
                current = f"{current} {word}".strip()
        return [*lines, current] if current else lines or [""]

    def fmt(values: list[str]) -> str:
        return "  ".join(v.ljust(widths[i]) for i, v in enumerate(values)).rstrip()

    out = [fmt(headers), fmt(["-" * w for w in widths])]
    for line in cells:
        fix_lines = wrap(line[-1])
        out.append(fmt([*line[:-1], fix_lines[0]]))
        out.extend(fmt([""] * (len(line) - 1) + [more]) for more in fix_lines[1:])
    return "\n".join(out)


class FilterModule:
    """Preflight summary filters."""

    def filters(self) -> dict:
        return {
            "ascend_preflight_clock": ascend_preflight_clock,
            "ascend_preflight_failures": ascend_preflight_failures,
            "ascend_preflight_table": ascend_preflight_table,
        }
