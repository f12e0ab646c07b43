"""The runner's side of a node agent: one long-lived process per node and run.

Started once per launch (`supervisor.py agent` over one SSH channel, where the stages run), it
starts each later stage with a fork instead of a new SSH command and a new Python, and follows
it, tagging every line with the request id. Its heartbeat ("H" every second) tells the runner the
node still answers. If the runner goes away, the agent ends; the stages go on under their own
supervisors.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

from runner.errors import ExecError
from runner.exec.base import Stream, StreamTimeout

READY_TIMEOUT_S = 30.0


class Agent:
    """Dispatches an agent's tagged output lines to the request that waits for them."""

    def __init__(self, stream: Stream, label: str, idle_timeout: float) -> None:
        self._stream = stream
        self._label = label
        self._idle_timeout = idle_timeout
        self._queues: dict[str, queue.Queue[str | None]] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.error: str | None = None
        self.info: dict[str, Any] = {}
        self._other: list[str] = []
        self._reader = threading.Thread(target=self._read, name=f"agent-{label}", daemon=True)
        self._reader.start()

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        if not self._ready.wait(timeout) or self.error is not None:
            detail = self.error or f"no answer within {timeout:.0f} s"
            if self._other:
                detail += ": " + " / ".join(self._other[-3:])
            raise ExecError(f"{self._label}: the node agent did not start ({detail})")

    @property
    def alive(self) -> bool:
        return self.error is None

    def _read(self) -> None:
        try:
            for line in self._stream.lines(self._idle_timeout):
                kind, _, rest = line.partition("\t")
                if kind == "T":
                    tag, _, inner = rest.partition("\t")
                    with self._lock:
                        target = self._queues.get(tag)
                    if target is not None:
                        target.put(inner)
                elif kind == "A":
                    self.info = json.loads(rest)
                    self._ready.set()
                elif kind != "H":
                    self._other.append(line)
            self.error = "the connection closed"
        except StreamTimeout:
            self.error = f"no heartbeat for {self._idle_timeout:.0f} s"
        except (OSError, EOFError, ExecError) as exc:
            self.error = str(exc)
        finally:
            self._ready.set()
            with self._lock:
                for target in self._queues.values():
                    target.put(None)

    def launch(self, tag: str, request: dict[str, Any]) -> Iterator[str]:
        """Send a launch request; yield its lines (S/E, L..., X) without the tag."""
        inbox: queue.Queue[str | None] = queue.Queue()
        with self._lock:
            self._queues[tag] = inbox
        if self.error is not None:
            raise ExecError(f"{self._label}: the node agent is gone ({self.error})")
        self._stream.send((json.dumps({"id": tag, "op": "launch", **request}) + "\n").encode())
        try:
            while True:
                line = inbox.get()
                if line is None:
                    raise StreamTimeout(self.error or "the node agent ended")
                yield line
                if line.startswith(("X\t", "E\t")):
                    return
        finally:
            with self._lock:
                self._queues.pop(tag, None)

    def close(self) -> None:
        self._stream.close()
