"""Options shared by the job-taking subcommands."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from runner.errors import InputError

job_argument = click.argument("job", type=click.Path(path_type=Path, dir_okay=False))
nodes_option = click.option("--nodes", "-n", type=click.IntRange(min=1), required=True,
                            help="How many nodes the job runs on.")
set_option = click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE",
                          help="Override any key of the job file; repeatable (e.g. --set parallel.tp=4).")


def job_options(func: Callable[..., Any]) -> Callable[..., Any]:
    return job_argument(nodes_option(set_option(func)))


def read_hf_config(hf_dir: str) -> dict[str, Any] | None:
    """The model's config.json when the control machine can read it (shared storage mounted, or a
    local copy); None otherwise: the preset is then trusted and checked again on the node."""
    path = Path(hf_dir) / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the model config ({exc})") from None
