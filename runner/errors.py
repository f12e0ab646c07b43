"""One tree of errors. Each message says what failed, where, and what to do next.

The CLI maps them to exit codes: bad input (spec, inventory, usage) is 2, a failed job or
remote step is 1.
"""

from __future__ import annotations


class RunnerError(Exception):
    """Base of every error the runner reports to a user."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class InputError(RunnerError):
    """The user gave us something we cannot use: exit code 2."""

    exit_code = 2


class SpecError(InputError):
    """A job file is unreadable or invalid."""


class PlanError(InputError):
    """A valid job cannot be placed on the given nodes (parallelism, devices, model shape)."""


class InventoryError(InputError):
    """The Ansible inventory is missing, unreadable or lacks what the runner needs."""


class RenderError(RunnerError):
    """A template could not be rendered; a bug in a template, not in the user's input."""


class ExecError(RunnerError):
    """A remote step failed on one or more nodes."""


class SimError(RunnerError):
    """The simulated cluster could not be brought up, changed or taken down."""
