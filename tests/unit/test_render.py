"""Rendered scripts: real flags only, valid bash, every value quoted so odd paths run as intended."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from runner.errors import InputError
from runner.plan import build_plan
from runner.render import render_scripts, write_scripts
from runner.spec import load_job, validate_job
from runner.spec.mindspeed import known_flags

JOBS = Path(__file__).resolve().parents[2] / "jobs"
GUIDE_JOBS = {"qwen25-math-7b-openr1.yaml": 2, "deepseek-r1-distill-qwen-7b-openr1.yaml": 1,
              "qwen25-7b-alpaca-pretrain.yaml": 2, "qwen25-coder-7b-evol-pretrain.yaml": 1}
ENTRY_FLAGS = {"preprocess": "preprocess_data.py", "convert": "convert_ckpt.py", "export": "convert_ckpt.py",
               "train": "training+inference", "generate": "training+inference"}


def plans():
    for name, nodes in GUIDE_JOBS.items():
        yield name, build_plan(load_job(JOBS / name), nodes, master_addr="192.0.2.1", master_port=6000)


@pytest.mark.parametrize(("name", "plan"), list(plans()), ids=list(GUIDE_JOBS))
def test_every_flag_is_one_mindspeed_defines(name, plan) -> None:
    table = known_flags()
    for stage in plan.stages:
        flags = {a for a in stage.args if a.startswith("--")}
        unknown = flags - table[ENTRY_FLAGS[stage.kind]]
        assert not unknown, f"{name} {stage.name}: {sorted(unknown)}"


@pytest.mark.parametrize(("name", "plan"), list(plans()), ids=list(GUIDE_JOBS))
def test_rendered_scripts_are_valid_bash(name, plan, tmp_path: Path) -> None:
    for (node, stage), text in render_scripts(plan).items():
        path = tmp_path / f"{node}-{stage}.sh"
        path.write_text(text)
        assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
        result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, f"{name} {stage}: {result.stderr}"
        if shutil.which("shellcheck"):
            check = subprocess.run(["shellcheck", "-S", "warning", str(path)], capture_output=True, text=True)
            assert check.returncode == 0, f"{name} {stage}:\n{check.stdout}"


def test_msrun_launcher_line_uses_node_rank_and_log_dir() -> None:
    plan = build_plan(load_job(JOBS / "qwen25-math-7b-openr1.yaml"), 2, master_addr="192.0.2.1", master_port=6000)
    text = render_scripts(plan)[(1, "train")]
    assert "export NODE_RANK=1\n" in text and "export MASTER_ADDR=192.0.2.1\n" in text
    assert 'msrun --worker_num "$WORLD_SIZE" --local_worker_num "$NPUS_PER_NODE"' in text
    assert '--node_rank "$NODE_RANK"' in text and '--log_dir "$RUNNER_STAGE_DIR/msrun"' in text


def test_pytorch_backend_uses_torchrun() -> None:
    plan = build_plan(load_job(JOBS / "qwen25-7b-alpaca-pretrain.yaml"), 2, master_addr="192.0.2.1",
                      master_port=6000)
    text = render_scripts(plan)[(0, "train")]
    assert 'torchrun --nproc_per_node "$NPUS_PER_NODE" --nnodes "$NNODES" --node_rank "$NODE_RANK"' in text
    assert "pretrain_gpt.py" in text and "--ai-framework" not in text


ODD = "/tmp/odd dir/it's $(touch PWNED) `id` \"q\""


def _odd_job(tmp_path: Path, main_job_data: dict) -> tuple[dict, Path]:
    stack = tmp_path / "stack dir $(x)"
    (stack / "MindSpeed-LLM").mkdir(parents=True)
    data = main_job_data
    data["model"]["hf_dir"] = f"{tmp_path}/model {ODD}"
    data["data"]["input"] = f"{tmp_path}/in {ODD}"
    data["data"]["output_prefix"] = f"{tmp_path}/out {ODD}/prefix"
    data["checkpoint"] = {"mcore_dir": f"{tmp_path}/mcore {ODD}", "save_dir": f"{tmp_path}/save {ODD}",
                          "export_dir": f"{tmp_path}/export {ODD}"}
    data["cluster"]["stack_dir"] = str(stack)
    return data, stack


def _recorder(bin_dir: Path, name: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text("#!/usr/bin/env python3\nimport json, os, sys\n"
                    f"open(os.environ['ARGV_LOG'], 'a').write(json.dumps(['{name}', *sys.argv[1:]]) + '\\n')\n")
    tool.chmod(0o755)


@pytest.mark.parametrize("stage", ["preprocess", "convert", "train", "generate", "export"])
def test_odd_paths_reach_the_program_exactly(stage: str, tmp_path: Path, main_job_data) -> None:
    data, _ = _odd_job(tmp_path, main_job_data)
    plan = build_plan(validate_job(data), 2, master_addr="127.0.0.1", master_port=6000)
    script = tmp_path / f"{stage}.sh"
    script.write_text(render_scripts(plan)[(0, stage)])
    bin_dir = tmp_path / "bin"
    for tool in ("python", "msrun", "torchrun"):
        _recorder(bin_dir, tool)
    log = tmp_path / "argv.jsonl"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "ARGV_LOG": str(log),
           "RUNNER_STAGE_DIR": str(tmp_path)}
    result = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(calls) == 1
    argv = calls[0]
    entry = plan.stage(stage).entry
    assert argv[argv.index(entry) + 1:] == list(plan.stage(stage).args)
    if argv[0] == "msrun":
        assert argv[argv.index("--node_rank") + 1] == "0"
        assert argv[argv.index("--log_dir") + 1] == f"{tmp_path}/msrun"
    assert not list(tmp_path.rglob("PWNED")) and not Path("PWNED").exists()


def test_guarded_outputs_are_not_overwritten_without_force(tmp_path: Path, main_job_data) -> None:
    data, _ = _odd_job(tmp_path, main_job_data)
    plan = build_plan(validate_job(data), 1 if False else 2, master_addr="127.0.0.1", master_port=6000)
    export_out = Path(data["checkpoint"]["export_dir"]) / "mg2hf"
    export_out.mkdir(parents=True)
    script = tmp_path / "export.sh"
    script.write_text(render_scripts(plan)[(0, "export")])
    bin_dir = tmp_path / "bin"
    _recorder(bin_dir, "python")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "ARGV_LOG": str(tmp_path / "argv")}
    refused = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert refused.returncode == 1 and "already exists" in refused.stderr
    assert not (tmp_path / "argv").exists()
    forced = subprocess.run(["bash", str(script)], env={**env, "RUNNER_FORCE": "1"}, capture_output=True, text=True)
    assert forced.returncode == 0, forced.stderr


def test_write_scripts_layout_and_no_overwrite(tmp_path: Path) -> None:
    plan = build_plan(load_job(JOBS / "qwen25-math-7b-openr1.yaml"), 2)
    out = tmp_path / "scripts"
    paths = write_scripts(plan, out)
    names = sorted(str(p.relative_to(out)) for p in paths)
    assert names == ["node0/convert.sh", "node0/export.sh", "node0/generate.sh", "node0/preprocess.sh",
                     "node0/train.sh", "node1/generate.sh", "node1/train.sh"]
    assert all(os.access(p, os.X_OK) for p in paths)
    (out / "node0" / "train.sh").write_text("mine")
    with pytest.raises(InputError, match="already exist"):
        write_scripts(plan, out)
    assert (out / "node0" / "train.sh").read_text() == "mine"
    write_scripts(plan, out, force=True)
    assert (out / "node0" / "train.sh").read_text().startswith("#!")


def test_scripts_without_master_address_demand_it(tmp_path: Path) -> None:
    plan = build_plan(load_job(JOBS / "qwen25-math-7b-openr1.yaml"), 2)
    text = render_scripts(plan)[(0, "train")]
    assert ': "${MASTER_ADDR:?' in text
    script = tmp_path / "t.sh"
    script.write_text(text)
    env = {k: v for k, v in os.environ.items() if k not in ("MASTER_ADDR", "MASTER_PORT")}
    result = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "set MASTER_ADDR" in result.stderr


def test_command_stage_runs_with_node_rank(tmp_path: Path) -> None:
    job = validate_job({"name": "hello", "stages": [{"name": "hello", "command": "echo rank=$NODE_RANK"}]})
    plan = build_plan(job, 2)
    script = tmp_path / "hello.sh"
    script.write_text(render_scripts(plan)[(1, "hello")])
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert result.returncode == 0 and "rank=1" in result.stdout


def test_msrun_echoes_worker_logs_by_hand_but_not_under_the_runner(tmp_path: Path, main_job_data) -> None:
    """Under `runner launch` (RUNNER_RUN_ID set) the runner streams worker logs itself; msrun's own
    echo would print every line twice."""
    data, _ = _odd_job(tmp_path, main_job_data)
    plan = build_plan(validate_job(data), 2, master_addr="127.0.0.1", master_port=6000)
    script = tmp_path / "train.sh"
    script.write_text(render_scripts(plan)[(0, "train")])
    bin_dir = tmp_path / "bin"
    _recorder(bin_dir, "msrun")
    base = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RUNNER_STAGE_DIR": str(tmp_path)}
    base.pop("RUNNER_RUN_ID", None)
    for extra, expected in (({}, "-1"), ({"RUNNER_RUN_ID": "run-1"}, "16")):
        log = tmp_path / f"argv{expected}.jsonl"
        env = {**base, **extra, "ARGV_LOG": str(log)}
        assert subprocess.run(["bash", str(script)], env=env, capture_output=True).returncode == 0
        argv = json.loads(log.read_text())
        assert argv[argv.index("--tail_worker_log") + 1] == expected
