"""Processes of the simulated nodes, found and ended through cgroups, never by name.

Each node runs in its own cgroup (v2 hierarchy) under <cgroup root>/ascend-runner-sim-<prefix>/,
so sshd, every session and everything started from it (msrun, workers, podman, conmon) is
there. Containers are the exception: podman with the cgroupfs manager gives each its own
cgroup `libpod_parent/libpod-<id>`. Their ids are read from the node's own container storage,
so they too are found from files and the system, not from a list kept in memory.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from runner.errors import SimError
from runner.sim.config import CGROUP_ROOT

V1_ROOT = Path("/sys/fs/cgroup")
LIBPOD_PARENT = "libpod_parent"


def cgroup_available() -> bool:
    return (CGROUP_ROOT / "cgroup.procs").exists()


def make_cgroup(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SimError(
            f"cannot create cgroup {path}: {exc}",
            hint="the simulator needs root and a writable cgroup v2 hierarchy at /sys/fs/cgroup/unified",
        ) from None


def procs(path: Path) -> list[int]:
    try:
        return [int(p) for p in (path / "cgroup.procs").read_text().split()]
    except OSError:
        return []


def populated(path: Path) -> bool:
    try:
        text = (path / "cgroup.events").read_text()
    except OSError:
        return False
    return "populated 1" in text


def kill(path: Path) -> None:
    """SIGKILL every process in the cgroup and its descendants, atomically (cgroup.kill)."""
    try:
        (path / "cgroup.kill").write_text("1")
    except FileNotFoundError:
        return
    except OSError:
        for pid in procs(path):  # older kernels: no cgroup.kill
            subprocess.run(["kill", "-KILL", str(pid)], capture_output=True, check=False)


def wait_empty(paths: Iterable[Path], timeout: float = 10.0) -> list[Path]:
    """Wait until none of the cgroups holds a process; returns those still populated."""
    pending = [p for p in paths if p.exists()]
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = [p for p in pending if populated(p)]
        if pending:
            time.sleep(0.02)
    return pending


def remove_cgroup_tree(path: Path) -> None:
    """rmdir the cgroup and its children (deepest first); only empty cgroups can go."""
    if not path.exists():
        return
    for child in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            child.rmdir()
    with contextlib.suppress(OSError):
        path.rmdir()


def container_ids(storage_root: Path) -> list[str]:
    """Ids of the containers in one node's podman storage (overlay-containers/containers.json)."""
    index = storage_root / "storage" / "overlay-containers" / "containers.json"
    try:
        return [entry["id"] for entry in json.loads(index.read_text())]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def container_cgroups(cid: str) -> list[Path]:
    """The container's cgroup in every hierarchy (v1 controllers and the v2 tree)."""
    found = []
    for hierarchy in V1_ROOT.iterdir():
        path = hierarchy / LIBPOD_PARENT / f"libpod-{cid}"
        if path.is_dir():
            found.append(path)
    return found


def kill_containers(ids: Iterable[str]) -> list[Path]:
    """Kill the processes of these containers; returns their v2 cgroups to wait on."""
    waits = []
    for cid in ids:
        v2 = CGROUP_ROOT / LIBPOD_PARENT / f"libpod-{cid}"
        if v2.is_dir():
            kill(v2)
            waits.append(v2)
        else:  # no v2 cgroup: fall back to the pids listed in the v1 hierarchies
            for path in container_cgroups(cid):
                for pid in procs(path):
                    subprocess.run(["kill", "-KILL", str(pid)], capture_output=True, check=False)
    return waits


def remove_container_cgroups(ids: Iterable[str]) -> None:
    for cid in ids:
        for path in container_cgroups(cid):
            remove_cgroup_tree(path)
    # podman creates libpod_parent/ (and its conmon/) on first use; drop them when left empty.
    for hierarchy in V1_ROOT.iterdir():
        parent = hierarchy / LIBPOD_PARENT
        for sub in (parent / "conmon", parent):
            try:
                if sub.is_dir() and not any(p.is_dir() for p in sub.iterdir()):
                    sub.rmdir()
            except OSError:
                pass
