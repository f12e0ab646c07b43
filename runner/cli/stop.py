"""`runner stop [RUN]`: end every process of a run on every node."""

from __future__ import annotations

import time
from pathlib import Path

import click

from runner.cli._run_options import resolve_runs_dir, runs_dir_option


@click.command()
@click.argument("run", required=False)
@click.option(
    "--grace", type=click.FloatRange(min=0), default=3.0, show_default=True, help="Seconds between SIGTERM and SIGKILL."
)
@runs_dir_option
def stop(run: str | None, grace: float, runs_dir: Path | None) -> None:
    """Stop RUN (default: the newest run) on every node: SIGTERM, GRACE seconds, then SIGKILL.

    Only processes started for this run are touched (they carry its id); nothing else on the nodes.
    """
    from runner.errors import ExecError
    from runner.exec.cluster import close, connect, nodes_of_run
    from runner.exec.fanout import fan_out, raise_for_failures
    from runner.runs import RunDir

    run_dir = RunDir.open(resolve_runs_dir(runs_dir), run)
    state = run_dir.read_state()
    nodes = nodes_of_run(state)
    try:
        connect(nodes)
        # Name the running stage so each supervisor records that it was stopped on purpose.
        running = {k: r.name for r in state.stages if r.state == "running" for k in r.nodes}
        result = fan_out(nodes, lambda n: _stop_node(n, state.run_id, running.get(str(n.index)), grace))
        for node, outcome in result.outcomes.items():
            if isinstance(outcome, dict):
                count = len(outcome.get("signalled", []))
                killed = len(outcome.get("killed", []))
                note = f", {killed} needed SIGKILL" if killed else ""
                click.echo(f"{node.label()}: {count} process(es) stopped{note}")
        raise_for_failures(result.outcomes, f"stopping run {state.run_id}")
        left = {n.label(): n.run_pids(state.run_id) for n in nodes}
        if any(left.values()):
            raise ExecError(f"processes of run {state.run_id} survived: {left}")
    finally:
        close(nodes)
    if not state.launcher_alive():
        state = run_dir.read_state()
        for record in state.stages:
            for entry in record.nodes.values():
                if entry.state in ("running", "pending"):
                    entry.state, entry.ended = "stopped", entry.ended or time.time()
            if record.state in ("running", "pending"):
                record.state = "stopped"
        if state.status in ("running", "created"):
            state.status = "stopped"
        state.message = "stopped by `runner stop`"
        run_dir.write_state(state)
    click.echo(f"run {state.run_id} stopped; nothing of it runs on {len(nodes)} node(s)")


def _stop_node(node, run_id: str, stage: str | None, grace: float) -> dict:  # type: ignore[no-untyped-def]
    report = node.stop(run_id, stage, grace) if stage else {}
    rest = node.stop(run_id, None, grace)
    return {
        "signalled": report.get("signalled", []) + rest.get("signalled", []),
        "killed": report.get("killed", []) + rest.get("killed", []),
    }
