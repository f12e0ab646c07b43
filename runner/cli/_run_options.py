"""Options the run-related subcommands (launch, status, logs, stop, check) share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from runner.runs import runs_root


def inventory_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "-i",
        "--inventory",
        type=click.Path(path_type=Path),
        default=None,
        help="Ansible inventory (directory or file). Default: the one ansible.cfg names.",
    )(func)


def runs_dir_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--runs-dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="Where run directories live (default: ./runs, or $RUNNER_RUNS_DIR).",
    )(func)


def resolve_runs_dir(value: Path | None) -> Path:
    return runs_root(value)
