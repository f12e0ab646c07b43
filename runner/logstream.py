"""One console stream for every node and rank, saved to the run directory as it arrives.

Each line gets a prefix naming where it came from: `[node1]` for a stage's own output (the launcher),
`[node1/rank3]` for msrun's worker_3.log, `[node0/scheduler]` for msrun's scheduler. Lines are also
checked for failure signatures (the first one per node is kept, to name the cause of a failure), and
Megatron iteration lines feed a progress line: iteration/total, loss, throughput, elapsed, remaining.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

# (name, pattern): the first that matches a line names the failure. Most specific first.
SIGNATURES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("HCCL timeout (EI0006)", re.compile(r"\bEI0006\b")),
    ("node is timed out", re.compile(r"node:? .* is timed out|Time out nodes are", re.IGNORECASE)),
    (
        "HCCL timeout",
        re.compile(r"HCCL.*time(d)? ?out|hccl.*timeout|Watchdog caught collective operation timeout", re.I),
    ),
    (
        "out of memory",
        re.compile(r"out of memory|\bOOM\b|MemoryError|Cannot allocate memory|memory isn't enough", re.I),
    ),
    ("Python traceback", re.compile(r"^Traceback \(most recent call last\):")),
)

_ITER = re.compile(r"iteration\s+(\d+)\s*/\s*(\d+)")
_LOSS = re.compile(r"lm loss:\s*([0-9.eE+-]+)")
_MS_PER_ITER = re.compile(r"elapsed time per iteration \(ms\):\s*([0-9.]+)")
_TFLOPS = re.compile(r"throughput per GPU \(TFLOP/s/GPU\):\s*([0-9.]+)")
_TOKENS = re.compile(r"tokens per (?:sec|second)(?: per (?:GPU|NPU|device))?:\s*([0-9.]+)", re.I)


_WORKER_EXIT = re.compile(r"[Ww]orker process \d+ exit with exception\. Error code: (-?\d+)")


def classify(line: str) -> str | None:
    """The failure signature a line shows, if any."""
    if crash := _WORKER_EXIT.search(line):
        code = int(crash.group(1))
        if code < 0:
            try:
                return f"msrun worker killed by {signal.Signals(-code).name}"
            except ValueError:
                pass
        return f"msrun worker exited with code {code}"
    for name, pattern in SIGNATURES:
        if pattern.search(line):
            return name
    return None


def rank_of(source: str) -> int | None:
    match = re.fullmatch(r"worker_(\d+)", source)
    return int(match.group(1)) if match else None


def prefix(node: int, source: str) -> str:
    """`[node1]` for a stage's output, `[node1/rank3]` for msrun worker 3, `[node0/scheduler]`."""
    rank = rank_of(source)
    if source == "out":
        return f"[node{node}]"
    if rank is not None:
        return f"[node{node}/rank{rank}]"
    return f"[node{node}/{source}]"


def _format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass
class Progress:
    """What the training log says about how far it is."""

    iteration: int = 0
    total: int = 0
    loss: float | None = None
    ms_per_iter: float | None = None
    throughput: str | None = None
    first_seen: float | None = None
    first_iteration: int = 0

    def update(self, line: str, now: float) -> bool:
        """Take one log line; True when it was an iteration line with a new iteration."""
        match = _ITER.search(line)
        if not match:
            return False
        iteration, total = int(match.group(1)), int(match.group(2))
        if iteration <= self.iteration and total == self.total:
            return False
        if self.first_seen is None:
            self.first_seen, self.first_iteration = now, iteration
        self.iteration, self.total = iteration, total
        if loss := _LOSS.search(line):
            self.loss = float(loss.group(1))
        if ms := _MS_PER_ITER.search(line):
            self.ms_per_iter = float(ms.group(1))
        if tflops := _TFLOPS.search(line):
            self.throughput = f"{float(tflops.group(1)):.1f} TFLOP/s/NPU"
        elif tokens := _TOKENS.search(line):
            self.throughput = f"{float(tokens.group(1)):.0f} tokens/s"
        return True

    def line(self, now: float) -> str:
        parts = [f"iteration {self.iteration}/{self.total}"]
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4f}")
        if self.throughput:
            parts.append(self.throughput)
        elapsed = now - (self.first_seen or now)
        if self.ms_per_iter is not None:
            remaining: float | None = (self.total - self.iteration) * self.ms_per_iter / 1000
        else:
            done = self.iteration - self.first_iteration
            remaining = (self.total - self.iteration) * elapsed / done if done > 0 else None
        parts.append(f"elapsed {_format_duration(elapsed)}")
        if remaining is not None:
            parts.append(f"remaining {_format_duration(remaining)}")
        return " | ".join(parts)


@dataclass(frozen=True)
class FirstSignature:
    node: int
    source: str
    signature: str
    line: str
    at: float


@dataclass
class LogStream:
    """Prints prefixed lines to one console and appends them to per-node, per-source files."""

    log_path: Callable[[int, str, str], Path]
    console: TextIO | None
    show_progress: bool = True
    accept: Callable[[int, str], bool] | None = None  # which (node, source) lines reach the console
    progress: Progress = field(default_factory=Progress)
    signatures: dict[int, FirstSignature] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _files: dict[Path, TextIO] = field(default_factory=dict)
    _traceback_tail: dict[tuple[int, str], str] = field(default_factory=dict)

    def emit(self, node: int, stage: str, source: str, text: str) -> None:
        now = time.time()
        path = self.log_path(node, stage, source)
        with self._lock:
            fh = self._files.get(path)
            if fh is None:
                path.parent.mkdir(parents=True, exist_ok=True)
                fh = self._files[path] = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
            fh.write(text + "\n")
            fh.flush()
            self._note_signature(node, source, text, now)
            shown = self.console is not None and (self.accept is None or self.accept(node, source))
            if shown and self.console is not None:
                self.console.write(f"{prefix(node, source)} {text}\n")
            if self.progress.update(text, now) and self.show_progress and self.console is not None:
                self.console.write(f"[progress] {self.progress.line(now)}\n")
            if self.console is not None:
                self.console.flush()

    def _note_signature(self, node: int, source: str, text: str, now: float) -> None:
        key = (node, source)
        signature = classify(text)
        if signature == "Python traceback":
            # The line after the traceback's frames names the exception; remember the traceback
            # and report the exception line once it comes.
            self._traceback_tail[key] = text
            if node not in self.signatures:
                self.signatures[node] = FirstSignature(node, source, signature, text, now)
            return
        if key in self._traceback_tail and text and not text.startswith((" ", "\t", "Traceback")):
            del self._traceback_tail[key]
            first = self.signatures.get(node)
            if first is not None and first.signature == "Python traceback" and first.source == source:
                self.signatures[node] = FirstSignature(node, source, signature or first.signature, text, first.at)
            return
        if signature is not None:
            first = self.signatures.get(node)
            if first is None or (first.signature == "Python traceback" and signature != first.signature):
                self.signatures[node] = FirstSignature(node, source, signature, text, now)

    def note(self, text: str) -> None:
        """A line from the runner itself."""
        if self.console is None:
            return
        with self._lock:
            self.console.write(f"[runner] {text}\n")
            self.console.flush()

    def close(self) -> None:
        with self._lock:
            for fh in self._files.values():
                fh.close()
            self._files.clear()
