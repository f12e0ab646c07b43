"""`runner check comm`: a real all-reduce over every device of every node, through the launch
machinery (inventory, SSH fan-out, supervisors, one log stream, fail fast).

Each node runs msrun with its NODE_RANK; every rank adds rank+1 and checks the sum. Rank 0 reports
time, algorithm bandwidth and bus bandwidth per message size, which are read back from its log.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from runner.errors import InputError
from runner.exec.cluster import connect, make_nodes
from runner.exec.launch import choose_hosts
from runner.exec.stages import DEFAULT_GRACE_S, DEFAULT_NODE_TIMEOUT_S, Session, StageJob
from runner.inventory import DEFAULT_GROUP, Host
from runner.logstream import LogStream
from runner.runs import RunDir, RunState

STAGE = "check-comm"
TEMPLATE = "launcher/comm_check.sh.j2"
SCRIPT = Path(__file__).resolve().parent.parent.parent / "templates" / "launcher" / "comm_check.py"
_RESULT = re.compile(r"commcheck (.*)$")


@dataclass(frozen=True)
class CommCheckOptions:
    nodes: int | None = None
    inventory: str | None = None
    group: str = DEFAULT_GROUP
    hosts: Sequence[str] | None = None
    workers: int | None = None
    sizes: str = "4K,64K,1M,16M"
    iters: int = 5
    python: str | None = None
    master_port: int | None = None
    timeout: int = 120
    runs_dir: Path = Path("runs")
    grace: float = DEFAULT_GRACE_S
    node_timeout: float = DEFAULT_NODE_TIMEOUT_S


@dataclass(frozen=True)
class CommResult:
    bytes: int
    ranks: int
    time_us: float
    algbw_gbps: float
    busbw_gbps: float
    ok: bool


def workers_per_node(hosts: Sequence[Host], requested: int | None) -> int:
    if requested is not None:
        return requested
    counts = {h.npu_count for h in hosts}
    if len(counts) == 1 and None not in counts:
        return int(counts.pop())  # type: ignore[arg-type]
    if None in counts and len(counts) == 1:
        return 8
    raise InputError(
        f"hosts disagree on ascend_npu_count ({sorted(str(c) for c in counts)})",
        hint="pass --workers-per-node",
    )


def render_scripts(
    hosts: Sequence[Host],
    *,
    workers: int,
    master_addr: str,
    master_port: int,
    sizes: str,
    iters: int,
    timeout: int,
    python: str | None,
) -> dict[int, str]:
    from runner.render import environment

    template = environment().get_template(TEMPLATE)
    script = SCRIPT.read_text()
    scripts = {}
    for k, host in enumerate(hosts):
        env_files = [
            posixpath.join(host.data_dir, "MindSpeed-Core-MS", "runner-env.sh"),
            posixpath.join(host.data_dir, "MindSpeed-Stack", "runner-env.sh"),
        ]
        scripts[k] = template.render(
            node_rank=k,
            nnodes=len(hosts),
            workers=workers,
            master_addr=master_addr,
            master_port=master_port,
            env_files=env_files,
            python=python,
            python_dir=os.path.dirname(python) if python else "",
            script=script.rstrip("\n"),
            sizes=sizes,
            iters=iters,
            timeout=timeout,
        )
    return scripts


def parse_results(log: Path) -> list[CommResult]:
    results = []
    if not log.exists():
        return results
    for line in log.read_text(errors="replace").splitlines():
        match = _RESULT.search(line)
        if not match:
            continue
        fields = dict(part.split("=", 1) for part in match.group(1).split() if "=" in part)
        results.append(
            CommResult(
                bytes=int(fields["bytes"]),
                ranks=int(fields["ranks"]),
                time_us=float(fields["time_us"]),
                algbw_gbps=float(fields["algbw_gbps"]),
                busbw_gbps=float(fields["busbw_gbps"]),
                ok=fields.get("ok") == "1",
            )
        )
    return results


def run_comm_check(opts: CommCheckOptions, console: TextIO | None) -> tuple[RunState, list[CommResult]]:
    hosts = choose_hosts(opts.inventory, opts.nodes, group=opts.group, names=opts.hosts)
    workers = workers_per_node(hosts, opts.workers)
    run = RunDir.create(opts.runs_dir, STAGE)
    state = RunState(
        run_id=run.run_id,
        job_name=STAGE,
        inventory=str(Path(opts.inventory).resolve()) if opts.inventory else None,
        hosts=[h.name for h in hosts],
        status="running",
        control_pid=os.getpid(),
        master_addr=hosts[0].hccl_ip,
    )
    nodes = make_nodes(hosts, run.run_id)
    state.node_dirs = [n.run_dir for n in nodes]
    run.write_state(state)
    stream = LogStream(run.log_path, console, show_progress=False)
    session = Session(run, state, nodes, stream, grace=opts.grace, node_timeout=opts.node_timeout)
    with session.owned():
        connect(nodes)
        state.master_port = opts.master_port or nodes[0].free_port()
        scripts = render_scripts(
            hosts,
            workers=workers,
            master_addr=hosts[0].hccl_ip,
            master_port=state.master_port,
            sizes=opts.sizes,
            iters=opts.iters,
            timeout=opts.timeout,
            python=opts.python,
        )
        stage = StageJob(name=STAGE, node_indices=tuple(range(len(nodes))), scripts=scripts, kind="command", msrun=True)
        state.stages = [stage.record(state.hosts)]
        session.save()
        session.prepare()
        stream.note(
            f"all-reduce over {len(nodes)} node(s) x {workers} worker(s), MASTER_ADDR={state.master_addr} "
            f"MASTER_PORT={state.master_port}"
        )
        session.run_stage(stage)
        results = parse_results(run.log_path(0, STAGE, "worker_0"))
        session.end("succeeded" if results and all(r.ok for r in results) else "failed")
    return state, results
