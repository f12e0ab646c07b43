"""The stand-in training under the real MindSpore ``msrun``: 2 CPU workers on this machine.

No simulated cluster is needed: msrun's scheduler and workers talk over 127.0.0.1. Every msrun
is started in its own session and its process group is killed if a test times out.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from standin_stack import MAP_KEYS, child_env, convert_args, losses, make_stack, sft_train_args

VENV_BIN = Path(sys.executable).parent
MSRUN = VENV_BIN / "msrun" if (VENV_BIN / "msrun").exists() else shutil.which("msrun")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(MSRUN is None, reason="msrun (MindSpore) is not installed; run `make setup`"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    env = child_env()
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}"  # msrun runs `python` from PATH
    return env


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("standin_msrun")
    repo, model = make_stack(root)["repo"], root / "model"
    prefix = root / "sft" / "sharegpt"
    prefix.parent.mkdir()
    python(repo, "preprocess_data.py", [
        "--input", str(root / "data"), "--tokenizer-name-or-path", str(model), "--output-prefix",
        str(prefix), "--handler-name", "SharegptStyleInstructionHandler", "--prompt-type", "qwen_math_r1",
        "--map-keys", MAP_KEYS])
    for tp, pp in ((1, 1), (1, 2)):
        python(repo, "convert_ckpt.py", convert_args(model, root / f"mcore_tp{tp}pp{pp}", tp, pp))
    return {"repo": repo, "root": root, "model": model, "data": prefix}


def python(repo: Path, script: str, args: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, script, *args], cwd=repo, env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done


def msrun(repo: Path, log_dir: Path, script: str, args: list[str], workers: int = 2,
          timeout: float = 240) -> tuple[int, str]:
    """Run ``msrun ... script args`` with ``workers`` local workers; returns (exit code, all logs)."""
    cmd = [str(MSRUN), "--worker_num", str(workers), "--local_worker_num", str(workers), "--master_addr",
           "127.0.0.1", "--master_port", str(_free_port()), "--node_rank", "0", "--log_dir", str(log_dir),
           "--join", "True", "--cluster_time_out", "90", script, *args]
    proc = subprocess.Popen(cmd, cwd=repo, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    logs = "".join(p.read_text(errors="replace") for p in sorted(log_dir.glob("*.log")))
    return proc.returncode, out + logs


def train_args(stack: dict[str, Path], pp: int, iters: int, **extra: str | None) -> list[str]:
    return sft_train_args(stack["model"], str(stack["data"]), iters, tensor_model_parallel_size="1",
                          pipeline_model_parallel_size=str(pp), distributed_backend="nccl", **extra)


def test_data_parallel_loss_is_all_reduced_over_both_workers(stack: dict, tmp_path: Path) -> None:
    """2 workers x half a batch each print the loss one process prints for the whole batch."""
    args = train_args(stack, pp=1, iters=6, load=str(stack["root"] / "mcore_tp1pp1"), finetune=None)
    single = python(stack["repo"], "posttrain_gpt.py", args)
    code, logs = msrun(stack["repo"], tmp_path / "log", "posttrain_gpt.py", args)
    assert code == 0, logs[-3000:]
    assert "TP 1 PP 1 DP 2, world size 2" in logs
    reference, distributed = losses(single.stdout), losses(logs)
    assert sorted(distributed) == list(range(1, 7))
    for iteration, value in reference.items():
        assert distributed[iteration] == pytest.approx(value, rel=1e-5), f"iteration {iteration}"


def test_pipeline_parallel_training_saves_and_resumes_from_a_checkpoint(stack: dict, tmp_path: Path) -> None:
    full = tmp_path / "full"
    args = train_args(stack, pp=2, iters=8, load=str(stack["root"] / "mcore_tp1pp2"), finetune=None,
                      save=str(full), save_interval="4")
    code, logs = msrun(stack["repo"], tmp_path / "log_full", "posttrain_gpt.py", args)
    assert code == 0, logs[-3000:]
    for iteration in ("iter_0000004", "iter_0000008"):
        for rank in ("mp_rank_00_000", "mp_rank_00_001"):
            assert (full / iteration / rank / "model_optim_rng.pt").is_file()
    assert (full / "latest_checkpointed_iteration.txt").read_text() == "8"
    first = losses(logs)

    # Resume from the iteration-4 checkpoint, as after a crash: same command without --finetune.
    resume = tmp_path / "resume"
    shutil.copytree(full / "iter_0000004", resume / "iter_0000004")
    (resume / "latest_checkpointed_iteration.txt").write_text("4")
    args = train_args(stack, pp=2, iters=8, load=str(resume), save=str(resume), save_interval="4")
    code, logs = msrun(stack["repo"], tmp_path / "log_resume", "posttrain_gpt.py", args)
    assert code == 0, logs[-3000:]
    assert "loading checkpoint from" in logs and "at iteration 4" in logs
    resumed = losses(logs)
    assert sorted(resumed) == [5, 6, 7, 8]
    assert resumed == {i: v for i, v in first.items() if i > 4}
    assert (resume / "latest_checkpointed_iteration.txt").read_text() == "8"

    # Generation on the trained checkpoint, on both pipeline stages.
    gen = [a for a in train_args(stack, pp=2, iters=1) if a not in ("--data-path", str(stack["data"]))]
    code, logs = msrun(stack["repo"], tmp_path / "log_gen", "inference.py",
                       [*gen, "--load", str(full), "--max-new-tokens", "64", "--exit-on-missing-checkpoint"])
    assert code == 0, logs[-3000:]
    assert "MindSpeed-LLM:" in logs and "\\boxed{" in logs


def test_a_bad_flag_fails_the_whole_msrun_job(stack: dict, tmp_path: Path) -> None:
    args = [*train_args(stack, pp=1, iters=2), "--ckpt-format", "torch"]
    code, logs = msrun(stack["repo"], tmp_path / "log", "posttrain_gpt.py", args, timeout=120)
    assert code != 0
    assert "posttrain_gpt.py: error: unrecognized arguments: --ckpt-format torch" in logs
