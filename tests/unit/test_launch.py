"""`runner launch/status/logs` end to end on local "nodes" (ansible_connection: local, run on the host).

No SSH and no root: each node is the control machine itself with its own data directory.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.cli.main import main
from runner.exec.stages import StageJob, inputs_hash


@pytest.fixture
def site(tmp_path: Path) -> dict[str, Path]:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  children:\n    ascend:\n      hosts:\n"
        f"        n0: {{ascend_data_dir: {tmp_path}/d0}}\n        n1: {{ascend_data_dir: {tmp_path}/d1}}\n"
        "      vars: {ansible_connection: local, ansible_host: 127.0.0.1, ascend_run_in: host}\n"
    )
    return {"inventory": inventory, "runs": tmp_path / "runs", "tmp": tmp_path}


def _job(site: dict[str, Path], stages: list[dict]) -> Path:
    path = site["tmp"] / "job.yaml"
    path.write_text(json.dumps({"name": "unit", "cluster": {"npus_per_node": 2}, "stages": stages}))
    return path


def _launch(site: dict[str, Path], *args: str) -> int:
    return main(["launch", *args, "-i", str(site["inventory"]), "--runs-dir", str(site["runs"])])


def _state(site: dict[str, Path]) -> dict:
    (state,) = site["runs"].glob("*/state.json")
    return json.loads(state.read_text())


def test_every_node_runs_with_its_rank_and_lines_are_prefixed(site, capsys) -> None:  # type: ignore[no-untyped-def]
    job = _job(site, [{"name": "hello", "command": 'echo "rank $NODE_RANK/$NNODES at $MASTER_ADDR:$MASTER_PORT"'}])
    assert _launch(site, str(job), "--nodes", "2") == 0
    out = capsys.readouterr().out
    assert "[node0] rank 0/2 at 127.0.0.1:" in out and "[node1] rank 1/2 at 127.0.0.1:" in out
    state = _state(site)
    assert state["status"] == "succeeded"
    assert {k: v["exit_code"] for k, v in state["stages"][0]["nodes"].items()} == {"0": 0, "1": 0}
    run = site["runs"] / state["run_id"]
    assert (run / "job.yaml").exists() and (run / "plan.json").exists()
    assert "echo" in (run / "scripts" / "node1" / "hello.sh").read_text()


def test_more_nodes_than_hosts_is_bad_input_before_any_run(site, capsys) -> None:  # type: ignore[no-untyped-def]
    job = _job(site, [{"name": "hello", "command": "true"}])
    assert _launch(site, str(job), "--nodes", "3") == 2
    assert "--nodes 3 but group 'ascend' of the inventory has only 2 host(s): n0, n1" in capsys.readouterr().err
    assert not site["runs"].exists()


def test_dry_run_shows_hosts_ranks_and_master_and_starts_nothing(site, capsys) -> None:  # type: ignore[no-untyped-def]
    marker = site["tmp"] / "ran"
    job = _job(site, [{"name": "hello", "command": f"touch {marker}", "placement": "all"}])
    assert _launch(site, str(job), "--nodes", "2", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "master: 127.0.0.1, port a free port on node 0" in out
    rows = [line.split() for line in out.splitlines() if line.startswith(("│ node0", "│ node1", "| node0", "| node1"))]
    assert [(r[1], r[3], r[5]) for r in rows if len(r) > 5][:2] == [("node0", "0", "n0"), ("node1", "1", "n1")]
    assert "dry run: nothing was connected to or started" in out
    assert not marker.exists() and not site["runs"].exists()


def test_launch_checks_the_preset_against_a_readable_config_json_before_any_run(site, capsys) -> None:  # type: ignore[no-untyped-def]
    model = site["tmp"] / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({
        "num_hidden_layers": 28, "hidden_size": 3584, "num_attention_heads": 28, "num_key_value_heads": 4,
        "rope_theta": 1000000.0, "max_position_embeddings": 32768, "tie_word_embeddings": False}))
    main_job = Path(__file__).resolve().parents[2] / "jobs" / "qwen25-math-7b-openr1.yaml"
    for extra in ((), ("--dry-run",)):
        assert _launch(site, str(main_job), "--nodes", "2", "--set", f"model.hf_dir={model}", *extra) == 2
        assert "rotary_base: preset 10000.0 vs config.json rope_theta=1000000.0" in capsys.readouterr().err
    assert not site["runs"].exists()


def test_dry_run_with_resume_is_bad_input(site, capsys) -> None:  # type: ignore[no-untyped-def]
    assert _launch(site, "--resume", "some-run", "--dry-run") == 2
    assert "--dry-run takes a job file, not --resume" in capsys.readouterr().err


def test_a_failing_node_stops_the_others_and_is_named(site, capsys) -> None:  # type: ignore[no-untyped-def]
    job = _job(
        site,
        [
            {
                "name": "work",
                "command": 'if [ "$NODE_RANK" = 1 ]; then echo "RuntimeError: NPU out of memory"; exit 9; fi; '
                "sleep 300",
            },
            {"name": "never", "command": "echo should-not-run"},
        ],
    )
    assert _launch(site, str(job), "--nodes", "2") == 1
    captured = capsys.readouterr()
    assert "stage 'work' failed first on node1 (n1): out of memory (exit code 9)" in captured.err
    assert "should-not-run" not in captured.out
    state = _state(site)
    assert state["status"] == "failed"
    work = state["stages"][0]["nodes"]
    assert (work["0"]["state"], work["1"]["state"]) == ("stopped", "failed")
    assert state["stages"][1]["state"] == "pending"


def test_resume_skips_what_finished_and_reruns_the_rest(site, capsys) -> None:  # type: ignore[no-untyped-def]
    count, gate = site["tmp"] / "count", site["tmp"] / "gate"
    job = _job(
        site,
        [
            {"name": "first", "command": f"echo $NODE_RANK >> {count}"},
            {"name": "second", "command": f"test -e {gate}", "placement": "one"},
        ],
    )
    assert _launch(site, str(job), "--nodes", "2") == 1
    run_id = _state(site)["run_id"]
    gate.write_text("")
    assert main(["launch", "--resume", run_id, "--runs-dir", str(site["runs"])]) == 0
    assert "stage 'first' is done already" in capsys.readouterr().out
    assert sorted(count.read_text().split()) == ["0", "1"]
    state = _state(site)
    assert [s["state"] for s in state["stages"]] == ["skipped", "succeeded"] and state["attempt"] == 2


def test_status_and_logs_of_a_finished_run(site, capsys) -> None:  # type: ignore[no-untyped-def]
    job = _job(site, [{"name": "hello", "command": "echo hi from $NODE_RANK"}])
    assert _launch(site, str(job), "--nodes", "2") == 0
    capsys.readouterr()
    assert main(["status", "--runs-dir", str(site["runs"])]) == 0
    out = capsys.readouterr().out
    assert "succeeded" in out and "hello" in out and "node1 (n1)" in out
    assert main(["logs", "--node", "1", "--runs-dir", str(site["runs"])]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "[node1] hi from 1"


def test_the_inputs_hash_ignores_the_port_picked_per_launch() -> None:
    a = StageJob("s", (0,), {0: "export MASTER_PORT=1234\necho hi\n"})
    b = StageJob("s", (0,), {0: "export MASTER_PORT=4321\necho hi\n"})
    c = StageJob("s", (0,), {0: "export MASTER_PORT=4321\necho bye\n"})
    assert inputs_hash(a, {}) == inputs_hash(b, {}) != inputs_hash(c, {})
    assert inputs_hash(a, {"/data": 1}) != inputs_hash(a, {"/data": 2})


def test_resume_lets_a_stage_overwrite_its_own_partial_outputs(site, capsys) -> None:  # type: ignore[no-untyped-def]
    marker, gate = site["tmp"] / "partial", site["tmp"] / "gate"
    job = _job(
        site,
        [
            {
                "name": "make",
                "command": f'if [ -e {marker} ] && [ "${{RUNNER_FORCE:-0}}" != 1 ]; then echo refuses; exit 4; fi; '
                f"touch {marker}; test -e {gate}",
                "placement": "one",
            }
        ],
    )
    assert _launch(site, str(job), "--nodes", "2") == 1
    gate.write_text("")
    assert main(["launch", "--resume", _state(site)["run_id"], "--runs-dir", str(site["runs"])]) == 0
    assert "refuses" not in capsys.readouterr().out
