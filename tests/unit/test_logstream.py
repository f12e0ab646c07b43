"""One prefixed stream, saved per node and source; failure signatures; training progress."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from runner.logstream import LogStream, Progress, classify, prefix

MEGATRON = (
    " [2026-01-01 10:00:00] iteration       50/     200 | consumed samples:          400 | "
    "elapsed time per iteration (ms): 2000.0 | throughput per GPU (TFLOP/s/GPU): 123.4 | "
    "learning rate: 1.0E-06 | global batch size:     8 | lm loss: 1.234567E+00 | loss scale: 1.0 |"
)


def test_prefixes_name_node_and_rank() -> None:
    assert prefix(1, "worker_3") == "[node1/rank3]"
    assert prefix(0, "out") == "[node0]"
    assert prefix(0, "scheduler") == "[node0/scheduler]"


@pytest.mark.parametrize(
    ("line", "signature"),
    [
        (
            "EI0006: Getting socket times out. Reason: Remote Rank did not send the data in time",
            "HCCL timeout (EI0006)",
        ),
        ("The node: 3 is timed out", "node is timed out"),
        ("RuntimeError: NPU out of memory. Tried to allocate 2.00 GiB", "out of memory"),
        ("Traceback (most recent call last):", "Python traceback"),
        ("HCCL execute timeout on stream", "HCCL timeout"),
        ("iteration 3/10 | lm loss: 2.0", None),
        (
            "[ERROR] ME(132) [_api.py:365] Worker process 138 exit with exception. Error code: -11.",
            "msrun worker killed by SIGSEGV",
        ),
    ],
)
def test_failure_signatures(line: str, signature: str | None) -> None:
    assert classify(line) == signature


def test_progress_from_megatron_iteration_lines() -> None:
    progress = Progress()
    assert progress.update(MEGATRON, now=100.0)
    assert not progress.update(MEGATRON, now=101.0)  # the same iteration from another rank
    assert progress.line(now=160.0) == (
        "iteration 50/200 | loss 1.2346 | 123.4 TFLOP/s/NPU | elapsed 1:00 | remaining 5:00"
    )


def test_stream_prefixes_lines_saves_them_and_prints_progress(tmp_path: Path) -> None:
    console = io.StringIO()
    stream = LogStream(lambda n, s, src: tmp_path / f"node{n}" / s / f"{src}.log", console)
    stream.emit(1, "train", "worker_3", MEGATRON)
    stream.emit(0, "train", "out", "launcher says hi")
    stream.close()
    lines = console.getvalue().splitlines()
    assert lines[0] == f"[node1/rank3] {MEGATRON}"
    assert lines[1].startswith("[progress] iteration 50/200")
    assert lines[2] == "[node0] launcher says hi"
    assert (tmp_path / "node1" / "train" / "worker_3.log").read_text() == MEGATRON + "\n"


def test_a_traceback_is_named_by_its_exception_line(tmp_path: Path) -> None:
    stream = LogStream(lambda n, s, src: tmp_path / f"{n}-{src}.log", None)
    for text in ["Traceback (most recent call last):", '  File "x.py", line 1, in <module>', "ValueError: bad shape"]:
        stream.emit(1, "train", "worker_2", text)
    first = stream.signatures[1]
    assert (first.signature, first.line, first.source) == ("Python traceback", "ValueError: bad shape", "worker_2")


def test_a_specific_signature_beats_the_generic_traceback(tmp_path: Path) -> None:
    stream = LogStream(lambda n, s, src: tmp_path / f"{n}-{src}.log", None)
    for text in ["Traceback (most recent call last):", "RuntimeError: EI0006: socket timeout"]:
        stream.emit(0, "train", "worker_0", text)
    assert stream.signatures[0].signature == "HCCL timeout (EI0006)"


def test_console_filter(tmp_path: Path) -> None:
    console = io.StringIO()
    stream = LogStream(lambda n, s, src: tmp_path / f"{n}-{src}.log", console, accept=lambda n, src: n == 1)
    stream.emit(0, "s", "out", "hidden")
    stream.emit(1, "s", "out", "shown")
    assert console.getvalue() == "[node1] shown\n"
    assert (tmp_path / "0-out.log").read_text() == "hidden\n"
