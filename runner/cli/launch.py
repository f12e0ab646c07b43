"""`runner launch JOB --nodes N`: run a job's stages on N nodes of the inventory."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from runner.cli._run_options import inventory_option, resolve_runs_dir, runs_dir_option
from runner.inventory import DEFAULT_GROUP, parse_host_list


@click.command()
@click.argument("job", type=click.Path(path_type=Path, dir_okay=False), required=False)
@click.option(
    "--nodes",
    "-n",
    type=click.IntRange(min=1),
    default=None,
    help="How many nodes (the first N of the group, in NODE_RANK order).",
)
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE", help="Override a key of the job file.")
@inventory_option
@click.option("--group", default=DEFAULT_GROUP, show_default=True, help="Inventory group of the training hosts.")
@click.option("--hosts", "hosts", default=None, metavar="A,B,...", help="Exactly these hosts, in this order.")
@click.option(
    "--resume",
    metavar="RUN",
    default=None,
    help="Continue a run: skip finished stages, resume training from its newest checkpoint.",
)
@click.option("--force", is_flag=True, help="Let stages overwrite outputs of an earlier run.")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=3.0,
    show_default=True,
    help="Seconds between SIGTERM and SIGKILL when stopping a stage.",
)
@click.option(
    "--node-timeout",
    type=click.FloatRange(min=2),
    default=8.0,
    show_default=True,
    help="A node that sends nothing (not even a heartbeat) for this long is lost.",
)
@click.option("--no-progress", is_flag=True, help="Do not print progress lines parsed from training logs.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Validate the job and the hosts, print which host gets which NODE_RANK, MASTER_ADDR and the "
    "stages, and stop: nothing is connected to or started.",
)
@runs_dir_option
def launch(
    job: Path | None,
    nodes: int | None,
    overrides: tuple[str, ...],
    inventory: Path | None,
    group: str,
    hosts: str | None,
    resume: str | None,
    force: bool,
    grace: float,
    node_timeout: float,
    no_progress: bool,
    dry_run: bool,
    runs_dir: Path | None,
) -> None:
    """Run JOB's stages on the nodes, streaming every node's log; stop everything on the first failure.

    \b
    Examples:
      runner launch jobs/sim-openr1-sft.yaml --nodes 2 -i inventory/sim
      runner launch jobs/sim-openr1-sft.yaml --nodes 2 --dry-run
      runner launch --resume qwen25-math-7b-openr1-20260101-120000-ab12
    """
    import signal

    from runner.errors import InputError
    from runner.exec.launch import Launch, LaunchOptions

    if job is None and resume is None:
        raise InputError("give a job file or --resume RUN", hint="runner launch JOB.yaml --nodes 2")
    if job is not None and resume is not None:
        raise InputError(
            "give either a job file or --resume RUN, not both",
            hint="--resume re-reads the job saved in the run directory",
        )
    if job is not None and nodes is None and not hosts:
        raise InputError("--nodes is required", hint=f"runner launch {job} --nodes 2")
    opts = LaunchOptions(
        job_path=job,
        nodes=nodes,
        overrides=overrides,
        inventory=str(inventory) if inventory else None,
        group=group,
        hosts=parse_host_list(hosts),
        runs_dir=resolve_runs_dir(runs_dir),
        resume=resume,
        grace=grace,
        node_timeout=node_timeout,
        force=force,
        show_progress=not no_progress,
    )
    if dry_run:
        if resume is not None:
            raise InputError("--dry-run takes a job file, not --resume",
                             hint=f"runner status {resume} shows what a resume would skip")
        from runner.cli.plan_view import print_plan
        from runner.exec.launch import dry_run_plan

        print_plan(dry_run_plan(opts), str(job))
        click.echo("dry run: nothing was connected to or started; `runner render` writes every node's scripts")
        return
    # Ctrl-C (SIGINT) stops the job on every node, even when started from a shell that ignores it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    Launch(opts, sys.stdout).run()
