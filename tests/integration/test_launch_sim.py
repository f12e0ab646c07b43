"""`runner launch` and `runner check comm` against a simulated Atlas cluster (network namespaces,
one real sshd per node, real msrun on CPU).

The module brings up its own 2-node cluster of 2 NPUs each (through the shared sim fixtures, so
it runs beside any other cluster) and always takes it down. Stages run on the nodes' bare hosts
(`ascend_run_in: host`): the container path has its own test (test_launch_container.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from launch_helpers import (
    REPO,
    kill_leftovers,
    launch_bg,
    run_processes,
    sleepers,
    wait_for,
    wait_for_run,
    write_job,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
]


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner.cli.main", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


@pytest.fixture(scope="module")
def sim(sim_cluster_factory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:  # type: ignore[no-untyped-def]
    with sim_cluster_factory(nodes=2, npus=2) as cluster:
        # Same hosts and variables, stages on the bare host (no provisioning needed for these tests).
        host_inventory = tmp_path_factory.mktemp("inventory") / "sim"
        shutil.copytree(cluster.inventory_dir, host_inventory)
        (host_inventory / "group_vars" / "all" / "zz-launch-test.yml").write_text("ascend_run_in: host\n")
        yield {"cluster": cluster, "inventory": host_inventory, "master": cluster.ips[0]}


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "runs"
    yield path
    kill_leftovers(path)  # whatever a failed test left running


def test_comm_check_all_reduces_over_two_nodes_of_two_workers(sim: dict, tmp_path: Path) -> None:
    result = _cli(
        "check",
        "comm",
        "--nodes",
        "2",
        "-i",
        str(sim["inventory"]),
        "--python",
        sys.executable,
        "--sizes",
        "4K,256K",
        "--iters",
        "2",
        "--runs-dir",
        str(tmp_path / "runs"),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "rank 2 of 4 on node 1" in result.stdout and "rank 0 of 4 on node 0" in result.stdout
    assert "busbw" in result.stdout and "WRONG" not in result.stdout


def test_command_stages_run_with_each_nodes_rank_and_node0_as_master(sim: dict, tmp_path: Path, runs: Path) -> None:
    job = write_job(tmp_path, "ranks", [{"name": "hello", "command": 'echo "rank=$NODE_RANK master=$MASTER_ADDR"'}])
    result = _cli("launch", str(job), "--nodes", "2", "-i", str(sim["inventory"]), "--runs-dir", str(runs))
    assert result.returncode == 0, result.stdout + result.stderr
    master = sim["master"]
    assert f"[node0] rank=0 master={master}" in result.stdout
    assert f"[node1] rank=1 master={master}" in result.stdout


def test_a_killed_worker_on_node1_stops_the_run_everywhere_within_5_s(sim: dict, tmp_path: Path, runs: Path) -> None:
    job = write_job(tmp_path, "kill", [{"name": "work", "command": "sleep 300"}])
    proc = launch_bg(sim["inventory"], runs, job)
    try:
        run_id = wait_for_run(runs)
        wait_for(lambda: len(sleepers(run_id)) == 2, 30, "a worker on each node")
        victim = sleepers(run_id, "/node1/")[0]
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: not run_processes(run_id), 5, "every process of the run to end")
        assert time.monotonic() - killed < 5
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 1
    assert "failed first on node1 (node1)" in out


def test_node_loss_mid_stage_is_detected_and_torn_down(sim: dict, tmp_path: Path, runs: Path) -> None:
    job = write_job(tmp_path, "loss", [{"name": "work", "command": "sleep 300"}])
    proc = launch_bg(sim["inventory"], runs, job)
    try:
        run_id = wait_for_run(runs)
        wait_for(lambda: len(sleepers(run_id)) == 2, 30, "a worker on each node")
        sim["cluster"].fault("node1", "down")
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 1
        assert "failed first on node1 (node1): node lost" in out
        assert not run_processes(run_id)
        state = json.loads((runs / run_id / "state.json").read_text())
        assert state["stages"][0]["nodes"]["1"]["state"] == "lost"
        assert state["stages"][0]["nodes"]["0"]["state"] == "stopped"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        sim["cluster"].fault("node1", "restore")


def test_local_storage_outputs_go_node_to_node(sim_cluster_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from runner.exec.cluster import close, connect, make_nodes
    from runner.exec.fanout import fan_out, raise_for_failures
    from runner.inventory import load_hosts

    with sim_cluster_factory(nodes=2, npus=2, storage="local") as cluster:
        inventory = tmp_path / "inventory"
        shutil.copytree(cluster.inventory_dir, inventory)
        (inventory / "group_vars" / "all" / "zz-launch-test.yml").write_text("ascend_run_in: host\n")
        nodes = make_nodes(load_hosts(inventory), "copy-test")
        try:
            connect(nodes)
            raise_for_failures(fan_out(nodes, lambda n: n.prepare()).outcomes, "prepare")
            node0, node1 = nodes
            node0.check(
                "mkdir -p /mnt/data/ckpt-x/iter_0000001 && head -c 4096 /dev/urandom > "
                "/mnt/data/ckpt-x/iter_0000001/model.bin && echo 1 > /mnt/data/ckpt-x/latest.txt",
                "write",
            )
            assert not node1.run("test -e /mnt/data/ckpt-x").ok  # local storage: node1 does not see it
            node0.copy_to(node1, ["/mnt/data/ckpt-x"])
            sums = [n.check("md5sum /mnt/data/ckpt-x/iter_0000001/model.bin", "sum").stdout.split()[0] for n in nodes]
            assert sums[0] == sums[1]
            assert node1.check("cat /mnt/data/ckpt-x/latest.txt", "read").stdout.strip() == "1"
        finally:
            close(nodes)
