"""Transport for the control machine itself (tests, and nodes reached without SSH)."""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import time
from collections.abc import Iterator

from runner.errors import ExecError
from runner.exec.base import DEFAULT_TIMEOUT_S, CommandResult, StreamTimeout, lines_of


class LocalStream:
    """A local process whose stdout is read line by line with an idle timeout."""

    def __init__(self, command: str, stdin: bytes | None = None, keep_stdin: bool = False) -> None:
        self._proc = subprocess.Popen(
            ["bash", "-c", command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE,
        )
        assert self._proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            if stdin:
                self._proc.stdin.write(stdin)
                self._proc.stdin.flush()
        if not keep_stdin:
            with contextlib.suppress(BrokenPipeError):
                self._proc.stdin.close()

    def send(self, data: bytes) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(data)
        self._proc.stdin.flush()

    def lines(self, idle_timeout: float) -> Iterator[str]:
        return lines_of(self._chunks(idle_timeout))

    def _chunks(self, idle_timeout: float) -> Iterator[bytes]:
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        try:
            while True:
                if not sel.select(timeout=idle_timeout):
                    raise StreamTimeout(f"no output for {idle_timeout:.0f} s")
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                yield chunk
            self._proc.wait()
        finally:
            sel.close()

    def exit_code(self) -> int | None:
        return self._proc.poll()

    def close(self) -> None:
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self._proc.stdin.close()
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()


class LocalTransport:
    """Runs commands with bash on this machine."""

    def __init__(self, host: str = "localhost") -> None:
        self.host = host

    def run(self, command: str, *, timeout: float = DEFAULT_TIMEOUT_S, stdin: str | None = None) -> CommandResult:
        started = time.monotonic()
        try:
            proc = subprocess.run(
                ["bash", "-c", command],
                input=stdin,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ExecError(
                f"{self.host}: command did not finish within {time.monotonic() - started:.0f} s: {command}"
            ) from exc
        return CommandResult(self.host, command, proc.returncode, proc.stdout, proc.stderr)

    def stream(self, command: str, stdin: bytes | None = None, *, keep_stdin: bool = False) -> LocalStream:
        return LocalStream(command, stdin, keep_stdin)

    def close(self) -> None:
        return None
