"""The run directory: ids, atomic state, newest run, per-attempt log directories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.errors import InputError
from runner.runs import Failure, NodeStage, RunDir, RunState, StageRecord, stage_key


def _run(root: Path, name: str, created: float) -> RunDir:
    run = RunDir.create(root, name)
    run.write_state(RunState(run_id=run.run_id, job_name=name, created=created, hosts=["a", "b"]))
    return run


def test_create_makes_a_unique_directory_named_after_the_job(tmp_path: Path) -> None:
    first, second = RunDir.create(tmp_path, "my job/1"), RunDir.create(tmp_path, "my job/1")
    assert first.path != second.path
    assert first.run_id.startswith("my-job-1-")
    assert (first.path / "scripts").is_dir() and (first.path / "logs").is_dir()


def test_state_round_trips_and_is_written_atomically(tmp_path: Path) -> None:
    run = _run(tmp_path, "job", 1.0)
    state = run.read_state()
    state.stages = [StageRecord(name="train", nodes={"0": NodeStage(host="a", state="failed", exit_code=1)})]
    state.failure = Failure(stage="train", node=0, host="a", rank=3, signature="out of memory")
    run.write_state(state)
    again = run.read_state()
    assert again.stage("train").nodes["0"].exit_code == 1
    assert not list(run.path.glob(".state.json.tmp*"))
    assert json.loads(run.state_path.read_text())["failure"]["rank"] == 3


def test_open_without_an_id_is_the_newest_run(tmp_path: Path) -> None:
    _run(tmp_path, "old", 1.0)
    newest = _run(tmp_path, "new", 2.0)
    assert RunDir.open(tmp_path).run_id == newest.run_id
    assert RunDir.open(tmp_path, newest.run_id).path == newest.path
    assert RunDir.open(tmp_path, str(newest.path)).path == newest.path


def test_unknown_run_names_recent_runs(tmp_path: Path) -> None:
    run = _run(tmp_path, "job", 1.0)
    with pytest.raises(InputError, match=f"(?s)no run 'nope'.*recent runs: {run.run_id}"):
        RunDir.open(tmp_path, "nope")
    with pytest.raises(InputError, match="there are no runs"):
        RunDir.open(tmp_path / "empty")


def test_failure_description_names_node_rank_and_signature() -> None:
    failure = Failure(
        stage="train",
        node=1,
        host="atlas-2",
        rank=11,
        exit_code=1,
        signature="HCCL timeout (EI0006)",
        line="EI0006: Getting socket times out",
    )
    assert failure.describe() == (
        "stage 'train' failed first on node1 (atlas-2) rank 11: HCCL timeout (EI0006) (exit code 1)\n"
        "    EI0006: Getting socket times out"
    )


def test_stage_key_keeps_attempts_apart() -> None:
    assert stage_key("train", 1) == "train" and stage_key("train", 2) == "train.2"


def test_log_files_come_in_stage_then_attempt_order(tmp_path: Path) -> None:
    run = _run(tmp_path, "job", 1.0)
    state = run.read_state()
    state.stages = [StageRecord(name="a"), StageRecord(name="b")]
    run.write_state(state)
    for node, stage, source in [(0, "b", "out"), (1, "a", "worker_2"), (0, "a", "out"), (0, "a.2", "out")]:
        path = run.log_path(node, stage, source)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n")
    order = [(k, s, src) for k, s, src, _ in run.log_files()]
    assert order == [(0, "a", "out"), (1, "a", "worker_2"), (0, "b", "out"), (0, "a.2", "out")]
    assert [(k, s) for k, s, _, _ in run.log_files(node=1)] == [(1, "a")]


def test_settle_ends_a_running_run_once_no_stage_runs() -> None:
    def run(*states: str) -> RunState:
        stages = [StageRecord(name=f"s{i}", state=s) for i, s in enumerate(states)]  # type: ignore[arg-type]
        return RunState(run_id="r", job_name="j", status="running", stages=stages)

    still, done, cut = run("succeeded", "running"), run("succeeded", "skipped"), run("succeeded", "stopped")
    for state in (still, done, cut):
        state.settle()
    assert (still.status, done.status, cut.status) == ("running", "succeeded", "interrupted")
