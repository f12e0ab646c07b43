"""Cross-checks of Megatron core_r0.8.0 / MindSpeed-LLM 2.1.0, with their messages.

Where the real code has a bare ``assert`` the stand-in adds the values to the message; the
first words stay those of the real check so logs can be searched the same way.
"""

from __future__ import annotations

from typing import Any

from .cli import fail
from .model import parse_layer_list


def check_model_parallel(num_layers: int, heads: int, groups: int, tp: int, pp: int,
                         layer_list: list[int] | None, divisible_message: str) -> None:
    """Heads and query groups % TP (TransformerConfig), layers % PP or --num-layer-list."""
    if heads % tp != 0:
        fail("ValueError", f"num_attention_heads ({heads}) must be a multiple of tensor_model_parallel_size ({tp}).")
    if groups % tp != 0:
        fail("ValueError", f"num_query_groups ({groups}) must be a multiple of tensor_model_parallel_size ({tp}).")
    if layer_list:
        if pp <= 1:
            fail("AssertionError", "--num-layer-list needs --pipeline-model-parallel-size > 1")
        if len(layer_list) != pp:
            fail("AssertionError", "len(args.num_layer_list) != args.pipeline_model_parallel_size "
                 f"({len(layer_list)} != {pp})")
        if sum(layer_list) != num_layers:
            fail("AssertionError", f"Incorrect num_layer_list config since its sum({sum(layer_list)}) is unequal "
                 f"to total num layers({num_layers}).")
    elif num_layers % pp != 0:
        fail("AssertionError", f"{divisible_message} (num_layers {num_layers}, pipeline parallel size {pp}); "
             "pass --num-layer-list to split the layers unevenly")


def validate_training_args(args: Any, world_size: int) -> dict[str, int]:
    """Megatron ``validate_args`` plus the MindSpeed-LLM checks; returns tp, pp, cp, dp, gbs."""
    for name in ("num_layers", "hidden_size", "num_attention_heads", "max_position_embeddings"):
        if getattr(args, name) is None:
            fail("AssertionError", f"{name} argument is None")
    if args.seq_length is None:
        fail("AssertionError", "seq_length argument is None (pass --seq-length)")
    tp = min(args.tensor_model_parallel_size, world_size)
    if world_size % tp != 0:
        fail("AssertionError", f"world size ({world_size}) is not divisible by tensor model parallel size ({tp})")
    pp = min(args.pipeline_model_parallel_size, world_size // tp)
    cp = args.context_parallel_size
    if world_size % (tp * pp * cp) != 0:
        fail("AssertionError", f"world size ({world_size}) is not divisible by tensor parallel size ({tp}) times "
             f"pipeline parallel size ({pp}) times context parallel size ({cp})")
    dp = world_size // (tp * pp * cp)
    mbs = args.micro_batch_size
    gbs = args.global_batch_size if args.global_batch_size is not None else mbs * dp
    if gbs % (mbs * dp) != 0:
        fail("AssertionError", f"global batch size ({gbs}) is not divisible by micro batch size ({mbs}) times "
             f"data parallel size ({dp})")
    layer_list = parse_layer_list(args.num_layer_list)
    vpp = args.num_layers_per_virtual_pipeline_stage
    if layer_list and vpp:
        fail("AssertionError", "num-layer-list and num-layers-per-virtual-pipeline-stage cannot be used together")
    if vpp is not None:
        if pp <= 2:
            fail("AssertionError", "pipeline-model-parallel size should be greater than 2 with interleaved schedule")
        if args.num_layers % pp != 0:
            fail("AssertionError", "number of layers should be divisible by the pipeline parallel size")
        if (args.num_layers // pp) % vpp != 0:
            fail("AssertionError", "number of layers per pipeline stage must be divisible number of layers per "
                 "virtual pipeline stage")
    if args.max_position_embeddings < args.seq_length:
        fail("AssertionError", f"max_position_embeddings ({args.max_position_embeddings}) must be >= seq_length "
             f"({args.seq_length})")
    if args.hidden_size % args.num_attention_heads != 0:
        fail("AssertionError", f"hidden_size ({args.hidden_size}) is not divisible by num_attention_heads "
             f"({args.num_attention_heads})")
    if cp > 1 and args.seq_length % (2 * cp) != 0:
        fail("AssertionError", f"seq-length should be a multiple of 2 * context-parallel-size ({args.seq_length}, "
             f"{cp})")
    if args.min_lr > args.lr:
        fail("AssertionError", f"min_lr ({args.min_lr}) must be <= lr ({args.lr})")
    if args.fp16 and args.bf16:
        fail("AssertionError", "--fp16 and --bf16 cannot both be set")
    if args.overlap_param_gather:
        if not args.use_distributed_optimizer:
            fail("AssertionError", "--overlap-param-gather only supported with distributed optimizer")
        if not args.overlap_grad_reduce:
            fail("AssertionError", "Must use --overlap-param-gather with --overlap-grad-reduce")
    if args.neat_pack and not args.reset_position_ids:
        fail("AssertionError", "Require set `--reset-position-ids` when `--neat-pack` is set.")
    if args.reuse_fp32_param and not args.bf16:
        fail("AssertionError", "--reuse-fp32-param only support for `bf16`")
    groups = args.num_query_groups if args.group_query_attention else args.num_attention_heads
    check_model_parallel(args.num_layers, args.num_attention_heads, groups, tp, pp, layer_list,
                         divisible_message="number of layers should be divisible by the pipeline parallel size")
    return {"tp": tp, "pp": pp, "cp": cp, "dp": dp, "gbs": gbs, "mbs": mbs}
