"""`runner schema`: the JSON Schema of the job file, for editors and validation tools."""

from __future__ import annotations

import json

import click


@click.command()
def schema() -> None:
    """Print the JSON Schema of the job file (point your editor's YAML plugin at it)."""
    from runner.spec import Job

    click.echo(json.dumps(Job.model_json_schema(), indent=2))
