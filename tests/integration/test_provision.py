"""`ansible-playbook site.yml` against a simulated cluster: converge, idempotence, check mode,
the state an operator would inspect on the nodes, faults reported by preflight, teardown.

The cluster is offline: the image comes from the simulator's tarball, the MindSpeed stack from
the stand-in git bundles, the model and the shards from the control machine.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def run_playbook(sim: Any, playbook: str, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    """Run a playbook of this repo against the cluster's inventory, as a user would."""
    env = {
        **os.environ,
        "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ.get('PATH', '')}",
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(Path(sim.state_dir) / "ansible-facts"),
        "ANSIBLE_NOCOLOR": "1",
    }
    return subprocess.run(
        ["ansible-playbook", "-i", str(sim.inventory_dir), playbook, *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )


def recap(proc: subprocess.CompletedProcess[str]) -> dict[str, dict[str, int]]:
    return {
        m.group(1): {"ok": int(m.group(2)), "changed": int(m.group(3)), "unreachable": int(m.group(4)),
                     "failed": int(m.group(5))}
        for m in RECAP.finditer(proc.stdout)
    }


def assert_ok(proc: subprocess.CompletedProcess[str], hosts: list[str]) -> dict[str, dict[str, int]]:
    summary = recap(proc)
    tail = proc.stdout[-6000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, f"ansible-playbook exited {proc.returncode}:\n{tail}"
    assert sorted(summary) == sorted(hosts), tail
    assert all(s["failed"] == 0 and s["unreachable"] == 0 for s in summary.values()), tail
    return summary


def stack_vars(sim: Any) -> dict[str, Any]:
    found = sorted(Path(sim.inventory_dir).rglob("stack.yml"))
    assert found, f"no stack.yml in {sim.inventory_dir}"
    return yaml.safe_load(found[0].read_text())


def sh(sim: Any, k: int, command: str) -> str:
    return sim.ssh(k, command).stdout


@pytest.fixture(scope="module")
def cluster(sim_cluster_factory: Any) -> Iterator[Any]:
    with sim_cluster_factory(nodes=2, storage="shared") as sim:
        yield sim


@pytest.fixture(scope="module")
def first_run(cluster: Any) -> subprocess.CompletedProcess[str]:
    return run_playbook(cluster, "site.yml")


def test_site_converges_on_every_node(cluster: Any, first_run: subprocess.CompletedProcess[str]) -> None:
    summary = assert_ok(first_run, cluster.nodes)
    assert all(s["changed"] > 0 for s in summary.values())


def test_second_run_changes_nothing(cluster: Any, first_run: subprocess.CompletedProcess[str]) -> None:
    summary = assert_ok(run_playbook(cluster, "site.yml"), cluster.nodes)
    assert {host: s["changed"] for host, s in summary.items()} == dict.fromkeys(cluster.nodes, 0)


def test_check_diff_run_has_no_failure(cluster: Any, first_run: subprocess.CompletedProcess[str]) -> None:
    summary = assert_ok(run_playbook(cluster, "site.yml", "--check", "--diff"), cluster.nodes)
    assert all(s["changed"] == 0 for s in summary.values())


def test_container_has_exactly_the_devices_and_mounts(cluster: Any, first_run: subprocess.CompletedProcess[str]) -> None:
    npus = cluster.config.npus
    for k in range(len(cluster.nodes)):
        info = json.loads(sh(cluster, k, "podman container inspect ascend-train"))[0]
        host = info["HostConfig"]
        devices = sorted(d["PathOnHost"] for d in host["Devices"])
        assert devices == sorted([f"/dev/davinci{i}" for i in range(npus)]
                                 + ["/dev/davinci_manager", "/dev/devmm_svm", "/dev/hisi_hdc"])
        mounts = {m["Destination"]: (m["Source"], m["RW"]) for m in info["Mounts"]}
        for path in ("/usr/local/Ascend/driver", "/usr/local/dcmi", "/etc/hccn.conf", "/etc/ascend_install.info",
                     "/usr/local/bin/npu-smi"):
            assert mounts.pop(path) == (path, False), path
        assert mounts.pop("/mnt/data") == ("/mnt/data", True)
        extra = {v.split(":")[1] for v in yaml.safe_load(
            (Path(cluster.inventory_dir) / "group_vars" / "all" / "sim.yml").read_text())["ascend_container_extra_volumes"]}
        assert set(mounts) == extra
        assert host["NetworkMode"] == "host"
        assert host["Privileged"] is False
        assert host["PidsLimit"] == 409600
        assert info["State"]["Running"] is True
        assert info["Config"]["Labels"]["ascend-runner.spec"]
        # Host IPC: the container sees the node's own /dev/shm.
        assert sh(cluster, k, "stat -c %i /dev/shm") == sh(cluster, k, "podman exec ascend-train stat -c %i /dev/shm")
        # The devices work through npu-smi in the container, as on a real host.
        assert "910B3" in sh(cluster, k, "podman exec ascend-train npu-smi info")


def test_login_shell_in_container_has_cann_env(cluster: Any, first_run: subprocess.CompletedProcess[str]) -> None:
    for k in range(len(cluster.nodes)):
        out = sh(cluster, k, "podman exec ascend-train bash -lc 'echo $ASCEND_TOOLKIT_HOME; echo $ATB_HOME_PATH; "
                             "echo $ASCEND_OPP_PATH'").split()
        assert out[0] == "/usr/local/Ascend/ascend-toolkit/latest"
        assert out[1].startswith("/usr/local/Ascend/nnal/atb/")
        assert out[2] == "/usr/local/Ascend/ascend-toolkit/latest/opp"


def test_stack_checked_out_at_pinned_ref_and_converted(cluster: Any, first_run: subprocess.CompletedProcess[str]) -> None:
    refs = stack_vars(cluster)["mindspeed_stack_refs"]
    for k in range(len(cluster.nodes)):  # shared storage: both nodes see the one checkout
        core = "/mnt/data/MindSpeed-Core-MS"
        assert sh(cluster, k, f"git -C {core} rev-parse HEAD").strip() == refs["MindSpeed-Core-MS"]
        assert sh(cluster, k, f"git -C {core} status --porcelain --untracked-files=no") == ""
        for repo in ("MindSpeed-LLM", "MindSpeed", "Megatron-LM", "MSAdapter"):
            assert sh(cluster, k, f"git -C {core}/{repo} rev-parse HEAD").strip() == refs[repo], repo
        env = sh(cluster, k, f"cat {core}/runner-env.sh")
        assert f"{core}/MindSpeed-LLM" in env and f"{core}/MSAdapter/mindtorch" in env
        # Sourcing it in the container makes the stand-in MindSpeed-LLM importable.
        out = sh(cluster, k, f"podman exec -w {core}/MindSpeed-LLM ascend-train bash -c "
                             f"'. {core}/runner-env.sh && echo $PYTHONPATH'")
        assert out.startswith(f"{core}/MSAdapter/mindtorch:")


def test_assets_present_and_match_their_manifests(cluster: Any, first_run: subprocess.CompletedProcess[str]) -> None:
    variables = stack_vars(cluster)
    for dest, manifest in ((variables["model_assets_model_dest"], variables["model_assets_model_sha256"]),
                           (variables["model_assets_dataset_dest"], variables["model_assets_dataset_sha256"])):
        for k in range(len(cluster.nodes)):
            lines = sh(cluster, k, "cd " + shlex.quote(dest) + " && sha256sum " +
                       " ".join(shlex.quote(name) for name in sorted(manifest))).splitlines()
            assert {line.split()[1]: line.split()[0] for line in lines} == manifest
    assert len(variables["model_assets_dataset_sha256"]) == 10


def test_facts_file_records_versions_npus_and_container(cluster: Any, first_run: subprocess.CompletedProcess[str]) -> None:
    for k, node in enumerate(cluster.nodes):
        facts = json.loads(sh(cluster, k, "cat /etc/ascend-runner/facts.json"))
        assert facts["host"] == node
        assert facts["container"]["name"] == "ascend-train"
        assert facts["container"]["engine"] == "podman"
        assert facts["driver_version"] == cluster.config.driver_version
        assert facts["cann_version"] == cluster.config.cann_version
        assert facts["npu_count"] == cluster.config.npus
        assert facts["stack"]["commits"]["MindSpeed-Core-MS"] == stack_vars(cluster)["mindspeed_stack_refs"]["MindSpeed-Core-MS"]


def test_changed_spec_waits_for_a_running_job_unless_forced(cluster: Any, first_run: subprocess.CompletedProcess[str]) -> None:
    before = sh(cluster, 1, "podman inspect --format '{{.Id}}' ascend-train").strip()
    sh(cluster, 1, "podman exec -d ascend-train sleep 600")
    try:
        refused = run_playbook(cluster, "playbooks/provision.yml", "--tags", "ascend_container",
                               "-e", "ascend_container_pids_limit=8192")
        assert refused.returncode != 0
        assert "processes run in it" in refused.stdout and "sleep 600" in refused.stdout
        assert "ascend_container_force_recreate" in refused.stdout
        assert sh(cluster, 1, "podman inspect --format '{{.Id}}' ascend-train").strip() == before
        forced = run_playbook(cluster, "playbooks/provision.yml", "--tags", "ascend_container",
                              "-e", "ascend_container_pids_limit=8192", "-e", "ascend_container_force_recreate=true")
        assert_ok(forced, cluster.nodes)
        assert sh(cluster, 1, "podman inspect --format '{{.HostConfig.PidsLimit}}' ascend-train").strip() == "8192"
        assert sh(cluster, 1, "podman inspect --format '{{.Id}}' ascend-train").strip() != before
    finally:
        # Back to the inventory's spec (nothing runs in the recreated container).
        assert_ok(run_playbook(cluster, "playbooks/provision.yml", "--tags", "ascend_container"), cluster.nodes)
    assert sh(cluster, 1, "podman inspect --format '{{.HostConfig.PidsLimit}}' ascend-train").strip() == "409600"


def test_local_changes_are_kept_aside_not_reset(cluster: Any, first_run: subprocess.CompletedProcess[str]) -> None:
    core = "/mnt/data/MindSpeed-Core-MS"
    sh(cluster, 0, f"echo 'my local fix' >> {core}/README.md")
    proc = run_playbook(cluster, "playbooks/provision.yml", "--tags", "mindspeed_stack")
    assert_ok(proc, cluster.nodes)
    assert "had local changes" in proc.stdout
    aside = sh(cluster, 0, f"ls -d {core}.local-changes-*").split()
    assert len(aside) == 1
    assert "my local fix" in sh(cluster, 0, f"cat {aside[0]}/README.md")
    assert "my local fix" not in sh(cluster, 0, f"cat {core}/README.md")
    assert sh(cluster, 0, f"git -C {core} rev-parse HEAD").strip() == stack_vars(cluster)["mindspeed_stack_refs"]["MindSpeed-Core-MS"]
    assert sh(cluster, 0, f"test -f {core}/runner-env.sh && test -d {core}/MindSpeed-LLM && echo yes").strip() == "yes"


def test_preflight_reports_every_fault_of_every_node_at_once(cluster: Any, first_run: subprocess.CompletedProcess[str]) -> None:
    faults = [("node0", "npu", "3", "health", "Critical"), ("node0", "driver", "24.1.rc1"),
              ("node1", "npu", "5", "busy"), ("node1", "link", "2", "down")]
    try:
        for fault in faults:
            cluster.fault(*fault)
        proc = run_playbook(cluster, "playbooks/preflight.yml")
        assert proc.returncode != 0
        out = proc.stdout
        rows = [line.split(None, 4) for line in out.splitlines() if re.match(r"^\s*node\d\s+(\d+|-)\s", line)]
        cells = {(r[0], r[1], r[2] + " " + r[3]) for r in rows if len(r) >= 4}
        assert ("node0", "3", "npu health") in cells
        assert ("node0", "-", "driver version") in cells
        assert ("node1", "5", "npu idle") in cells
        assert ("node1", "2", "npu link") in cells
        assert "npu-smi info -t health -i 3" in out          # the fix for the unhealthy NPU
        assert "upgrade the Ascend driver to 25.2.0" in out   # ... for the old driver
        assert "holding" in out and "NPU 5" in out            # ... for the busy NPU
        assert "NPU 2 port is down" in out                    # ... for the link
        report = json.loads(sh(cluster, 0, "cat /etc/ascend-runner/preflight.json"))
        assert report["ok"] is False
        assert {(c["check"], c["npu"]) for c in report["checks"] if not c["ok"]} >= {("npu health", 3),
                                                                                   ("driver version", "-")}
    finally:
        cluster.fault("node0", "restore")
        cluster.fault("node1", "restore")
    assert_ok(run_playbook(cluster, "playbooks/preflight.yml"), cluster.nodes)


def test_teardown_removes_the_containers(cluster: Any, first_run: subprocess.CompletedProcess[str]) -> None:
    assert_ok(run_playbook(cluster, "playbooks/teardown.yml"), cluster.nodes)
    for k in range(len(cluster.nodes)):
        assert sh(cluster, k, "podman ps -a --format '{{.Names}}'").split() == []
        assert sh(cluster, k, "test -e /etc/ascend-runner/facts.json && echo present || echo gone").strip() == "gone"
