"""Job + node count (+ hosts) -> a frozen Plan: the checks MindSpeed-LLM and Megatron would make
ten minutes into a run, the placement of every stage, each node's ranks and environment, and the
exact command line of each stage. `runner plan` prints it; `runner launch` executes it unchanged.

Pure: no network and no filesystem (the caller passes `hf_config` if it could read one).
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from runner import stage_args as sa
from runner.errors import PlanError
from runner.spec.job import CommandStage, Job
from runner.spec.presets import HF_CONFIG_KEYS, ModelArch

DEVICE_MEMORY_GB = 64.0  # Ascend 910B3 HBM per NPU (Atlas 800T A2)
LAUNCH_LOG_SUBDIR = "msrun"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NodePlan(Frozen):
    index: int
    node_rank: int
    host: str | None
    devices: tuple[int, ...]
    global_ranks: tuple[int, ...]


class StagePlan(Frozen):
    name: str
    kind: Literal["preprocess", "convert", "train", "generate", "export", "command"]
    placement: Literal["one", "all"]
    node_indices: tuple[int, ...]
    launcher: Literal["python", "msrun", "torchrun", "shell"]
    entry: str | None  # the MindSpeed-LLM script, or None for a command stage
    args: tuple[str, ...]  # its flags, exactly as they will run
    command: str | None = None  # the shell text of a command stage
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()  # paths on the nodes that show the stage is done
    prepare_dirs: tuple[str, ...] = ()  # directories the stage needs to exist first
    guard_outputs: tuple[str, ...] = ()  # existing paths the stage refuses to overwrite without --force
    distribute: bool = False  # local storage: copy node 0's outputs to every other node
    collect: bool = False  # local storage: gather every node's outputs on node 0
    share: tuple[str, ...] = ()  # local storage: files node 0 then sends to every node


class MemoryEstimate(Frozen):
    weights_gb: float
    gradients_gb: float
    optimizer_gb: float
    activations_gb: float
    total_gb: float
    device_gb: float

    @property
    def over(self) -> bool:
        return self.total_gb > self.device_gb


class Plan(Frozen):
    job_name: str
    backend: Literal["mindspore", "pytorch"]
    nnodes: int
    npus_per_node: int  # devices each node uses (the visible ones)
    world_size: int
    tp: int
    pp: int
    dp: int
    storage: Literal["shared", "local"]
    master_addr: str | None
    master_port: int | None
    stack_dir: str
    msrun_timeout: int = 300
    layers_per_stage: tuple[int, ...] = ()
    tokens_per_step: int | None = None
    memory: MemoryEstimate | None = None
    warnings: tuple[str, ...] = ()
    resume_iteration: int | None = None
    base_env: tuple[tuple[str, str], ...]
    nodes: tuple[NodePlan, ...]
    stages: tuple[StagePlan, ...]

    @property
    def llm_dir(self) -> str:
        return posixpath.join(self.stack_dir, "MindSpeed-LLM")

    def env(self, node_index: int) -> dict[str, str]:
        """Every variable a stage on this node runs with."""
        node = self.nodes[node_index]
        env = dict(self.base_env)
        env["NODE_RANK"] = str(node.node_rank)
        return env

    def stage(self, name: str) -> StagePlan:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data["env"] = {str(n.index): self.env(n.index) for n in self.nodes}
        return data


def build_plan(job: Job, nodes: int, *, hosts: Sequence[str] | None = None, master_addr: str | None = None,
               master_port: int | None = None, resume_iteration: int | None = None,
               hf_config: Mapping[str, Any] | None = None) -> Plan:
    """Validate the job against `nodes` nodes and place every stage; raise PlanError if it cannot run."""
    if nodes < 1:
        raise PlanError(f"--nodes {nodes}: a job needs at least one node")
    if hosts is not None and len(hosts) != nodes:
        raise PlanError(f"--nodes {nodes} but {len(hosts)} host(s) given: {', '.join(hosts)}")
    devices = tuple(job.cluster.visible_devices or range(job.cluster.npus_per_node))
    per_node = len(devices)
    world = nodes * per_node
    tp, pp = job.parallel.tp, job.parallel.pp
    needs_model = any(s in job.stage_names for s in ("convert", "train", "generate", "export"))
    arch = job.model.architecture() if job.model is not None else None
    warnings: list[str] = []

    if arch is not None and needs_model:
        _check_model_parallel(job, arch, nodes, per_node, world)
        if hf_config is not None:
            _check_hf_config(job, arch, hf_config)
    dp = world // (tp * pp) if world % (tp * pp) == 0 else 0
    if job.train is not None and "train" in job.stage_names:
        _check_batches(job, dp)
    if job.data is not None and job.data.pack and sa.preprocess_seq_length(job) is None:
        raise PlanError("`data.pack` needs a sequence length: set `data.seq_length` or add a `train` section")
    if (job.data is not None and job.data.pack and job.train is not None and job.data.seq_length is not None
            and job.data.seq_length != job.train.seq_length):
        raise PlanError(f"`data.seq_length` ({job.data.seq_length}) differs from `train.seq_length` "
                        f"({job.train.seq_length}); packed rows are padded to exactly the preprocessing length, "
                        "so training must use the same one")

    memory = None
    if arch is not None and job.train is not None and dp:
        memory = estimate_memory(job, arch, dp)
        if memory.over:
            warnings.append(
                f"estimated {memory.total_gb:.1f} GB per NPU exceeds the {memory.device_gb:.0f} GB of a 910B: "
                "raise `parallel.tp`/`parallel.pp`, lower `train.seq_length` or `train.micro_batch`, or set "
                "`train.recompute: full` / `train.distributed_optimizer: true`")

    # The job's port unless the caller (launch, render --master-port) chose one.
    port = master_port or job.cluster.master_port
    base_env = _base_env(job, nodes, per_node, world, master_addr, port)
    node_plans = tuple(
        NodePlan(index=k, node_rank=k, host=hosts[k] if hosts else None, devices=devices,
                 global_ranks=tuple(range(k * per_node, (k + 1) * per_node)))
        for k in range(nodes))
    stages = tuple(_stage_plan(job, arch, entry, nodes, resume_iteration) for entry in job.stages)
    return Plan(
        job_name=job.name, backend=job.backend, nnodes=nodes, npus_per_node=per_node, world_size=world,
        tp=tp, pp=pp, dp=dp, storage=job.cluster.storage, master_addr=master_addr,
        master_port=port, stack_dir=job.stack_dir,
        msrun_timeout=job.cluster.msrun_timeout,
        layers_per_stage=tuple(sa.layers_per_stage(job, arch)) if arch else (),
        tokens_per_step=job.train.global_batch * job.train.seq_length if job.train else None,
        memory=memory, warnings=tuple(warnings), resume_iteration=resume_iteration,
        base_env=tuple(base_env.items()), nodes=node_plans, stages=stages)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _check_model_parallel(job: Job, arch: ModelArch, nodes: int, per_node: int, world: int) -> None:
    tp, pp = job.parallel.tp, job.parallel.pp
    where = f"{nodes} node(s) x {per_node} NPU(s)"
    problems: list[str] = []
    valid_tp = [t for t in _divisors(arch.num_attention_heads) if arch.num_query_groups % t == 0]
    if arch.num_attention_heads % tp:
        problems.append(f"`parallel.tp` = {tp} does not divide the {arch.num_attention_heads} attention heads; "
                        f"valid tp: {valid_tp}")
    elif arch.num_query_groups % tp:
        problems.append(f"`parallel.tp` = {tp} does not divide the {arch.num_query_groups} query groups (KV heads); "
                        f"valid tp: {valid_tp}")
    if arch.hidden_size % arch.num_attention_heads:
        problems.append(f"`model.arch.hidden_size` {arch.hidden_size} is not a multiple of the "
                        f"{arch.num_attention_heads} heads")
    if world % (tp * pp):
        fits = [f"tp={t}/pp={p}" for t in valid_tp for p in _divisors(world // t) if (world // t) % p == 0
                and (arch.num_layers % p == 0)][:8]
        problems.append(f"world size {world} ({where}) is not divisible by `parallel.tp` x `parallel.pp` = "
                        f"{tp} x {pp} = {tp * pp}; combinations that fit: {', '.join(fits) or 'none'}")
    layer_list = job.parallel.num_layer_list
    if layer_list is not None:
        if sum(layer_list) != arch.num_layers:
            problems.append(f"`parallel.num_layer_list` {layer_list} sums to {sum(layer_list)}, but the model has "
                            f"{arch.num_layers} layers")
    elif arch.num_layers % pp:
        problems.append(f"`parallel.pp` = {pp} does not divide the {arch.num_layers} layers; use pp in "
                        f"{_divisors(arch.num_layers)} or give `parallel.num_layer_list` with {pp} entries summing "
                        f"to {arch.num_layers}")
    if job.train is not None and job.train.seq_length > arch.max_position_embeddings:
        problems.append(f"`train.seq_length` {job.train.seq_length} exceeds the model's max position embeddings "
                        f"({arch.max_position_embeddings}); use at most {arch.max_position_embeddings}")
    if problems:
        raise PlanError("the job cannot run as planned:\n  - " + "\n  - ".join(problems))


def _check_batches(job: Job, dp: int) -> None:
    t = job.train
    assert t is not None
    if dp and t.global_batch % (t.micro_batch * dp):
        step = t.micro_batch * dp
        raise PlanError(f"`train.global_batch` {t.global_batch} is not divisible by `train.micro_batch` x data "
                        f"parallel = {t.micro_batch} x {dp} = {step}; use a multiple of {step}, e.g. "
                        f"{max(step, t.global_batch // step * step)}")


def _check_hf_config(job: Job, arch: ModelArch, config: Mapping[str, Any]) -> None:
    diffs = []
    for hf_key, field in HF_CONFIG_KEYS.items():
        if hf_key not in config:
            continue
        ours, theirs = getattr(arch, field), config[hf_key]
        if isinstance(ours, float) or isinstance(theirs, float):
            same = math.isclose(float(ours), float(theirs), rel_tol=1e-9)
        else:
            same = ours == theirs
        if not same:
            diffs.append(f"{field}: preset {ours} vs config.json {hf_key}={theirs}")
    tie = config.get("tie_word_embeddings")
    if tie is not None and bool(tie) == arch.untie_embeddings:
        diffs.append(f"untie_embeddings: preset {arch.untie_embeddings} vs config.json tie_word_embeddings={tie}")
    if diffs:
        assert job.model is not None
        raise PlanError(f"`model.preset` {job.model.preset or '(arch)'} does not match {job.model.hf_dir}/config.json:"
                        "\n  - " + "\n  - ".join(diffs)
                        + "\n  fix: pick the matching preset, or set the differing fields under `model.arch`")


def estimate_memory(job: Job, arch: ModelArch, dp: int) -> MemoryEstimate:
    """Rough bytes per NPU on the busiest pipeline stage: bf16 weights, fp32 gradients, Adam
    states (fp32 master, m, v), and 1F1B activations (Korthikanti et al., flash attention)."""
    t = job.train
    assert t is not None
    tp, pp = job.parallel.tp, job.parallel.pp
    h = arch.hidden_size
    layers = max(sa.layers_per_stage(job, arch))
    emb = arch.padded_vocab_size * h
    per_layer = (arch.param_count() - emb * (2 if arch.untie_embeddings else 1)) / arch.num_layers
    params = (per_layer * layers + emb * (1 if pp > 1 or not arch.untie_embeddings else 2)) / tp
    gib = 1024**3
    weights = params * 2 / gib
    grads = params * 4 / gib
    optimizer = params * 12 / (dp if t.distributed_optimizer else 1) / gib
    s, b = t.seq_length, t.micro_batch
    sp = job.parallel.sequence_parallel
    per_layer_act = s * b * h * ((34 / tp) if sp else (10 + 24 / tp))
    if t.recompute == "full":
        per_layer_act = s * b * h * 2 / tp
    in_flight = min(pp, max(1, t.global_batch // (t.micro_batch * max(dp, 1))))
    acts = per_layer_act * layers * in_flight / gib
    total = weights + grads + optimizer + acts
    return MemoryEstimate(weights_gb=round(weights, 2), gradients_gb=round(grads, 2),
                          optimizer_gb=round(optimizer, 2), activations_gb=round(acts, 2),
                          total_gb=round(total, 2), device_gb=DEVICE_MEMORY_GB)


def _base_env(job: Job, nodes: int, per_node: int, world: int, master_addr: str | None,
              master_port: int | None) -> dict[str, str]:
    env = {
        "NNODES": str(nodes), "NPUS_PER_NODE": str(per_node), "WORLD_SIZE": str(world),
        "CUDA_DEVICE_MAX_CONNECTIONS": "1",
        "HCCL_CONNECT_TIMEOUT": str(job.cluster.hccl.connect_timeout),
    }
    if master_addr:
        env["MASTER_ADDR"] = master_addr
    if master_port:
        env["MASTER_PORT"] = str(master_port)
    if job.cluster.hccl.exec_timeout is not None:
        env["HCCL_EXEC_TIMEOUT"] = str(job.cluster.hccl.exec_timeout)
    if job.cluster.hccl.socket_ifname:
        env["HCCL_SOCKET_IFNAME"] = job.cluster.hccl.socket_ifname
    if job.cluster.visible_devices:
        env["ASCEND_RT_VISIBLE_DEVICES"] = ",".join(map(str, job.cluster.visible_devices))
    if job.backend == "pytorch":
        env["PYTORCH_NPU_ALLOC_CONF"] = "expandable_segments:True"
    env.update(job.cluster.env)
    return env


def _stage_plan(job: Job, arch: ModelArch | None, entry: str | CommandStage, nodes: int,
                resume_iteration: int | None) -> StagePlan:
    all_nodes = tuple(range(nodes))
    local = job.cluster.storage == "local" and nodes > 1
    distributed = "msrun" if job.backend == "mindspore" else "torchrun"
    if isinstance(entry, CommandStage):
        return StagePlan(name=entry.name, kind="command", placement=entry.placement,
                         node_indices=all_nodes if entry.placement == "all" else (0,), launcher="shell",
                         entry=None, args=(), command=entry.command)
    assert job.model is not None
    if entry == "preprocess":
        assert job.data is not None
        placement = "all" if local else "one"
        outputs = tuple(sa.preprocess_outputs(job))
        return StagePlan(name="preprocess", kind="preprocess", placement=placement,
                         node_indices=all_nodes if local else (0,), launcher="python", entry="preprocess_data.py",
                         args=tuple(sa.preprocess_args(job)), inputs=(job.data.input, job.model.hf_dir),
                         outputs=outputs, prepare_dirs=(posixpath.dirname(job.data.output_prefix),),
                         guard_outputs=outputs)
    assert arch is not None and job.checkpoint is not None
    ckpt = job.checkpoint
    if entry == "convert":
        tracker = posixpath.join(ckpt.mcore_dir, "latest_checkpointed_iteration.txt")
        outputs = (tracker, *sa.checkpoint_files(ckpt.mcore_dir, 1, job.parallel.tp, job.parallel.pp))
        return StagePlan(name="convert", kind="convert", placement="one", node_indices=(0,), launcher="python",
                         entry="convert_ckpt.py", args=tuple(sa.convert_args(job, arch)), inputs=(job.model.hf_dir,),
                         outputs=outputs, prepare_dirs=(ckpt.mcore_dir,), guard_outputs=(tracker,),
                         distribute=local)
    if entry == "train":
        assert job.train is not None
        script = "posttrain_gpt.py" if job.train.kind == "sft" else "pretrain_gpt.py"
        resume = resume_iteration is not None
        args = sa.train_args(job, arch, shared_storage=not local, resume=resume)
        final = posixpath.join(ckpt.save_dir, f"iter_{job.train.iters:07d}")
        # Only global rank 0 writes the tracker. Every node keeps its own ranks' shards and needs
        # the tracker to load them (generate, a resumed training); node 0 also gets every shard.
        tracker = posixpath.join(ckpt.save_dir, "latest_checkpointed_iteration.txt")
        return StagePlan(name="train", kind="train", placement="all", node_indices=all_nodes, launcher=distributed,
                         entry=script, args=tuple(args),
                         inputs=(sa.data_path(job), ckpt.save_dir if resume else ckpt.mcore_dir),
                         outputs=(final,), prepare_dirs=(ckpt.save_dir,), collect=local,
                         share=(tracker,) if local else ())
    if entry == "generate":
        load = ckpt.save_dir if "train" in job.stage_names else ckpt.mcore_dir
        return StagePlan(name="generate", kind="generate", placement="all", node_indices=all_nodes,
                         launcher=distributed, entry="inference.py", args=tuple(sa.generate_args(job, arch, load)),
                         inputs=(load,))
    # export: mcore -> HF on node 0 into a new directory
    assert ckpt.export_dir is not None
    out = posixpath.join(ckpt.export_dir, "mg2hf")
    return StagePlan(name="export", kind="export", placement="one", node_indices=(0,), launcher="python",
                     entry="convert_ckpt.py", args=tuple(sa.export_args(job, arch)),
                     inputs=(sa.export_source(job), job.model.hf_dir),
                     outputs=(posixpath.join(out, "config.json"),), prepare_dirs=(ckpt.export_dir,),
                     guard_outputs=(out,))
