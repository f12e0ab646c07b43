"""Megatron checkpoint layout: ``iter_XXXXXXX/mp_rank_TT[_PPP]/model_optim_rng.pt`` + tracker.

The file content is a pickle of plain Python values (no torch), written by the stand-in
only: ``{"iteration", "args", "model": {name: {"shape", "data"}}}`` where ``data`` is the
scaled-down float32 payload (see ``model.SCALE``).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

from .model import ModelShape

TRACKER = "latest_checkpointed_iteration.txt"
FILENAME = "model_optim_rng.pt"


def rank_dir(tp_rank: int, pp_rank: int, pp_size: int) -> str:
    if pp_size == 1:
        return f"mp_rank_{tp_rank:02d}"
    return f"mp_rank_{tp_rank:02d}_{pp_rank:03d}"


def checkpoint_file(root: str | Path, iteration: int, tp_rank: int, pp_rank: int, pp_size: int) -> Path:
    return Path(root) / f"iter_{iteration:07d}" / rank_dir(tp_rank, pp_rank, pp_size) / FILENAME


def read_tracker(root: str | Path) -> int | None:
    """The iteration in ``latest_checkpointed_iteration.txt``, or None if there is none."""
    path = Path(root) / TRACKER
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8").strip()
    if text == "release":
        return 0
    try:
        return int(text)
    except ValueError:
        raise SystemExit(f"ERROR: Invalid metadata file {path}. Exiting") from None


def write_tracker(root: str | Path, iteration: int) -> None:
    path = Path(root) / TRACKER
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{iteration}", encoding="utf-8")
    os.replace(tmp, path)


def checkpoint_args(shape: ModelShape, tp: int, pp: int, layer_list: list[int] | None, params_dtype: str,
                    consumed: int) -> dict[str, Any]:
    """The ``args`` every checkpoint carries (conversion and training alike): what a later
    conversion or a resumed training reads back to rebuild the shards."""
    return {
        "tensor_model_parallel_size": tp,
        "pipeline_model_parallel_size": pp,
        "num_layer_list": layer_list,
        "num_layers": shape.num_layers,
        "hidden_size": shape.hidden_size,
        "ffn_hidden_size": shape.ffn_hidden_size,
        "num_attention_heads": shape.num_attention_heads,
        "num_query_groups": shape.num_query_groups,
        "padded_vocab_size": shape.vocab_size,
        "add_qkv_bias": shape.add_qkv_bias,
        "untie_embeddings_and_output_weights": shape.untie_embeddings,
        "params_dtype": params_dtype,
        "consumed_train_samples": consumed,
    }


def save(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as out:
        pickle.dump(payload, out, protocol=4)
    os.replace(tmp, path)


def load(path: Path) -> dict[str, Any]:
    with open(path, "rb") as src:
        return pickle.load(src)
