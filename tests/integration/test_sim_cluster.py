"""The simulated Atlas 800T A2 cluster, checked the way a user and the playbooks see it:
over real SSH with host keys checked, through npu-smi/hccn_tool, podman and msrun."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import paramiko
import pytest

pytestmark = pytest.mark.integration

ALLREDUCE = """\
import numpy as np
import mindspore as ms
from mindspore import ops
from mindspore.communication import get_group_size, get_rank, init

ms.set_device("CPU")
init()
rank, size = get_rank(), get_group_size()
out = ops.AllReduce()(ms.Tensor(np.full((4,), rank + 1, dtype=np.float32)))
print(f"ALLREDUCE rank={rank} size={size} sum={out.asnumpy().tolist()}", flush=True)
"""


def test_ssh_reaches_every_node_with_host_key_checking(sim_cluster):
    for k, name in enumerate(sim_cluster.nodes):
        assert sim_cluster.ssh(k, "hostname").stdout.strip() == name


def test_ssh_refuses_a_node_whose_host_key_does_not_match(sim_cluster, tmp_path):
    # node1's key recorded under node0's address: the client must refuse to connect.
    lines = sim_cluster.config.known_hosts.read_text().splitlines()
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"{sim_cluster.ips[0]} {' '.join(lines[1].split()[1:])}\n")
    argv = [a if not a.startswith("UserKnownHostsFile=") else f"UserKnownHostsFile={wrong}"
            for a in sim_cluster.ssh_argv(0)]  # fmt: skip
    proc = subprocess.run([*argv, "true"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 255
    assert "host key" in proc.stderr.lower()


def test_paramiko_connects_with_the_simulator_known_hosts(sim_cluster):
    for k, ip in enumerate(sim_cluster.ips):
        client = paramiko.SSHClient()
        client.load_host_keys(str(sim_cluster.config.known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(ip, username="root", key_filename=str(sim_cluster.config.client_key),
                           look_for_keys=False, allow_agent=False, timeout=10)  # fmt: skip
            _, out, _ = client.exec_command("hostname", timeout=30)
            assert out.read().decode().strip() == sim_cluster.nodes[k]
        finally:
            client.close()


def test_inventory_lists_nodes_in_rank_order_for_ansible(sim_cluster):
    proc = subprocess.run(
        [_tool("ansible-inventory"), "-i", str(sim_cluster.inventory_dir), "--list"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    inv = json.loads(proc.stdout)
    assert inv["ascend"]["hosts"] == sim_cluster.nodes
    hostvars = inv["_meta"]["hostvars"]["node0"]
    assert hostvars["ansible_host"] == sim_cluster.ips[0]
    assert "StrictHostKeyChecking=yes" in hostvars["ansible_ssh_common_args"]
    assert hostvars["ascend_container_engine"] == "podman"
    assert hostvars["ascend_image_source"] == "tarball"
    assert Path(hostvars["ascend_image_tarball"]).is_file()


def test_ansible_runs_a_module_on_every_node(sim_cluster):
    proc = subprocess.run(
        [_tool("ansible"), "-i", str(sim_cluster.inventory_dir), "ascend", "-m", "command", "-a", "hostname", "-o"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in sim_cluster.nodes:
        assert re.search(rf"^{name} \| CHANGED \| rc=0 \| \(stdout\) {name}$", proc.stdout, re.M)


def test_new_node_shows_eight_healthy_910b3_npus(sim_cluster):
    out = sim_cluster.ssh(0, "npu-smi info").stdout
    rows = re.findall(r"^\| (\d)\s+910B3\s+\| (\S+)", out, re.M)
    assert rows == [(str(k), "OK") for k in range(8)]
    assert "No running processes found in NPU 7" in out
    assert "Total Count                    : 8" in sim_cluster.ssh(0, "npu-smi info -l").stdout


def test_each_node_has_its_own_devices_files_and_versions(sim_cluster):
    sim_cluster.fault("node1", "driver", "23.0.3")
    try:
        for k in range(2):
            out = sim_cluster.ssh(
                k,
                "for d in /dev/davinci0 /dev/davinci7 /dev/davinci_manager /dev/devmm_svm /dev/hisi_hdc; "
                "do test -c $d || echo missing $d; done; "
                "grep ^package_version= /usr/local/Ascend/driver/version.info; "
                "hccn_tool -i 0 -ip -g; hostname; test -f /etc/hccn.conf && test -f /etc/ascend_install.info; "
                ". /usr/local/Ascend/ascend-toolkit/set_env.sh; echo toolkit=$ASCEND_TOOLKIT_HOME; "
                "bash -c '. /usr/local/Ascend/nnal/atb/set_env.sh; echo atb=$ATB_HOME_PATH'",
            ).stdout
            assert "missing" not in out
            assert f"ipaddr:10.20.{k}.2" in out
            assert "toolkit=/usr/local/Ascend/ascend-toolkit/latest" in out
            assert "atb=/usr/local/Ascend/nnal/atb/latest/atb/cxx_abi_1" in out
        assert "package_version=25.2.0" in sim_cluster.ssh(0, "cat /usr/local/Ascend/driver/version.info").stdout
        assert "package_version=23.0.3" in sim_cluster.ssh(1, "cat /usr/local/Ascend/driver/version.info").stdout
        assert "npu-smi 23.0.3" in sim_cluster.ssh(1, "npu-smi info").stdout
        assert "npu-smi 25.2.0" in sim_cluster.ssh(0, "npu-smi info").stdout
        # A file written on one node's /etc stays on that node, and off the machine.
        sim_cluster.ssh(0, "echo mine > /etc/ascend-sim-probe")
        assert sim_cluster.ssh(1, "test -e /etc/ascend-sim-probe", check=False).returncode == 1
        assert not Path("/etc/ascend-sim-probe").exists()
    finally:
        sim_cluster.fault("node1", "restore")


def test_npu_faults_show_in_npu_smi_and_hccn_tool(sim_cluster):
    sim_cluster.fault("node1", "npu", "3", "health", "Critical")
    sim_cluster.fault("node1", "npu", "5", "health", "warning")
    sim_cluster.fault("node1", "npu", "2", "busy", "4242", "python3")
    sim_cluster.fault("node1", "link", "4", "down")
    sim_cluster.fault("node1", "ip", "6", "missing")
    try:
        info = sim_cluster.ssh(1, "npu-smi info").stdout
        assert re.search(r"^\| 3\s+910B3\s+\| Critical ", info, re.M)
        assert re.search(r"^\| 5\s+910B3\s+\| Warning ", info, re.M)
        assert re.search(r"^\| 2       0\s+\| 4242\s+\| python3\s+\| 51277\s+\|$", info, re.M)
        assert "No running processes found in NPU 2" not in info
        health = sim_cluster.ssh(1, "npu-smi info -t health -i 3 -c 0").stdout
        assert "Health Status                  : Critical" in health
        assert sim_cluster.ssh(1, "hccn_tool -i 4 -link -g").stdout == "link status: DOWN\n"
        assert sim_cluster.ssh(1, "hccn_tool -i 4 -net_health -g").stdout == "net health status: Fault\n"
        assert "ipaddr" not in sim_cluster.ssh(1, "hccn_tool -i 6 -ip -g").stdout
        assert sim_cluster.ssh(1, "hccn_tool -i 5 -link -g").stdout == "link status: UP\n"
        # node0 is untouched
        assert "Critical" not in sim_cluster.ssh(0, "npu-smi info").stdout
    finally:
        sim_cluster.fault("node1", "restore")
    assert "Critical" not in sim_cluster.ssh(1, "npu-smi info").stdout


def test_node_loss_stops_everything_and_restore_brings_it_back(sim_cluster):
    from runner.sim.cluster import status

    sim_cluster.ssh(1, "setsid sleep 4343 </dev/null >/dev/null 2>&1 &")
    assert _pids_running("sleep 4343")
    sim_cluster.fault("node1", "down")
    try:
        assert not _pids_running("sleep 4343")
        proc = sim_cluster.ssh(1, "true", check=False, timeout=30)
        assert proc.returncode == 255
        rows = {r.name: r for r in status(sim_cluster.config)}
        assert not rows["node1"].reachable and "node down" in rows["node1"].faults
        assert rows["node0"].reachable
    finally:
        sim_cluster.fault("node1", "restore")
    assert sim_cluster.ssh(1, "hostname").stdout.strip() == "node1"


def test_shared_storage_is_one_directory(sim_cluster):
    sim_cluster.ssh(0, "echo from-node0 > /mnt/data/shared-probe")
    try:
        assert sim_cluster.ssh(1, "cat /mnt/data/shared-probe").stdout == "from-node0\n"
    finally:
        sim_cluster.ssh(0, "rm -f /mnt/data/shared-probe")


def test_local_storage_is_one_directory_per_node(sim_cluster_factory):
    with sim_cluster_factory(nodes=2, npus=2, storage="local") as local:
        local.ssh(0, "echo from-node0 > /mnt/data/local-probe")
        assert local.ssh(1, "test -e /mnt/data/local-probe", check=False).returncode == 1
        assert local.ssh(0, "cat /mnt/data/local-probe").stdout == "from-node0\n"


def test_image_tarball_loads_and_runs_python_and_mindspore_in_a_node_container(sim_cluster):
    import yaml

    gv = yaml.safe_load((sim_cluster.inventory_dir / "group_vars" / "all" / "sim.yml").read_text())
    tarball, sha = gv["ascend_image_tarball"], gv["ascend_image_sha256"]
    assert sim_cluster.ssh(0, f"sha256sum {tarball}").stdout.split()[0] == sha
    volumes = " ".join(f"-v {v}" for v in gv["ascend_container_extra_volumes"])
    python = f"{sim_cluster.config.python_prefixes[0]}/bin/python"
    script = (
        f"set -e; ref=$(docker load -q -i {tarball} | sed -n 's/^Loaded image: //p'); "
        "docker run -d --name sim-probe --network host --device /dev/davinci0 --device /dev/davinci_manager "
        "--device /dev/devmm_svm --device /dev/hisi_hdc -v /usr/local/Ascend/driver:/usr/local/Ascend/driver:ro "
        f"-v /usr/local/bin/npu-smi:/usr/local/bin/npu-smi:ro {volumes} $ref sleep infinity >/dev/null; "
        "docker exec sim-probe bash -lc 'ls /dev/davinci0; "
        "cat /usr/local/Ascend/ascend-toolkit/latest/*/ascend_toolkit_install.info | grep ^version=; "
        f"npu-smi info -t health -i 0 -c 0 | head -1; {python} -c \"import mindspore; print(mindspore.__version__)\"'"
    )
    try:
        out = sim_cluster.ssh(0, script, timeout=300).stdout
    finally:
        sim_cluster.ssh(0, "docker rm -f sim-probe >/dev/null 2>&1 || true", check=False)
    assert "/dev/davinci0" in out
    assert "version=8.2.RC1" in out
    assert "Health Status                  : OK" in out
    assert re.search(r"^2\.\d+\.\d+", out.splitlines()[-1])


def test_msrun_allreduce_across_two_nodes_gives_the_right_sum(sim_cluster):
    data = sim_cluster.config.data_dir(0)
    (data / "allreduce.py").write_text(ALLREDUCE)
    venv_bin = f"{sim_cluster.config.python_prefixes[0]}/bin"
    procs = [
        subprocess.Popen(
            [
                *sim_cluster.ssh_argv(rank),
                f"cd /mnt/data && PATH={venv_bin}:$PATH msrun --worker_num 4 --local_worker_num 2 "
                f"--master_addr {sim_cluster.ips[0]} --master_port 8118 --node_rank {rank} "
                f"--log_dir /mnt/data/msrun-{rank} --join True --cluster_time_out 120 allreduce.py",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    lines = sorted(
        line
        for log in data.glob("msrun-*/worker_*.log")
        for line in log.read_text(errors="replace").splitlines()
        if line.startswith("ALLREDUCE")
    )
    assert lines == [f"ALLREDUCE rank={r} size=4 sum=[10.0, 10.0, 10.0, 10.0]" for r in range(4)]
    # The workers ran on both nodes.
    assert sorted(p.name for p in data.glob("msrun-*/worker_*.log")) == [f"worker_{r}.log" for r in range(4)]


def _tool(name: str) -> str:
    """A console script of the venv running the tests, else from PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


def _pids_running(pattern: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if pattern in cmd:
            found.append(int(proc.name))
    return found
