"""The stand-in MindSpeed-LLM checkout, tiny model and sample data, and the command lines the
stand-in tests run against them (tests/unit/test_standin_*.py, tests/integration/test_standin_msrun.py).

    stack = make_stack(tmp_path_factory.mktemp("standin"))  # {"repo", "model", "data", "out", "root"}
    subprocess.run([sys.executable, "posttrain_gpt.py", *sft_train_args(stack["model"], prefix, 4)],
                   cwd=stack["repo"], env=child_env())
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from runner.standin.bundles import build_bundles
from runner.standin.sample_data import make_sample_dataset
from runner.standin.tiny_model import make_tiny_model

# --map-keys of the sample data (ShareGPT-style, as the guides write it).
MAP_KEYS = ('{"messages":"messages", "tags":{"role_tag": "role","content_tag": "content","user_tag": "user",'
            '"assistant_tag": "assistant","system_tag": "system"}}')
# A Megatron iteration line: (iteration, lm loss).
LOSS = re.compile(r"iteration\s+(\d+)/\s*\d+ \|.*? lm loss: ([0-9.E+-]+) \|")


def make_stack(root: Path) -> dict[str, Path]:
    """Build the stand-in MindSpeed-LLM checkout, the tiny model and the sample dataset under `root`."""
    repo = build_bundles(root / "bundles")["MindSpeed-LLM"].path
    make_tiny_model(root / "model")
    make_sample_dataset(root / "data")
    (root / "out").mkdir()
    return {"repo": repo, "model": root / "model", "data": root / "data", "out": root / "out", "root": root}


def child_env() -> dict[str, str]:
    """This environment without msrun's variables, so a script runs as one process, not as a worker."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("MS_", "RANK_"))}


def convert_args(model: Path, save: Path, tp: int, pp: int) -> list[str]:
    """convert_ckpt.py hf -> mcore of the tiny model for TP/PP."""
    return ["--use-mcore-models", "--model-type", "GPT", "--load-model-type", "hf", "--save-model-type", "mg",
            "--target-tensor-parallel-size", str(tp), "--target-pipeline-parallel-size", str(pp), "--add-qkv-bias",
            "--load-dir", str(model), "--save-dir", str(save), "--tokenizer-model", str(model / "tokenizer.json"),
            "--model-type-hf", "llama2", "--params-dtype", "bf16"]


def sft_train_args(model: Path, data: str, iters: int, **extra: str | None) -> list[str]:
    """posttrain_gpt.py SFT flags of the tiny model; `extra` adds flags (`load="/x"` -> `--load /x`,
    `finetune=None` -> `--finetune`)."""
    args = ["--use-mcore-models", "--num-layers", "4", "--hidden-size", "128", "--ffn-hidden-size", "256",
            "--num-attention-heads", "4", "--group-query-attention", "--num-query-groups", "2",
            "--max-position-embeddings", "4096", "--seq-length", "512", "--add-qkv-bias", "--swiglu",
            "--untie-embeddings-and-output-weights", "--micro-batch-size", "1", "--global-batch-size", "4",
            "--make-vocab-size-divisible-by", "1", "--padded-vocab-size", "2048", "--tokenizer-name-or-path",
            str(model), "--train-iters", str(iters), "--lr", "1.25e-6", "--lr-decay-style", "cosine",
            "--min-lr", "1.25e-7", "--lr-warmup-fraction", "0.01", "--bf16", "--data-path", data,
            "--log-interval", "1", "--stage", "sft", "--is-instruction-dataset", "--prompt-type", "qwen_math_r1",
            "--ai-framework", "mindspore"]
    for flag, value in extra.items():
        args.append("--" + flag.replace("_", "-"))
        if value is not None:
            args.append(value)
    return args


def losses(text: str) -> dict[int, float]:
    """Iteration -> lm loss of every iteration line in `text`."""
    return {int(i): float(v) for i, v in LOSS.findall(text)}
