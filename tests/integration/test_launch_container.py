"""Stages in the node's NPU container: the supervisor runs inside it, so a stop reaches the stage.

(Killing a `podman exec` client does not stop what it started in the container.) The "nodes" are
this machine (`ansible_connection: local`) and one throwaway podman container whose root is the
machine's own root through an overlay, so it has the same Python.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.cli.main import main

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for podman"),
    pytest.mark.skipif(shutil.which("podman") is None, reason="no podman"),
]


@pytest.fixture
def container(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    conf = tmp_path / "containers.conf"
    # Settings that work on these machines (see sim-notes): runc, cgroupfs, no default ulimits.
    conf.write_text('[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n')
    monkeypatch.setenv("CONTAINERS_CONF", str(conf))
    name = f"runner-test-{os.getpid()}"
    data = tmp_path / "data"
    data.mkdir()
    subprocess.run(
        [
            "podman",
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "host",
            "-v",
            f"{data}:{data}",
            "--rootfs",
            "/:O",
            "sleep",
            "infinity",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  children:\n    ascend:\n      hosts:\n        c0: {}\n        c1: {}\n      vars:\n"
        "        ansible_connection: local\n        ansible_host: 127.0.0.1\n        ascend_run_in: container\n"
        f"        ascend_container_engine: podman\n        ascend_container_name: {name}\n"
        f"        ascend_data_dir: {data}\n"
    )
    try:
        yield {"name": name, "inventory": inventory, "runs": tmp_path / "runs", "tmp": tmp_path}
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "0", name], capture_output=True, timeout=120)


def _in_container(name: str) -> list[str]:
    out = subprocess.run(
        ["podman", "exec", name, "ps", "-eo", "stat=,args="], capture_output=True, text=True, check=True
    ).stdout
    return [line.split(None, 1)[1] for line in out.splitlines() if not line.strip().startswith("Z")]


def test_a_failing_node_stops_the_stage_inside_the_container(container: dict, capsys) -> None:  # type: ignore[no-untyped-def]
    job = container["tmp"] / "job.yaml"
    job.write_text(
        json.dumps(
            {
                "name": "ct",
                "cluster": {"npus_per_node": 2},
                "stages": [
                    {"name": "hello", "command": 'echo "rank $NODE_RANK pid1=$(tr "\\0" " " < /proc/1/cmdline)"'},
                    {"name": "work", "command": 'if [ "$NODE_RANK" = 1 ]; then sleep 1; exit 5; fi; exec sleep 300'},
                ],
            }
        )
    )
    code = main(
        ["launch", str(job), "--nodes", "2", "-i", str(container["inventory"]), "--runs-dir", str(container["runs"])]
    )
    out = capsys.readouterr()
    assert code == 1
    assert "[node1] rank 1 pid1=sleep infinity" in out.out  # the stage ran inside the container
    assert "failed first on node1 (c1): exit code 5" in out.err
    assert not [p for p in _in_container(container["name"]) if "sleep 300" in p or "supervisor.py" in p]
