"""`runner sim down` leaves the machine as it was: checked on the system itself (namespaces,
links, processes, mounts, cgroups), not in the simulator's own bookkeeping."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def _cmdlines() -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
    return found


def _assert_nothing_left(prefix: str, state_dir: Path, marker: str) -> None:
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert f"{prefix}-node" not in netns
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    assert f" {prefix}0:" not in links and f" {prefix}-v" not in links
    procs = _cmdlines()
    assert not [c for c in procs if str(state_dir) in c], "a process of the cluster is still running"
    assert not [c for c in procs if marker in c], "a container or session process survived"
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(state_dir) not in mounts
    assert not list(Path("/sys/fs/cgroup/unified").glob(f"ascend-runner-sim-{prefix}"))
    assert not state_dir.exists()


@pytest.fixture
def cluster(sim_cluster_factory):
    # The factory takes the cluster down again at the end: down must also work a second time.
    with sim_cluster_factory(nodes=2, npus=2) as sim:
        yield sim


def _start_work(sim, marker: str) -> None:
    import yaml

    image = yaml.safe_load((sim.inventory_dir / "group_vars" / "all" / "sim.yml").read_text())[
        "ascend_image_tarball"
    ]
    sim.ssh(0, f"setsid sleep {marker} </dev/null >/dev/null 2>&1 &")
    sim.ssh(
        1,
        f"ref=$(docker load -q -i {image} | sed -n 's/^Loaded image: //p'); "
        f"docker run -d --name busy $ref sleep {marker} >/dev/null",
        timeout=300,
    )
    assert len([c for c in _cmdlines() if f"sleep {marker}" in c]) == 2


def test_down_removes_processes_containers_network_and_files(cluster):
    _start_work(cluster, "4545")
    down = subprocess.run(
        [sys.executable, "-m", "runner.cli.main", "sim", "down", "--state-dir", str(cluster.state_dir), "--purge"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert down.returncode == 0, down.stderr
    _assert_nothing_left(cluster.config.prefix, cluster.state_dir, "sleep 4545")
    again = subprocess.run(
        [sys.executable, "-m", "runner.cli.main", "sim", "down", "--state-dir", str(cluster.state_dir)],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr


def test_down_cleans_up_when_the_state_file_is_lost(cluster):
    """As after a crashed `up`: only the system and the node files are left to go by."""
    from runner.sim.cluster import down

    _start_work(cluster, "4646")
    (cluster.state_dir / "cluster.json").unlink()
    problems = down(cluster.state_dir, prefix=cluster.config.prefix, purge=True)
    assert problems == []
    _assert_nothing_left(cluster.config.prefix, cluster.state_dir, "sleep 4646")


def test_new_user_flow_up_ssh_npu_smi_down(tmp_path):
    """`runner sim up`, paste the printed ssh command, `npu-smi info`, `runner sim down`."""
    import os
    import re
    import shlex

    if os.geteuid() != 0:
        pytest.skip("simulated cluster needs root")
    prefix = f"tnu{os.getpid() % 1000:03d}"
    state = REPO / f".simtest-{prefix}"
    cli = [sys.executable, "-m", "runner.cli.main", "sim"]
    where = ["--state-dir", str(state)]
    try:
        up = subprocess.run(
            [*cli, "up", "--nodes", "2", "--prefix", prefix, "--subnet", f"10.232.{os.getpid() % 250}.0/24",
             "--inventory", str(state / "inventory"), *where],
            capture_output=True, text=True, timeout=600, cwd=REPO,
        )  # fmt: skip
        assert up.returncode == 0, up.stderr
        command = re.search(r"^Reach node0:\n  (ssh .*)$", up.stdout, re.M).group(1)
        smi = subprocess.run([*shlex.split(command), "npu-smi info"], capture_output=True, text=True, timeout=60)
        assert smi.returncode == 0, smi.stderr
        assert len(re.findall(r"^\| \d\s+910B3\s+\| OK ", smi.stdout, re.M)) == 8
    finally:
        down = subprocess.run([*cli, "down", "--purge", *where], capture_output=True, text=True, timeout=120,
                              cwd=REPO)  # fmt: skip
    assert down.returncode == 0, down.stderr
    _assert_nothing_left(prefix, state, "never-started-marker")
