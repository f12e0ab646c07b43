"""The main pipeline on nodes that do not share a filesystem (`cluster.storage: local`).

Each simulated node has its own /mnt/data. The runner must copy what the other nodes need
(preprocessed data, the converted checkpoint) node to node, tell MindSpeed-LLM
`--no-shared-storage`, and gather the training checkpoint on node 0 for generate and export.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_provision import assert_ok, run_playbook, sh

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
JOB = REPO / "jobs" / "sim-openr1-sft.yaml"


@pytest.fixture(scope="module")
def provisioned(sim_cluster_factory: Any) -> Iterator[Any]:
    with sim_cluster_factory(nodes=2, storage="local") as sim:
        assert_ok(run_playbook(sim, "site.yml"), sim.nodes)
        yield sim


def test_pipeline_on_local_storage_trains_on_both_nodes_and_exports_on_node0(provisioned: Any,
                                                                             tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    proc = subprocess.run(
        [sys.executable, "-m", "runner.cli.main", "launch", str(JOB), "--nodes", "2",
         "-i", str(provisioned.inventory_dir), "--runs-dir", str(runs), "--set", "cluster.storage=local"],
        cwd=REPO, capture_output=True, text=True, timeout=1500, stdin=subprocess.DEVNULL,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]

    (run_dir,) = list(runs.glob("sim-openr1-sft-*"))
    state = json.loads((run_dir / "state.json").read_text())
    assert state["status"] == "succeeded"
    assert sorted({s["name"]: s for s in state["stages"]}["train"]["nodes"]) == ["0", "1"]
    train_script = run_dir / "scripts" / "node1" / "train.sh"
    assert "--no-shared-storage" in train_script.read_text()

    # node1 trained from its own copy of the converted checkpoint and the preprocessed data.
    assert sh(provisioned, 1, "ls /mnt/data/Qwen25Math7B_transfered").strip()
    assert sh(provisioned, 1, "ls /mnt/data/OpenR1Math220K_handled").strip()
    # The export ran on node 0, from the checkpoint gathered there.
    config = json.loads(sh(provisioned, 0, "cat /mnt/data/Qwen25Math7B_hf_export/mg2hf/config.json"))
    assert config["num_hidden_layers"] == 4
    assert sh(provisioned, 1, "test -e /mnt/data/Qwen25Math7B_hf_export && echo there || echo absent").strip() == "absent"
