"""The run directory on the control machine: runs/<run-id>/.

job.yaml        the job as given
plan.json       the validated plan
scripts/        node<k>/<stage>.sh, exactly what was uploaded
state.json      stage x node states, exit codes, times, outputs; written atomically
logs/           node<k>/<stage>/<source>.log (out = the stage's own output, worker_N = msrun rank N)
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runner.errors import InputError

RUNS_ENV = "RUNNER_RUNS_DIR"
DEFAULT_RUNS_DIR = "runs"

NodeState = Literal["pending", "running", "succeeded", "failed", "stopped", "skipped", "lost"]
RunStatus = Literal["created", "running", "succeeded", "failed", "stopped", "interrupted"]


class NodeStage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str
    state: NodeState = "pending"
    exit_code: int | None = None
    started: float | None = None
    ended: float | None = None

    @property
    def duration(self) -> float | None:
        if self.started is None:
            return None
        return (self.ended or time.time()) - self.started


class StageRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    kind: str = "command"
    placement: str = "all"
    msrun: bool = False
    state: NodeState = "pending"
    nodes: dict[str, NodeStage] = Field(default_factory=dict)
    inputs_hash: str | None = None
    outputs: dict[str, int] = Field(default_factory=dict, description="output path on node 0 -> size in bytes")


class Failure(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: str
    node: int
    host: str
    rank: int | None = None
    exit_code: int | None = None
    signature: str | None = None
    line: str | None = None
    at: float = Field(default_factory=time.time)

    def describe(self) -> str:
        who = f"node{self.node} ({self.host})" + (f" rank {self.rank}" if self.rank is not None else "")
        what = self.signature or (f"exit code {self.exit_code}" if self.exit_code is not None else "failed")
        text = f"stage {self.stage!r} failed first on {who}: {what}"
        if self.exit_code is not None and self.signature:
            text += f" (exit code {self.exit_code})"
        if self.line:
            text += f"\n    {self.line.strip()}"
        return text


class RunState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str
    job_name: str
    status: RunStatus = "created"
    created: float = Field(default_factory=time.time)
    updated: float = Field(default_factory=time.time)
    attempt: int = 1
    inventory: str | None = None
    overrides: list[str] = Field(default_factory=list, description="--set overrides of the job file")
    hosts: list[str] = Field(default_factory=list, description="inventory host names in NODE_RANK order")
    node_dirs: list[str] = Field(default_factory=list, description="run directory on each node")
    master_addr: str | None = None
    master_port: int | None = None
    control_pid: int | None = None
    stages: list[StageRecord] = Field(default_factory=list)
    failure: Failure | None = None
    message: str | None = None

    def launcher_alive(self) -> bool:
        """Whether the `runner launch` that owns this run is still running on this machine."""
        if self.status != "running" or not self.control_pid:
            return False
        try:
            os.kill(self.control_pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def settle(self) -> None:
        """A run left `running` by a launcher that is gone: once none of its stages runs any more,
        it succeeded if every stage finished, else it was interrupted (`--resume` continues it)."""
        if self.status == "running" and not any(s.state == "running" for s in self.stages):
            done = all(s.state in ("succeeded", "skipped") for s in self.stages)
            self.status = "succeeded" if done else "interrupted"

    def stage(self, name: str) -> StageRecord:
        for record in self.stages:
            if record.name == name:
                return record
        raise KeyError(name)


def stage_key(stage: str, attempt: int) -> str:
    """Directory name of a stage's files in one attempt: `train`, then `train.2` after a resume."""
    return stage if attempt <= 1 else f"{stage}.{attempt}"


def runs_root(path: str | os.PathLike[str] | None = None) -> Path:
    return Path(path or os.environ.get(RUNS_ENV) or DEFAULT_RUNS_DIR)


def new_run_id(job_name: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in job_name)[:40] or "run"
    return f"{safe}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


class RunDir:
    """One run's directory and its state file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def state_path(self) -> Path:
        return self.path / "state.json"

    @property
    def job_path(self) -> Path:
        return self.path / "job.yaml"

    def script_path(self, node: int, stage: str) -> Path:
        return self.path / "scripts" / f"node{node}" / f"{stage}.sh"

    def log_path(self, node: int, stage: str, source: str) -> Path:
        return self.path / "logs" / f"node{node}" / stage / f"{source}.log"

    def log_files(self, node: int | None = None) -> Iterator[tuple[int, str, str, Path]]:
        """(node, stage, source, path) of every saved log, in stage order of the state."""
        logs = self.path / "logs"
        order = {s.name: i for i, s in enumerate(self.read_state().stages)} if self.state_path.exists() else {}
        attempt = {}
        found = []
        for node_dir in sorted(logs.glob("node*")):
            k = int(node_dir.name[4:])
            if node is not None and k != node:
                continue
            for stage_dir in node_dir.iterdir():
                for log in sorted(stage_dir.glob("*.log")):
                    found.append((k, stage_dir.name, log.stem, log))
        for _, stage, _, _ in found:
            base, _, number = stage.partition(".")
            attempt[stage] = (int(number) if number.isdigit() else 1, order.get(base, 999))
        found.sort(key=lambda t: (*attempt[t[1]], t[0], t[2]))
        yield from found

    @classmethod
    def create(cls, root: Path, job_name: str) -> RunDir:
        root.mkdir(parents=True, exist_ok=True)
        for _ in range(10):
            path = root / new_run_id(job_name)
            try:
                path.mkdir()
            except FileExistsError:
                continue
            (path / "scripts").mkdir()
            (path / "logs").mkdir()
            return cls(path)
        raise InputError(f"cannot create a new run directory under {root}")

    @classmethod
    def open(cls, root: Path, run_id: str | None = None) -> RunDir:
        """The named run (an id or a path), or the newest run under root."""
        if run_id:
            candidate = Path(run_id)
            path = candidate if (candidate / "state.json").exists() else root / run_id
            if not (path / "state.json").exists():
                known = [p.name for p in _runs(root)][-5:]
                raise InputError(
                    f"no run {run_id!r} under {root}",
                    hint=f"recent runs: {', '.join(known)}" if known else "start one with `runner launch`",
                )
            return cls(path)
        runs = _runs(root)
        if not runs:
            raise InputError(f"there are no runs under {root}", hint="start one with `runner launch`")
        return cls(runs[-1])

    def write_text(self, relative: str | Path, text: str) -> Path:
        path = self.path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, text)
        return path

    def write_state(self, state: RunState) -> None:
        state.updated = time.time()
        _atomic_write(self.state_path, state.model_dump_json(indent=2))

    def read_state(self) -> RunState:
        try:
            return RunState.model_validate_json(self.state_path.read_text())
        except (OSError, ValidationError) as exc:
            raise InputError(f"{self.state_path} is unreadable: {exc}") from exc


def _runs(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        try:
            created = json.loads((path / "state.json").read_text()).get("created", 0)
        except (OSError, ValueError):
            continue
        found.append((created, path))
    return [p for _, p in sorted(found)]


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
