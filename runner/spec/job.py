"""The job file: one declarative description of a MindSpeed-LLM pipeline.

Field-local rules live on the fields; rules that need the model preset or the node count live in
runner.plan, so that `runner plan` and `runner launch` apply exactly the same checks.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from runner.spec.base import SpecModel
from runner.spec.mindspeed import (
    ALPACA_MAP_KEYS,
    HANDLERS,
    PROMPT_HANDLERS,
    SHAREGPT_MAP_KEYS,
    SHAREGPT_TAG_KEYS,
    TRAIN_PROMPT_TYPES,
    known_flags,
)
from runner.spec.presets import PRESETS, ModelArch

MINDSPEED_STAGES = ("preprocess", "convert", "train", "generate", "export")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

AbsPath = Annotated[str, Field(pattern=r"^/", description="An absolute path on the nodes.")]


def _closest(word: str, choices: frozenset[str] | list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f" Did you mean `{close[0]}`?" if close else ""


def _arch_problems(exc: ValidationError) -> str:
    """ModelArch's validation errors worded as the loader words top-level ones: the fix, or the bad value."""
    problems, missing = [], []
    for err in exc.errors():
        key = ".".join(map(str, err["loc"]))
        if err["type"] == "missing":
            missing.append(key)
        elif err["type"] == "extra_forbidden":
            problems.append(f"`model.arch.{key}`: unknown key; architecture keys: {', '.join(ModelArch.model_fields)}")
        else:
            problems.append(f"`model.arch.{key}`: {err['msg']} (got {err['input']!r})")
    if missing:
        problems.append(f"`model.arch` lacks {', '.join(missing)}: give them, or a `model.preset` that has them")
    return "; ".join(problems)


class ModelSpec(SpecModel):
    preset: str | None = Field(default=None, description=f"Architecture preset: {', '.join(PRESETS)}.")
    arch: dict[str, Any] | None = Field(
        default=None, description="Architecture fields that replace or complete the preset's (see `ModelArch`).")
    hf_dir: AbsPath = Field(description="Hugging Face model directory on the nodes (weights, config, tokenizer).")

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str | None) -> str | None:
        if value is not None and value not in PRESETS:
            raise ValueError(f"unknown preset {value!r}; known presets: {', '.join(PRESETS)}."
                             + _closest(value, list(PRESETS)))
        return value

    @model_validator(mode="after")
    def _has_arch(self) -> ModelSpec:
        if self.preset is None and not self.arch:
            raise ValueError("give `model.preset` or a full `model.arch`")
        try:
            self.architecture()
        except ValidationError as exc:
            raise ValueError(_arch_problems(exc)) from None
        return self

    def architecture(self) -> ModelArch:
        base = PRESETS[self.preset].model_dump() if self.preset else {}
        return ModelArch.model_validate({**base, **(self.arch or {})})


class DataSpec(SpecModel):
    input: AbsPath = Field(description="A file or a directory of parquet/json/jsonl/csv/txt/arrow files.")
    handler: str = Field(default="GeneralPretrainHandler", description="MindSpeed-LLM data handler class.")
    prompt_type: str | None = Field(
        default=None, description="Chat template; used for preprocessing, training and generation alike.")
    map_keys: dict[str, Any] | None = Field(default=None, description="`--map-keys`: dataset columns to use.")
    json_keys: list[str] | None = Field(default=None, description="`--json-keys` for pretraining data.")
    output_prefix: AbsPath = Field(description="Prefix of the preprocessed .bin/.idx files.")
    pack: bool = Field(default=False, description="Pack several samples into one sequence (`--pack`).")
    neat_pack: bool = Field(default=False, description="Zigzag attention mask for packed data (`--neat-pack`).")
    seq_length: int | None = Field(
        default=None, gt=0, description="Preprocessing sequence length; defaults to `train.seq_length` when packing.")
    workers: int = Field(default=4, gt=0, description="Preprocessing worker processes.")
    log_interval: int = Field(default=1000, gt=0, description="Preprocessing progress interval.")
    append_eod: bool = Field(default=False, description="Append an end-of-document token (`--append-eod`).")
    overwrite_cache: bool = Field(default=False, description="Rebuild the datasets cache (`--overwrite-cache`).")

    @field_validator("handler")
    @classmethod
    def _known_handler(cls, value: str) -> str:
        if value not in HANDLERS:
            raise ValueError(
                f"unknown handler {value!r}: MindSpeed-LLM would silently fall back to GeneralPretrainHandler."
                + _closest(value, HANDLERS))
        return value

    @field_validator("prompt_type")
    @classmethod
    def _known_prompt_type(cls, value: str | None) -> str | None:
        if value is not None and value not in TRAIN_PROMPT_TYPES:
            raise ValueError(f"unknown prompt type {value!r}." + _closest(value, TRAIN_PROMPT_TYPES))
        return value

    @model_validator(mode="after")
    def _consistent(self) -> DataSpec:
        if self.prompt_type and self.handler not in PROMPT_HANDLERS:
            raise ValueError(f"`data.prompt_type` needs an instruction handler; `{self.handler}` is not one of "
                             f"{', '.join(sorted(PROMPT_HANDLERS))}")
        if self.neat_pack and not self.pack:
            raise ValueError("`data.neat_pack` needs `data.pack: true`")
        if self.pack and self.handler not in PROMPT_HANDLERS:
            raise ValueError(f"`data.pack` is for instruction data; handler `{self.handler}` is a pretrain handler")
        if self.map_keys:
            self._check_map_keys(self.map_keys)
        return self

    def _check_map_keys(self, keys: dict[str, Any]) -> None:
        allowed = ALPACA_MAP_KEYS if "Alpaca" in self.handler else SHAREGPT_MAP_KEYS
        unknown = sorted(set(keys) - allowed)
        if unknown:
            raise ValueError(f"`data.map_keys` has {unknown} which `{self.handler}` does not read; "
                             f"allowed: {sorted(allowed)}")
        tags = keys.get("tags")
        if tags is not None and (not isinstance(tags, dict) or set(tags) - SHAREGPT_TAG_KEYS):
            raise ValueError(f"`data.map_keys.tags` keys must be among {sorted(SHAREGPT_TAG_KEYS)}")


class ParallelSpec(SpecModel):
    tp: int = Field(default=1, gt=0, description="Tensor parallel size; used by conversion and training alike.")
    pp: int = Field(default=1, gt=0, description="Pipeline parallel size; used by conversion and training alike.")
    num_layer_list: list[int] | None = Field(
        default=None, description="Layers per pipeline stage (PP entries summing to the layers).")
    sequence_parallel: bool = Field(default=False, description="`--sequence-parallel` (needs tp > 1).")

    @model_validator(mode="after")
    def _rules(self) -> ParallelSpec:
        if self.sequence_parallel and self.tp == 1:
            raise ValueError("`parallel.sequence_parallel` needs `parallel.tp` > 1")
        if self.num_layer_list is not None:
            if self.pp == 1:
                raise ValueError("`parallel.num_layer_list` needs `parallel.pp` > 1")
            if len(self.num_layer_list) != self.pp:
                raise ValueError(f"`parallel.num_layer_list` has {len(self.num_layer_list)} entries; "
                                 f"it needs one per pipeline stage (pp = {self.pp})")
            if any(n <= 0 for n in self.num_layer_list):
                raise ValueError("`parallel.num_layer_list` entries must be positive")
        return self


class TrainSpec(SpecModel):
    kind: Literal["sft", "pretrain"] = Field(default="sft", description="`posttrain_gpt.py` SFT or `pretrain_gpt.py`.")
    seq_length: int = Field(gt=0, description="Sequence length (`--seq-length`).")
    micro_batch: int = Field(default=1, gt=0, description="Micro batch size per rank.")
    global_batch: int = Field(gt=0, description="Global batch size.")
    iters: int = Field(gt=0, description="Training iterations (`--train-iters`).")
    lr: float = Field(gt=0, description="Peak learning rate.")
    min_lr: float = Field(default=0.0, ge=0, description="Final learning rate.")
    lr_decay_style: Literal["constant", "linear", "cosine", "inverse-square-root", "WSD"] = "cosine"
    lr_warmup_fraction: float = Field(default=0.01, ge=0, le=1)
    weight_decay: float = Field(default=0.0, ge=0)
    clip_grad: float = Field(default=1.0, ge=0)
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    init_method_std: float = 0.01
    initial_loss_scale: float = 4096
    precision: Literal["bf16", "fp16"] = "bf16"
    seed: int = 1234
    save_interval: int | None = Field(default=None, gt=0, description="Checkpoint every N iterations (default: iters).")
    eval_interval: int | None = Field(default=None, gt=0, description="Default: iters.")
    eval_iters: int = 0
    log_interval: int = Field(default=1, gt=0)
    split: str = "100,0,0"
    variable_seq_lengths: bool | None = Field(
        default=None, description="Pad to the longest sample of a batch; default on for SFT without packing.")
    distributed_optimizer: bool = Field(default=False, description="`--use-distributed-optimizer`.")
    recompute: Literal["none", "full", "selective"] = Field(default="none", description="Activation recompute.")
    use_flash_attn: bool = True
    fused_kernels: bool = Field(default=True, description="Fused SwiGLU, RMSNorm and rotary kernels.")
    extra_args: list[str] = Field(
        default_factory=list, description="More flags for the training script; each must be one MindSpeed-LLM defines.")

    @model_validator(mode="after")
    def _rules(self) -> TrainSpec:
        if self.min_lr > self.lr:
            raise ValueError(f"`train.min_lr` ({self.min_lr}) must not exceed `train.lr` ({self.lr})")
        flags = known_flags()["training+inference"]
        for arg in self.extra_args:
            flag = arg.split("=", 1)[0]
            if flag.startswith("--") and flag not in flags:
                raise ValueError(f"`train.extra_args` has {flag}, which MindSpeed-LLM 2.1.0 training does not "
                                 "define." + _closest(flag, flags))
            if flag == "--overlap-param-gather" and not self.distributed_optimizer:
                raise ValueError("`train.extra_args` --overlap-param-gather needs `train.distributed_optimizer: true` "
                                 "(Megatron requires the distributed optimizer and --overlap-grad-reduce)")
            if flag == "--reuse-fp32-param" and self.precision != "bf16":
                raise ValueError("`train.extra_args` --reuse-fp32-param needs `train.precision: bf16`")
            if flag in OWNED_FLAGS:
                raise ValueError(f"`train.extra_args` sets {flag}, which the runner derives from "
                                 f"`{OWNED_FLAGS[flag]}`; set that key instead")
        return self


# Flags the runner writes itself from one key, so conversion, training and generation agree.
OWNED_FLAGS: dict[str, str] = {
    "--tensor-model-parallel-size": "parallel.tp", "--pipeline-model-parallel-size": "parallel.pp",
    "--num-layer-list": "parallel.num_layer_list", "--prompt-type": "data.prompt_type",
    "--seq-length": "train.seq_length", "--micro-batch-size": "train.micro_batch",
    "--global-batch-size": "train.global_batch", "--data-path": "data.output_prefix",
    "--load": "checkpoint.mcore_dir", "--save": "checkpoint.save_dir", "--train-iters": "train.iters",
    "--no-shared-storage": "cluster.storage", "--ai-framework": "backend",
}


class GenerateSpec(SpecModel):
    task: Literal["greedy", "chat"] | None = Field(
        default=None, description="`--task` of inference.py; none runs the default generation.")
    max_new_tokens: int = Field(default=256, gt=0)
    seed: int = 42


class CheckpointSpec(SpecModel):
    mcore_dir: AbsPath = Field(description="Where hf->mcore conversion writes (the training's `--load`).")
    save_dir: AbsPath = Field(description="Where training saves checkpoints (`--save`).")
    export_dir: AbsPath | None = Field(
        default=None, description="A NEW directory for the Hugging Face export (needed by the `export` stage); "
                                  "never the original model's.")
    params_dtype: Literal["bf16", "fp16", "fp32"] = Field(default="bf16", description="Converted weights' dtype.")


class HcclSpec(SpecModel):
    connect_timeout: int = Field(default=1800, ge=120, le=7200, description="HCCL_CONNECT_TIMEOUT seconds.")
    exec_timeout: int | None = Field(default=None, ge=0, description="HCCL_EXEC_TIMEOUT seconds.")
    socket_ifname: str | None = Field(default=None, description="HCCL_SOCKET_IFNAME, e.g. `eth0` or `=enp1s0`.")


class ClusterSpec(SpecModel):
    npus_per_node: int = Field(default=8, gt=0, description="NPUs each node has.")
    visible_devices: list[int] | None = Field(
        default=None, description="Use only these NPUs of each node (ASCEND_RT_VISIBLE_DEVICES).")
    storage: Literal["shared", "local"] = Field(
        default="shared", description="`shared`: one filesystem on all nodes; `local`: each node has its own.")
    master_port: int | None = Field(default=None, ge=1024, le=65535, description="Default: a free port on node 0.")
    msrun_timeout: int = Field(default=300, gt=0, description="msrun `--cluster_time_out` seconds.")
    stack_dir: AbsPath | None = Field(
        default=None, description="MindSpeed checkout on the nodes (default: /mnt/data/MindSpeed-Core-MS for "
                                  "mindspore, /mnt/data/MindSpeed-Stack for pytorch).")
    hccl: HcclSpec = Field(default_factory=HcclSpec)
    env: dict[str, str] = Field(default_factory=dict, description="More environment variables for every stage.")

    @field_validator("visible_devices")
    @classmethod
    def _unique(cls, value: list[int] | None) -> list[int] | None:
        if value is not None:
            if not value:
                raise ValueError("`cluster.visible_devices` must list at least one NPU")
            if len(set(value)) != len(value):
                raise ValueError(f"`cluster.visible_devices` lists an NPU twice: {value}")
        return value

    @model_validator(mode="after")
    def _in_range(self) -> ClusterSpec:
        bad = [d for d in self.visible_devices or [] if not 0 <= d < self.npus_per_node]
        if bad:
            raise ValueError(f"`cluster.visible_devices` {bad} are not NPUs of a {self.npus_per_node}-NPU node "
                             f"(valid: 0..{self.npus_per_node - 1})")
        return self


class CommandStage(SpecModel):
    name: str = Field(description="Stage name, unique in the job.")
    command: str = Field(min_length=1, description="Shell command, run with the job's environment.")
    placement: Literal["one", "all"] = Field(default="all", description="`one`: node 0; `all`: every node.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.match(value) or value in MINDSPEED_STAGES:
            raise ValueError(f"command stage name {value!r} must be a short identifier other than "
                             f"{', '.join(MINDSPEED_STAGES)}")
        return value


def _stage_kind(value: Any) -> str:
    # A mapping is a command stage, anything else a MindSpeed stage name: each entry is checked
    # against one of the two, so a typo gets one error, not one per union member.
    return "CommandStage" if isinstance(value, dict | CommandStage) else "MindSpeedStage"


StageEntry = Annotated[
    Annotated[Literal["preprocess", "convert", "train", "generate", "export"], Tag("MindSpeedStage")]
    | Annotated[CommandStage, Tag("CommandStage")],
    Discriminator(_stage_kind),
]


class Job(SpecModel):
    """A MindSpeed-LLM job: data preprocessing, checkpoint conversion, training, generation, export."""

    name: str = Field(description="Job name; names the run directories.")
    backend: Literal["mindspore", "pytorch"] = Field(
        default="mindspore", description="`mindspore`: MindSpeed-Core-MS + msrun; `pytorch`: MindSpeed-LLM + torchrun.")
    model: ModelSpec | None = None
    data: DataSpec | None = None
    parallel: ParallelSpec = Field(default_factory=ParallelSpec)
    train: TrainSpec | None = None
    generate: GenerateSpec = Field(default_factory=GenerateSpec)
    checkpoint: CheckpointSpec | None = None
    cluster: ClusterSpec = Field(default_factory=ClusterSpec)
    stages: list[StageEntry] = Field(min_length=1, description="Stages, run in this order.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError(f"job name {value!r} must be letters, digits, `.`, `_` or `-` (at most 64)")
        return value

    @model_validator(mode="after")
    def _sections_for_stages(self) -> Job:
        names = [s if isinstance(s, str) else s.name for s in self.stages]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"`stages` lists {dupes} more than once")
        needs = {"preprocess": ("model", "data"), "convert": ("model", "checkpoint"),
                 "train": ("model", "data", "train", "checkpoint"), "generate": ("model", "train", "checkpoint"),
                 "export": ("model", "checkpoint")}
        for stage in names:
            missing = [section for section in needs.get(stage, ()) if getattr(self, section) is None]
            if missing:
                raise ValueError(f"stage `{stage}` needs the section(s) {', '.join(f'`{m}`' for m in missing)}")
        if "export" in names and self.checkpoint is not None and self.checkpoint.export_dir is None:
            raise ValueError("stage `export` needs `checkpoint.export_dir`: a new directory for the Hugging Face model")
        order = [n for n in names if n in MINDSPEED_STAGES]
        if order != sorted(order, key=MINDSPEED_STAGES.index):
            raise ValueError(f"stages {order} are out of order; MindSpeed stages run as "
                             f"{' -> '.join(MINDSPEED_STAGES)}")
        if self.model and self.checkpoint:
            self._check_paths()
        if self.train and self.data and self.data.pack and self.train.variable_seq_lengths:
            raise ValueError("`train.variable_seq_lengths` cannot be used with packed data (`data.pack`)")
        return self

    def _check_paths(self) -> None:
        import posixpath

        model, checkpoint = self.model, self.checkpoint
        if model is None or checkpoint is None:
            return
        hf = posixpath.normpath(model.hf_dir)
        for key in ("mcore_dir", "save_dir", "export_dir"):
            if getattr(checkpoint, key) is None:
                continue
            path = posixpath.normpath(getattr(checkpoint, key))
            if path == hf or path.startswith(hf + "/") or hf.startswith(path + "/"):
                raise ValueError(f"`checkpoint.{key}` ({path}) overlaps `model.hf_dir` ({hf}); the original model "
                                 "is never written to: choose a separate directory")
        mcore, save = posixpath.normpath(checkpoint.mcore_dir), posixpath.normpath(checkpoint.save_dir)
        if mcore == save:
            raise ValueError("`checkpoint.save_dir` equals `checkpoint.mcore_dir`: training would overwrite the "
                             "converted checkpoint it loads; choose another directory")

    @property
    def stage_names(self) -> list[str]:
        return [s if isinstance(s, str) else s.name for s in self.stages]

    @property
    def stack_dir(self) -> str:
        if self.cluster.stack_dir:
            return self.cluster.stack_dir
        return "/mnt/data/MindSpeed-Core-MS" if self.backend == "mindspore" else "/mnt/data/MindSpeed-Stack"
