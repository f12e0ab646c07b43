"""`site.yml` with every non-default choice: PyTorch backend, local storage, another container
name, a subset of the NPUs, extra environment, a private IPC namespace with its own shm size."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from test_provision import assert_ok, run_playbook, sh, stack_vars

pytestmark = pytest.mark.integration

OPTIONS = [
    "-e", "mindspeed_backend=pytorch",
    "-e", "ascend_container_name=npu-job",
    "-e", '{"ascend_container_devices": [0, 1, 2, 3]}',
    "-e", '{"ascend_container_env": {"HCCL_CONNECT_TIMEOUT": "1200"}}',
    "-e", "ascend_container_ipc=private",
    "-e", "ascend_container_shm_size=2g",
]


@pytest.fixture(scope="module")
def local_cluster(sim_cluster_factory: Any) -> Iterator[Any]:
    with sim_cluster_factory(nodes=2, storage="local") as sim:
        yield sim


@pytest.fixture(scope="module")
def converged(local_cluster: Any) -> Any:
    assert_ok(run_playbook(local_cluster, "site.yml", *OPTIONS), local_cluster.nodes)
    return local_cluster


def test_second_run_with_options_changes_nothing(converged: Any) -> None:
    summary = assert_ok(run_playbook(converged, "site.yml", *OPTIONS), converged.nodes)
    assert all(s["changed"] == 0 for s in summary.values())


def test_container_has_the_chosen_name_devices_env_and_shm(converged: Any) -> None:
    for k in range(len(converged.nodes)):
        info = json.loads(sh(converged, k, "podman container inspect npu-job"))[0]
        devices = sorted(d["PathOnHost"] for d in info["HostConfig"]["Devices"])
        assert devices == ["/dev/davinci0", "/dev/davinci1", "/dev/davinci2", "/dev/davinci3",
                           "/dev/davinci_manager", "/dev/devmm_svm", "/dev/hisi_hdc"]
        assert "HCCL_CONNECT_TIMEOUT=1200" in info["Config"]["Env"]
        assert info["HostConfig"]["ShmSize"] == 2 * 1024**3
        assert "ascend-train" not in sh(converged, k, "podman ps -a --format '{{.Names}}'")


def test_pytorch_stack_on_every_node_with_megatron_inside_mindspeed_llm(converged: Any) -> None:
    refs = stack_vars(converged)["mindspeed_stack_refs"]
    stack = "/mnt/data/MindSpeed-Stack"
    for k in range(len(converged.nodes)):  # local storage: each node has its own checkout
        for repo in ("MindSpeed", "MindSpeed-LLM", "Megatron-LM"):
            assert sh(converged, k, f"git -C {stack}/{repo} rev-parse HEAD").strip() == refs[repo], repo
        assert sh(converged, k, f"cat {stack}/MindSpeed-LLM/megatron/.ascend-runner-megatron-ref").strip() == refs["Megatron-LM"]
        assert sh(converged, k, f"diff -r -x .ascend-runner-megatron-ref {stack}/Megatron-LM/megatron "
                                f"{stack}/MindSpeed-LLM/megatron && echo same").strip() == "same"
        env = sh(converged, k, f"cat {stack}/runner-env.sh")
        assert f"export PYTHONPATH={stack}/MindSpeed:{stack}/MindSpeed-LLM" in env
        facts = json.loads(sh(converged, k, "cat /etc/ascend-runner/facts.json"))
        assert facts["container"]["name"] == "npu-job" and facts["stack"]["backend"] == "pytorch"


def test_assets_fetched_on_every_node(converged: Any) -> None:
    manifest = stack_vars(converged)["model_assets_dataset_sha256"]
    for k in range(len(converged.nodes)):
        listed = sh(converged, k, "ls /mnt/data/OpenR1Math220K").split()
        assert sorted(listed) == sorted(manifest)


def test_teardown_with_options_removes_the_container(converged: Any) -> None:
    assert_ok(run_playbook(converged, "playbooks/teardown.yml", *OPTIONS), converged.nodes)
    for k in range(len(converged.nodes)):
        assert sh(converged, k, "podman ps -a --format '{{.Names}}'").split() == []
