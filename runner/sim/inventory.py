"""inventory/sim/: the Ansible inventory of a simulated cluster (names from docs/contracts.md).

hosts.yml has group `ascend` in node order; group_vars/all/sim.yml says how to reach the nodes
and how provisioning must treat them (podman, image from a tarball, storage mode). The
version manifest is not ours: versions.yml is a link to the example site's.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from runner.sim import keys
from runner.sim.config import REPO_ROOT, SimConfig

MARKER = ".written-by-runner-sim"
EXAMPLE_VERSIONS = REPO_ROOT / "inventory" / "example" / "group_vars" / "all" / "versions.yml"
DEFAULT_IMAGE = ("localhost/ascend-runner-sim", "latest")
HEADER = "# Written by `runner sim up`; removed by `runner sim down`. Do not edit: re-run `runner sim up`.\n"


HOST_LIMITS = """\
# The simulated hosts share this machine's disk: the 200 GB free a real Qwen2.5-7B fine-tune needs
# is not there, and the stand-in model and data need little. Every other preflight check is as on a
# real site.
ascend_preflight_min_free_disk_gb: 20
"""


def image_reference() -> tuple[str, str, bool]:
    """Image name and tag the cluster's tarball must carry, and whether versions.yml sets them.

    The simulator's image carries the manifest's own name and tag, so provisioning loads and
    runs it exactly as it would the real image at an offline site.
    """
    try:
        manifest = yaml.safe_load(EXAMPLE_VERSIONS.read_text()) or {}
    except (OSError, yaml.YAMLError):
        manifest = {}
    name, tag = manifest.get("ascend_image_name"), manifest.get("ascend_image_tag")
    if name and tag:
        return str(name), str(tag), True
    return DEFAULT_IMAGE[0], DEFAULT_IMAGE[1], False


def group_vars(cfg: SimConfig, tarball: Path, sha256: str, image: tuple[str, str, bool]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(cfg.client_key),
        "ansible_ssh_common_args": " ".join(keys.ssh_options(cfg)),
        "ansible_python_interpreter": "/usr/bin/python3",
        "ascend_container_engine": "podman",
        "ascend_image_source": "tarball",
        "ascend_image_tarball": str(tarball),
        "ascend_image_sha256": sha256,
        "ascend_storage": cfg.storage,
        "ascend_data_dir": "/mnt/data",
        "ascend_npu_count": cfg.npus,
        "ascend_container_extra_volumes": [f"{p}:{p}:ro" for p in cfg.python_prefixes],
    }
    if not image[2]:
        values["ascend_image_name"], values["ascend_image_tag"] = image[0], image[1]
    return values


def write(cfg: SimConfig, tarball: Path, sha256: str, image: tuple[str, str, bool]) -> Path:
    inv = cfg.inventory_dir
    if inv.exists() and any(inv.iterdir()) and not (inv / MARKER).exists():
        from runner.errors import SimError

        raise SimError(
            f"{inv} exists and was not written by the simulator; refusing to overwrite it",
            hint="pass another `--inventory` directory or move that one away",
        )
    (inv / "group_vars" / "all").mkdir(parents=True, exist_ok=True)
    (inv / MARKER).write_text(f"{cfg.state_dir}\n")
    hosts = {
        "all": {
            "children": {
                "ascend": {"hosts": {cfg.node_name(k): {"ansible_host": cfg.node_ip(k)} for k in range(cfg.nodes)}}
            }
        }
    }
    (inv / "hosts.yml").write_text(HEADER + yaml.safe_dump(hosts, sort_keys=False))
    (inv / "group_vars" / "all" / "sim.yml").write_text(
        HEADER + yaml.safe_dump(group_vars(cfg, tarball, sha256, image), sort_keys=False, width=200)
    )
    (inv / "group_vars" / "all" / "sim-host-limits.yml").write_text(HEADER + HOST_LIMITS)
    versions = inv / "group_vars" / "all" / "versions.yml"
    if EXAMPLE_VERSIONS.exists() and not versions.exists():
        versions.symlink_to(os.path.relpath(EXAMPLE_VERSIONS, versions.parent))
    return inv


def remove(inventory_dir: Path) -> None:
    """Delete the inventory if (and only if) the simulator wrote it."""
    if (inventory_dir / MARKER).exists():
        shutil.rmtree(inventory_dir, ignore_errors=True)
