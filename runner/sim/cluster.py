"""Bring a simulated Atlas 800T A2 cluster up, take it down, inject faults, report status.

`up` records the cluster's options in <state_dir>/cluster.json before it creates anything, and
`down` works from that file plus what it finds on the system under the cluster's prefix, so it
also cleans up after a crashed `up` and is harmless when run twice.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from runner.errors import InputError, SimError
from runner.sim import fake_tools, faults, image, inventory, keys, network, nodefs, procs
from runner.sim import node as nodectl
from runner.sim.config import SimConfig, cgroup_dir_for, load_config

REQUIRED_TOOLS = ("ip", "nsenter", "unshare", "mount", "sshd", "ssh-keygen", "podman", "runc", "ldd")
Report = Callable[[str], None]


@dataclass
class UpResult:
    config: SimConfig
    inventory_dir: Path
    image_tarball: Path
    stack_vars: str = ""
    notes: list[str] = field(default_factory=list)


def _preflight(cfg: SimConfig) -> None:
    if os.geteuid() != 0:
        raise SimError(
            "the simulator needs root (network namespaces, mounts, cgroups)",
            hint="run it as root, e.g. `sudo .venv/bin/runner sim up`",
        )
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists()]
    if missing:
        raise SimError(f"missing programs: {', '.join(missing)}", hint="run `make setup` to install them")
    if not procs.cgroup_available():
        raise SimError("no cgroup v2 hierarchy at /sys/fs/cgroup/unified or /sys/fs/cgroup")
    keys.needs_lax_strict_modes(cfg.state_dir)
    for path in nodefs.HIDDEN:
        if cfg.state_dir.is_relative_to(path):
            raise InputError(
                f"state directory {cfg.state_dir} must not be under {path}: nodes have their own {path}",
                hint="use the default .sim/ of the repo or another directory",
            )


def up(cfg: SimConfig, report: Report = lambda _msg: None) -> UpResult:
    """Create the cluster; on any failure everything created so far is removed again."""
    _preflight(cfg)
    existing = load_config(cfg.state_dir)
    if existing is not None:
        raise SimError(
            f"a simulated cluster ({existing.nodes} nodes, prefix {existing.prefix}) is already "
            f"recorded in {cfg.state_dir}",
            hint="run `runner sim down` first (or use another `--state-dir`)",
        )
    if network.bridge_exists(cfg.bridge) or network.our_namespaces(cfg.prefix):
        raise SimError(
            f"bridge {cfg.bridge} or namespaces {cfg.prefix}-node* already exist",
            hint=f"another cluster uses prefix {cfg.prefix!r}: take it down or pass `--prefix`",
        )
    network.check_subnet_free(cfg)
    name, tag, from_manifest = inventory.image_reference()
    report(f"image {name}:{tag} (cached under {cfg.cache_dir / 'image'})")
    tarball, sha256 = image.image_tarball(cfg, name, tag)
    cfg.save()
    try:
        report(f"{cfg.nodes} nodes: keys and files")
        keys.generate(cfg)
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda k: nodefs.build_node(cfg, k), range(cfg.nodes)))
        if cfg.storage == "shared":
            cfg.shared_data_dir.mkdir(parents=True, exist_ok=True)
        report(f"network {cfg.subnet} on bridge {cfg.bridge}")
        network.create(cfg)
        report("booting nodes")
        for k in range(cfg.nodes):
            nodectl.start(cfg, k)
        nodectl.wait_ready(cfg, range(cfg.nodes))
        inv = inventory.write(cfg, tarball, sha256, (name, tag, from_manifest))
        stack_vars = _stack_vars(cfg, report)
    except BaseException:
        down(cfg.state_dir, cfg.prefix)
        raise
    return UpResult(cfg, inv, tarball, stack_vars=stack_vars)


def _stack_vars(cfg: SimConfig, report: Report) -> str:
    """Stand-in MindSpeed stack, data and model variables, when that module is installed."""
    try:
        from runner.standin.simvars import write_sim_inventory_vars  # type: ignore[import-not-found]
    except ImportError:
        return "stand-in stack not available (runner.standin.simvars missing): stack.yml not written"
    report("stand-in MindSpeed stack, dataset and model (cached)")
    write_sim_inventory_vars(cfg.inventory_dir, cfg.cache_dir)
    return f"{cfg.inventory_dir / 'group_vars' / 'ascend' / 'stack.yml'}"


# ---- down ------------------------------------------------------------------------------------


def down(state_dir: Path, prefix: str | None = None, purge: bool = False) -> list[str]:
    """End every process, remove namespaces, veths, bridge, cgroups and files. Returns problems.

    Works from <state_dir>/cluster.json when there is one, and from the system otherwise
    (namespaces, veths, bridge and cgroups named with `prefix`).
    """
    cfg = load_config(state_dir)
    prefix = cfg.prefix if cfg else (prefix or "arsim")
    bridge = cfg.bridge if cfg else f"{prefix}0"
    node_dirs = sorted((state_dir / "nodes").glob("node*")) if (state_dir / "nodes").is_dir() else []
    ids = [cid for d in node_dirs for cid in procs.container_ids(d / "containers")]
    root = cgroup_dir_for(prefix)
    cgroups = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    problems = nodectl.kill_all(ids, cgroups)
    procs.remove_cgroup_tree(root)
    problems += network.destroy(prefix, bridge)
    problems += _unmount_under(state_dir)
    if cfg is not None:
        inventory.remove(cfg.inventory_dir)
    _remove_files(state_dir, purge)
    if network.our_namespaces(prefix):
        problems.append(f"namespaces left: {', '.join(network.our_namespaces(prefix))}")
    if network.bridge_exists(bridge):
        problems.append(f"bridge {bridge} left")
    return problems


def _unmount_under(path: Path) -> list[str]:
    """Mounts of the machine below the state dir (none expected: nodes mount privately)."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    targets = [line.split()[4] for line in lines]
    ours = sorted((t for t in targets if Path(t).is_relative_to(path)), key=len, reverse=True)
    problems = []
    for target in ours:
        proc = subprocess.run(["umount", "-l", target], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            problems.append(f"cannot unmount {target}: {proc.stderr.strip()}")
    return problems


def _remove_files(state_dir: Path, purge: bool) -> None:
    if not state_dir.exists():
        return
    for entry in state_dir.iterdir():
        if entry.name == "cache" and not purge:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    if purge or not any(state_dir.iterdir()):
        shutil.rmtree(state_dir, ignore_errors=True)


# ---- status and faults ----------------------------------------------------------------------


@dataclass
class NodeStatus:
    name: str
    address: str
    netns: str
    reachable: bool
    down: bool
    npus: int
    healthy_npus: int
    driver: str
    faults: list[str]


def require_config(state_dir: Path) -> SimConfig:
    cfg = load_config(state_dir)
    if cfg is None:
        raise InputError(
            f"no simulated cluster in {state_dir}",
            hint="start one with `runner sim up`, or pass its `--state-dir`",
        )
    return cfg


def status(cfg: SimConfig) -> list[NodeStatus]:
    def one(k: int) -> NodeStatus:
        node_dir = cfg.node_dir(k)
        try:
            state = nodefs.read_npu_state(cfg, k)
        except (OSError, ValueError):
            state = fake_tools.default_state(k, 0)
        drv = fake_tools.driver_version(
            fake_tools.read_version_info(str(node_dir / "ascend" / "driver" / "version.info"))
        )
        is_down = (node_dir / nodectl.DOWN_FLAG).exists()
        notes = faults.describe_state(state, fake_tools.default_state(k, cfg.npus))
        if drv != cfg.driver_version:
            notes.append(f"driver {drv}")
        if is_down:
            notes.insert(0, "node down")
        return NodeStatus(
            name=cfg.node_name(k),
            address=cfg.node_ip(k),
            netns=cfg.netns(k),
            reachable=nodectl.ssh_ready(cfg.node_ip(k), timeout=1.0),
            down=is_down,
            npus=len(state["npus"]),
            healthy_npus=sum(1 for n in state["npus"] if n["health"] == "OK"),
            driver=drv,
            faults=notes,
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, range(cfg.nodes)))


def inject(cfg: SimConfig, node_name: str, words: list[str]) -> str:
    """Apply one fault to a node; returns a sentence saying what changed."""
    k = cfg.node_index(node_name)
    fault = faults.parse_fault(words, cfg.npus)
    node_dir = cfg.node_dir(k)
    is_down = (node_dir / nodectl.DOWN_FLAG).exists()
    if fault.kind == "down":
        if is_down:
            return f"{node_name} is already down"
        (node_dir / nodectl.DOWN_FLAG).write_text("down\n")
        problems = nodectl.stop(cfg, [k])
        network.set_node_link(cfg, k, up=False)
        if problems:
            raise SimError(f"{node_name}: {'; '.join(problems)}")
        return f"{node_name} is down: sshd and every process on it stopped, link down"
    if fault.kind == "restore":
        nodefs.write_npu_state(cfg, k, fake_tools.default_state(k, cfg.npus))
        nodefs.set_driver_version(cfg, k, cfg.driver_version)
        if is_down or not procs.populated(cfg.node_cgroup(k)):
            network.set_node_link(cfg, k, up=True)
            nodectl.start(cfg, k)
            nodectl.wait_ready(cfg, [k])
            return f"{node_name} restored: booted again, all NPUs healthy, driver {cfg.driver_version}"
        return f"{node_name} restored: all NPUs healthy, links up, driver {cfg.driver_version}"
    if fault.kind == "driver":
        nodefs.set_driver_version(cfg, k, str(fault.value))
        return f"{node_name}: driver version is now {fault.value}"
    state = nodefs.read_npu_state(cfg, k)
    nodefs.write_npu_state(cfg, k, faults.apply_fault(state, fault))
    return f"{node_name}: {fault.describe()}"
