"""The shipped jobs reproduce the guides users follow by hand today (../shared/seeds/).

Each expected table below is copied from a guide's commands. The rendered command of the job
must carry every one of those flags with the same value, except where the guide is wrong; those
exceptions are listed with the reason, and the job file's comments say the same.
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path

import pytest

from runner.plan import build_plan
from runner.render import render_scripts
from runner.spec import load_job

JOBS = Path(__file__).resolve().parents[2] / "jobs"


def flags(args: tuple[str, ...]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    current = None
    for arg in args:
        if arg.startswith("--"):
            current = arg
            out[arg] = None
        elif current is not None:
            out[current] = arg if out[current] is None else f"{out[current]} {arg}"
    return out


def same(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a == b
    try:
        return float(a) == float(b)
    except ValueError:
        pass
    if a.startswith("{"):
        return json.loads(a) == json.loads(b)
    if a.startswith("/"):
        return posixpath.normpath(a) == posixpath.normpath(b)
    return a == b


def assert_carries(actual: dict[str, str | None], expected: str, exceptions: dict[str, str] = {}) -> None:  # noqa: B006
    expected_flags = flags(tuple(_split(expected)))
    for flag, value in expected_flags.items():
        if flag in exceptions:
            continue
        assert flag in actual, f"missing {flag}"
        assert same(actual[flag], value), f"{flag}: job has {actual[flag]!r}, guide has {value!r}"


def _split(text: str) -> list[str]:
    import shlex

    return shlex.split(text)


# ---------------------------------------------------------------- seed 000: Qwen2.5-Math-7B, MindSpore
SEED0_PREPROCESS = """--tokenizer-name-or-path /mnt/data/Qwen25Math7B/ --output-prefix /mnt/data/OpenR1Math220K_handled/sharegpt
 --workers 4 --log-interval 1000 --tokenizer-type PretrainedFromHF --handler-name SharegptStyleInstructionHandler
 --prompt-type qwen_math_r1 --map-keys '{"messages":"messages", "tags":{"role_tag": "role","content_tag": "content",
 "user_tag": "user","assistant_tag": "assistant","system_tag": "system"}}'"""
SEED0_CONVERT = """--use-mcore-models --model-type GPT --load-model-type hf --save-model-type mg
 --target-tensor-parallel-size 2 --target-pipeline-parallel-size 4 --add-qkv-bias --load-dir /mnt/data/Qwen25Math7B/
 --save-dir /mnt/data/Qwen25Math7B_transfered/ --tokenizer-model /mnt/data/Qwen25Math7B/tokenizer.json
 --model-type-hf llama2 --params-dtype bf16"""
SEED0_TRAIN = """--finetune --stage sft --is-instruction-dataset --variable-seq-lengths --tokenizer-not-use-fast
 --prompt-type qwen --use-mcore-models --tensor-model-parallel-size 2 --pipeline-model-parallel-size 4
 --num-layers 28 --hidden-size 3584 --ffn-hidden-size 18944 --num-attention-heads 28 --max-position-embeddings 4096
 --seq-length 4096 --disable-bias-linear --add-qkv-bias --group-query-attention --num-query-groups 4 --use-flash-attn
 --swiglu --use-fused-swiglu --normalization RMSNorm --norm-epsilon 1e-6 --use-fused-rmsnorm
 --position-embedding-type rope --rotary-base 1000000 --use-fused-rotary-pos-emb --untie-embeddings-and-output-weights
 --micro-batch-size 1 --global-batch-size 8 --make-vocab-size-divisible-by 1 --padded-vocab-size 152064
 --tokenizer-type PretrainedFromHF --tokenizer-name-or-path /mnt/data/Qwen25Math7B/ --attention-dropout 0.0
 --hidden-dropout 0.0 --train-iters 1500 --lr 1.25e-6 --lr-decay-style cosine --min-lr 1.25e-7
 --lr-warmup-fraction 0.01 --init-method-std 0.01 --weight-decay 0.0 --clip-grad 1.0 --adam-beta1 0.9
 --adam-beta2 0.95 --initial-loss-scale 4096 --no-gradient-accumulation-fusion --no-masked-softmax-fusion
 --attention-softmax-in-fp32 --bf16 --data-path /mnt/data/OpenR1Math220K_handled/sharegpt --split 100,0,0
 --no-load-optim --no-load-rng --no-save-optim --no-save-rng --seed 1234 --log-interval 1 --save-interval 500
 --eval-interval 1500 --eval-iters 0 --log-throughput --ai-framework mindspore
 --load /mnt/data/Qwen25Math7B_transfered/ --save /mnt/data/Qwen25Math7B_tune/ --distributed-backend nccl"""
SEED0_GENERATE = """--ai-framework mindspore --use-mcore-models --input-layernorm-in-fp32 --tensor-model-parallel-size 2
 --pipeline-model-parallel-size 4 --num-layers 28 --hidden-size 3584 --num-attention-heads 28 --ffn-hidden-size 18944
 --max-position-embeddings 4096 --seq-length 4096 --disable-bias-linear --add-qkv-bias --group-query-attention
 --num-query-groups 4 --swiglu --normalization RMSNorm --norm-epsilon 1e-6 --position-embedding-type rope
 --rotary-base 10000 --make-vocab-size-divisible-by 1 --padded-vocab-size 152064 --micro-batch-size 1
 --max-new-tokens 512 --tokenizer-type PretrainedFromHF --tokenizer-name-or-path /mnt/data/Qwen25Math7B/
 --tokenizer-not-use-fast --hidden-dropout 0 --attention-dropout 0 --untie-embeddings-and-output-weights
 --no-gradient-accumulation-fusion --attention-softmax-in-fp32 --seed 42 --load /mnt/data/Qwen25Math7B_tune/
 --exit-on-missing-checkpoint"""
SEED0_EXPORT = """--use-mcore-models --model-type GPT --model-type-hf llama2 --load-model-type mg --save-model-type hf
 --target-tensor-parallel-size 1 --target-pipeline-parallel-size 1 --add-qkv-bias --load-dir /mnt/data/Qwen25Math7B_tune/
 --save-dir /mnt/data/Qwen25Math7B/"""


def test_seed000_qwen25_math_7b_mindspore() -> None:
    plan = build_plan(load_job(JOBS / "qwen25-math-7b-openr1.yaml"), 2, master_addr="192.0.2.1", master_port=6000)
    assert_carries(flags(plan.stage("preprocess").args), SEED0_PREPROCESS)
    assert_carries(flags(plan.stage("convert").args), SEED0_CONVERT)
    assert_carries(flags(plan.stage("train").args), SEED0_TRAIN, exceptions={
        "--prompt-type": "guide preprocesses with qwen_math_r1 and trains with qwen; one prompt type serves all",
        "--rotary-base": "Qwen2.5-Math-7B's config.json has rope_theta 10000; the guide's own generate script agrees",
    })
    assert flags(plan.stage("train").args)["--prompt-type"] == "qwen_math_r1"
    assert flags(plan.stage("train").args)["--rotary-base"] == "10000"
    assert_carries(flags(plan.stage("generate").args), SEED0_GENERATE)
    assert_carries(flags(plan.stage("export").args), SEED0_EXPORT, exceptions={
        "--save-dir": "the guide writes into the original model's folder; the export goes to a new directory",
    })
    script = render_scripts(plan)[(0, "train")]
    assert "msrun " in script and " posttrain_gpt.py " in script and "--join True" in script


# ---------------------------------------------------------------- seed 002: DeepSeek-R1-Distill-Qwen-7B
SEED2_CONVERT = """--use-mcore-models --model-type GPT --load-model-type hf --save-model-type mg
 --target-tensor-parallel-size 2 --target-pipeline-parallel-size 1 --add-qkv-bias --model-type-hf llama2
 --params-dtype bf16"""
SEED2_PREPROCESS = """--workers 4 --log-interval 1000 --tokenizer-type PretrainedFromHF
 --handler-name SharegptStyleInstructionHandler --map-keys '{"messages":"messages", "tags":{"role_tag": "role",
 "content_tag": "content","user_tag": "user","assistant_tag": "assistant","system_tag": "system"}}'"""
# tune_distill_qwen_7b_full.sh, the script the guide launches for full fine-tuning
SEED2_TRAIN = """--finetune --stage sft --is-instruction-dataset --tokenizer-not-use-fast --variable-seq-lengths
 --prompt-type deepseek3 --seq-length 8192 --micro-batch-size 1 --global-batch-size 64 --train-iters 2000
 --rotary-base 10000 --reuse-fp32-param --use-distributed-optimizer --overlap-grad-reduce --overlap-param-gather
 --save-interval 2000 --eval-interval 2000 --ai-framework mindspore"""


def test_seed002_deepseek_r1_distill_qwen_7b() -> None:
    plan = build_plan(load_job(JOBS / "deepseek-r1-distill-qwen-7b-openr1.yaml"), 1)
    assert_carries(flags(plan.stage("convert").args), SEED2_CONVERT)
    assert_carries(flags(plan.stage("preprocess").args), SEED2_PREPROCESS)
    assert flags(plan.stage("preprocess").args)["--prompt-type"] == "deepseek3"  # guide: qwen_math_r1, see job
    assert_carries(flags(plan.stage("train").args), SEED2_TRAIN)
    assert flags(plan.stage("generate").args)["--prompt-type"] == "deepseek3"
    env = plan.env(0)
    assert env["HCCL_CONNECT_TIMEOUT"] == "1800" and env["PYTORCH_NPU_ALLOC_CONF"] == "expandable_segments:True"


# ---------------------------------------------------------------- seed 003: Qwen2.5-7B pretraining, PyTorch
SEED3_CONVERT = """--use-mcore-models --model-type GPT --load-model-type hf --save-model-type mg
 --target-tensor-parallel-size 4 --target-pipeline-parallel-size 2 --add-qkv-bias --load-dir /apps/hw/weights/Qwen2.5-7B/
 --tokenizer-model /apps/hw/weights/Qwen2.5-7B/tokenizer.json --model-type-hf llama2 --params-dtype bf16"""
SEED3_PREPROCESS = """--input /apps/hw/datasets/train-00000-of-00001-a09b74b3ef9c3b56.parquet
 --tokenizer-name-or-path /apps/hw/weights/Qwen2.5-7B/ --tokenizer-type PretrainedFromHF --workers 4
 --log-interval 1000"""
SEED3_TRAIN = """--tensor-model-parallel-size 4 --pipeline-model-parallel-size 2 --seq-length 4096 --micro-batch-size 1
 --global-batch-size 64 --use-mcore-models --disable-bias-linear --add-qkv-bias --group-query-attention
 --num-query-groups 4 --position-embedding-type rope --untie-embeddings-and-output-weights --bf16 --no-shared-storage"""


def test_seed003_qwen25_7b_pretrain_pytorch_two_nodes() -> None:
    plan = build_plan(load_job(JOBS / "qwen25-7b-alpaca-pretrain.yaml"), 2, master_addr="192.0.2.1", master_port=6000)
    assert_carries(flags(plan.stage("convert").args), SEED3_CONVERT)
    assert_carries(flags(plan.stage("preprocess").args), SEED3_PREPROCESS)
    train = flags(plan.stage("train").args)
    assert_carries(train, SEED3_TRAIN)
    assert train["--data-path"] == "/apps/hw/datasets/alpaca_text_document"
    assert "--finetune" not in train and "--ai-framework" not in train
    assert plan.stage("train").entry == "pretrain_gpt.py" and plan.stage("train").launcher == "torchrun"
    assert [plan.env(k)["NODE_RANK"] for k in (0, 1)] == ["0", "1"]  # same script, different NODE_RANK


# ---------------------------------------------------------------- seed 004: Qwen2.5-Coder-7B on NPUs 4-7
SEED4_CONVERT = """--use-mcore-models --model-type GPT --load-model-type hf --save-model-type mg
 --target-tensor-parallel-size 2 --target-pipeline-parallel-size 2 --add-qkv-bias --model-type-hf llama2
 --params-dtype bf16"""
SEED4_PREPROCESS = """--tokenizer-type PretrainedFromHF --json-keys instruction output --workers 4 --log-interval 1000"""


def test_seed004_qwen25_coder_7b_on_four_of_eight_npus() -> None:
    plan = build_plan(load_job(JOBS / "qwen25-coder-7b-evol-pretrain.yaml"), 1, master_addr="127.0.0.1",
                      master_port=6000)
    assert plan.env(0)["ASCEND_RT_VISIBLE_DEVICES"] == "4,5,6,7"
    assert plan.env(0)["NPUS_PER_NODE"] == "4" and plan.world_size == 4
    assert_carries(flags(plan.stage("convert").args), SEED4_CONVERT)
    assert_carries(flags(plan.stage("preprocess").args), SEED4_PREPROCESS)
    train = flags(plan.stage("train").args)
    assert train["--seq-length"] == "1638" and train["--tensor-model-parallel-size"] == "2"
    assert train["--pipeline-model-parallel-size"] == "2"
    assert train["--data-path"].endswith("/EvolInstruct-900_instruction_document")


@pytest.mark.parametrize("job", sorted(p.name for p in JOBS.glob("*.yaml")))
def test_every_shipped_job_plans_as_its_header_says(job: str) -> None:
    """Each job file's header gives the command to plan it; that command must succeed."""
    import re

    text = (JOBS / job).read_text()
    match = re.search(r"^# Run: runner (?:plan|launch) (\S+) --nodes (\d+)", text, re.M)
    assert match, f"{job}: the header should say how to run it ('# Run: runner plan jobs/{job} --nodes N')"
    assert match.group(1) == f"jobs/{job}"
    build_plan(load_job(JOBS / job), int(match.group(2)))


def test_sim_job_matches_the_simulator_tiny_model() -> None:
    """The plan's preset-vs-config.json check, against the model the simulator provisions."""
    from runner.standin.tiny_model import CONFIG

    plan = build_plan(load_job(JOBS / "sim-openr1-sft.yaml"), 2, hf_config=CONFIG)
    assert (plan.world_size, plan.tp, plan.pp, plan.dp) == (4, 2, 2, 1)
