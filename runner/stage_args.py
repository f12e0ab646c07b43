"""The MindSpeed-LLM command line of each stage, decided from the job in one place.

Every flag here is one MindSpeed-LLM 2.1.0, MindSpeed or Megatron-LM core_r0.8.0 defines
(tests check them against runner/data/mindspeed_flags.tsv). TP/PP, the prompt type and the
sequence length each come from one key of the job, so the stages cannot drift apart.
"""

from __future__ import annotations

import json
import posixpath

from runner.spec.job import Job
from runner.spec.mindspeed import INSTRUCTION_HANDLERS
from runner.spec.presets import ModelArch

Args = list[str]

# Tokenizer and config files the export copies next to the converted weights: convert_ckpt.py
# writes weights and config only.
HF_SIDE_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                 "vocab.json", "merges.txt", "special_tokens_map.json")


def _fmt(value: float | int) -> str:
    """Numbers as a person writes them in a script: 4096, 0.01, 1.25e-06 -> 1.25e-6."""
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e15):
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exp = text.split("e")
        text = f"{mantissa}e{int(exp)}"
    return text


def data_path(job: Job) -> str:
    """What training reads: the prefix for instruction data, `{prefix}_{key}_document` for pretraining."""
    assert job.data is not None
    if job.data.handler in INSTRUCTION_HANDLERS:
        return job.data.output_prefix
    key = (job.data.json_keys or ["text"])[0]
    return f"{job.data.output_prefix}_{key}_document"


def preprocess_outputs(job: Job) -> list[str]:
    assert job.data is not None
    prefix = job.data.output_prefix
    if job.data.handler in INSTRUCTION_HANDLERS:
        return [f"{prefix}_packed_{k}_document.{ext}" for k in ("input_ids", "attention_mask", "labels")
                for ext in ("bin", "idx")]
    return [f"{prefix}_{k}_document.{ext}" for k in (job.data.json_keys or ["text"]) for ext in ("bin", "idx")]


def preprocess_args(job: Job) -> Args:
    assert job.data is not None and job.model is not None
    d = job.data
    args = ["--input", d.input, "--tokenizer-name-or-path", job.model.hf_dir, "--output-prefix", d.output_prefix,
            "--workers", str(d.workers), "--log-interval", str(d.log_interval),
            "--tokenizer-type", "PretrainedFromHF", "--handler-name", d.handler]
    if d.prompt_type:
        args += ["--prompt-type", d.prompt_type]
    if d.map_keys:
        args += ["--map-keys", json.dumps(d.map_keys, separators=(", ", ": "))]
    if d.json_keys:
        args += ["--json-keys", *d.json_keys]
    if d.pack:
        args += ["--pack"] + (["--neat-pack"] if d.neat_pack else [])
    seq = preprocess_seq_length(job)
    if seq is not None:
        args += ["--seq-length", str(seq)]
    if d.append_eod:
        args.append("--append-eod")
    if d.overwrite_cache:
        args.append("--overwrite-cache")
    return args


def preprocess_seq_length(job: Job) -> int | None:
    assert job.data is not None
    if job.data.seq_length is not None:
        return job.data.seq_length
    if job.data.pack and job.train is not None:
        return job.train.seq_length
    return None


def tp_pp_args(job: Job, prefix: str) -> Args:
    """`--target-...` flags for convert_ckpt.py or the `...-model-parallel-size` ones for training."""
    p = job.parallel
    if prefix == "target":
        args = ["--target-tensor-parallel-size", str(p.tp), "--target-pipeline-parallel-size", str(p.pp)]
    else:
        args = ["--tensor-model-parallel-size", str(p.tp), "--pipeline-model-parallel-size", str(p.pp)]
    if p.num_layer_list:
        args += ["--num-layer-list", ",".join(map(str, p.num_layer_list))]
    return args


def convert_args(job: Job, arch: ModelArch) -> Args:
    assert job.model is not None and job.checkpoint is not None
    args = ["--use-mcore-models", "--model-type", "GPT", "--load-model-type", "hf", "--save-model-type", "mg",
            *tp_pp_args(job, "target")]
    if arch.qkv_bias:
        args.append("--add-qkv-bias")
    args += ["--load-dir", job.model.hf_dir, "--save-dir", job.checkpoint.mcore_dir,
             "--tokenizer-model", posixpath.join(job.model.hf_dir, "tokenizer.json"),
             "--model-type-hf", "llama2", "--params-dtype", job.checkpoint.params_dtype]
    return args


def export_source(job: Job) -> str:
    assert job.checkpoint is not None
    return job.checkpoint.save_dir if "train" in job.stage_names else job.checkpoint.mcore_dir


def export_args(job: Job, arch: ModelArch) -> Args:
    """mcore -> HF, always TP1/PP1, into a new directory that holds only the original's config."""
    assert job.checkpoint is not None
    args = ["--use-mcore-models", "--model-type", "GPT", "--model-type-hf", "llama2",
            "--load-model-type", "mg", "--save-model-type", "hf",
            "--target-tensor-parallel-size", "1", "--target-pipeline-parallel-size", "1"]
    if arch.qkv_bias:
        args.append("--add-qkv-bias")
    assert job.checkpoint.export_dir is not None
    args += ["--load-dir", export_source(job), "--save-dir", job.checkpoint.export_dir,
             "--load-hf-from-config", "--params-dtype", job.checkpoint.params_dtype]
    return args


def model_args(job: Job, arch: ModelArch, seq_length: int) -> Args:
    """Architecture flags shared by training and generation."""
    args = ["--use-mcore-models", *tp_pp_args(job, "model")]
    if job.parallel.sequence_parallel:
        args.append("--sequence-parallel")
    args += ["--num-layers", str(arch.num_layers), "--hidden-size", str(arch.hidden_size),
             "--ffn-hidden-size", str(arch.ffn_hidden_size), "--num-attention-heads", str(arch.num_attention_heads),
             "--max-position-embeddings", str(seq_length), "--seq-length", str(seq_length),
             "--disable-bias-linear"]
    if arch.qkv_bias:
        args.append("--add-qkv-bias")
    args += ["--group-query-attention", "--num-query-groups", str(arch.num_query_groups)]
    return args


def _shape_tail(job: Job, arch: ModelArch, fused: bool) -> Args:
    args = ["--swiglu"] + (["--use-fused-swiglu"] if fused else [])
    args += ["--normalization", "RMSNorm", "--norm-epsilon", _fmt(arch.norm_epsilon)]
    args += ["--use-fused-rmsnorm"] if fused else []
    args += ["--position-embedding-type", "rope", "--rotary-base", _fmt(arch.rotary_base)]
    args += ["--use-fused-rotary-pos-emb"] if fused else []
    if arch.untie_embeddings:
        args.append("--untie-embeddings-and-output-weights")
    return args


def train_args(job: Job, arch: ModelArch, *, shared_storage: bool, resume: bool) -> Args:
    assert job.train is not None and job.model is not None and job.checkpoint is not None and job.data is not None
    t = job.train
    args = model_args(job, arch, t.seq_length)
    if t.use_flash_attn:
        args.append("--use-flash-attn")
    args += _shape_tail(job, arch, t.fused_kernels)
    args += ["--micro-batch-size", str(t.micro_batch), "--global-batch-size", str(t.global_batch),
             "--make-vocab-size-divisible-by", "1", "--padded-vocab-size", str(arch.padded_vocab_size),
             "--tokenizer-type", "PretrainedFromHF", "--tokenizer-name-or-path", job.model.hf_dir,
             "--attention-dropout", "0.0", "--hidden-dropout", "0.0", "--train-iters", str(t.iters),
             "--lr", _fmt(t.lr), "--lr-decay-style", t.lr_decay_style, "--min-lr", _fmt(t.min_lr),
             "--lr-warmup-fraction", _fmt(t.lr_warmup_fraction), "--init-method-std", _fmt(t.init_method_std),
             "--weight-decay", _fmt(t.weight_decay), "--clip-grad", _fmt(t.clip_grad),
             "--adam-beta1", _fmt(t.adam_beta1), "--adam-beta2", _fmt(t.adam_beta2),
             "--initial-loss-scale", _fmt(t.initial_loss_scale),
             "--no-gradient-accumulation-fusion", "--no-masked-softmax-fusion", "--attention-softmax-in-fp32",
             f"--{t.precision}"]
    if t.distributed_optimizer:
        args += ["--use-distributed-optimizer", "--overlap-grad-reduce"]
    if t.recompute == "full":
        args += ["--recompute-granularity", "full", "--recompute-method", "block",
                 "--recompute-num-layers", str(max(layers_per_stage(job, arch)))]
    elif t.recompute == "selective":
        args.append("--recompute-activations")
    args += ["--data-path", data_path(job), "--split", t.split]
    if not shared_storage:
        args.append("--no-shared-storage")
    args += ["--no-load-optim", "--no-load-rng", "--no-save-optim", "--no-save-rng", "--seed", str(t.seed)]
    args += ["--log-interval", str(t.log_interval), "--save-interval", str(t.save_interval or t.iters),
             "--eval-interval", str(t.eval_interval or t.iters), "--eval-iters", str(t.eval_iters),
             "--log-throughput"]
    if t.kind == "sft":
        # Resuming loads the run's own checkpoint with its iteration; --finetune would reset it to 0.
        args += ([] if resume else ["--finetune"]) + ["--stage", "sft", "--is-instruction-dataset"]
        if variable_seq_lengths(job):
            args.append("--variable-seq-lengths")
        args.append("--tokenizer-not-use-fast")
        if job.data.pack:
            args.append("--reset-position-ids")
            if job.data.neat_pack:
                args.append("--neat-pack")
    if job.data.prompt_type:
        args += ["--prompt-type", job.data.prompt_type]
    args += list(t.extra_args)
    if job.backend == "mindspore":
        args += ["--ai-framework", "mindspore"]
    load = job.checkpoint.save_dir if resume else job.checkpoint.mcore_dir
    args += ["--load", load, "--save", job.checkpoint.save_dir, "--distributed-backend", "nccl"]
    return args


def variable_seq_lengths(job: Job) -> bool:
    assert job.train is not None and job.data is not None
    if job.train.variable_seq_lengths is not None:
        return job.train.variable_seq_lengths
    return job.train.kind == "sft" and not job.data.pack


def generate_args(job: Job, arch: ModelArch, load_dir: str) -> Args:
    assert job.train is not None and job.model is not None
    g = job.generate
    args = ["--use-mcore-models", "--input-layernorm-in-fp32", *model_args(job, arch, job.train.seq_length)[1:]]
    args += _shape_tail(job, arch, fused=False)
    args += ["--make-vocab-size-divisible-by", "1", "--padded-vocab-size", str(arch.padded_vocab_size),
             "--micro-batch-size", "1", "--max-new-tokens", str(g.max_new_tokens),
             "--tokenizer-type", "PretrainedFromHF", "--tokenizer-name-or-path", job.model.hf_dir,
             "--tokenizer-not-use-fast", "--hidden-dropout", "0", "--attention-dropout", "0",
             "--no-gradient-accumulation-fusion", "--attention-softmax-in-fp32", "--seed", str(g.seed)]
    if g.task:
        args += ["--task", g.task]
    if job.data is not None and job.data.prompt_type:
        args += ["--prompt-type", job.data.prompt_type]
    if job.backend == "mindspore":
        args += ["--ai-framework", "mindspore"]
    args += ["--load", load_dir, "--exit-on-missing-checkpoint"]
    return args


def layers_per_stage(job: Job, arch: ModelArch) -> list[int]:
    if job.parallel.num_layer_list:
        return list(job.parallel.num_layer_list)
    return [arch.num_layers // job.parallel.pp] * job.parallel.pp


def checkpoint_files(root: str, iteration: int, tp: int, pp: int) -> list[str]:
    """The mcore layout Megatron core_r0.8.0 writes: mp_rank_TT (PP 1) or mp_rank_TT_PPP."""
    it = f"iter_{iteration:07d}"
    names = [f"mp_rank_{t:02d}" if pp == 1 else f"mp_rank_{t:02d}_{p:03d}" for p in range(pp) for t in range(tp)]
    return [posixpath.join(root, it, name, "model_optim_rng.pt") for name in names]
