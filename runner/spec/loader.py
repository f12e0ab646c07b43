"""Read a job file, apply `--set key.path=value` overrides, validate, and turn every problem into
one SpecError that names the file, the field path, the bad value and what would be valid."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from runner.errors import InputError, SpecError
from runner.spec.base import SpecLoader
from runner.spec.job import Job


def load_job(path: str | Path, overrides: Sequence[str] = ()) -> Job:
    """Load and validate a job file; raise SpecError (exit code 2) on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the job file ({exc.strerror})") from None
    try:
        data = yaml.load(text, Loader=SpecLoader)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{path}: not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a job file is a YAML mapping (name:, model:, stages: ...), "
                        f"not {type(data).__name__}")
    for item in overrides:
        apply_override(data, item)
    return validate_job(data, source=str(path))


def hf_config_of(job: Job) -> dict[str, Any] | None:
    """The job's model config.json when the control machine can read it (shared storage mounted, or
    a local copy); None otherwise (no model, or the file is only on the nodes): the preset is then
    trusted and checked again on the node."""
    if job.model is None:
        return None
    path = Path(job.model.hf_dir) / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the model config ({exc})") from None


def validate_job(data: dict[str, Any], source: str = "<job>") -> Job:
    try:
        return Job.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, source, data)) from None


def apply_override(data: dict[str, Any], item: str) -> None:
    """Apply `a.b.c=value` to the raw job data; the value is read as YAML (`4`, `true`, `[1,2]`)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise SpecError(f"--set {item!r}: expected KEY.PATH=VALUE, for example --set parallel.tp=4")
    try:
        value = yaml.load(raw, Loader=SpecLoader)
    except yaml.YAMLError:
        value = raw
    parts = key.strip().split(".")
    node: Any = data
    for depth, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = node[_index(part, node, parts[: depth + 1])]
            continue
        if not isinstance(node, dict):
            raise SpecError(f"--set {item!r}: `{'.'.join(parts[:depth])}` is a value, not a section")
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict | list):
            raise SpecError(f"--set {item!r}: `{'.'.join(parts[: depth + 1])}` is a value, not a section")
        node = child
    last = parts[-1]
    if not isinstance(node, dict | list):
        raise SpecError(f"--set {item!r}: `{'.'.join(parts[:-1])}` is a value, not a section")
    if isinstance(node, list):
        node[_index(last, node, parts)] = value
    else:
        node[last] = value


def _index(part: str, seq: list[Any], path: list[str]) -> int:
    if not part.isdigit() or int(part) >= len(seq):
        raise SpecError(f"--set: `{'.'.join(path)}` is not an index of a list of {len(seq)} items")
    return int(part)


def format_validation_error(exc: ValidationError, source: str, data: Any) -> str:
    lines = [f"{source}: invalid job ({exc.error_count()} problem{'s' if exc.error_count() > 1 else ''})"]
    for err in exc.errors():
        loc = _field_path(err["loc"], data)
        msg = err["msg"].removeprefix("Value error, ")
        kind = err["type"]
        if kind == "extra_forbidden":
            msg = f"unknown key `{loc.rsplit('.', 1)[-1]}` (check the spelling; `runner schema` lists every key)"
        elif kind == "missing":
            msg = "required key is missing"
        line = f"  {loc or '(top level)'}: {msg}"
        if kind not in ("missing", "extra_forbidden") and "input" in err and not isinstance(err["input"], dict):
            got = repr(err["input"])
            if got not in msg:
                line += f" (got {got[:80]})"
        lines.append(line)
    return "\n".join(lines)


def _field_path(loc: tuple[Any, ...], data: Any) -> str:
    # pydantic adds union-member names ("literal[...]", "CommandStage") into the location; drop them.
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            parts.append(str(item))
            node = node[item] if isinstance(node, list) and item < len(node) else None
        elif (isinstance(node, dict) and item in node) or not parts or isinstance(node, dict):
            if isinstance(node, dict) and item not in node and ("[" in item or item[:1].isupper()):
                continue
            parts.append(item)
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts)
