"""Stand-in of ``posttrain_gpt.py`` / ``pretrain_gpt.py`` / ``inference.py`` (TEST DOUBLE).

Accepts exactly the flags of MindSpeed-LLM 2.1.0 + MindSpeed + Megatron core_r0.8.0, applies
their cross-checks, joins the msrun cluster (MindSpore on CPU), and trains a scaled-down
weight vector per (TP, PP) rank: every iteration each rank computes a squared error against
targets taken from its data-parallel share of the global batch, the errors are all-reduced
over every worker, and the last rank prints a Megatron-format iteration line. Checkpoints
use the Megatron layout under ``--save`` and are loaded from ``--load``; with ``--finetune``
only the weights are taken and the iteration starts at 0, without it training resumes at
the tracker's iteration with the same data order, so a resumed run prints the same losses.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from . import ckpt
from .checks import validate_training_args
from .cli import ArgParser, Opt, fail, known_flags
from .comm import LocalComm, MindSporeComm, init, world_size_from_env
from .indexed import IndexedDataset
from .model import ModelShape, parse_layer_list, shard_specs, stored_len

TRAIN_PROMPT_TYPES = ("default", "empty", "trl", "chatglm2", "chatglm3", "chatglm3_system", "glm4", "chatml",
                      "chatml_de", "qwen", "qwen_r1", "qwen_math_r1", "llama3", "llama2", "mistral", "mixtral",
                      "gemma", "alpaca", "deepseek2", "deepseek2-lite", "minicpm3", "qwen3", "cpm", "baichuan2",
                      "deepseek3", "intern2", "hunyuan")

OPTS: dict[str, Opt] = {
    "--tensor-model-parallel-size": Opt("int", 1),
    "--pipeline-model-parallel-size": Opt("int", 1),
    "--context-parallel-size": Opt("int", 1),
    "--num-layer-list": Opt("str"),
    "--num-layers-per-virtual-pipeline-stage": Opt("int"),
    "--num-layers": Opt("int"),
    "--hidden-size": Opt("int"),
    "--ffn-hidden-size": Opt("int"),
    "--num-attention-heads": Opt("int"),
    "--group-query-attention": Opt("bool"),
    "--num-query-groups": Opt("int", 1),
    "--max-position-embeddings": Opt("int"),
    "--seq-length": Opt("int"),
    "--micro-batch-size": Opt("int", 1),
    "--global-batch-size": Opt("int"),
    "--train-iters": Opt("int"),
    "--train-samples": Opt("int"),
    "--exit-interval": Opt("int"),
    "--lr": Opt("float", 1.0e-4),
    "--min-lr": Opt("float", 0.0),
    "--lr-decay-style": Opt("str", "linear", ("constant", "linear", "cosine", "inverse-square-root", "WSD")),
    "--lr-decay-iters": Opt("int"),
    "--lr-warmup-fraction": Opt("float"),
    "--lr-warmup-iters": Opt("int", 0),
    "--lr-warmup-init": Opt("float", 0.0),
    "--save": Opt("str"),
    "--load": Opt("str"),
    "--save-interval": Opt("int"),
    "--log-interval": Opt("int", 100),
    "--finetune": Opt("bool"),
    "--exit-on-missing-checkpoint": Opt("bool"),
    "--data-path": Opt("str", None, nargs="*"),
    "--mock-data": Opt("bool"),
    "--is-instruction-dataset": Opt("bool"),
    "--tokenizer-name-or-path": Opt("str"),
    "--padded-vocab-size": Opt("int"),
    "--make-vocab-size-divisible-by": Opt("int", 128),
    "--untie-embeddings-and-output-weights": Opt("bool"),
    "--add-qkv-bias": Opt("bool"),
    "--swiglu": Opt("bool"),
    "--bf16": Opt("bool"),
    "--fp16": Opt("bool"),
    "--seed": Opt("int", 1234),
    "--prompt-type": Opt("str", None, TRAIN_PROMPT_TYPES),
    "--ai-framework": Opt("str", "pytorch", ("pytorch", "mindspore")),
    "--max-new-tokens": Opt("int", 128),
    "--neat-pack": Opt("bool"),
    "--reset-position-ids": Opt("bool"),
    "--use-distributed-optimizer": Opt("bool"),
    "--overlap-grad-reduce": Opt("bool"),
    "--overlap-param-gather": Opt("bool"),
    "--reuse-fp32-param": Opt("bool"),
}


@dataclass(frozen=True)
class Layout:
    """Where this process sits: Megatron rank order is tp, cp, dp, then pp."""

    rank: int
    world: int
    tp: int
    pp: int
    dp: int
    tp_rank: int
    pp_rank: int
    dp_rank: int

    @classmethod
    def of(cls, rank: int, world: int, par: dict[str, int]) -> Layout:
        tp, pp, cp, dp = par["tp"], par["pp"], par["cp"], par["dp"]
        return cls(rank, world, tp, pp, dp, tp_rank=rank % tp, pp_rank=rank // (tp * cp * dp),
                   dp_rank=(rank // (tp * cp)) % dp)


def parse(prog: str, argv: list[str] | None) -> Any:
    parser = ArgParser(prog, known_flags("training"), OPTS)
    return parser.parse(sys.argv[1:] if argv is None else argv)


def main(prog: str, argv: list[str] | None = None) -> int:
    args = parse(prog, argv)
    par = validate_training_args(args, world_size_from_env())
    if args.train_iters is None and args.train_samples is None:
        fail("AssertionError", "either --train-iters or --train-samples must be provided")
    comm = init()
    layout = Layout.of(comm.rank, comm.world, par)
    shape = model_shape(args, par["tp"])
    dataset = load_dataset(args)
    train_iters = args.train_iters if args.train_iters is not None else args.train_samples // par["gbs"]
    weights, iteration, consumed = initial_state(args, shape, layout)
    _print0(layout, f"> stand-in {prog}: TP {layout.tp} PP {layout.pp} DP {layout.dp}, world size {layout.world}, "
                    f"ai-framework {args.ai_framework}")
    trainer = Trainer(args, comm, layout, shape, dataset, par, train_iters)
    trainer.run(weights, iteration, consumed)
    return 0


def model_shape(args: Any, tp: int) -> ModelShape:
    if args.padded_vocab_size is not None:
        vocab = args.padded_vocab_size
    else:
        if not args.tokenizer_name_or_path:
            fail("AssertionError", "pass --tokenizer-name-or-path or --padded-vocab-size to size the vocabulary")
        from .tokenizer import ByteTokenizer

        divisor = args.make_vocab_size_divisible_by * tp
        vocab = -(-ByteTokenizer(args.tokenizer_name_or_path).vocab_size // divisor) * divisor
    groups = args.num_query_groups if args.group_query_attention else args.num_attention_heads
    return ModelShape(args.num_layers, args.hidden_size, args.ffn_hidden_size or 4 * args.hidden_size,
                      args.num_attention_heads, groups, vocab, args.add_qkv_bias,
                      args.untie_embeddings_and_output_weights, args.swiglu)


def load_dataset(args: Any) -> list[IndexedDataset] | None:
    if args.mock_data:
        return None
    if not args.data_path:
        fail("AssertionError", "--data-path is required (or --mock-data)")
    prefix = args.data_path[-1]
    if args.is_instruction_dataset:
        keys = ("input_ids", "labels")
        paths = [f"{prefix}_packed_{key}_document" for key in keys]
    else:
        paths = [prefix]
    for path in paths:
        if not Path(path + ".bin").is_file() or not Path(path + ".idx").is_file():
            fail("AssertionError", f"{path} not exists (looked for {path}.bin and {path}.idx; check --data-path "
                 "against the preprocess --output-prefix)")
    return [IndexedDataset(p) for p in paths]


def _specs(args: Any, shape: ModelShape, layout: Layout) -> list[tuple[str, tuple[int, ...], bool]]:
    return shard_specs(shape, layout.tp, layout.pp, layout.pp_rank, parse_layer_list(args.num_layer_list))


def initial_state(args: Any, shape: ModelShape, layout: Layout) -> tuple[dict[str, np.ndarray], int, int]:
    """Random weights, or the ones in --load; returns (weights, iteration, consumed samples)."""
    specs = _specs(args, shape, layout)
    rng = np.random.default_rng([args.seed, layout.tp_rank, layout.pp_rank])
    weights = {name: rng.normal(0.0, 0.02, stored_len(int(np.prod(s)))).astype(np.float32) for name, s, _ in specs}
    if not args.load:
        return weights, 0, 0
    tracker = Path(args.load) / ckpt.TRACKER
    saved = ckpt.read_tracker(args.load)
    if saved is None:
        _print0(layout, f"WARNING: could not find the metadata file {tracker}")
        if args.exit_on_missing_checkpoint:
            _print0(layout, ">> '--exit-on-missing-checkpoint' set ... exiting. <<")
            raise SystemExit(1)
        _print0(layout, "    will not load any checkpoints and will start from random")
        return weights, 0, 0
    path = ckpt.checkpoint_file(args.load, saved, layout.tp_rank, layout.pp_rank, layout.pp)
    _print0(layout, f" loading checkpoint from {args.load} at iteration {saved}")
    if not path.is_file():
        fail("FileNotFoundError", f"[Errno 2] No such file or directory: '{path}' (the checkpoint was saved with "
             "another tensor/pipeline parallel size? convert it again with the TP/PP of this job)")
    state = ckpt.load(path)
    model = state["model"]
    expected = {name: list(s) for name, s, _ in specs}
    problems = []
    missing = [n for n in expected if n not in model]
    unexpected = [n for n in model if n not in expected]
    if missing:
        problems.append("Missing key(s) in state_dict: " + ", ".join(f'"{n}"' for n in missing) + ".")
    if unexpected:
        problems.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{n}"' for n in unexpected) + ".")
    for name, want in expected.items():
        if name in model and list(model[name]["shape"]) != want:
            problems.append(f"size mismatch for {name}: copying a param with shape {model[name]['shape']} from "
                            f"checkpoint, the shape in current model is {want}.")
    if problems:
        fail("RuntimeError", "Error(s) in loading state_dict for GPTModel:\n\t" + "\n\t".join(problems))
    for name in expected:
        weights[name] = np.frombuffer(model[name]["data"], dtype=np.float32).copy()
    if args.finetune:
        iteration, consumed = 0, 0
    else:
        iteration, consumed = saved, int(state["args"].get("consumed_train_samples", 0))
    _print0(layout, f"  successfully loaded checkpoint from {args.load} [ t {layout.tp_rank}, p {layout.pp_rank} ] "
                    f"at iteration {iteration}")
    return weights, iteration, consumed


def learning_rate(args: Any, step: int, train_iters: int) -> float:
    """Megatron's OptimizerParamScheduler.get_lr for iteration-based schedules."""
    decay = args.lr_decay_iters or train_iters
    warmup = args.lr_warmup_iters
    if args.lr_warmup_fraction is not None:
        warmup = int(args.lr_warmup_fraction * decay)
    if warmup > 0 and step <= warmup:
        return args.lr_warmup_init + (args.lr - args.lr_warmup_init) * step / warmup
    if args.lr_decay_style == "constant":
        return args.lr
    if step > decay:
        return args.min_lr
    if args.lr_decay_style == "inverse-square-root":
        return max(args.min_lr, args.lr * math.sqrt(max(warmup, 1)) / math.sqrt(max(step, 1)))
    ratio = (step - warmup) / max(decay - warmup, 1)
    coeff = 1.0 - ratio if args.lr_decay_style in ("linear", "WSD") else 0.5 * (math.cos(math.pi * ratio) + 1.0)
    return args.min_lr + coeff * (args.lr - args.min_lr)


class Trainer:
    """The training loop: targets from data, one all-reduce per iteration, logs and saves."""

    def __init__(self, args: Any, comm: LocalComm | MindSporeComm, layout: Layout, shape: ModelShape,
                 dataset: list[IndexedDataset] | None, par: dict[str, int], train_iters: int) -> None:
        self.args, self.comm, self.layout, self.shape = args, comm, layout, shape
        self.dataset, self.par, self.train_iters = dataset, par, train_iters

    def slots(self) -> list[int]:
        """Offsets of every (tp, pp) shard in the all-reduce buffer, in rank order pp, tp."""
        layer_list = parse_layer_list(self.args.num_layer_list)
        offsets = [2]
        for pp_rank in range(self.layout.pp):
            specs = shard_specs(self.shape, self.layout.tp, self.layout.pp, pp_rank, layer_list)
            size = sum(stored_len(int(np.prod(s))) for _, s, _ in specs)
            base = offsets[-1]
            offsets.extend(base + size * (k + 1) for k in range(self.layout.tp))
        return offsets

    def targets(self, consumed: int, size: int) -> list[np.ndarray]:
        """One target vector per sample of this rank's data-parallel share of the global batch."""
        per_dp = self.par["gbs"] // self.layout.dp
        first = consumed + self.layout.dp_rank * per_dp
        rows = []
        for k in range(per_dp):
            if self.dataset is None:
                tokens = np.arange(first + k, first + k + 64) % 97
            else:
                ids = self.dataset[0]
                tokens = ids[(first + k) % len(ids)][: self.args.seq_length]
            rows.append(np.resize((np.asarray(tokens, dtype=np.float64) % 97) / 96.0, size))
        return rows

    def run(self, weights: dict[str, np.ndarray], iteration: int, consumed: int) -> None:
        names = list(weights)
        sizes = [weights[n].size for n in names]
        w = np.concatenate([weights[n] for n in names]).astype(np.float32)
        gbs = self.par["gbs"]
        offsets = self.slots()
        slot = self.layout.pp_rank * self.layout.tp + self.layout.tp_rank
        lo, hi = offsets[slot], offsets[slot + 1]
        last_saved = iteration if self.args.load and not self.args.finetune else None
        _print0(self.layout, f"> training from iteration {iteration} to {self.train_iters}, global batch size {gbs}")
        tick = time.time()
        while iteration < self.train_iters:
            rows = self.targets(consumed, w.size)
            # One all-reduce per iteration over every worker: the squared error and element count
            # (the loss), and per (tp, pp) shard the sum of targets over its data-parallel replicas
            # (the gradient all-reduce of data parallelism).
            buffer = np.zeros(offsets[-1])
            buffer[0] = sum(float(np.sum((w - t) ** 2)) for t in rows)
            buffer[1] = float(w.size * len(rows))
            buffer[lo:hi] = np.sum(rows, axis=0)
            total = self.comm.allreduce_sum(buffer)
            loss = 10.0 * total[0] / total[1]
            grad_norm = 2.0 * math.sqrt(total[0] / total[1])
            mean_target = total[lo:hi] / gbs
            iteration += 1
            lr = learning_rate(self.args, iteration, self.train_iters)
            step = min(1.0, 0.2 * lr / self.args.lr)
            w = (w + step * (mean_target - w)).astype(np.float32)
            consumed += gbs
            if iteration % self.args.log_interval == 0 and self.layout.rank == self.layout.world - 1:
                elapsed = (time.time() - tick) * 1000.0 / self.args.log_interval
                tick = time.time()
                print(_log_line(iteration, self.train_iters, consumed, elapsed, lr, gbs, loss, grad_norm), flush=True)
            interval = self.args.save_interval
            if self.args.save and interval and iteration % interval == 0:
                self.save(w, names, sizes, iteration, consumed)
                last_saved = iteration
            if self.args.exit_interval and iteration % self.args.exit_interval == 0:
                if self.args.save and last_saved != iteration:
                    self.save(w, names, sizes, iteration, consumed)
                _print0(self.layout, f"exiting program at iteration {iteration}")
                return
        if self.args.save and iteration != 0 and last_saved != iteration:
            self.save(w, names, sizes, iteration, consumed)
        _print0(self.layout, f"[after training is done] datetime: {datetime.now().strftime('%Y-%m-%d %H:%M:%S')}")

    def save(self, w: np.ndarray, names: list[str], sizes: list[int], iteration: int, consumed: int) -> None:
        _print0(self.layout, f"saving checkpoint at iteration {iteration:7d} to {self.args.save} in torch format")
        if self.layout.dp_rank == 0:
            specs = {n: list(s) for n, s, _ in _specs(self.args, self.shape, self.layout)}
            model, offset = {}, 0
            for name, size in zip(names, sizes, strict=True):
                model[name] = {"shape": specs[name], "data": w[offset:offset + size].astype(np.float32).tobytes()}
                offset += size
            payload = {
                "stand_in": "TEST DOUBLE checkpoint written by the simulator's training stand-in",
                "iteration": iteration,
                "checkpoint_version": 3.0,
                "args": ckpt.checkpoint_args(self.shape, self.layout.tp, self.layout.pp,
                                             parse_layer_list(self.args.num_layer_list), _params_dtype(self.args),
                                             consumed),
                "model": model,
            }
            path = ckpt.checkpoint_file(self.args.save, iteration, self.layout.tp_rank, self.layout.pp_rank,
                                        self.layout.pp)
            ckpt.save(path, payload)
        self.comm.barrier()
        if self.layout.rank == 0:
            ckpt.write_tracker(self.args.save, iteration)
        self.comm.barrier()
        _print0(self.layout, f"  successfully saved checkpoint from iteration {iteration:7d} to {self.args.save}")


def _log_line(iteration: int, total: int, consumed: int, elapsed_ms: float, lr: float, gbs: int, loss: float,
              grad_norm: float) -> str:
    """One iteration line in the format of Megatron core_r0.8.0 ``training_log``."""
    line = f" [{datetime.now().strftime('%Y-%m-%d %H:%M:%S')}]"
    line += f" iteration {iteration:8d}/{total:8d} |"
    line += f" consumed samples: {consumed:12d} |"
    line += f" elapsed time per iteration (ms): {elapsed_ms:.1f} |"
    line += f" learning rate: {lr:.6E} |"
    line += f" global batch size: {gbs:5d} |"
    line += f" lm loss: {loss:.6E} |"
    line += f" loss scale: {1.0:.1f} |"
    line += f" grad norm: {grad_norm:.3f} |"
    line += f" number of skipped iterations: {0:3d} |"
    line += f" number of nan iterations: {0:3d} |"
    return line


def _params_dtype(args: Any) -> str:
    return "bf16" if args.bf16 else ("fp16" if args.fp16 else "fp32")


def _print0(layout: Layout, message: str) -> None:
    if layout.rank == 0:
        print(message, flush=True)


def generate(prog: str, argv: list[str] | None = None) -> int:
    """inference.py: load --load on every rank, join the cluster, print a short text on rank 0."""
    args = parse(prog, argv)
    par = validate_training_args(args, world_size_from_env())
    if not args.load:
        fail("AssertionError", "inference needs --load (the trained checkpoint directory)")
    comm = init()
    layout = Layout.of(comm.rank, comm.world, par)
    shape = model_shape(args, par["tp"])
    if ckpt.read_tracker(args.load) is None:
        _print0(layout, f"WARNING: could not find the metadata file {Path(args.load) / ckpt.TRACKER}")
        if args.exit_on_missing_checkpoint:
            _print0(layout, ">> '--exit-on-missing-checkpoint' set ... exiting. <<")
            raise SystemExit(1)
        fail("AssertionError", f"no checkpoint in {args.load}: inference needs trained weights")
    args.values["finetune"] = True  # weights only, like load_checkpoint for inference
    weights, _, _ = initial_state(args, shape, layout)
    checksum = comm.allreduce_sum(np.array([sum(float(np.sum(v)) for v in weights.values())]))[0]
    if layout.rank == 0:
        rng = np.random.default_rng(abs(int(checksum * 1e6)) % (2**32))
        words = ["First", "we", "note", "that", "the", "sum", "is", "even,", "so", "the", "answer", "follows:"]
        count = max(1, min(len(words), args.max_new_tokens // 8))
        answer = int(rng.integers(1, 100))
        text = " ".join(words[:count]) + f" \\boxed{{{answer}}}"
        prompt = "What is 17 + 25? Please reason step by step."
        print("=" * 30 + " Greedy Search " + "=" * 30, flush=True)
        print(f"\nYou:\n{prompt}\n\nMindSpeed-LLM:\n{text}", flush=True)
        print("=" * 75, flush=True)
    comm.barrier()
    return 0
