"""The stand-in training under the real MindSpore ``msrun``: 2 CPU workers on this machine.

No simulated cluster is needed: msrun's scheduler and workers talk over 127.0.0.1. Every msrun
is started in its own session and its process group is killed if a test times out.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from runner.standin.bundles import build_bundles
from runner.standin.sample_data import make_sample_dataset
from runner.standin.tiny_model import make_tiny_model

VENV_BIN = Path(sys.executable).parent
MSRUN = VENV_BIN / "msrun" if (VENV_BIN / "msrun").exists() else shutil.which("msrun")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(MSRUN is None, reason="msrun (MindSpore) is not installed; run `make setup`"),
]

MAP_KEYS = ('{"messages":"messages", "tags":{"role_tag": "role","content_tag": "content","user_tag": "user",'
            '"assistant_tag": "assistant","system_tag": "system"}}')
LOSS = re.compile(r"iteration\s+(\d+)/\s*\d+ \|.*? lm loss: ([0-9.E+-]+) \|")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MS_", "RANK_"))}
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}"  # msrun runs `python` from PATH
    return env


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("standin_msrun")
    repo = build_bundles(root / "bundles")["MindSpeed-LLM"].path
    make_tiny_model(root / "model")
    make_sample_dataset(root / "data")
    prefix = root / "sft" / "sharegpt"
    prefix.parent.mkdir()
    python(repo, "preprocess_data.py", [
        "--input", str(root / "data"), "--tokenizer-name-or-path", str(root / "model"), "--output-prefix",
        str(prefix), "--handler-name", "SharegptStyleInstructionHandler", "--prompt-type", "qwen_math_r1",
        "--map-keys", MAP_KEYS])
    for tp, pp in ((1, 1), (1, 2)):
        python(repo, "convert_ckpt.py", [
            "--use-mcore-models", "--model-type", "GPT", "--load-model-type", "hf", "--save-model-type", "mg",
            "--target-tensor-parallel-size", str(tp), "--target-pipeline-parallel-size", str(pp), "--add-qkv-bias",
            "--load-dir", str(root / "model"), "--save-dir", str(root / f"mcore_tp{tp}pp{pp}"),
            "--tokenizer-model", str(root / "model" / "tokenizer.json"), "--params-dtype", "bf16"])
    return {"repo": repo, "root": root, "model": root / "model", "data": prefix}


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
    args = ["--use-mcore-models", "--tensor-model-parallel-size", "1", "--pipeline-model-parallel-size", str(pp),
            "--num-layers", "4", "--hidden-size", "128", "--ffn-hidden-size", "256", "--num-attention-heads", "4",
            "--group-query-attention", "--num-query-groups", "2", "--max-position-embeddings", "4096",
            "--seq-length", "512", "--add-qkv-bias", "--swiglu", "--untie-embeddings-and-output-weights",
            "--micro-batch-size", "1", "--global-batch-size", "4", "--make-vocab-size-divisible-by", "1",
            "--padded-vocab-size", "2048", "--tokenizer-name-or-path", str(stack["model"]), "--train-iters",
            str(iters), "--lr", "1.25e-6", "--lr-decay-style", "cosine", "--min-lr", "1.25e-7",
            "--lr-warmup-fraction", "0.01", "--bf16", "--data-path", str(stack["data"]), "--log-interval", "1",
            "--stage", "sft", "--is-instruction-dataset", "--prompt-type", "qwen_math_r1", "--ai-framework",
            "mindspore", "--distributed-backend", "nccl"]
    for flag, value in extra.items():
        args.append("--" + flag.replace("_", "-"))
        if value is not None:
            args.append(value)
    return args


def losses(text: str) -> dict[int, float]:
    return {int(i): float(v) for i, v in LOSS.findall(text)}


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
