"""`runner plan`: validate a job and print the resolved plan; nothing is run or connected to."""

from __future__ import annotations

import json
from pathlib import Path

import click

from runner.cli.options import job_options


@click.command()
@job_options
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (stable keys).")
def plan(job: Path, nodes: int, overrides: tuple[str, ...], as_json: bool) -> None:
    """Validate JOB for NODES nodes and print the plan: parallelism, ranks, stages and memory.

    Everything MindSpeed-LLM would reject minutes into a run (TP not dividing the heads, a world
    size TP x PP does not divide, batch sizes, sequence length, unknown handlers...) is reported
    here in under a second, with exit code 2.
    """
    from runner.plan import build_plan
    from runner.spec import hf_config_of, load_job

    spec = load_job(job, overrides)
    result = build_plan(spec, nodes, hf_config=hf_config_of(spec))
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    from runner.cli.plan_view import print_plan

    print_plan(result, str(job))
