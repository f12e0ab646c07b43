"""The simulated-cluster fixtures every integration test can use.

    def test_x(sim_cluster):                      # 2 nodes, shared storage, 8 NPUs each
        sim_cluster.ssh(0, "npu-smi info")

    @pytest.mark.parametrize("sim_cluster", [{"nodes": 2, "storage": "local"}], indirect=True)
    def test_y(sim_cluster): ...

    def test_z(sim_cluster_factory):              # a private cluster, down at the end of `with`
        with sim_cluster_factory(nodes=3) as cluster: ...

Each cluster has its own prefix, subnet and state directory (under the repo: sshd refuses keys
below a world-writable directory such as /tmp), so tests can run beside a demo cluster or
another engineer's. Every cluster is taken down, even when a test fails or is interrupted.
These tests need root; without it they are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runner.errors import SimError

REPO = Path(__file__).resolve().parents[2]
SHARED_IMAGE_CACHE = REPO / ".sim" / "cache"  # the demo cluster's cache: the image is built once
_counter = itertools.count()


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "simulated cluster needs root (network namespaces, mounts, cgroups)"
    missing = [t for t in ("ip", "nsenter", "unshare", "podman", "ssh", "ssh-keygen") if not shutil.which(t)]
    if missing or not Path("/usr/sbin/sshd").exists():
        return f"simulated cluster needs {', '.join(missing) or 'sshd'}: run `make setup`"
    return None


@dataclass
class SimCluster:
    """A running simulated cluster, as a test sees it."""

    config: Any  # runner.sim.config.SimConfig
    inventory_dir: Path

    @property
    def nodes(self) -> list[str]:
        return [self.config.node_name(k) for k in range(self.config.nodes)]

    @property
    def ips(self) -> list[str]:
        return [self.config.node_ip(k) for k in range(self.config.nodes)]

    @property
    def state_dir(self) -> Path:
        return self.config.state_dir

    def ssh_argv(self, k: int) -> list[str]:
        """A real ssh client command for node k, with host key checking on."""
        return [
            "ssh",
            "-i", str(self.config.client_key),
            "-o", f"UserKnownHostsFile={self.config.known_hosts}",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "IdentitiesOnly=yes",
            "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=5",
            f"root@{self.config.node_ip(k)}",
        ]  # fmt: skip

    def ssh(self, k: int, command: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run `command` on node k over real SSH; raise with its output when it fails and check is set."""
        proc = subprocess.run(
            [*self.ssh_argv(k), command],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"ssh node{k} {command!r} exited {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
            )
        return proc

    def fault(self, node: str, *words: str) -> str:
        from runner.sim.cluster import inject

        return inject(self.config, node, list(words))


def _start(tag: str, **options: Any) -> SimCluster:
    from runner.sim import cluster
    from runner.sim.config import make_config

    n = next(_counter)
    prefix = f"t{tag[:2]}{os.getpid() % 1000:03d}{n % 10}"
    state = REPO / f".simtest-{prefix}"
    last: SimError | None = None
    for attempt in range(8):  # another cluster may hold a subnet: try the next one
        subnet = f"10.{220 + (os.getpid() + n + attempt) % 30}.{(os.getpid() // 30 + n * 7 + attempt) % 250}.0/24"
        cfg = make_config(
            state_dir=state,
            inventory_dir=state / "inventory",
            prefix=prefix,
            subnet=subnet,
            image_cache_dir=SHARED_IMAGE_CACHE,
            **options,
        )
        try:
            result = cluster.up(cfg)
        except SimError as exc:
            if "overlaps" not in str(exc):
                raise
            last = exc
            continue
        return SimCluster(config=cfg, inventory_dir=result.inventory_dir)
    raise AssertionError(f"no free subnet for a test cluster: {last}")


def _stop(sim: SimCluster) -> None:
    from runner.sim.cluster import down

    problems = down(sim.state_dir, prefix=sim.config.prefix, purge=True)
    assert not problems, f"simulated cluster {sim.config.prefix} not fully removed: {problems}"


@contextlib.contextmanager
def running_cluster(tag: str = "c", **options: Any) -> Iterator[SimCluster]:
    """Bring a cluster up for the duration of a `with` block; always take it down."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    sim = _start(tag, **options)
    try:
        yield sim
    finally:
        _stop(sim)


@pytest.fixture(scope="session")
def sim_cluster(request: pytest.FixtureRequest) -> Iterator[SimCluster]:
    """A simulated cluster shared by the session (per distinct parameter set).

    Parametrize indirectly with a dict of `runner sim up` options: nodes, npus, storage.
    Default: 2 nodes x 8 NPUs, shared storage. Tests that inject faults must restore the
    nodes they touched (`sim_cluster.fault("node1", "restore")`).
    """
    options = {"nodes": 2, "npus": 8, "storage": "shared", **getattr(request, "param", {})}
    with running_cluster("s", **options) as sim:
        yield sim


@pytest.fixture(scope="session")
def sim_cluster_factory() -> Any:
    """Make a private cluster: `with sim_cluster_factory(nodes=3, storage="local") as c: ...`.

    It is taken down when the `with` block ends, whether the test passed or not.
    """
    return lambda **options: running_cluster("f", **options)
