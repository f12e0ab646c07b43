"""Fan-out keeps every host's outcome and reports failures as one readable error."""

from __future__ import annotations

import time

import pytest

from runner.errors import ExecError
from runner.exec.base import CommandResult, StreamTimeout
from runner.exec.fanout import fan_out, raise_for_failures
from runner.exec.local import LocalTransport


def test_fan_out_runs_in_parallel_and_keeps_every_outcome() -> None:
    def work(host: str) -> CommandResult:
        time.sleep(0.3)
        if host == "bad":
            raise OSError("connection refused")
        return CommandResult(host, "true", 0 if host != "fails" else 3, stderr="line1\nline2\nboom")

    started = time.monotonic()
    result = fan_out(["a", "bad", "fails", "b"], work)
    assert time.monotonic() - started < 1.0
    assert list(result.outcomes) == ["a", "bad", "fails", "b"]
    assert set(result.succeeded) == {"a", "b"}
    assert set(result.failed) == {"bad", "fails"}


def test_aggregate_error_lists_host_command_exit_code_and_stderr_tail() -> None:
    outcomes = {
        "node0": CommandResult("node0", "true", 0),
        "node1": CommandResult("node1", "mkdir /x", 1, stderr="a\nb\nc\nd\ne\nf\nmkdir: Permission denied"),
        "node2": OSError("No route to host"),
    }
    with pytest.raises(ExecError) as info:
        raise_for_failures(outcomes, "preparing the nodes")
    text = str(info.value)
    assert "preparing the nodes failed on 2 of 3 node(s)" in text
    assert "node1: `mkdir /x` exited 1" in text and "mkdir: Permission denied" in text
    assert "    a\n" not in text  # only the tail
    assert "node2: No route to host" in text
    assert "node0" not in text


def test_no_failures_no_error() -> None:
    raise_for_failures({"a": CommandResult("a", "true", 0)}, "x")


def test_local_transport_runs_and_reports_exit_codes() -> None:
    t = LocalTransport("here")
    result = t.run("echo out; echo err >&2; exit 4")
    assert (result.exit_code, result.stdout, result.stderr) == (4, "out\n", "err\n")
    assert t.run("cat", stdin="hello").stdout == "hello"


def test_local_transport_timeout_is_an_exec_error() -> None:
    with pytest.raises(ExecError, match="did not finish within"):
        LocalTransport("here").run("sleep 5", timeout=0.3)


def test_stream_yields_lines_and_times_out_on_silence() -> None:
    stream = LocalTransport().stream("echo one; echo two; sleep 5")
    lines = stream.lines(idle_timeout=0.5)
    assert next(lines) == "one" and next(lines) == "two"
    with pytest.raises(StreamTimeout):
        next(lines)
    stream.close()


def _local_node(tmp_path):  # type: ignore[no-untyped-def]
    from runner.exec.local import LocalTransport
    from runner.exec.nodes import Node
    from runner.inventory import Host

    host = Host("local", "127.0.0.1", hostvars={"ascend_run_in": "host", "ascend_data_dir": str(tmp_path)})
    return Node(0, host, LocalTransport("local"), str(tmp_path / "node0"))


def test_the_node_agent_starts_stages_and_tags_their_lines(tmp_path) -> None:  # type: ignore[no-untyped-def]
    node = _local_node(tmp_path)
    node.start_agent(idle_timeout=5)
    try:
        assert (tmp_path / "node0" / "supervisor.py").exists()  # uploaded through the agent's stdin
        for stage, code in (("one", 0), ("two", 3)):
            lines, stream = node.launch_lines(stage, f"echo hi from {stage}\nexit {code}\n", "run-x", 1.0, None, 5)
            got = list(lines)
            assert stream is None  # through the agent, no new command
            assert got[0].startswith("S\t")
            assert f"L\tout\thi from {stage}" in got
            assert got[-1].startswith(f"X\t{code}")
    finally:
        node.stop_agent()


def test_without_an_agent_a_stage_is_one_command(tmp_path) -> None:  # type: ignore[no-untyped-def]
    node = _local_node(tmp_path)
    node.prepare()
    lines, stream = node.launch_lines("solo", "echo alone\n", "run-y", 1.0, {"EXTRA": "1"}, 5)
    got = list(lines)
    assert stream is not None
    assert "L\tout\talone" in got and got[-1].startswith("X\t0")
    stream.close()
