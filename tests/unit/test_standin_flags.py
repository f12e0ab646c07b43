"""The stand-in entry points accept exactly the real flags and fail the real cross-checks.

Each test runs an entry point as a user's script would (``python <script> <flags>`` in the
MindSpeed-LLM checkout), without msrun: training then runs as one process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from standin_stack import child_env, make_stack

from runner.standin.bundles import flag_table


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_stack(tmp_path_factory.mktemp("standin"))


def run(env: dict[str, Path], script: str, args: list[str], world: int | None = None) -> subprocess.CompletedProcess:
    child = child_env()
    if world is not None:
        child["MS_WORKER_NUM"] = str(world)  # what msrun announces, checked before joining the cluster
    return subprocess.run([sys.executable, script, *args], cwd=env["repo"], env=child, capture_output=True,
                          text=True, timeout=120)


def model_args(env: dict[str, Path], **overrides: str) -> list[str]:
    values = {"--tensor-model-parallel-size": "1", "--pipeline-model-parallel-size": "1", "--num-layers": "4",
              "--hidden-size": "128", "--ffn-hidden-size": "256", "--num-attention-heads": "4",
              "--num-query-groups": "2", "--max-position-embeddings": "4096", "--seq-length": "512",
              "--micro-batch-size": "1", "--global-batch-size": "4", "--train-iters": "2", "--lr": "1e-6",
              "--min-lr": "1e-7", "--log-interval": "1", "--padded-vocab-size": "2048", "--tokenizer-name-or-path": str(env["model"]),
              "--mock-data": None, "--group-query-attention": None, "--add-qkv-bias": None, "--swiglu": None,
              "--untie-embeddings-and-output-weights": None, "--bf16": None}
    values.update(overrides)
    out: list[str] = []
    for flag, value in values.items():
        if value == "<drop>":
            continue
        out.append(flag)
        if value is not None:
            out.append(value)
    return out


@pytest.mark.parametrize("script", ["posttrain_gpt.py", "pretrain_gpt.py", "inference.py"])
def test_training_entry_points_reject_a_flag_the_real_ones_do_not_define(env: dict, script: str) -> None:
    done = run(env, script, [*model_args(env), "--ckpt-format", "torch"])  # a 2.2.0 flag, not in 2.1.0
    assert done.returncode == 2
    assert f"{script}: error: unrecognized arguments: --ckpt-format torch" in done.stderr


def test_every_real_training_flag_is_accepted(env: dict) -> None:
    untyped = [f for f in flag_table()["training"] if f not in set(model_args(env))]
    done = run(env, "posttrain_gpt.py", ["--help"])
    assert done.returncode == 0
    for flag in untyped:
        assert f"\n  {flag}\n" in done.stdout
    ok = run(env, "posttrain_gpt.py", [*model_args(env), "--use-flash-attn", "--use-fused-rmsnorm",
                                       "--normalization", "RMSNorm", "--no-gradient-accumulation-fusion",
                                       "--distributed-backend", "nccl", "--ai-framework", "mindspore"])
    assert ok.returncode == 0, ok.stderr
    assert "lm loss:" in ok.stdout


def test_abbreviated_flags_are_refused(env: dict) -> None:
    done = run(env, "posttrain_gpt.py", [*model_args(env), "--seq", "512"])
    assert done.returncode == 2
    assert "unrecognized arguments: --seq 512" in done.stderr


def test_typed_flag_errors_read_like_argparse(env: dict) -> None:
    bad_int = run(env, "posttrain_gpt.py", model_args(env, **{"--seq-length": "long"}))
    assert bad_int.returncode == 2
    assert "argument --seq-length: invalid int value: 'long'" in bad_int.stderr
    bad_choice = run(env, "posttrain_gpt.py", [*model_args(env), "--ai-framework", "jax"])
    assert bad_choice.returncode == 2
    assert "argument --ai-framework: invalid choice: 'jax'" in bad_choice.stderr


@pytest.mark.parametrize(("world", "overrides", "message"), [
    (3, {"--tensor-model-parallel-size": "2"},
     "world size (3) is not divisible by tensor model parallel size (2)"),
    (6, {"--tensor-model-parallel-size": "2", "--pipeline-model-parallel-size": "2"},
     "world size (6) is not divisible by tensor parallel size (2) times pipeline parallel size (2) times "
     "context parallel size (1)"),
    (4, {"--num-attention-heads": "6", "--hidden-size": "132", "--tensor-model-parallel-size": "4"},
     "num_attention_heads (6) must be a multiple of tensor_model_parallel_size (4)."),
    (4, {"--num-query-groups": "1", "--tensor-model-parallel-size": "2"},
     "num_query_groups (1) must be a multiple of tensor_model_parallel_size (2)."),
    (4, {"--num-layers": "5", "--pipeline-model-parallel-size": "2"},
     "number of layers should be divisible by the pipeline parallel size"),
    (4, {"--global-batch-size": "6"},
     "global batch size (6) is not divisible by micro batch size (1) times data parallel size (4)"),
    (1, {"--seq-length": "8192"}, "max_position_embeddings (4096) must be >= seq_length (8192)"),
    (1, {"--hidden-size": "<drop>"}, "hidden_size argument is None"),
])
def test_training_cross_checks_fail_with_the_real_messages(env: dict, world: int, overrides: dict,
                                                           message: str) -> None:
    done = run(env, "posttrain_gpt.py", model_args(env, **overrides), world=world)
    assert done.returncode == 1
    assert message in done.stderr


def test_num_layer_list_must_match_pipeline_stages_and_layers(env: dict) -> None:
    wrong_len = run(env, "posttrain_gpt.py", [*model_args(env, **{"--pipeline-model-parallel-size": "2"}),
                                              "--num-layer-list", "1,1,2"], world=2)
    assert "len(args.num_layer_list) != args.pipeline_model_parallel_size" in wrong_len.stderr
    wrong_sum = run(env, "posttrain_gpt.py", [*model_args(env, **{"--pipeline-model-parallel-size": "2"}),
                                              "--num-layer-list", "1,2"], world=2)
    assert "Incorrect num_layer_list config since its sum(3) is unequal to total num layers(4)." in wrong_sum.stderr


def test_neat_pack_needs_reset_position_ids_in_training(env: dict) -> None:
    done = run(env, "posttrain_gpt.py", [*model_args(env), "--neat-pack"])
    assert "Require set `--reset-position-ids` when `--neat-pack` is set." in done.stderr


def test_preprocess_flags_and_validate_args(env: dict) -> None:
    out = str(env["out"] / "p")
    unknown = run(env, "preprocess_data.py", ["--input", str(env["data"]), "--output-prefix", out, "--seq-len", "9"])
    assert unknown.returncode == 2 and "unrecognized arguments: --seq-len 9" in unknown.stderr
    missing = run(env, "preprocess_data.py", ["--input", str(env["data"])])
    assert missing.returncode == 2
    assert "the following arguments are required: --output-prefix" in missing.stderr
    handler = run(env, "preprocess_data.py", ["--input", str(env["data"]), "--output-prefix", out,
                                              "--prompt-type", "qwen"])
    assert handler.returncode == 1
    assert "AssertionError: If specify prompt_type , handler name must be in:" in handler.stderr
    no_dir = run(env, "preprocess_data.py", ["--input", str(env["data"]), "--output-prefix",
                                             str(env["out"] / "missing" / "p")])
    assert f"ValueError: {env['out'] / 'missing'} is not a directory or does not exist" in no_dir.stderr
    neat = run(env, "preprocess_data.py", ["--input", str(env["data"]), "--output-prefix", out, "--neat-pack"])
    assert "Require set `--pack` when `--neat-pack` is set." in neat.stderr
    pack = run(env, "preprocess_data.py", ["--input", str(env["data"]), "--output-prefix", out, "--pack",
                                           "--seq-length", "1024", "--json-keys", "problem",
                                           "--tokenizer-name-or-path", str(env["model"])])
    assert "Pre-training data processing does not need to be packed" in pack.stderr


def test_preprocess_map_keys_must_name_existing_columns(env: dict) -> None:
    done = run(env, "preprocess_data.py", [
        "--input", str(env["data"]), "--output-prefix", str(env["out"] / "bad"),
        "--tokenizer-name-or-path", str(env["model"]), "--handler-name", "SharegptStyleInstructionHandler",
        "--prompt-type", "qwen_math_r1", "--map-keys", '{"messages": "conversations"}'])
    assert done.returncode == 1
    assert "column 'conversations'" in done.stderr


def test_convert_flags_and_checks(env: dict) -> None:
    base = ["--use-mcore-models", "--model-type", "GPT", "--load-model-type", "hf", "--save-model-type", "mg",
            "--add-qkv-bias", "--load-dir", str(env["model"]), "--save-dir", str(env["out"] / "c"),
            "--model-type-hf", "llama2", "--params-dtype", "bf16"]
    no_tok = run(env, "convert_ckpt.py", base)
    assert no_tok.returncode == 2
    assert "the following arguments are required: --tokenizer-model" in no_tok.stderr
    with_tok = [*base, "--tokenizer-model", str(env["model"] / "tokenizer.json")]
    bad_type = run(env, "convert_ckpt.py", [*with_tok, "--model-type-hf", "qwen2"])
    assert bad_type.returncode == 2 and "invalid choice: 'qwen2'" in bad_type.stderr
    tp8 = run(env, "convert_ckpt.py", [*with_tok, "--target-tensor-parallel-size", "8"])
    assert "num_attention_heads (4) must be a multiple of tensor_model_parallel_size (8)." in tp8.stderr
    pp3 = run(env, "convert_ckpt.py", [*with_tok, "--target-pipeline-parallel-size", "3"])
    assert "number of layers should be divisible by the pipeline parallel size" in pp3.stderr
    unknown = run(env, "convert_ckpt.py", [*with_tok, "--ai-framework", "mindspore"])  # a 2.2.0+ flag
    assert unknown.returncode == 2 and "unrecognized arguments: --ai-framework mindspore" in unknown.stderr
    to_hf = run(env, "convert_ckpt.py", ["--model-type", "GPT", "--load-model-type", "mg", "--save-model-type",
                                         "hf", "--target-tensor-parallel-size", "2", "--load-dir",
                                         str(env["out"]), "--save-dir", str(env["model"])])
    assert to_hf.returncode == 1
    assert "--target-tensor-parallel-size 1 and --target-pipeline-parallel-size 1" in to_hf.stderr
