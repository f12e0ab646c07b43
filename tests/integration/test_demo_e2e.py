"""The README's first command, end to end: `scripts/demo.sh` (what `make demo` runs) brings up a
simulated 2-node cluster, provisions it with site.yml, runs preprocess -> convert -> train ->
generate -> export with `runner launch`, copies the exported model out and takes the cluster down.

It runs on a private cluster (own state directory, inventory, prefix, subnet and runs directory), so
it never touches a cluster a developer has up.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PREFIX = "ardemo"

pytestmark = pytest.mark.integration


@pytest.fixture
def private_demo(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("the simulated cluster needs root (network namespaces, mounts, podman)")
    state = REPO / f".simtest-demo-{os.getpid()}"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "RUNNER_SIM_DIR": str(state),
        "DEMO_INVENTORY": str(state / "inventory"),
        "DEMO_SIM_OPTIONS": f"--prefix {PREFIX} --subnet 10.247.0.0/24",
        "RUNNER_RUNS_DIR": str(tmp_path / "runs"),
    }
    try:
        yield env, tmp_path / "runs"
    finally:
        subprocess.run([sys.executable, "-m", "runner.cli.main", "sim", "down", "--state-dir", str(state)],
                       cwd=REPO, env=env, capture_output=True)
        shutil.rmtree(state, ignore_errors=True)


def test_demo_runs_the_whole_pipeline_and_leaves_nothing_behind(private_demo) -> None:
    env, runs = private_demo
    result = subprocess.run(["bash", "scripts/demo.sh"], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=1500)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    assert "run sim-openr1-sft-" in out and "succeeded" in out

    (run_dir,) = list(runs.glob("sim-openr1-sft-*"))
    state = json.loads((run_dir / "state.json").read_text())
    assert state["status"] == "succeeded"
    stages = {s["name"]: s for s in state["stages"]}
    assert list(stages) == ["preprocess", "convert", "train", "generate", "export"]
    assert all(s["state"] == "succeeded" for s in stages.values())
    assert sorted(stages["train"]["nodes"]) == ["0", "1"]  # training ran on both nodes

    # The exported Hugging Face model, TP1/PP1, with its config and tokenizer, outside the cluster.
    export = run_dir / "export"
    assert f"copied to:\n  {run_dir}/export/" in out
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in export.iterdir()}
    config = json.loads((export / "config.json").read_text())
    assert config["num_hidden_layers"] == 4 and config["model_type"] == "qwen2"

    # One log stream, saved per node and rank.
    assert "[node0]" in out and "[node1]" in out
    assert {p.name for p in (run_dir / "logs" / "node1" / "train").iterdir()} >= {"worker_2.log", "worker_3.log"}

    # The cluster is gone: no namespace, bridge or veth with the demo's prefix.
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    assert PREFIX not in netns and PREFIX not in links
