"""Options shared by the job-taking subcommands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

job_argument = click.argument("job", type=click.Path(path_type=Path, dir_okay=False))
nodes_option = click.option("--nodes", "-n", type=click.IntRange(min=1), required=True,
                            help="How many nodes the job runs on.")
set_option = click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE",
                          help="Override any key of the job file; repeatable (e.g. --set parallel.tp=4).")


def job_options(func: Callable[..., Any]) -> Callable[..., Any]:
    return job_argument(nodes_option(set_option(func)))
