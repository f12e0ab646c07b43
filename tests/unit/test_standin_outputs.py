"""The stand-in entry points write the real output layouts, and training resumes for real.

All runs are single processes (no msrun); tests/integration/test_standin_msrun.py covers msrun.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from standin_stack import MAP_KEYS, child_env, losses, make_stack, sft_train_args
from standin_stack import convert_args as tiny_convert_args


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_stack(tmp_path_factory.mktemp("standin"))


def run(env: dict[str, Path], script: str, args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, script, *args], cwd=env["repo"], env=child_env(), capture_output=True,
                          text=True, timeout=120)


def indexed(env: dict[str, Path]):  # the stand-in's own reader, as training uses it
    sys.path.insert(0, str(env["repo"]))
    try:
        from mindspeed_llm.standin.indexed import IndexedDataset
        from mindspeed_llm.standin.tokenizer import ByteTokenizer
    finally:
        sys.path.pop(0)
    return IndexedDataset, ByteTokenizer(env["model"])


@pytest.fixture(scope="module")
def sft_data(env: dict[str, Path]) -> str:
    prefix = str(env["out"] / "sft" / "sharegpt")
    Path(prefix).parent.mkdir()
    done = run(env, "preprocess_data.py", [
        "--input", str(env["data"] / "train-00000-of-00010.parquet"), "--tokenizer-name-or-path", str(env["model"]),
        "--output-prefix", prefix, "--workers", "4", "--log-interval", "1000", "--tokenizer-type",
        "PretrainedFromHF", "--handler-name", "SharegptStyleInstructionHandler", "--prompt-type", "qwen_math_r1",
        "--map-keys", MAP_KEYS])
    assert done.returncode == 0, done.stderr
    return prefix


@pytest.fixture(scope="module")
def mcore(env: dict[str, Path]) -> Path:
    save = env["out"] / "mcore_tp1pp1"
    done = run(env, "convert_ckpt.py", convert_args(env, save, tp=1, pp=1))
    assert done.returncode == 0, done.stderr
    return save


def convert_args(env: dict[str, Path], save: Path, tp: int, pp: int) -> list[str]:
    return tiny_convert_args(env["model"], save, tp, pp)


def train_args(env: dict[str, Path], data: str, iters: int, **extra: str | None) -> list[str]:
    return sft_train_args(env["model"], data, iters, no_load_optim=None, no_load_rng=None, **extra)


def test_instruction_preprocess_writes_packed_files_with_masked_prompts(env: dict, sft_data: str) -> None:
    for key in ("input_ids", "attention_mask", "labels"):
        for ext in ("bin", "idx"):
            assert Path(f"{sft_data}_packed_{key}_document.{ext}").is_file()
    dataset, tokenizer = indexed(env)
    ids = dataset(f"{sft_data}_packed_input_ids_document")
    labels = dataset(f"{sft_data}_packed_labels_document")
    assert len(ids) == 30
    text = tokenizer.decode(list(ids[0]))
    assert text.startswith("<|im_start|>system\nPlease reason step by step, and put your final answer within "
                           "\\boxed{}.<|im_end|>\n<|im_start|>user\n")
    trained = tokenizer.decode([t for t in labels[0] if t != -100])
    assert trained.startswith("<think>") and trained.endswith("<|im_end|>\n")


def test_pretrain_preprocess_writes_one_file_pair_per_json_key(env: dict) -> None:
    prefix = env["out"] / "pretrain"
    done = run(env, "preprocess_data.py", ["--input", str(env["data"]), "--output-prefix", str(prefix),
                                           "--tokenizer-name-or-path", str(env["model"]), "--json-keys",
                                           "problem", "solution", "--append-eod"])
    assert done.returncode == 0, done.stderr
    for key in ("problem", "solution"):
        assert Path(f"{prefix}_{key}_document.bin").is_file() and Path(f"{prefix}_{key}_document.idx").is_file()
    dataset, tokenizer = indexed(env)
    assert len(dataset(f"{prefix}_problem_document")) == 300
    assert dataset(f"{prefix}_problem_document")[0][-1] == tokenizer.eod


def test_pack_pads_every_row_to_seq_length(env: dict) -> None:
    prefix = env["out"] / "packed"
    done = run(env, "preprocess_data.py", ["--input", str(env["data"]), "--output-prefix", str(prefix),
                                           "--tokenizer-name-or-path", str(env["model"]), "--handler-name",
                                           "SharegptStyleInstructionHandler", "--prompt-type", "qwen_math_r1",
                                           "--map-keys", MAP_KEYS, "--pack", "--neat-pack", "--seq-length", "1024"])
    assert done.returncode == 0, done.stderr
    dataset, _ = indexed(env)
    rows = dataset(f"{prefix}_packed_input_ids_document")
    assert 0 < len(rows) < 300
    assert set(rows.sizes.tolist()) == {1024}
    mask = dataset(f"{prefix}_packed_attention_mask_document")[0]
    assert mask[0] == 1 and max(mask) >= 2  # neat-pack numbers each packed sample


@pytest.mark.parametrize(("tp", "pp", "dirs"), [
    (1, 1, ["mp_rank_00"]),
    (2, 1, ["mp_rank_00", "mp_rank_01"]),
    (2, 2, ["mp_rank_00_000", "mp_rank_00_001", "mp_rank_01_000", "mp_rank_01_001"]),
])
def test_hf_to_mcore_writes_the_megatron_layout(env: dict, mcore: Path, tp: int, pp: int, dirs: list[str]) -> None:
    save = env["out"] / f"layout_tp{tp}pp{pp}"
    done = run(env, "convert_ckpt.py", convert_args(env, save, tp=tp, pp=pp))
    assert done.returncode == 0, done.stderr
    assert "successfully saved checkpoint from iteration       1 to" in done.stdout
    assert (save / "latest_checkpointed_iteration.txt").read_text() == "1"
    assert sorted(p.name for p in (save / "iter_0000001").iterdir()) == dirs
    files = [save / "iter_0000001" / d / "model_optim_rng.pt" for d in dirs]
    total = sum(f.stat().st_size for f in files)
    whole = (mcore / "iter_0000001/mp_rank_00/model_optim_rng.pt").stat().st_size
    assert abs(total - whole) / whole < 0.1  # the same model, split TP x PP ways
    for f in files:
        assert abs(f.stat().st_size - whole / (tp * pp)) / (whole / (tp * pp)) < 0.35


def test_mcore_to_hf_writes_mg2hf_with_the_original_tensor_shapes(env: dict) -> None:
    source = env["out"] / "to_hf_src"
    assert run(env, "convert_ckpt.py", convert_args(env, source, tp=2, pp=2)).returncode == 0
    hf_dir = env["out"] / "hf_copy"
    shutil.copytree(env["model"], hf_dir)
    done = run(env, "convert_ckpt.py", ["--use-mcore-models", "--model-type", "GPT", "--model-type-hf", "llama2",
                                        "--load-model-type", "mg", "--save-model-type", "hf",
                                        "--target-tensor-parallel-size", "1", "--target-pipeline-parallel-size", "1",
                                        "--add-qkv-bias", "--load-dir", str(source), "--save-dir", str(hf_dir)])
    assert done.returncode == 0, done.stderr
    out = hf_dir / "mg2hf"
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == 4
    assert not (out / "tokenizer.json").exists()  # the real saver does not copy tokenizer files
    sys.path.insert(0, str(env["repo"]))
    try:
        from mindspeed_llm.standin.safetensors_io import read_file
    finally:
        sys.path.pop(0)
    original, exported = read_file(env["model"] / "model.safetensors"), read_file(out / "model.safetensors")
    assert {k: v.shape for k, v in exported.items()} == {k: v.shape for k, v in original.items()}


def test_mcore_to_hf_needs_the_original_weights_unless_load_hf_from_config(env: dict, mcore: Path) -> None:
    config_only = env["out"] / "config_only"
    config_only.mkdir()
    shutil.copy(env["model"] / "config.json", config_only)
    args = ["--model-type", "GPT", "--load-model-type", "mg", "--save-model-type", "hf", "--load-dir", str(mcore),
            "--save-dir", str(config_only)]
    refused = run(env, "convert_ckpt.py", args)
    assert refused.returncode == 1 and "Error no file named pytorch_model.bin, model.safetensors" in refused.stderr
    done = run(env, "convert_ckpt.py", [*args, "--load-hf-from-config"])
    assert done.returncode == 0, done.stderr
    assert (config_only / "mg2hf" / "model.safetensors").is_file()


def test_training_saves_at_intervals_and_resumes_with_the_same_losses(env: dict, sft_data: str,
                                                                      mcore: Path) -> None:
    full_dir, part_dir = env["out"] / "full", env["out"] / "part"
    full = run(env, "posttrain_gpt.py", train_args(env, sft_data, 8, load=str(mcore), save=str(full_dir),
                                                   save_interval="4", finetune=None))
    assert full.returncode == 0, full.stderr
    assert sorted(p.name for p in full_dir.iterdir()) == ["iter_0000004", "iter_0000008",
                                                          "latest_checkpointed_iteration.txt"]
    assert (full_dir / "latest_checkpointed_iteration.txt").read_text() == "8"
    first = run(env, "posttrain_gpt.py", train_args(env, sft_data, 8, load=str(mcore), save=str(part_dir),
                                                    save_interval="4", finetune=None, exit_interval="4"))
    assert sorted(losses(first.stdout)) == [1, 2, 3, 4]
    resumed = run(env, "posttrain_gpt.py", train_args(env, sft_data, 8, load=str(part_dir), save=str(part_dir),
                                                      save_interval="4"))
    assert resumed.returncode == 0, resumed.stderr
    assert "at iteration 4" in resumed.stdout
    assert losses(resumed.stdout) == {i: v for i, v in losses(full.stdout).items() if i > 4}
    line = next(line for line in full.stdout.splitlines() if " iteration        8/       8 |" in line)
    assert re.fullmatch(r" \[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] iteration        8/       8 \| consumed samples: "
                        r"+32 \| elapsed time per iteration \(ms\): [\d.]+ \| learning rate: [\d.]+E[+-]\d\d \| "
                        r"global batch size: +4 \| lm loss: [\d.]+E[+-]\d\d \| loss scale: 1\.0 \| grad norm: "
                        r"[\d.]+ \| number of skipped iterations: +0 \| number of nan iterations: +0 \|", line)


def test_finetune_starts_at_iteration_zero_from_a_trained_checkpoint(env: dict, sft_data: str, mcore: Path) -> None:
    trained = env["out"] / "trained"
    run(env, "posttrain_gpt.py", train_args(env, sft_data, 3, load=str(mcore), save=str(trained), finetune=None))
    done = run(env, "posttrain_gpt.py", train_args(env, sft_data, 2, load=str(trained), finetune=None))
    assert done.returncode == 0, done.stderr
    assert sorted(losses(done.stdout)) == [1, 2]


def test_loading_a_checkpoint_converted_for_another_tp_fails_naming_the_file(env: dict, sft_data: str) -> None:
    tp2 = env["out"] / "layout_tp2_for_load"
    assert run(env, "convert_ckpt.py", convert_args(env, tp2, tp=2, pp=1)).returncode == 0
    done = run(env, "posttrain_gpt.py", train_args(env, sft_data, 2, load=str(tp2), finetune=None))
    assert done.returncode == 1
    assert "size mismatch for embedding.word_embeddings.weight" in done.stderr


def test_missing_checkpoint_with_exit_on_missing_checkpoint_stops(env: dict, sft_data: str) -> None:
    done = run(env, "posttrain_gpt.py", train_args(env, sft_data, 2, load=str(env["out"] / "nothing"),
                                                   exit_on_missing_checkpoint=None))
    assert done.returncode == 1
    assert "could not find the metadata file" in done.stdout


def test_training_names_the_missing_dataset(env: dict) -> None:
    done = run(env, "posttrain_gpt.py", train_args(env, str(env["out"] / "nope" / "sharegpt"), 2))
    assert done.returncode == 1
    assert "nope/sharegpt_packed_input_ids_document not exists" in done.stderr


def test_inference_prints_a_generated_text(env: dict, mcore: Path) -> None:
    args = [a for a in train_args(env, "unused", 1) if a not in ("--data-path", "unused", "--is-instruction-dataset")]
    done = run(env, "inference.py", [*args, "--load", str(mcore), "--max-new-tokens", "64",
                                     "--exit-on-missing-checkpoint"])
    assert done.returncode == 0, done.stderr
    assert "MindSpeed-LLM:" in done.stdout and "\\boxed{" in done.stdout
