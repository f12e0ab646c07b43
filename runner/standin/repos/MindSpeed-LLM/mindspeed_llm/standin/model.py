"""Model shape, tensor names per TP/PP shard, and the HF <-> mcore name mapping.

Tensor names and shard shapes follow Megatron core GPT models (``decoder.layers.N....``).
The stand-in stores each tensor scaled down by ``SCALE`` (one float32 per ``SCALE``
elements), so checkpoint sizes follow the model shape and TP/PP at 1/SCALE of the real size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SCALE = 64


@dataclass(frozen=True)
class ModelShape:
    num_layers: int
    hidden_size: int
    ffn_hidden_size: int
    num_attention_heads: int
    num_query_groups: int
    vocab_size: int
    add_qkv_bias: bool = True
    untie_embeddings: bool = True
    swiglu: bool = True

    @property
    def kv_channels(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_hf_config(cls, config: dict, add_qkv_bias: bool) -> ModelShape:
        heads = int(config["num_attention_heads"])
        return cls(
            num_layers=int(config["num_hidden_layers"]),
            hidden_size=int(config["hidden_size"]),
            ffn_hidden_size=int(config["intermediate_size"]),
            num_attention_heads=heads,
            num_query_groups=int(config.get("num_key_value_heads", heads)),
            vocab_size=int(config["vocab_size"]),
            add_qkv_bias=add_qkv_bias,
            untie_embeddings=not bool(config.get("tie_word_embeddings", False)),
        )


def stored_len(numel: int) -> int:
    return math.ceil(numel / SCALE)


def parse_layer_list(text: str | None) -> list[int] | None:
    """``--num-layer-list 3,5`` -> [3, 5]; None when the flag is not given."""
    return [int(x) for x in text.split(",")] if text else None


def layers_per_stage(num_layers: int, pp: int, layer_list: list[int] | None) -> list[int]:
    if layer_list:
        return list(layer_list)
    return [num_layers // pp] * pp


def shard_specs(shape: ModelShape, tp: int, pp: int, pp_rank: int,
                layer_list: list[int] | None = None) -> list[tuple[str, tuple[int, ...], bool]]:
    """(mcore name, shard shape, split across TP) of every tensor one (tp, pp) rank holds."""
    h, f, kv = shape.hidden_size, shape.ffn_hidden_size, shape.kv_channels
    qkv_rows = (shape.num_attention_heads + 2 * shape.num_query_groups) * kv
    fc1_rows = 2 * f if shape.swiglu else f
    specs: list[tuple[str, tuple[int, ...], bool]] = []
    if pp_rank == 0:
        specs.append(("embedding.word_embeddings.weight", (shape.vocab_size // tp, h), True))
    for i in range(layers_per_stage(shape.num_layers, pp, layer_list)[pp_rank]):
        p = f"decoder.layers.{i}."
        specs.append((p + "self_attention.linear_qkv.layer_norm_weight", (h,), False))
        specs.append((p + "self_attention.linear_qkv.weight", (qkv_rows // tp, h), True))
        if shape.add_qkv_bias:
            specs.append((p + "self_attention.linear_qkv.bias", (qkv_rows // tp,), True))
        specs.append((p + "self_attention.linear_proj.weight", (h, shape.num_attention_heads * kv // tp), True))
        specs.append((p + "mlp.linear_fc1.layer_norm_weight", (h,), False))
        specs.append((p + "mlp.linear_fc1.weight", (fc1_rows // tp, h), True))
        specs.append((p + "mlp.linear_fc2.weight", (h, f // tp), True))
    if pp_rank == pp - 1:
        specs.append(("decoder.final_layernorm.weight", (h,), False))
        if shape.untie_embeddings:
            specs.append(("output_layer.weight", (shape.vocab_size // tp, h), True))
    return specs


def hf_sources(mcore_name: str, global_layer: int | None) -> list[str]:
    """HF tensor names whose concatenation is the (unsharded) mcore tensor."""
    fixed = {
        "embedding.word_embeddings.weight": ["model.embed_tokens.weight"],
        "decoder.final_layernorm.weight": ["model.norm.weight"],
        "output_layer.weight": ["lm_head.weight"],
    }
    if mcore_name in fixed:
        return fixed[mcore_name]
    p = f"model.layers.{global_layer}."
    suffix = mcore_name.split(".", 3)[3]
    per_layer = {
        "self_attention.linear_qkv.layer_norm_weight": ["input_layernorm.weight"],
        "self_attention.linear_qkv.weight": ["self_attn.q_proj.weight", "self_attn.k_proj.weight",
                                             "self_attn.v_proj.weight"],
        "self_attention.linear_qkv.bias": ["self_attn.q_proj.bias", "self_attn.k_proj.bias",
                                           "self_attn.v_proj.bias"],
        "self_attention.linear_proj.weight": ["self_attn.o_proj.weight"],
        "mlp.linear_fc1.layer_norm_weight": ["post_attention_layernorm.weight"],
        "mlp.linear_fc1.weight": ["mlp.gate_proj.weight", "mlp.up_proj.weight"],
        "mlp.linear_fc2.weight": ["mlp.down_proj.weight"],
    }
    return [p + s for s in per_layer[suffix]]


def hf_shapes(shape: ModelShape) -> dict[str, tuple[int, ...]]:
    """Every tensor of the HF Qwen2 model, in file order."""
    h, f, kv = shape.hidden_size, shape.ffn_hidden_size, shape.kv_channels
    q, k = shape.num_attention_heads * kv, shape.num_query_groups * kv
    out: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (shape.vocab_size, h)}
    for i in range(shape.num_layers):
        p = f"model.layers.{i}."
        out[p + "input_layernorm.weight"] = (h,)
        out[p + "self_attn.q_proj.weight"] = (q, h)
        out[p + "self_attn.k_proj.weight"] = (k, h)
        out[p + "self_attn.v_proj.weight"] = (k, h)
        if shape.add_qkv_bias:
            out[p + "self_attn.q_proj.bias"] = (q,)
            out[p + "self_attn.k_proj.bias"] = (k,)
            out[p + "self_attn.v_proj.bias"] = (k,)
        out[p + "self_attn.o_proj.weight"] = (h, q)
        out[p + "post_attention_layernorm.weight"] = (h,)
        out[p + "mlp.gate_proj.weight"] = (f, h)
        out[p + "mlp.up_proj.weight"] = (f, h)
        out[p + "mlp.down_proj.weight"] = (h, f)
    out["model.norm.weight"] = (h,)
    if shape.untie_embeddings:
        out["lm_head.weight"] = (shape.vocab_size, h)
    return out
