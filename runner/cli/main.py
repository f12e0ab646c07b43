"""Entry point of the `runner` command.

Subcommands are imported only when invoked, so `runner plan` stays fast and the CLI makes
no network call at start-up. Only `main` catches errors: a RunnerError becomes a one-line
message and its exit code (0 ok, 1 job failed, 2 bad input, 130 interrupted).
"""

from __future__ import annotations

import importlib
import sys

import click

# name -> "module:attribute" of a click command or group. Order is the order of `--help`.
SUBCOMMANDS: dict[str, str] = {
    "plan": "runner.cli.plan:plan",
    "render": "runner.cli.render:render",
    "schema": "runner.cli.schema:schema",
    "launch": "runner.cli.launch:launch",
    "status": "runner.cli.status:status",
    "logs": "runner.cli.logs:logs",
    "stop": "runner.cli.stop:stop",
    "check": "runner.cli.check:check",
    "sim": "runner.cli.sim:sim",
}

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, target in SUBCOMMANDS.items() if _module_exists(target)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None or not _module_exists(target):
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)


def _module_exists(target: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(target.split(":")[0]) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ascend-runner", prog_name="runner")
@click.option("--debug", is_flag=True, help="Show the full traceback of an error.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Plan, render and launch MindSpeed-LLM jobs on Ascend clusters (real or simulated).

    \b
    Exit codes: 0 success, 1 the job or a remote step failed,
                2 bad input (job file, inventory, command line), 130 interrupted.
    """
    ctx.obj = {"debug": debug}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code; tests call this directly."""
    from runner.errors import RunnerError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="runner", standalone_mode=False)
    except RunnerError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return EXIT_BAD_INPUT if exc.exit_code == 2 else exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
