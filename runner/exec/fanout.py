"""Do the same thing on every node in parallel and report per node.

The result is a map host -> outcome (a value or the exception that stopped it); no host's outcome
is lost because another failed. `raise_for_failures` turns failures into one ExecError whose text
lists each failed host with its command, exit code and the end of its stderr.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from runner.errors import ExecError
from runner.exec.base import CommandResult

K = TypeVar("K")
R = TypeVar("R")

MAX_PARALLEL = 64


@dataclass(frozen=True)
class FanoutResult(Generic[K, R]):
    """Per-host outcomes of a fan-out, in the order the hosts were given."""

    outcomes: Mapping[K, R | BaseException]

    @property
    def failed(self) -> dict[K, R | BaseException]:
        return {k: v for k, v in self.outcomes.items() if _is_failure(v)}

    @property
    def succeeded(self) -> dict[K, R]:
        return {k: v for k, v in self.outcomes.items() if not _is_failure(v)}  # type: ignore[misc]

    @property
    def ok(self) -> bool:
        return not self.failed


def _is_failure(value: object) -> bool:
    if isinstance(value, BaseException):
        return True
    return isinstance(value, CommandResult) and not value.ok


def fan_out(keys: Iterable[K], fn: Callable[[K], R], *, max_parallel: int = MAX_PARALLEL) -> FanoutResult[K, R]:
    """Call fn(key) for every key at once; collect each return value or exception."""
    keys = list(keys)
    outcomes: dict[K, R | BaseException] = {}
    if not keys:
        return FanoutResult(outcomes)
    with ThreadPoolExecutor(max_workers=min(max_parallel, len(keys))) as pool:
        futures = {key: pool.submit(fn, key) for key in keys}
        for key, future in futures.items():
            try:
                outcomes[key] = future.result()
            except Exception as exc:  # every failure is reported per host, none swallowed
                outcomes[key] = exc
    return FanoutResult(outcomes)


def describe_failure(host: object, value: object, tail_lines: int = 5) -> str:
    if isinstance(value, CommandResult):
        tail = value.tail("stderr", tail_lines) or value.tail("stdout", tail_lines)
        text = f"- {host}: `{value.command}` exited {value.exit_code}"
        if tail:
            text += "\n" + "\n".join(f"    {line}" for line in tail.splitlines())
        return text
    return f"- {host}: {value}"


def raise_for_failures(result: FanoutResult[K, R] | Mapping[K, R | BaseException], what: str) -> None:
    """Raise one ExecError listing every failed host, or return if none failed."""
    outcomes = result.outcomes if isinstance(result, FanoutResult) else result
    failed = {k: v for k, v in outcomes.items() if _is_failure(v)}
    if not failed:
        return
    lines = [f"{what} failed on {len(failed)} of {len(outcomes)} node(s):"]
    lines += [describe_failure(host, value) for host, value in failed.items()]
    raise ExecError("\n".join(lines))

