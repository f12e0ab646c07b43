"""The simulator's tiny Qwen2.5-family model directory, made with a fixed seed.

``config.json`` has the Qwen2 architecture with a tiny shape (4 layers, hidden 128, 4 heads,
2 KV heads, vocabulary 2048) that the simulated job splits TP2 x PP2 over 2 nodes x 2 devices.
The tokenizer is byte-level (byte tokens ``<0xNN>`` plus the Qwen special tokens); the
weights are a real safetensors file of random BF16 values with the HF Qwen2 tensor names.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from runner.standin.manifest import write_tree

SEED = 257
LAYERS, HIDDEN, FFN, HEADS, KV_HEADS, VOCAB, MAX_POSITIONS = 4, 128, 256, 4, 2, 2048, 4096
CONFIG: dict[str, object] = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "num_hidden_layers": LAYERS,
    "hidden_size": HIDDEN,
    "intermediate_size": FFN,
    "num_attention_heads": HEADS,
    "num_key_value_heads": KV_HEADS,
    "vocab_size": VOCAB,
    "max_position_embeddings": MAX_POSITIONS,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "hidden_act": "silu",
    "attention_dropout": 0.0,
    "initializer_range": 0.02,
    "bos_token_id": 2045,
    "eos_token_id": 2045,
    "use_cache": True,
    "use_sliding_window": False,
    "sliding_window": 4096,
    "max_window_layers": 4,
    "transformers_version": "4.47.0",
}
SPECIAL_TOKENS = {"<|endoftext|>": 2045, "<|im_start|>": 2046, "<|im_end|>": 2047}


def _tensor_shapes() -> dict[str, tuple[int, ...]]:
    h, f, heads, kv, vocab, layers = HIDDEN, FFN, HEADS, KV_HEADS, VOCAB, LAYERS
    head_dim = h // heads
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (vocab, h)}
    for i in range(layers):
        p = f"model.layers.{i}."
        shapes[p + "input_layernorm.weight"] = (h,)
        shapes[p + "self_attn.q_proj.weight"] = (heads * head_dim, h)
        shapes[p + "self_attn.q_proj.bias"] = (heads * head_dim,)
        shapes[p + "self_attn.k_proj.weight"] = (kv * head_dim, h)
        shapes[p + "self_attn.k_proj.bias"] = (kv * head_dim,)
        shapes[p + "self_attn.v_proj.weight"] = (kv * head_dim, h)
        shapes[p + "self_attn.v_proj.bias"] = (kv * head_dim,)
        shapes[p + "self_attn.o_proj.weight"] = (h, heads * head_dim)
        shapes[p + "post_attention_layernorm.weight"] = (h,)
        shapes[p + "mlp.gate_proj.weight"] = (f, h)
        shapes[p + "mlp.up_proj.weight"] = (f, h)
        shapes[p + "mlp.down_proj.weight"] = (h, f)
    shapes["model.norm.weight"] = (h,)
    shapes["lm_head.weight"] = (vocab, h)
    return shapes


def _safetensors(tensors: dict[str, np.ndarray]) -> bytes:
    """BF16 safetensors bytes (upper half of each float32), tensors in the given order."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    blobs, offset = [], 0
    for name, array in tensors.items():
        bits = np.ascontiguousarray(array, dtype=np.float32).reshape(-1).view(np.uint32)
        blob = (bits >> 16).astype("<u2").tobytes()
        header[name] = {"dtype": "BF16", "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + b"".join(blobs)


def _weights() -> bytes:
    rng = np.random.default_rng(SEED)
    tensors = {}
    for name, shape in _tensor_shapes().items():
        if name.endswith("norm.weight"):
            tensors[name] = np.ones(shape, dtype=np.float32)
        else:
            tensors[name] = rng.normal(0.0, 0.02, shape).astype(np.float32)
    return _safetensors(tensors)


def _tokenizer() -> dict[str, object]:
    vocab = {f"<0x{b:02X}>": b for b in range(256)}
    added = [{"id": tid, "content": text, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for text, tid in SPECIAL_TOKENS.items()]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                          "use_regex": False},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<|endoftext|>"},
    }


def model_files() -> dict[str, bytes]:
    """Every file of the tiny model directory."""
    def dump(obj: object) -> bytes:
        return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8")

    tokenizer_config = {
        "tokenizer_class": "Qwen2Tokenizer",
        "model_max_length": MAX_POSITIONS,
        "bos_token": None,
        "eos_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "split_special_tokens": False,
        "chat_template": "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
                         "{{ message['content'] }}<|im_end|>\n{% endfor %}"
                         "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
        "comment": "byte-level tokenizer of the ascend-runner simulator's tiny model (not Qwen's BPE)",
    }
    generation_config = {"bos_token_id": 2045, "eos_token_id": 2045, "do_sample": False, "max_new_tokens": 64,
                         "transformers_version": "4.47.0"}
    return {
        "config.json": dump(CONFIG),
        "generation_config.json": dump(generation_config),
        "tokenizer.json": dump(_tokenizer()),
        "tokenizer_config.json": dump(tokenizer_config),
        "model.safetensors": _weights(),
    }


def make_tiny_model(dest: Path) -> dict[str, str]:
    """Write the model directory (only changed files) and ``<dest>.sha256``; returns {path: sha256}."""
    return write_tree(Path(dest), model_files())
