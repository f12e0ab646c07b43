"""Provisioning inputs of the simulated cluster: the stand-in stack, tiny model and sample data.

``runner sim up`` calls ``write_sim_inventory_vars`` last. It builds (or reuses, everything is
cached under ``state_dir``) the stand-in git bundles, the tiny model and the sample dataset,
and writes ``<inventory_dir>/group_vars/ascend/stack.yml`` with the variables of
docs/contracts.md "Provisioning inputs the simulator also writes", so provisioning runs
offline against the simulator exactly as it would at an offline site.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from runner.standin.bundles import build_bundles
from runner.standin.sample_data import make_sample_dataset
from runner.standin.tiny_model import make_tiny_model

# group_vars/ascend/ wins over group_vars/all/ (versions.yml), so the stand-in refs are the ones used.
STACK_FILE = Path("group_vars") / "ascend" / "stack.yml"
HEADER = ("# Written by `runner sim up` (runner/standin/simvars.py): the simulator's stand-in MindSpeed\n"
          "# stack (TEST DOUBLES, not MindSpeed), tiny model and sample data. Rewritten on every\n"
          "# `runner sim up`; do not edit.\n")


def sim_stack_vars(state_dir: Path, data_dir: str = "/mnt/data") -> dict[str, Any]:
    """Build or reuse the assets under ``state_dir/standin`` and return the inventory variables."""
    root = Path(state_dir).resolve() / "standin"
    repos = build_bundles(root / "bundles")
    model_dir = root / "Qwen25Math7B-tiny"
    dataset_dir = root / "OpenR1Math220K"
    model_sha = make_tiny_model(model_dir)
    dataset_sha = make_sample_dataset(dataset_dir)
    return {
        "mindspeed_stack_source": "bundle",
        "mindspeed_stack_bundle_dir": str(root / "bundles"),
        "mindspeed_stack_refs": {name: info.sha for name, info in repos.items()},
        "model_assets_model_source": "local",
        "model_assets_model_local_dir": str(model_dir),
        "model_assets_model_dest": f"{data_dir}/Qwen25Math7B",
        "model_assets_model_sha256": model_sha,
        "model_assets_dataset_source": "local",
        "model_assets_dataset_local_dir": str(dataset_dir),
        "model_assets_dataset_dest": f"{data_dir}/OpenR1Math220K",
        "model_assets_dataset_sha256": dataset_sha,
    }


def write_sim_inventory_vars(inventory_dir: Path, state_dir: Path) -> None:
    """Write ``inventory_dir/group_vars/ascend/stack.yml`` for the simulated cluster."""
    variables = sim_stack_vars(state_dir)
    target = Path(inventory_dir) / STACK_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    text = HEADER + yaml.safe_dump(variables, sort_keys=False, default_flow_style=False)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
