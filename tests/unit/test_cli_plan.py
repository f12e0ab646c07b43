"""`runner plan`, `runner render` and `runner schema` as a user runs them: exit codes and output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from runner.cli.main import main

MAIN = str(Path(__file__).resolve().parents[2] / "jobs" / "qwen25-math-7b-openr1.yaml")


def test_plan_prints_parallelism_ranks_and_memory(capsys) -> None:
    assert main(["plan", MAIN, "--nodes", "2"]) == 0
    out = capsys.readouterr().out
    assert "world size 16 = TP 2 x PP 4 x DP 2" in out
    assert "layers per pipeline stage: [7, 7, 7, 7]" in out
    assert "node1" in out and "8-15" in out
    assert "memory per NPU" in out and "tokens per step: 32,768" in out


def test_plan_json_has_stable_keys(capsys) -> None:
    assert main(["plan", MAIN, "--nodes", "2", "--json", "--set", "parallel.tp=4", "--set", "parallel.pp=2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["tp"], data["pp"], data["dp"]) == (4, 2, 2)
    assert data["env"]["1"]["NODE_RANK"] == "1"
    assert [s["name"] for s in data["stages"]] == ["preprocess", "convert", "train", "generate", "export"]


def test_invalid_job_exits_2_with_one_clear_message(capsys) -> None:
    assert main(["plan", MAIN, "--nodes", "2", "--set", "parallel.tp=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "`parallel.tp` = 3 does not divide the 28 attention heads" in err
    assert "Traceback" not in err


def test_bad_cli_usage_exits_2(capsys) -> None:
    assert main(["plan", MAIN]) == 2  # --nodes missing
    assert "--nodes" in capsys.readouterr().err
    assert main(["plan", "/nonexistent/job.yaml", "--nodes", "1"]) == 2


def test_render_writes_scripts_and_refuses_to_overwrite(tmp_path: Path, capsys) -> None:
    out = tmp_path / "scripts"
    assert main(["render", MAIN, "--nodes", "2", "--out", str(out), "--master-addr", "192.0.2.1"]) == 0
    assert (out / "node1" / "train.sh").read_text().count("export MASTER_ADDR=192.0.2.1") == 1
    assert main(["render", MAIN, "--nodes", "2", "--out", str(out)]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert main(["render", MAIN, "--nodes", "2", "--out", str(out), "--force"]) == 0


def test_render_with_bad_job_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "scripts"
    assert main(["render", MAIN, "--nodes", "3", "--out", str(out)]) == 2
    assert not out.exists()


def test_schema_is_json_schema_of_the_job(capsys) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["additionalProperties"] is False
    assert {"name", "model", "data", "parallel", "train", "checkpoint", "cluster", "stages"} <= set(schema["properties"])


def test_console_script_help_lists_commands() -> None:
    result = subprocess.run([sys.executable, "-m", "runner.cli.main", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("plan", "render", "schema"):
        assert command in result.stdout
