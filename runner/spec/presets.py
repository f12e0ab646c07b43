"""Model architecture presets.

Values are those of each model's own Hugging Face `config.json` (rope theta and max positions
included; the MindSpeed-LLM example scripts disagree with them in places, e.g. they give
Qwen2.5-Math-7B a rotary base of 1e6 where its config says 1e4). When the job's `hf_dir` holds a
`config.json`, the plan compares it with the preset and reports every difference.
"""

from __future__ import annotations

from pydantic import Field

from runner.spec.base import SpecModel


class ModelArch(SpecModel):
    """The architecture arguments MindSpeed-LLM needs on its command line."""

    num_layers: int = Field(gt=0, description="Transformer layers (HF `num_hidden_layers`).")
    hidden_size: int = Field(gt=0, description="Hidden size (HF `hidden_size`).")
    ffn_hidden_size: int = Field(gt=0, description="MLP size (HF `intermediate_size`).")
    num_attention_heads: int = Field(gt=0, description="Attention heads (HF `num_attention_heads`).")
    num_query_groups: int = Field(gt=0, description="KV heads for GQA (HF `num_key_value_heads`).")
    vocab_size: int = Field(gt=0, description="Tokenizer vocabulary (HF `vocab_size`).")
    padded_vocab_size: int = Field(gt=0, description="Embedding rows, `--padded-vocab-size`.")
    rotary_base: float = Field(gt=0, description="RoPE theta (HF `rope_theta`).")
    max_position_embeddings: int = Field(gt=0, description="Longest sequence (HF `max_position_embeddings`).")
    norm_epsilon: float = Field(default=1e-6, gt=0, description="RMSNorm epsilon (HF `rms_norm_eps`).")
    untie_embeddings: bool = Field(description="Separate output layer (HF `tie_word_embeddings: false`).")
    qkv_bias: bool = Field(default=True, description="Q/K/V projections carry a bias (all Qwen2.5).")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def param_count(self) -> int:
        """Parameters of the whole model (weights and biases)."""
        h, kv = self.hidden_size, self.num_query_groups * self.head_dim
        attn = h * h + 2 * h * kv + h * h + (h + 2 * kv if self.qkv_bias else 0)
        mlp = 3 * h * self.ffn_hidden_size
        layer = attn + mlp + 2 * h
        emb = self.padded_vocab_size * h
        return self.num_layers * layer + emb * (2 if self.untie_embeddings else 1) + h


# HF config.json key -> ModelArch field, for the cross-check against `hf_dir`.
HF_CONFIG_KEYS: dict[str, str] = {
    "num_hidden_layers": "num_layers",
    "hidden_size": "hidden_size",
    "intermediate_size": "ffn_hidden_size",
    "num_attention_heads": "num_attention_heads",
    "num_key_value_heads": "num_query_groups",
    "vocab_size": "padded_vocab_size",
    "rope_theta": "rotary_base",
    "max_position_embeddings": "max_position_embeddings",
    "rms_norm_eps": "norm_epsilon",
}


def _qwen(layers: int, hidden: int, ffn: int, heads: int, groups: int, vocab: int, rope: float,
          max_pos: int, untie: bool) -> ModelArch:
    return ModelArch(num_layers=layers, hidden_size=hidden, ffn_hidden_size=ffn, num_attention_heads=heads,
                     num_query_groups=groups, vocab_size=vocab, padded_vocab_size=vocab, rotary_base=rope,
                     max_position_embeddings=max_pos, untie_embeddings=untie)


PRESETS: dict[str, ModelArch] = {
    "qwen2.5-0.5b": _qwen(24, 896, 4864, 14, 2, 151936, 1e6, 32768, untie=False),
    "qwen2.5-1.5b": _qwen(28, 1536, 8960, 12, 2, 151936, 1e6, 131072, untie=False),
    "qwen2.5-3b": _qwen(36, 2048, 11008, 16, 2, 151936, 1e6, 32768, untie=False),
    "qwen2.5-7b": _qwen(28, 3584, 18944, 28, 4, 152064, 1e6, 131072, untie=True),
    "qwen2.5-14b": _qwen(48, 5120, 13824, 40, 8, 152064, 1e6, 131072, untie=True),
    "qwen2.5-32b": _qwen(64, 5120, 27648, 40, 8, 152064, 1e6, 131072, untie=True),
    "qwen2.5-72b": _qwen(80, 8192, 29568, 64, 8, 152064, 1e6, 131072, untie=True),
    "qwen2.5-math-7b": _qwen(28, 3584, 18944, 28, 4, 152064, 1e4, 4096, untie=True),
    "qwen2.5-coder-7b": _qwen(28, 3584, 18944, 28, 4, 152064, 1e6, 32768, untie=True),
    "deepseek-r1-distill-qwen-7b": _qwen(28, 3584, 18944, 28, 4, 152064, 1e4, 131072, untie=True),
}
