"""`runner logs RUN [--node K] [--rank R] [-f]`: the run's logs, one stream, prefixed by node and rank."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from runner.cli._run_options import resolve_runs_dir, runs_dir_option

POLL_S = 0.5


@click.command()
@click.argument("run", required=False)
@click.option("--node", "node", type=int, default=None, help="Only this node (its NODE_RANK).")
@click.option("--rank", "rank", type=int, default=None, help="Only this global rank (msrun worker_N.log).")
@click.option("--stage", "stage", default=None, help="Only this stage.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines while the run's stage runs.")
@runs_dir_option
def logs(
    run: str | None, node: int | None, rank: int | None, stage: str | None, follow: bool, runs_dir: Path | None
) -> None:
    """Print the saved logs of RUN (default: the newest run); with -f, follow the running stage.

    With -f and no `runner launch` owning the run (it was killed), the nodes are asked directly:
    the stage kept running under its supervisors, and its new lines are also saved in the run
    directory.
    """
    from runner.logstream import prefix, rank_of
    from runner.runs import RunDir

    run_dir = RunDir.open(resolve_runs_dir(runs_dir), run)

    def wanted(k: int, source: str) -> bool:
        if node is not None and k != node:
            return False
        return rank is None or rank_of(source) == rank

    offsets: dict[Path, int] = {}

    def print_new() -> None:
        for k, stage_name, source, path in run_dir.log_files(node):
            if (stage is not None and stage_name != stage) or not wanted(k, source):
                continue
            start = offsets.get(path, 0)
            size = path.stat().st_size
            if size <= start:
                continue
            with open(path, "rb") as fh:
                fh.seek(start)
                data = fh.read(size - start)
            cut = data.rfind(b"\n") + 1
            offsets[path] = start + cut
            for line in data[:cut].decode("utf-8", errors="replace").splitlines():
                click.echo(f"{prefix(k, source)} {line}")

    print_new()
    if not follow:
        return
    state = run_dir.read_state()
    if state.launcher_alive():
        # The launcher saves every line; read what it writes.
        while run_dir.read_state().launcher_alive():
            time.sleep(POLL_S)
            print_new()
        print_new()
        if run_dir.read_state().status != "running":
            return
    _reattach(run_dir, stage, wanted)


def _reattach(run_dir, stage: str | None, wanted) -> None:  # type: ignore[no-untyped-def]
    from runner.exec.cluster import close, nodes_of_run, refresh
    from runner.exec.stages import Session, StageFailed, StageStopped
    from runner.logstream import LogStream
    from runner.runs import stage_key

    state = run_dir.read_state()
    running = [r for r in state.stages if r.state == "running" and (stage is None or r.name == stage)]
    if not running:
        return
    nodes = nodes_of_run(state)
    try:
        for record in running:
            targets = [n for n in nodes if str(n.index) in record.nodes]

            def offsets(n, name=record.name):  # type: ignore[no-untyped-def]
                logs_dir = run_dir.path / "logs" / f"node{n.index}" / stage_key(name, state.attempt)
                return {p.stem: p.stat().st_size for p in logs_dir.glob("*.log")} if logs_dir.is_dir() else {}

            stream = LogStream(run_dir.log_path, sys.stdout, accept=wanted)
            session = Session(run_dir, state, nodes, stream)
            try:
                session.watch(record.name, targets, fail_fast=True, offsets=offsets)
            except (StageFailed, StageStopped) as exc:
                session.end_by(exc)
                raise
            finally:
                stream.close()
        refresh(state, nodes)
        state.settle()
        run_dir.write_state(state)
    finally:
        close(nodes)
