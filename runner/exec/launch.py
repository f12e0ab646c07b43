"""`runner launch`: from a job file (or a run to resume) to stages running on the nodes.

Order matters: the job is validated and planned before any connection, so a bad spec costs
seconds. Then every node is connected at once, node 0 is asked for a free MASTER_PORT (unless the
job sets one), the plan is built again with it, and the stages run one after the other.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from runner.errors import ExecError, InputError, InventoryError
from runner.exec.cluster import connect, make_nodes
from runner.exec.nodes import Node
from runner.exec.stages import (
    DEFAULT_GRACE_S,
    DEFAULT_NODE_TIMEOUT_S,
    Session,
    StageJob,
    inputs_hash,
    stages_from_plan,
)
from runner.inventory import DEFAULT_GROUP, Host, load_hosts
from runner.logstream import LogStream
from runner.runs import RunDir, RunState, StageRecord
from runner.supervisor import pid_alive

CHECKPOINT_TRACKER = "latest_checkpointed_iteration.txt"


@dataclass(frozen=True)
class LaunchOptions:
    job_path: Path | None = None
    nodes: int | None = None
    overrides: tuple[str, ...] = ()
    inventory: str | None = None
    group: str = DEFAULT_GROUP
    hosts: Sequence[str] | None = None
    runs_dir: Path = Path("runs")
    resume: str | None = None
    grace: float = DEFAULT_GRACE_S
    node_timeout: float = DEFAULT_NODE_TIMEOUT_S
    force: bool = False
    show_progress: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)


def choose_hosts(
    inventory: str | None, nodes: int | None, *, group: str = DEFAULT_GROUP, names: Sequence[str] | None = None
) -> list[Host]:
    """The first `nodes` hosts (default: all) of the group, or exactly the hosts `names`, in
    NODE_RANK order; `runner launch` and `runner check comm` pick their nodes the same way."""
    hosts = load_hosts(inventory, group=group, hosts=names)
    count = nodes if nodes is not None else len(hosts)
    if count > len(hosts):
        where = "--hosts" if names else f"group {group!r}"
        raise InventoryError(
            f"--nodes {count} but {where} of the inventory has only {len(hosts)} host(s): "
            f"{', '.join(h.name for h in hosts)}",
            hint="lower --nodes or add hosts to the inventory",
        )
    if names and nodes is not None and nodes != len(hosts):
        raise InventoryError(
            f"--nodes {nodes} but --hosts names {len(hosts)} host(s)", hint="give one of them, or make them agree"
        )
    return hosts[:count]


def _hosts_of(opts: LaunchOptions) -> list[Host]:
    return choose_hosts(opts.inventory, opts.nodes, group=opts.group, names=opts.hosts)


def dry_run_plan(opts: LaunchOptions) -> Any:
    """The runner.plan.Plan a launch of `opts` would run: the hosts, their NODE_RANK and devices,
    MASTER_ADDR and the stages, from the job and the inventory alone. Every script is rendered (so
    a template problem shows here too), but nothing is connected to and no run directory is made."""
    from runner.spec import hf_config_of, load_job

    if opts.job_path is None:
        raise InputError("--dry-run needs a job file", hint="runner launch JOB.yaml --nodes 2 --dry-run")
    job = load_job(opts.job_path, opts.overrides)
    plan, _ = _build(job, _hosts_of(opts), job.cluster.master_port, hf_config=hf_config_of(job))
    return plan


def _build(job: object, hosts: Sequence[Host], master_port: int | None, resume_iteration: int | None = None,
           hf_config: dict[str, Any] | None = None):
    from runner.plan import build_plan
    from runner.render import render_scripts

    plan = build_plan(
        job,  # type: ignore[arg-type]
        len(hosts),
        hosts=[h.name for h in hosts],
        master_addr=hosts[0].hccl_ip,
        master_port=master_port,
        resume_iteration=resume_iteration,
        hf_config=hf_config,
    )
    return plan, render_scripts(plan)


def _storage(job: object, hosts: Sequence[Host]) -> str:
    return getattr(getattr(job, "cluster", None), "storage", None) or hosts[0].storage


def _is_done(old: StageRecord | None, stage: StageJob, node0: Node) -> tuple[bool, str | None]:
    """Whether a stage finished in an earlier attempt and nothing it depends on changed."""
    if old is None or old.state not in ("succeeded", "skipped"):
        return False, None
    # One round trip for both: the inputs decide the hash, the outputs must be as recorded.
    now = node0.sizes(list(dict.fromkeys([*stage.inputs, *old.outputs])))
    digest = inputs_hash(stage, {p: now[p] for p in stage.inputs})
    if old.inputs_hash != digest:
        return False, "its script or inputs changed"
    changed = [p for p, size in old.outputs.items() if size < 0 or now.get(p) != size]
    if changed:
        return False, f"outputs changed or missing: {', '.join(changed)}"
    return True, None


def _latest_iteration(node0: Node, stage: StageJob) -> int | None:
    """The newest checkpoint iteration of a train stage, from latest_checkpointed_iteration.txt."""
    dirs = {posixpath.dirname(p.rstrip("/")) for p in stage.outputs}
    for directory in sorted(dirs):
        text = node0.read_text(posixpath.join(directory, CHECKPOINT_TRACKER))
        if text and text.strip().isdigit():
            return int(text.strip())
    return None


class Launch:
    """One `runner launch` (fresh or --resume)."""

    def __init__(self, opts: LaunchOptions, console: TextIO | None) -> None:
        self.opts = opts
        self.console = console

    def run(self) -> RunState:
        from runner.spec import hf_config_of, load_job

        opts = self.opts
        old: RunState | None = None
        if opts.resume:
            run = RunDir.open(opts.runs_dir, opts.resume)
            old = run.read_state()
            if old.status == "running" and old.control_pid and pid_alive(old.control_pid):
                raise InputError(
                    f"run {old.run_id} is still being launched by process {old.control_pid}",
                    hint=f"wait for it, or `runner stop {old.run_id}` first",
                )
            job = load_job(run.job_path, old.overrides)
            hosts = load_hosts(old.inventory, hosts=old.hosts)
        else:
            if opts.job_path is None:
                raise InputError("give a job file, or --resume RUN", hint="runner launch JOB.yaml --nodes 2")
            job = load_job(opts.job_path, opts.overrides)
            hosts = _hosts_of(opts)
        # Validate the whole plan before touching any node.
        port = job.cluster.master_port
        _build(job, hosts, port or 29500, hf_config=hf_config_of(job))
        if old is None:
            run = RunDir.create(opts.runs_dir, job.name)
            run.write_text("job.yaml", Path(opts.job_path).read_text())  # type: ignore[arg-type]
            state = RunState(
                run_id=run.run_id,
                job_name=job.name,
                inventory=str(Path(opts.inventory).resolve()) if opts.inventory else None,
                overrides=list(opts.overrides),
                hosts=[h.name for h in hosts],
            )
        else:
            state = old
            state.attempt += 1
            state.failure = None
            state.message = None
        state.status = "running"
        state.control_pid = os.getpid()
        state.master_addr = hosts[0].hccl_ip
        nodes = make_nodes(hosts, state.run_id, state.attempt)
        state.node_dirs = [n.run_dir for n in nodes]
        run.write_state(state)
        stream = LogStream(run.log_path, self.console, show_progress=opts.show_progress)
        stage_env = dict(opts.extra_env)
        if opts.force:
            stage_env["RUNNER_FORCE"] = "1"
        session = Session(
            run,
            state,
            nodes,
            stream,
            grace=opts.grace,
            node_timeout=opts.node_timeout,
            storage=_storage(job, hosts),
            stage_env=stage_env,
        )
        with session.owned():
            connect(nodes)
            if old is not None:
                self._refuse_if_alive(nodes, state.run_id)
            state.master_port = port or nodes[0].free_port()
            plan, scripts = _build(job, hosts, state.master_port)
            stages = stages_from_plan(plan, scripts)
            resume_iteration = None
            skipped: set[str] = set()
            if old is not None:
                skipped, resume_iteration = self._decide_resume(old, stages, nodes[0], stream)
                if resume_iteration is not None:
                    plan, scripts = _build(job, hosts, state.master_port, resume_iteration)
                    stages = stages_from_plan(plan, scripts)
            run.write_text("plan.json", json.dumps(plan.to_dict(), indent=2))
            previous = {r.name: r for r in state.stages}
            previous_states = {r.name: r.state for r in state.stages}
            records = []
            for stage in stages:
                if stage.name in skipped:
                    record = previous[stage.name]
                    record.state = "skipped"
                    for entry in record.nodes.values():
                        entry.state = "skipped"
                else:
                    record = stage.record(state.hosts)
                records.append(record)
            state.stages = records
            session.save()
            session.prepare()
            stream.note(
                f"run {state.run_id}: {len(nodes)} node(s), MASTER_ADDR={state.master_addr} "
                f"MASTER_PORT={state.master_port}; logs in {run.path / 'logs'}"
            )
            for stage in stages:
                if stage.name in skipped:
                    stream.note(f"stage {stage.name!r} is done already (outputs unchanged): skipped")
                    continue
                # A stage this run already started (and that failed or was stopped) may overwrite
                # its own partial outputs when it runs again.
                rerun = old is not None and previous_states.get(stage.name) in ("failed", "stopped", "lost", "running")
                session.run_stage(stage, env={"RUNNER_FORCE": "1"} if rerun else None)
            session.end("succeeded")
            stream.note(f"run {state.run_id} succeeded")
        return state

    @staticmethod
    def _refuse_if_alive(nodes: Sequence[Node], run_id: str) -> None:
        alive = {n.label(): n.run_pids(run_id) for n in nodes}
        busy = {k: v for k, v in alive.items() if v}
        if busy:
            listing = "; ".join(f"{k}: pids {', '.join(map(str, v))}" for k, v in busy.items())
            raise ExecError(
                f"run {run_id} still has processes on the nodes ({listing})",
                hint=f"`runner stop {run_id}` ends them; then resume",
            )

    @staticmethod
    def _decide_resume(
        old: RunState, stages: Sequence[StageJob], node0: Node, stream: LogStream
    ) -> tuple[set[str], int | None]:
        previous = {r.name: r for r in old.stages}
        skipped: set[str] = set()
        resume_iteration = None
        for stage in stages:
            done, why = _is_done(previous.get(stage.name), stage, node0)
            if done:
                skipped.add(stage.name)
                continue
            if why:
                stream.note(f"stage {stage.name!r} runs again: {why}")
            if stage.kind == "train":
                resume_iteration = _latest_iteration(node0, stage)
                if resume_iteration is not None:
                    stream.note(f"training resumes from iteration {resume_iteration}")
            # Everything after the first stage that runs again runs again too.
            break
        return skipped, resume_iteration
