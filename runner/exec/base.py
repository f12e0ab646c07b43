"""What every transport offers: run a command, stream a long command, close."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

DEFAULT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class CommandResult:
    """A finished command on one host."""

    host: str
    command: str
    exit_code: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def tail(self, stream: str = "stderr", lines: int = 5) -> str:
        text = self.stderr if stream == "stderr" else self.stdout
        return "\n".join(text.rstrip().splitlines()[-lines:])


class StreamTimeout(Exception):
    """No bytes arrived on a stream within the idle timeout: the node may be gone."""


def lines_of(chunks: Iterable[bytes]) -> Iterator[str]:
    """Byte chunks as they arrive -> text lines (the last one even without a newline)."""
    buf = b""
    for chunk in chunks:
        buf += chunk
        *done, buf = buf.split(b"\n")
        for line in done:
            yield line.decode("utf-8", errors="replace")
    if buf:
        yield buf.decode("utf-8", errors="replace")


class Stream(Protocol):
    """Output of a long-running remote command, read line by line."""

    def lines(self, idle_timeout: float) -> Iterator[str]:
        """Yield lines as they arrive; raise StreamTimeout after `idle_timeout` s of silence."""
        ...

    def exit_code(self) -> int | None:
        """Exit code once the command ended, else None."""
        ...

    def send(self, data: bytes) -> None:
        """Write to the command's stdin (streams opened with keep_stdin)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Transport(Protocol):
    """A connection to one node."""

    host: str

    def run(self, command: str, *, timeout: float = DEFAULT_TIMEOUT_S, stdin: str | None = None) -> CommandResult:
        """Run a shell command and wait for it; never raises on a non-zero exit code."""
        ...

    def stream(self, command: str, stdin: bytes | None = None, *, keep_stdin: bool = False) -> Stream:
        """Start a command whose output is read as it is produced; stdin is sent, then closed
        unless keep_stdin (then Stream.send writes more)."""
        ...

    def close(self) -> None: ...
