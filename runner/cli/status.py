"""`runner status [RUN]`: stage x node table of a run (state, exit code, duration)."""

from __future__ import annotations

from pathlib import Path

import click

from runner.cli._run_options import resolve_runs_dir, runs_dir_option

STATE_STYLE = {
    "succeeded": "green",
    "running": "cyan",
    "failed": "bold red",
    "lost": "bold red",
    "stopped": "yellow",
    "skipped": "dim",
    "pending": "dim",
}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@click.command()
@click.argument("run", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the run's state as JSON.")
@click.option("--no-refresh", is_flag=True, help="Do not ask the nodes about running stages.")
@runs_dir_option
def status(run: str | None, as_json: bool, no_refresh: bool, runs_dir: Path | None) -> None:
    """Show where a run is: each stage on each node (default: the newest run).

    While no `runner launch` owns the run (it was killed, or the machine changed), running stages
    are checked on the nodes themselves and the state file is brought up to date.
    """
    from rich.console import Console
    from rich.table import Table

    from runner.exec.cluster import close, nodes_of_run, refresh
    from runner.runs import RunDir

    run_dir = RunDir.open(resolve_runs_dir(runs_dir), run)
    state = run_dir.read_state()
    if not no_refresh and not state.launcher_alive() and any(s.state == "running" for s in state.stages):
        nodes = nodes_of_run(state)
        try:
            if refresh(state, nodes):
                state.settle()
                run_dir.write_state(state)
        finally:
            close(nodes)
    if as_json:
        click.echo(state.model_dump_json(indent=2))
        return
    console = Console()
    style = STATE_STYLE.get(state.status, "")
    console.print(
        f"run [bold]{state.run_id}[/] ({state.job_name}, attempt {state.attempt}): [{style}]{state.status}[/]"
    )
    if state.status == "running" and not state.launcher_alive():
        console.print(
            "  no `runner launch` owns this run now: the current stage runs on; later stages wait "
            f"for `runner launch --resume {state.run_id}`"
        )
    table = Table(show_header=True, header_style="bold")
    table.add_column("stage")
    for k, host in enumerate(state.hosts):
        table.add_column(f"node{k} ({host})")
    for record in state.stages:
        cells = []
        for k in range(len(state.hosts)):
            entry = record.nodes.get(str(k))
            if entry is None:
                cells.append("")
                continue
            text = f"[{STATE_STYLE.get(entry.state, '')}]{entry.state}[/]"
            if entry.exit_code is not None:
                text += f" ({entry.exit_code})"
            if entry.duration is not None and entry.state != "skipped":
                text += f" {_duration(entry.duration)}"
            cells.append(text)
        table.add_row(record.name, *cells)
    console.print(table)
    if state.failure:
        console.print(f"[bold red]first failure[/]: {state.failure.describe()}")
    elif state.message:
        console.print(state.message)
