"""`runner render`: write every script each node would run, one file per stage per node."""

from __future__ import annotations

from pathlib import Path

import click

from runner.cli.options import job_options


@click.command()
@job_options
@click.option("--out", "-o", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Directory to write DIR/node<k>/<stage>.sh into.")
@click.option("--master-addr", help="Node 0's address; without it the scripts read MASTER_ADDR from the environment.")
@click.option("--master-port", type=click.IntRange(1024, 65535), help="Rendezvous port (default: the job's, or "
              "MASTER_PORT from the environment).")
@click.option("--force", is_flag=True, help="Overwrite scripts already in DIR.")
def render(job: Path, nodes: int, overrides: tuple[str, ...], out: Path, master_addr: str | None,
           master_port: int | None, force: bool) -> None:
    """Validate JOB and write the bash script of every stage for every node into OUT.

    The scripts are what `runner launch` runs: readable, and re-runnable by hand on a node.
    """
    from runner.plan import build_plan
    from runner.render import write_scripts
    from runner.spec import hf_config_of, load_job

    spec = load_job(job, overrides)
    plan = build_plan(spec, nodes, master_addr=master_addr, master_port=master_port, hf_config=hf_config_of(spec))
    paths = write_scripts(plan, out, source=str(job), force=force)
    for path in paths:
        click.echo(str(path))
    click.echo(f"{len(paths)} script(s) for {plan.nnodes} node(s) in {out}", err=True)
