"""Filters that turn every host's preflight checks into one summary."""

from __future__ import annotations

DOCUMENTATION = r"""
name: ascend_preflight_failures
short_description: Collect the failing preflight checks of every host
"""

_COLUMNS = ("host", "npu", "check", "actual", "fix")


def ascend_preflight_failures(
    hostvars: dict, hosts: list, waived: list | None = None, key: str = "__ascend_preflight_probe"
) -> list[dict]:
    """Failing checks of every host as rows {host, npu, check, actual, expected, fix}.

    `hostvars[host][key]` is the probe module's result for the host (absent or unreachable when
    the host was not reached); checks named in `waived` are left out.
    """
    waived_set = set(waived or [])
    rows: list[dict] = []
    for host in hosts:
        host_vars = hostvars.get(host) or {}
        result = host_vars.get(key) or {}
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
            "ascend_preflight_failures": ascend_preflight_failures,
            "ascend_preflight_table": ascend_preflight_table,
        }
