"""The online sources: weights from a base URL or ModelScope, dataset shards from a URL list
(`assets.yml`), and the image pulled from a registry (`ascend_image_source: pull`).

The files are served over HTTP from the simulator's bridge address (the control machine's side of
the simulated network), with Range support, so the nodes download them as they would from a
mirror; nothing leaves the machine. ModelScope's hub is not reachable here, so its CLI is stood in
for by a script that takes the same command line and copies the tiny model. The registry is a
test server with the simulator's saved image, at the same address.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from http_files import FileServer
from oci_registry import Registry
from test_provision import assert_ok, recap, run_playbook, sh, stack_vars

pytestmark = pytest.mark.integration

MODEL_DEST = "/mnt/data/online/Qwen25Math7B"
DATASET_DEST = "/mnt/data/online/OpenR1Math220K"


@pytest.fixture(scope="module")
def cluster(sim_cluster_factory: Any) -> Iterator[Any]:
    with sim_cluster_factory(nodes=1) as sim:
        yield sim


@pytest.fixture(scope="module")
def mirror(cluster: Any) -> Iterator[FileServer]:
    stack = stack_vars(cluster)
    roots = {"model": Path(stack["model_assets_model_local_dir"]),
             "data": Path(stack["model_assets_dataset_local_dir"])}
    with FileServer(roots, host=cluster.config.host_ip) as server:
        yield server


def online_vars(cluster: Any, mirror: FileServer) -> list[str]:
    shards = sorted(stack_vars(cluster)["model_assets_dataset_sha256"])
    return ["-e", json.dumps({
        "model_assets_model_source": "url",
        "model_assets_model_url": mirror.url("model/"),
        "model_assets_model_dest": MODEL_DEST,
        "model_assets_dataset_source": "urls",
        "model_assets_dataset_urls": [mirror.url(f"data/{name}") for name in shards],
        "model_assets_dataset_dest": DATASET_DEST,
    })]


def sha256_on_node(cluster: Any, directory: str) -> dict[str, str]:
    out = sh(cluster, 0, f"cd {directory} && find . -type f -print0 | xargs -0 sha256sum")
    return {name.removeprefix("./"): digest for digest, name in (line.split(maxsplit=1) for line in out.splitlines())}


@pytest.fixture(scope="module")
def downloaded(cluster: Any, mirror: FileServer) -> Any:
    assert_ok(run_playbook(cluster, "playbooks/assets.yml", *online_vars(cluster, mirror)), cluster.nodes)
    return cluster


def test_weights_and_shards_arrive_from_the_urls_with_their_manifest_checksums(downloaded: Any,
                                                                              mirror: FileServer) -> None:
    stack = stack_vars(downloaded)
    assert sha256_on_node(downloaded, MODEL_DEST) == stack["model_assets_model_sha256"]
    assert sha256_on_node(downloaded, DATASET_DEST) == stack["model_assets_dataset_sha256"]
    fetched = {r.path for r in mirror.requests if r.status == 200}
    assert {f"/data/{name}" for name in stack["model_assets_dataset_sha256"]} <= fetched


def test_second_run_downloads_nothing(downloaded: Any, mirror: FileServer) -> None:
    before = len(mirror.requests)
    summary = assert_ok(run_playbook(downloaded, "playbooks/assets.yml", *online_vars(downloaded, mirror)),
                        downloaded.nodes)
    assert all(s["changed"] == 0 for s in summary.values())
    assert mirror.requests[before:] == []


def test_interrupted_shard_download_resumes_where_it_stopped(downloaded: Any, mirror: FileServer) -> None:
    name = sorted(stack_vars(downloaded)["model_assets_dataset_sha256"])[0]
    shard = f"{DATASET_DEST}/{name}"
    # What an interrupted download leaves: the first part of the file next to where it goes.
    sh(downloaded, 0, f"head -c 1000 {shard} > {shard}.part && rm {shard}")
    before = len(mirror.requests)
    proc = run_playbook(downloaded, "playbooks/assets.yml", *online_vars(downloaded, mirror))
    assert_ok(proc, downloaded.nodes)
    assert [(r.path, r.range, r.status) for r in mirror.requests[before:]] == [(f"/data/{name}", "bytes=1000-", 206)]
    assert sha256_on_node(downloaded, DATASET_DEST)[name] == stack_vars(downloaded)["model_assets_dataset_sha256"][name]
    assert sh(downloaded, 0, f"ls {DATASET_DEST}").split().count(f"{name}.part") == 0


def test_a_shard_that_differs_from_the_manifest_fails_naming_it_and_leaves_nothing(downloaded: Any,
                                                                                  mirror: FileServer) -> None:
    stack = stack_vars(downloaded)
    name = sorted(stack["model_assets_dataset_sha256"])[1]
    wrong = {**stack["model_assets_dataset_sha256"], name: "0" * 64}
    sh(downloaded, 0, f"rm {DATASET_DEST}/{name}")
    proc = run_playbook(downloaded, "playbooks/assets.yml", *online_vars(downloaded, mirror),
                        "-e", json.dumps({"model_assets_dataset_sha256": wrong}))
    assert proc.returncode != 0 and recap(proc)[downloaded.nodes[0]]["failed"] > 0
    assert f"data/{name} has sha256" in proc.stdout and "the manifest says" in proc.stdout
    listed = sh(downloaded, 0, f"ls {DATASET_DEST}").split()
    assert name not in listed and f"{name}.part" not in listed


def test_modelscope_source_runs_the_cli_with_the_model_id_and_checks_what_it_wrote(downloaded: Any) -> None:
    stack = stack_vars(downloaded)
    # The simulated nodes see the control machine's files, so the stand-in CLI lives in the state dir.
    cli = Path(downloaded.state_dir) / "fake-modelscope"
    cli.write_text(
        "#!/bin/sh\n"
        'echo "$@" > /tmp/modelscope-argv\n'
        '[ "$1" = download ] && [ "$2" = --model ] && [ "$4" = --local_dir ] || exit 2\n'
        f'cp -r {stack["model_assets_model_local_dir"]}/. "$5"\n'
    )
    cli.chmod(cli.stat().st_mode | stat.S_IXUSR)
    dest = "/mnt/data/online/from-modelscope"
    proc = run_playbook(downloaded, "playbooks/assets.yml", "-e", json.dumps({
        "model_assets_model_source": "modelscope",
        "model_assets_model_id": "Qwen/Qwen2.5-Math-7B",
        "model_assets_modelscope_command": [str(cli)],
        "model_assets_model_dest": dest,
        "model_assets_dataset_source": "none",
    }))
    assert_ok(proc, downloaded.nodes)
    argv = sh(downloaded, 0, "cat /tmp/modelscope-argv").split()
    assert argv == ["download", "--model", "Qwen/Qwen2.5-Math-7B", "--local_dir", dest]
    assert sha256_on_node(downloaded, dest) == stack["model_assets_model_sha256"]


def test_image_source_pull_pulls_a_missing_image_once(cluster: Any) -> None:
    sim_vars: dict[str, Any] = {}
    for path in sorted((Path(cluster.inventory_dir) / "group_vars" / "all").glob("*.yml")):
        sim_vars.update(yaml.safe_load(path.read_text()) or {})
    with Registry(Path(sim_vars["ascend_image_tarball"]), "mindformers/pull-test", "1",
                  host=cluster.config.host_ip) as registry:
        # The test registry speaks plain HTTP, as a site mirror without TLS would.
        conf = "/etc/containers/registries.conf.d/zz-test-registry.conf"
        sh(cluster, 0, f"mkdir -p {Path(conf).parent} && printf '[[registry]]\\nlocation = \"{registry.address}\"\\n"
                       f"insecure = true\\n' > {conf}")
        pull = ["--tags", "ascend_image", "-e", json.dumps({
            "ascend_image_source": "pull",
            "ascend_image_name": f"{registry.address}/mindformers/pull-test",
            "ascend_image_tag": "1",
        })]
        try:
            summary = assert_ok(run_playbook(cluster, "playbooks/provision.yml", *pull), cluster.nodes)
            assert summary[cluster.nodes[0]]["changed"] == 1
            assert ("GET", "/v2/mindformers/pull-test/manifests/1", 200) in registry.requests
            assert sh(cluster, 0, f"podman image inspect --format '{{{{.Id}}}}' {registry.ref}").strip()
            asked = len(registry.requests)
            summary = assert_ok(run_playbook(cluster, "playbooks/provision.yml", *pull), cluster.nodes)
            assert summary[cluster.nodes[0]]["changed"] == 0 and registry.requests[asked:] == []

            # A tag the registry does not have: the failure names the host, the image and the ways out.
            missing = [*pull[:-1], json.dumps({**json.loads(pull[-1]), "ascend_image_tag": "no-such-tag",
                                               "ascend_image_pull_retries": 0})]
            proc = run_playbook(cluster, "playbooks/provision.yml", *missing)
            text = " ".join(proc.stdout.split())
            assert proc.returncode != 0
            assert f"{cluster.nodes[0]}: `podman pull {registry.address}/mindformers/pull-test:no-such-tag` failed" in text
            assert "ascend_image_source: tarball" in text
        finally:
            cluster.ssh(0, f"podman rmi -f {registry.ref}; rm -f {conf}", check=False)
