"""The node supervisor: detached start, exit code file, follow stream, stop of that run only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner import supervisor

SUPERVISOR = Path(supervisor.__file__)


def _sup(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SUPERVISOR), *args], capture_output=True, text=True, timeout=timeout)


def _stage(tmp_path: Path, script: str) -> Path:
    stage = tmp_path / "stage"
    stage.mkdir()
    (stage / "script.sh").write_text(script)
    return stage


def _wait(condition, timeout: float = 10) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


@pytest.fixture
def run_id(request: pytest.FixtureRequest) -> str:
    rid = f"unit-{os.getpid()}-{request.node.name}"
    yield rid
    # Nothing of the test may survive it, whatever happened.
    _sup("stop", "--run-id", rid, "--grace", "0")


def test_start_returns_at_once_and_records_the_exit_code(tmp_path: Path, run_id: str) -> None:
    stage = _stage(tmp_path, 'echo "hello from $RUNNER_RUN_ID in $RUNNER_STAGE_DIR"; exit 7\n')
    started = _sup("start", str(stage), "--run-id", run_id)
    assert started.returncode == 0, started.stderr
    info = json.loads(started.stdout)
    assert info["run_id"] == run_id and info["pgid"] == info["pid"]
    _wait(lambda: (stage / "exit_code").exists())
    assert (stage / "exit_code").read_text().strip() == "7"
    assert (stage / "output.log").read_text() == f"hello from {run_id} in {stage}\n"
    status = json.loads(_sup("status", str(stage)).stdout)
    assert status["state"] == "exited" and status["exit_code"] == 7


def test_a_stage_ending_while_its_status_is_read_is_exited_not_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage = _stage(tmp_path, "true\n")
    (stage / "supervisor.pid").write_text(json.dumps({"supervisor_pid": 1, "pid": 2, "started": 0, "run_id": "r"}))

    def ends_now(pid: int) -> bool:  # the supervisor writes its exit code and ends just now
        (stage / "exit_code").write_text("0\n")
        return False

    monkeypatch.setattr(supervisor, "pid_alive", ends_now)
    status = supervisor.stage_status(str(stage))
    assert status["state"] == "exited" and status["exit_code"] == 0


def test_follow_streams_output_and_msrun_logs_then_the_exit(tmp_path: Path, run_id: str) -> None:
    stage = _stage(
        tmp_path,
        'mkdir -p "$RUNNER_STAGE_DIR/msrun"; echo launcher; echo "loss 1" >> "$RUNNER_STAGE_DIR/msrun/worker_3.log"\n',
    )
    _sup("start", str(stage), "--run-id", run_id)
    out = _sup("follow", str(stage)).stdout.splitlines()
    assert "L\tout\tlauncher" in out
    assert "L\tworker_3\tloss 1" in out
    assert out[-1].startswith("X\t0")


def test_follow_resumes_from_offsets(tmp_path: Path, run_id: str) -> None:
    stage = _stage(tmp_path, "echo first; echo second\n")
    _sup("start", str(stage), "--run-id", run_id)
    _wait(lambda: (stage / "exit_code").exists())
    out = _sup("follow", str(stage), "--offsets", json.dumps({"out": len("first\n")})).stdout.splitlines()
    assert [line for line in out if line.startswith("L")] == ["L\tout\tsecond"]


def test_stop_ends_the_group_and_escaped_sessions_but_nothing_else(tmp_path: Path, run_id: str) -> None:
    bystander = subprocess.Popen(["sleep", "60"])  # same machine, not of this run
    try:
        stage = _stage(tmp_path, "setsid sleep 300 &\nsleep 300\n")  # msrun starts workers in new sessions
        _sup("start", str(stage), "--run-id", run_id)
        _wait(lambda: len(supervisor.tagged_pids(run_id)) >= 3)
        started = time.monotonic()
        report = json.loads(_sup("stop", str(stage), "--run-id", run_id, "--grace", "2").stdout)
        assert time.monotonic() - started < 3
        assert len(report["signalled"]) >= 3
        assert supervisor.tagged_pids(run_id) == []
        assert bystander.poll() is None
        _wait(lambda: (stage / "exit_code").exists())
        status = json.loads(_sup("status", str(stage)).stdout)
        assert status["stopped"] and status["exit_code"] == 143
    finally:
        bystander.kill()
        bystander.wait()


def test_sigterm_is_followed_by_sigkill_after_the_grace(tmp_path: Path, run_id: str) -> None:
    stage = _stage(tmp_path, "trap '' TERM\nwhile true; do sleep 0.1; done\n")
    _sup("start", str(stage), "--run-id", run_id)
    _wait(lambda: len(supervisor.tagged_pids(run_id)) >= 1)
    started = time.monotonic()
    report = json.loads(_sup("stop", str(stage), "--run-id", run_id, "--grace", "1").stdout)
    assert 0.9 < time.monotonic() - started < 4
    assert report["killed"]
    assert supervisor.tagged_pids(run_id) == []


def test_stop_refuses_a_stage_of_another_run(tmp_path: Path, run_id: str) -> None:
    stage = _stage(tmp_path, "sleep 300\n")
    _sup("start", str(stage), "--run-id", run_id)
    refused = _sup("stop", str(stage), "--run-id", "someone-else")
    assert refused.returncode == 2 and f"belongs to run {run_id}" in refused.stderr
    assert supervisor.tagged_pids(run_id)


def test_leftovers_of_a_finished_script_are_cleaned_up(tmp_path: Path, run_id: str) -> None:
    stage = _stage(tmp_path, "setsid sleep 300 &\necho done\n")
    _sup("start", str(stage), "--run-id", run_id, "--grace", "1")
    _wait(lambda: (stage / "exit_code").exists())
    assert supervisor.tagged_pids(run_id) == []


def test_send_and_receive_copy_a_tree_and_nothing_outside_it(tmp_path: Path) -> None:
    src = tmp_path / "data" / "ckpt"
    (src / "iter_0000001").mkdir(parents=True)
    (src / "iter_0000001" / "model.pt").write_bytes(b"\0" * 1000)
    (src / "latest_checkpointed_iteration.txt").write_text("1\n")
    root = tmp_path / "other-node"
    root.mkdir()
    receiver = subprocess.Popen(
        [
            sys.executable,
            str(SUPERVISOR),
            "receive",
            str(src),
            "--token",
            "t0k",
            "--root",
            str(root),
            "--bind",
            "127.0.0.1",
            "--timeout",
            "20",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert receiver.stdout is not None
        kind, port = receiver.stdout.readline().split()
        assert kind == "READY"
        sent = _sup("send", str(src), "--to", f"127.0.0.1:{port}", "--token", "t0k")
        assert sent.returncode == 0, sent.stderr
        assert receiver.stdout.readline().startswith("DONE")
    finally:
        receiver.wait(timeout=20)
    copied = root / str(src).lstrip("/")
    assert (copied / "latest_checkpointed_iteration.txt").read_text() == "1\n"
    assert (copied / "iter_0000001" / "model.pt").stat().st_size == 1000


def test_receive_refuses_a_wrong_token_and_paths_it_was_not_told_about(tmp_path: Path) -> None:
    wanted, other = tmp_path / "wanted", tmp_path / "other"
    for d in (wanted, other):
        d.mkdir()
        (d / "f").write_text("x")
    for token, path in (("bad", wanted), ("t0k", other)):
        receiver = subprocess.Popen(
            [
                sys.executable,
                str(SUPERVISOR),
                "receive",
                str(wanted),
                "--token",
                "t0k",
                "--root",
                str(tmp_path / "root"),
                "--bind",
                "127.0.0.1",
                "--timeout",
                "20",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert receiver.stdout is not None
        port = receiver.stdout.readline().split()[1]
        _sup("send", str(path), "--to", f"127.0.0.1:{port}", "--token", token)
        assert receiver.stdout.readline().startswith("ERROR")
        assert receiver.wait(timeout=20) == 2
    assert not (tmp_path / "root").exists() or not any((tmp_path / "root").rglob("f"))
