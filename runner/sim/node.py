"""Start, stop and probe one simulated node.

A node boots as: shell joins the node's cgroup -> nsenter into its network namespace ->
unshare a private mount + UTS namespace -> boot.sh mounts the node's files -> exec sshd.
Stopping a node kills its containers' cgroups and its own cgroup: every process it started.
"""

from __future__ import annotations

import shlex
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from runner.errors import SimError
from runner.sim import procs
from runner.sim.config import SimConfig
from runner.sim.network import NETNS_DIR

DOWN_FLAG = "down"


def start(cfg: SimConfig, k: int) -> int:
    """Boot node k in the background; returns the pid that becomes its sshd."""
    node = cfg.node_dir(k)
    cgroup = cfg.node_cgroup(k)
    procs.make_cgroup(cgroup)
    inner = [
        "nsenter", f"--net={NETNS_DIR / cfg.netns(k)}", "--",
        "unshare", "--mount", "--uts", "--propagation", "private", "--",
        "/bin/sh", str(node / "boot.sh"),
    ]  # fmt: skip
    script = f"echo $$ > {shlex.quote(str(cgroup / 'cgroup.procs'))} && exec {shlex.join(inner)}"
    with open(node / "boot.log", "ab") as log:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", script],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
        )
    (node / "launcher.pid").write_text(f"{proc.pid}\n")
    (node / DOWN_FLAG).unlink(missing_ok=True)
    return proc.pid


def ssh_ready(ip: str, timeout: float = 1.0) -> bool:
    """True when an SSH server answers with its banner on ip:22."""
    try:
        with socket.create_connection((ip, 22), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def wait_ready(cfg: SimConfig, nodes: Iterable[int], timeout: float = 30.0) -> None:
    """Wait for sshd on every node; a node whose boot died is reported with its log."""
    pending = list(nodes)
    deadline = time.monotonic() + timeout
    while pending:
        still = []
        for k in pending:
            if ssh_ready(cfg.node_ip(k), timeout=0.5):
                continue
            if not procs.populated(cfg.node_cgroup(k)) and not _launcher_alive(cfg.node_dir(k)):
                raise SimError(
                    f"{cfg.node_name(k)} failed to boot: {_log_tail(cfg.node_dir(k))}",
                    hint="run `runner sim down` to clean up; the node's logs are boot.log and sshd.log",
                )
            still.append(k)
        pending = still
        if pending and time.monotonic() > deadline:
            names = ", ".join(cfg.node_name(k) for k in pending)
            raise SimError(f"sshd did not answer within {timeout:.0f}s on {names}")
        if pending:
            time.sleep(0.05)


def _launcher_alive(node: Path) -> bool:
    """The boot chain is still running (it may not have joined its cgroup yet)."""
    try:
        pid = int((node / "launcher.pid").read_text())
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return False
    return fields[0] != "Z"


def _log_tail(node: Path) -> str:
    text = ""
    for name in ("boot.log", "sshd.log"):
        path = node / name
        if path.exists():
            text += path.read_text(errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-4:]) or "no output"


def stop(cfg: SimConfig, nodes: Iterable[int]) -> list[str]:
    """Kill every process of these nodes (containers first) and remove their cgroups."""
    ids: list[str] = []
    cgroups: list[Path] = []
    for k in nodes:
        ids += procs.container_ids(cfg.node_dir(k) / "containers")
        cgroups.append(cfg.node_cgroup(k))
    return kill_all(ids, cgroups)


def kill_all(container_ids: list[str], cgroups: list[Path]) -> list[str]:
    """Kill containers, then the node cgroups; wait until empty; remove them. Returns problems."""
    waits = procs.kill_containers(container_ids)
    for cg in cgroups:
        procs.kill(cg)
        for child in cg.rglob("cgroup.kill") if cg.exists() else []:
            procs.kill(child.parent)
    left = procs.wait_empty(waits + cgroups)
    problems = [f"processes still in cgroup {p}" for p in left]
    for cg in cgroups:
        procs.remove_cgroup_tree(cg)
    procs.remove_container_cgroups(container_ids)
    return problems
