"""Helpers of the `runner launch` integration tests: job files, a launch in the background, and the
run's processes as the process table shows them (not the runner's bookkeeping).

The simulated nodes and the throwaway sshd run on this machine, so one /proc sees every node.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Poll `condition` until it is true; fail the test naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def write_job(directory: Path, name: str, stages: list[dict]) -> Path:
    """A job of command stages on nodes of 2 NPUs (JSON is YAML)."""
    path = directory / f"{name}.yaml"
    path.write_text(json.dumps({"name": name, "cluster": {"npus_per_node": 2}, "stages": stages}))
    return path


def launch_bg(inventory: Path, runs: Path, job: Path, *extra: str) -> subprocess.Popen[str]:
    """`runner launch JOB --nodes 2` in its own session (so the test can signal its whole group),
    stdout and stderr in one pipe."""
    return subprocess.Popen(
        [sys.executable, "-m", "runner.cli.main", "launch", str(job), "--nodes", "2",
         "-i", str(inventory), "--runs-dir", str(runs), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        cwd=REPO,
    )


def newest_run(runs: Path) -> str:
    """The id of the newest run under `runs`."""
    states = sorted(runs.glob("*/state.json"), key=lambda p: json.loads(p.read_text())["created"])
    return states[-1].parent.name


def wait_for_run(runs: Path, timeout: float = 30) -> str:
    """The id of the run a background launch made, once its directory exists."""
    wait_for(lambda: any(runs.glob("*/state.json")), timeout, "the run directory")
    return newest_run(runs)


def run_processes(run_id: str, stage_dir_part: str = "") -> list[int]:
    """Live pids whose environment carries the run's tag (and, if given, a RUNNER_STAGE_DIR
    containing `stage_dir_part`, e.g. "/node1/")."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            env = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z" or f"RUNNER_RUN_ID={run_id}".encode() not in env:
            continue
        if stage_dir_part and not any(e.startswith(b"RUNNER_STAGE_DIR=") and stage_dir_part.encode() in e for e in env):
            continue
        found.append(int(entry))
    return found


def is_sleep(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"sleep\0")
    except OSError:
        return False


def sleepers(run_id: str, stage_dir_part: str = "") -> list[int]:
    """The run's `sleep` workers (the test jobs' stand-in for a training process)."""
    return [p for p in run_processes(run_id, stage_dir_part) if is_sleep(p)]


def kill_leftovers(runs: Path) -> None:
    """SIGKILL whatever the runs under `runs` left running (after a failed test), by pid."""
    for state in runs.glob("*/state.json"):
        for pid in run_processes(state.parent.name):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
