"""`runner launch/status/logs/stop` over real SSH, against a throwaway sshd on 127.0.0.1.

Two inventory hosts point at the same sshd (its own host key, its own known_hosts file); stages run
on the bare host (`ascend_run_in: host`), each node in its own run directory. Processes are checked
in the process table (/proc), not in the runner's bookkeeping.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from launch_helpers import (
    kill_leftovers,
    launch_bg,
    newest_run,
    run_processes,
    sleepers,
    wait_for,
    wait_for_run,
    write_job,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a throwaway sshd"),
    pytest.mark.skipif(shutil.which("sshd") is None and not Path("/usr/sbin/sshd").exists(), reason="no sshd"),
]

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster(sshd_cluster: dict, tmp_path: Path) -> Iterator[dict]:
    """The module's sshd, with a runs directory of the test's own; whatever a failed test left
    running is killed afterwards (by pid, found through the run's tag)."""
    env = {**sshd_cluster, "runs": tmp_path / "runs"}
    yield env
    kill_leftovers(env["runs"])


@pytest.fixture(scope="module")
def sshd_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    base = tmp_path_factory.mktemp("sshd")
    os.chmod(base, 0o700)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / "host_key")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / "client_key")], check=True)
    (base / "authorized_keys").write_text((base / "client_key.pub").read_text())
    port = _free_port()
    config = base / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {base / 'host_key'}\n"
        f"AuthorizedKeysFile {base / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        f"PasswordAuthentication no\nStrictModes no\nUsePAM no\nPidFile {base / 'sshd.pid'}\n"
        "ClientAliveInterval 5\nMaxSessions 100\nMaxStartups 100\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    log = open(base / "sshd.log", "w")  # noqa: SIM115 - closed in finally
    sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=log)
    try:
        wait_for(lambda: _port_open(port), 10, "sshd to listen")
        host_key = (base / "host_key.pub").read_text().split()
        (base / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
        data = base / "data"
        inventory = base / "hosts.yml"
        inventory.write_text(
            "all:\n  children:\n    ascend:\n      hosts:\n        node-a: {}\n        node-b: {}\n"
            "      vars:\n"
            f"        ansible_host: 127.0.0.1\n        ansible_port: {port}\n        ansible_user: root\n"
            f"        ansible_ssh_private_key_file: {base / 'client_key'}\n"
            f"        ansible_ssh_common_args: '-o UserKnownHostsFile={base / 'known_hosts'}'\n"
            f"        ascend_run_in: host\n        ascend_data_dir: {data}\n"
        )
        yield {"base": base, "inventory": inventory, "port": port, "data": data}
    finally:
        sshd.terminate()
        sshd.wait(timeout=10)
        log.close()


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _runner(cluster: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner.cli.main", *args, "--runs-dir", str(cluster["runs"])],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def _state(cluster: dict, run_id: str) -> dict:
    return json.loads((cluster["runs"] / run_id / "state.json").read_text())


def test_command_stages_see_their_node_rank_and_master(cluster: dict, tmp_path: Path) -> None:
    job = write_job(
        tmp_path,
        "ranks",
        [
            {"name": "hello", "command": 'echo "rank=$NODE_RANK of $NNODES master=$MASTER_ADDR:$MASTER_PORT"'},
            {"name": "once", "command": 'echo "only node $NODE_RANK"', "placement": "one"},
        ],
    )
    result = _runner(cluster, "launch", str(job), "--nodes", "2", "-i", str(cluster["inventory"]))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "[node0] rank=0 of 2 master=127.0.0.1:" in out
    assert "[node1] rank=1 of 2 master=127.0.0.1:" in out
    assert "[node0] only node 0" in out and "only node 1" not in out
    run_id = newest_run(cluster["runs"])
    state = _state(cluster, run_id)
    assert state["status"] == "succeeded"
    saved = (cluster["runs"] / run_id / "logs" / "node1" / "hello" / "out.log").read_text()
    assert "rank=1 of 2" in saved
    status = _runner(cluster, "status", run_id)
    assert "hello" in status.stdout and "succeeded" in status.stdout


def test_unknown_host_key_is_refused(cluster: dict, tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    inventory.write_text(cluster["inventory"].read_text().replace(str(cluster["base"] / "known_hosts"), str(empty)))
    job = write_job(tmp_path, "hostkey", [{"name": "hello", "command": "true"}])
    result = _runner(cluster, "launch", str(job), "--nodes", "2", "-i", str(inventory))
    assert result.returncode == 1
    assert "host key is not in" in result.stderr and str(empty) in result.stderr
    assert "node-a" in result.stderr and "node-b" in result.stderr


def test_a_killed_worker_stops_every_node_within_seconds(cluster: dict, tmp_path: Path) -> None:
    job = write_job(tmp_path, "failfast", [{"name": "work", "command": "sleep 300"}])
    proc = launch_bg(cluster["inventory"], cluster["runs"], job)
    try:
        run_id = wait_for_run(cluster["runs"], 20)
        wait_for(lambda: len(sleepers(run_id)) == 2, 30, "both workers")
        victim = sleepers(run_id, "/node1/")[0]
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        wait_for(lambda: not run_processes(run_id), 5, "every process of the run to be gone")
        gone_after = time.monotonic() - killed_at
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 1, out
    assert "failed first on node1 (node-b)" in out
    assert gone_after < 5
    state = _state(cluster, run_id)
    assert state["status"] == "failed" and state["failure"]["node"] == 1


def test_killing_the_runner_leaves_the_job_which_logs_and_stop_reattach(cluster: dict, tmp_path: Path) -> None:
    job = write_job(
        tmp_path,
        "detach",
        [
            {"name": "work", "command": 'for i in $(seq 1 600); do echo "tick $i on $NODE_RANK"; sleep 0.2; done'},
        ],
    )
    proc = launch_bg(cluster["inventory"], cluster["runs"], job)
    run_id = wait_for_run(cluster["runs"], 20)
    wait_for(lambda: len(run_processes(run_id)) >= 2, 30, "the stage to start")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    # The job goes on without its launcher: its output on the node keeps growing.
    node_log = cluster["data"] / ".ascend-runner" / "runs" / run_id / "node1" / "work" / "output.log"
    size = node_log.stat().st_size
    wait_for(lambda: node_log.stat().st_size > size, 10, "output of the job after its launcher was killed")
    assert run_processes(run_id), "the job died with its launcher"
    status = _runner(cluster, "status", run_id)
    assert "running" in status.stdout and "no `runner launch` owns this run" in status.stdout
    follower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runner.cli.main",
            "logs",
            run_id,
            "-f",
            "--node",
            "1",
            "--runs-dir",
            str(cluster["runs"]),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(
            lambda: "tick" in _read(cluster["runs"] / run_id / "logs" / "node1" / "work" / "out.log"),
            10,
            "saved log lines",
        )
        stop = _runner(cluster, "stop", run_id)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        out, _ = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert not run_processes(run_id)
    assert "[node1] tick" in out and "[node0]" not in out
    assert _state(cluster, run_id)["status"] == "stopped"


def test_resume_skips_finished_stages(cluster: dict, tmp_path: Path) -> None:
    marker = tmp_path / "count"
    gate = tmp_path / "gate"
    job = write_job(
        tmp_path,
        "resume",
        [
            {"name": "first", "command": f"echo $NODE_RANK >> {marker}"},
            {"name": "second", "command": f"test -e {gate}"},
        ],
    )
    result = _runner(cluster, "launch", str(job), "--nodes", "2", "-i", str(cluster["inventory"]))
    assert result.returncode == 1
    run_id = newest_run(cluster["runs"])
    gate.write_text("open")
    result = _runner(cluster, "launch", "--resume", run_id)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stage 'first' is done already" in result.stdout
    assert sorted(marker.read_text().split()) == ["0", "1"]
    state = _state(cluster, run_id)
    assert [s["state"] for s in state["stages"]] == ["skipped", "succeeded"]
    assert state["attempt"] == 2


def test_ctrl_c_stops_every_node_and_exits_130(cluster: dict, tmp_path: Path) -> None:
    job = write_job(tmp_path, "ctrlc", [{"name": "work", "command": "sleep 300"}])
    proc = launch_bg(cluster["inventory"], cluster["runs"], job)
    try:
        run_id = wait_for_run(cluster["runs"], 20)
        wait_for(lambda: len(sleepers(run_id)) == 2, 30, "both workers")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, out
    assert not run_processes(run_id)
    assert _state(cluster, run_id)["status"] == "interrupted"
