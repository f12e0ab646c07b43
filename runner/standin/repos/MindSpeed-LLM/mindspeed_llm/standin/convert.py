"""Stand-in of MindSpeed-LLM 2.1.0 ``convert_ckpt.py`` (TEST DOUBLE, not MindSpeed-LLM).

- hf -> mg: reads ``config.json`` and ``*.safetensors`` from ``--load-dir`` and writes
  ``<save-dir>/iter_0000001/mp_rank_TT[_PPP]/model_optim_rng.pt`` for the target TP/PP plus
  ``latest_checkpointed_iteration.txt`` containing ``1``.
- mg -> hf: reads the latest iteration of ``--load-dir`` (any TP/PP), must target TP1/PP1,
  reads ``config.json`` from ``--save-dir`` and writes ``<save-dir>/mg2hf/`` (config + weights,
  no tokenizer files, like the real saver).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from . import ckpt
from .checks import check_model_parallel
from .cli import ArgParser, Opt, fail, known_flags
from .model import SCALE, ModelShape, hf_shapes, hf_sources, layers_per_stage, parse_layer_list, shard_specs
from .safetensors_io import read_file, write_file

MODEL_TYPE_HF = ("baichuan", "baichuan2", "llama2", "mixtral", "chatglm3", "gemma", "gemma2", "qwen3", "bloom",
                 "bloom_3b", "qwen", "internlm2", "deepseek2", "minicpm", "minicpm3", "minicpm-moe",
                 "deepseek2-lite", "qwen2-moe", "qwen3-moe", "phi3.5", "phi3.5-moe", "hunyuan", "glm4")

OPTS: dict[str, Opt] = {
    "--model-type": Opt("str", None, ("GPT", "BERT")),
    "--load-model-type": Opt("str", None, ("hf", "mg", "optim")),
    "--save-model-type": Opt("str", None, ("mg", "hf")),
    "--load-dir": Opt("str"),
    "--save-dir": Opt("str"),
    "--target-tensor-parallel-size": Opt("int", 1),
    "--target-pipeline-parallel-size": Opt("int", 1),
    "--target-expert-parallel-size": Opt("int", 1),
    "--num-layer-list": Opt("str"),
    "--num-layers-per-virtual-pipeline-stage": Opt("int"),
    "--tokenizer-model": Opt("str"),
    "--add-qkv-bias": Opt("bool"),
    "--params-dtype": Opt("str", "fp16"),
    "--model-type-hf": Opt("str", "llama2", MODEL_TYPE_HF),
    "--use-mcore-models": Opt("bool"),
    "--load-hf-from-config": Opt("bool"),
    "--make-vocab-size-divisible-by": Opt("int", 1),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    required = ["--model-type", "--load-dir", "--save-dir"]
    if "--load-model-type" in argv and argv[argv.index("--load-model-type") + 1:][:1] == ["hf"]:
        required.append("--tokenizer-model")  # loader_hf adds it with required=True
    parser = ArgParser("convert_ckpt.py", known_flags("convert_ckpt.py"), OPTS, required=required)
    args = parser.parse(argv)
    if args.load_model_type == "hf" and args.save_model_type == "mg":
        hf_to_mg(args)
    elif args.load_model_type == "mg" and args.save_model_type == "hf":
        mg_to_hf(args)
    else:
        fail("NotImplementedError", f"the simulator's stand-in converts hf->mg and mg->hf only, not "
             f"--load-model-type {args.load_model_type} --save-model-type {args.save_model_type}")
    return 0


def _read_config(directory: Path) -> dict[str, Any]:
    path = directory / "config.json"
    if not path.is_file():
        fail("OSError", f"{directory} does not appear to have a file named config.json.")
    return json.loads(path.read_text(encoding="utf-8"))


def _hf_weights(directory: Path) -> dict[str, np.ndarray]:
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        fail("OSError", f"Error no file named pytorch_model.bin, model.safetensors, tf_model.h5, model.ckpt.index "
             f"or flax_model.msgpack found in directory {directory}.")
    tensors: dict[str, np.ndarray] = {}
    for file in files:
        tensors.update(read_file(file))
    return tensors


def hf_to_mg(args: Any) -> None:
    load_dir, save_dir = Path(args.load_dir), Path(args.save_dir)
    config = _read_config(load_dir)
    shape = ModelShape.from_hf_config(config, add_qkv_bias=args.add_qkv_bias)
    tp, pp = args.target_tensor_parallel_size, args.target_pipeline_parallel_size
    layer_list = parse_layer_list(args.num_layer_list)
    if layer_list and args.num_layers_per_virtual_pipeline_stage:
        fail("ValueError", "--num-layer-list and --num-layers-per-virtual-pipeline-stage cannot be used together")
    check_model_parallel(shape.num_layers, shape.num_attention_heads, shape.num_query_groups, tp, pp, layer_list,
                         divisible_message="number of layers should be divisible by the pipeline parallel size")
    if not Path(args.tokenizer_model).exists():
        fail("OSError", f"tokenizer file {args.tokenizer_model} not found (--tokenizer-model)")
    weights = _hf_weights(load_dir)
    divisor = args.make_vocab_size_divisible_by * tp
    padded_vocab = -(-shape.vocab_size // divisor) * divisor
    shape = ModelShape(**{**shape.__dict__, "vocab_size": padded_vocab})
    per_stage = layers_per_stage(shape.num_layers, pp, layer_list)
    save_dir.mkdir(parents=True, exist_ok=True)
    for pp_rank in range(pp):
        first_layer = sum(per_stage[:pp_rank])
        for tp_rank in range(tp):
            model: dict[str, dict[str, Any]] = {}
            for name, shard_shape, split in shard_specs(shape, tp, pp, pp_rank, layer_list):
                layer = first_layer + int(name.split(".")[2]) if name.startswith("decoder.layers.") else None
                sources = hf_sources(name, layer)
                missing = [s for s in sources if s not in weights]
                if missing:
                    fail("KeyError", f"{missing[0]} is not in the HF weights of {load_dir}")
                flat = np.concatenate([weights[s].reshape(-1) for s in sources])
                numel = int(np.prod(shard_shape))
                if split:
                    flat = np.pad(flat, (0, max(0, numel * tp - flat.size)))
                    flat = flat[tp_rank * numel:(tp_rank + 1) * numel]
                model[name] = {"shape": list(shard_shape), "data": flat[::SCALE].astype(np.float32).tobytes()}
            payload = {
                "stand_in": "TEST DOUBLE checkpoint written by the simulator's convert_ckpt.py stand-in",
                "iteration": 1,
                "checkpoint_version": 3.0,
                "args": ckpt.checkpoint_args(shape, tp, pp, layer_list, args.params_dtype, consumed=0),
                "model": model,
            }
            ckpt.save(ckpt.checkpoint_file(save_dir, 1, tp_rank, pp_rank, pp), payload)
    ckpt.write_tracker(save_dir, 1)
    print(f"  successfully saved checkpoint from iteration {1:7d} to {save_dir}", flush=True)


def mg_to_hf(args: Any) -> None:
    tp_t, pp_t = args.target_tensor_parallel_size, args.target_pipeline_parallel_size
    if tp_t != 1 or pp_t != 1:
        fail("ValueError", "converting to Huggingface weights requires --target-tensor-parallel-size 1 and "
             f"--target-pipeline-parallel-size 1 (got {tp_t} and {pp_t})")
    load_dir, save_dir = Path(args.load_dir), Path(args.save_dir)
    iteration = ckpt.read_tracker(load_dir)
    if iteration is None:
        fail("FileNotFoundError", f"{load_dir / ckpt.TRACKER} not found: --load-dir is not a Megatron checkpoint")
    config = _read_config(save_dir)
    if not args.load_hf_from_config:
        _hf_weights(save_dir)  # the real saver loads the original model from --save-dir first
    first = sorted((load_dir / f"iter_{iteration:07d}").glob("mp_rank_*/" + ckpt.FILENAME))
    if not first:
        fail("FileNotFoundError", f"no mp_rank_*/{ckpt.FILENAME} under {load_dir / f'iter_{iteration:07d}'}")
    meta = ckpt.load(first[0])["args"]
    tp, pp = meta["tensor_model_parallel_size"], meta["pipeline_model_parallel_size"]
    shape = ModelShape(meta["num_layers"], meta["hidden_size"], meta["ffn_hidden_size"], meta["num_attention_heads"],
                       meta["num_query_groups"], meta["padded_vocab_size"], meta["add_qkv_bias"],
                       meta["untie_embeddings_and_output_weights"])
    per_stage = layers_per_stage(shape.num_layers, pp, meta.get("num_layer_list"))
    full: dict[str, np.ndarray] = {}
    for pp_rank in range(pp):
        shards = []
        for tp_rank in range(tp):
            path = ckpt.checkpoint_file(load_dir, iteration, tp_rank, pp_rank, pp)
            if not path.is_file():
                fail("FileNotFoundError", f"[Errno 2] No such file or directory: '{path}'")
            shards.append(ckpt.load(path)["model"])
        for name, shard_shape, split in shard_specs(shape, tp, pp, pp_rank, meta.get("num_layer_list")):
            numel = int(np.prod(shard_shape))
            parts = [np.repeat(np.frombuffer(s[name]["data"], dtype=np.float32), SCALE)[:numel] for s in shards]
            flat = np.concatenate(parts) if split else parts[0]
            layer = sum(per_stage[:pp_rank]) + int(name.split(".")[2]) if name.startswith("decoder.layers.") else None
            full[f"{name}@{layer}"] = flat
    true_vocab = int(config["vocab_size"])
    hf_shape = ModelShape(**{**shape.__dict__, "vocab_size": true_vocab})
    targets = hf_shapes(hf_shape)
    tensors: dict[str, np.ndarray] = {}
    for key, flat in full.items():
        name, layer_text = key.split("@")
        sources = hf_sources(name, None if layer_text == "None" else int(layer_text))
        offset = 0
        for source in sources:
            numel = int(np.prod(targets[source]))
            tensors[source] = flat[offset:offset + numel].reshape(targets[source])
            offset += numel
            if source in ("model.embed_tokens.weight", "lm_head.weight"):
                offset = flat.size  # vocab padding rows are dropped
    ordered = {name: tensors[name] for name in targets if name in tensors}
    out_dir = save_dir / "mg2hf"
    out_dir.mkdir(parents=True, exist_ok=True)
    write_file(out_dir / "model.safetensors", ordered)
    config_out = dict(config)
    config_out["torch_dtype"] = "bfloat16" if args.params_dtype == "bf16" else config.get("torch_dtype", "float16")
    (out_dir / "config.json").write_text(json.dumps(config_out, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    generation = save_dir / "generation_config.json"
    if generation.is_file():
        shutil.copyfile(generation, out_dir / "generation_config.json")
    print(f"saved Huggingface weights of iteration {iteration} (from TP{tp} PP{pp}) to {out_dir}", flush=True)
