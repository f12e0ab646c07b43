"""Command-line parsing for the stand-in entry points (TEST DOUBLE, not MindSpeed-LLM).

The accepted flag names come from ``flags.json`` next to this file, generated when the
stand-in repository is built from the table of flags the real entry points define. A flag
the real script does not define fails the way argparse fails: ``unrecognized arguments``,
exit code 2. Flags the stand-in acts on are typed (``Opt``); every other real flag is
accepted and its values are kept as strings.

Abbreviated flags (``--seq`` for ``--seq-length``) are refused: Megatron's parser sets
``allow_abbrev=False`` and the runner's templates must always spell flags in full.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

FLAGS_FILE = Path(__file__).with_name("flags.json")


@dataclass(frozen=True)
class Opt:
    """How one flag is parsed: ``kind`` is bool, int, float, str, json or list."""

    kind: str = "str"
    default: Any = None
    choices: tuple[str, ...] | None = None
    nargs: str | None = None  # "+" or "*" for lists


@dataclass
class Namespace:
    """Parsed flags: typed values by attribute name (dashes become underscores)."""

    values: dict[str, Any] = field(default_factory=dict)
    given: set[str] = field(default_factory=set)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["values"][name]
        except KeyError as exc:
            raise AttributeError(name) from exc

    def set(self, name: str, value: Any) -> None:
        self.values[name] = value


def known_flags(entry: str) -> frozenset[str]:
    """The flags the real ``entry`` (preprocess_data.py, convert_ckpt.py, training) defines."""
    table = json.loads(FLAGS_FILE.read_text(encoding="utf-8"))
    return frozenset(table[entry])


class ArgParser:
    """Parse argv against a set of known flags the way argparse reports errors."""

    def __init__(self, prog: str, flags: frozenset[str], opts: dict[str, Opt],
                 required: Sequence[str] = ()) -> None:
        missing = [name for name in opts if name not in flags]
        if missing:
            raise RuntimeError(f"stand-in bug: typed flags not defined by the real script: {missing}")
        self.prog = prog
        self.flags = flags
        self.opts = opts
        self.required = list(required)

    def usage(self) -> str:
        shown = " ".join(f"[{name}]" for name in sorted(self.opts))
        return f"usage: {self.prog} [-h] {shown} ..."

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.usage()}\n{self.prog}: error: {message}\n")
        raise SystemExit(2)

    def parse(self, argv: Sequence[str]) -> Namespace:
        ns = Namespace()
        for name, opt in self.opts.items():
            ns.set(_attr(name), bool(opt.default) if opt.kind == "bool" else opt.default)
        extras: list[str] = []
        args = list(argv)
        i = 0
        while i < len(args):
            token = args[i]
            i += 1
            if token in ("-h", "--help"):
                sys.stdout.write(self.usage() + "\n\naccepted flags:\n  " + "\n  ".join(sorted(self.flags)) + "\n")
                raise SystemExit(0)
            if not token.startswith("--") or token == "--":
                extras.append(token)
                continue
            name, eq, inline = token.partition("=")
            if name not in self.flags:
                extras.append(token)
                continue
            ns.given.add(name)
            opt = self.opts.get(name)
            values: list[str]
            if eq:
                values = [inline]
            else:
                values = []
                while i < len(args) and not _is_flag(args[i]):
                    values.append(args[i])
                    i += 1
            if opt is None:  # accepted, not acted on
                ns.set(_attr(name), values if values else True)
                continue
            if opt.kind == "bool":
                if eq:
                    self.error(f"argument {name}: ignored explicit argument '{inline}'")
                extras.extend(values)
                ns.set(_attr(name), True)
                continue
            if opt.nargs in ("+", "*"):
                if not values and opt.nargs == "+":
                    self.error(f"argument {name}: expected at least one argument")
                ns.set(_attr(name), [self._convert(name, opt, v) for v in values])
                continue
            if not values:
                self.error(f"argument {name}: expected one argument")
            ns.set(_attr(name), self._convert(name, opt, values[0]))
            extras.extend(values[1:])
        missing = [name for name in self.required if name not in ns.given]
        if missing:
            self.error("the following arguments are required: " + ", ".join(missing))
        if extras:
            self.error("unrecognized arguments: " + " ".join(extras))
        return ns

    def _convert(self, name: str, opt: Opt, raw: str) -> Any:
        converters: dict[str, Callable[[str], Any]] = {
            "int": int, "float": float, "str": str, "json": json.loads,
        }
        try:
            value = converters.get(opt.kind, str)(raw)
        except ValueError:
            kind = "loads" if opt.kind == "json" else opt.kind
            self.error(f"argument {name}: invalid {kind} value: '{raw}'")
        if opt.choices is not None and value not in opt.choices:
            allowed = ", ".join(f"'{c}'" for c in opt.choices)
            self.error(f"argument {name}: invalid choice: '{raw}' (choose from {allowed})")
        return value


def _attr(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def _is_flag(token: str) -> bool:
    """A token that starts a new option (negative numbers are values, as in argparse)."""
    if not token.startswith("-") or token == "-":
        return False
    try:
        float(token)
    except ValueError:
        return True
    return False


def fail(kind: str, message: str, code: int = 1) -> NoReturn:
    """Exit like an uncaught Python exception of type ``kind`` in the real script."""
    sys.stderr.write(f"Traceback (most recent call last):\n  (stand-in)\n{kind}: {message}\n")
    sys.stderr.flush()
    raise SystemExit(code)
