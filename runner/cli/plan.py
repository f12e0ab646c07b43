"""`runner plan`: validate a job and print the resolved plan; nothing is run or connected to."""

from __future__ import annotations

import json
from pathlib import Path

import click

from runner.cli.options import job_options, read_hf_config


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
    from runner.spec import load_job

    spec = load_job(job, overrides)
    hf_config = read_hf_config(spec.model.hf_dir) if spec.model else None
    result = build_plan(spec, nodes, hf_config=hf_config)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    from runner.cli.plan_view import print_plan

    print_plan(result, str(job))
