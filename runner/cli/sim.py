"""`runner sim up|down|status|fault`: a simulated Atlas 800T A2 cluster on this machine."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import click

from runner.sim.config import DEFAULT_INVENTORY_DIR, STATE_DIR_ENV, default_state_dir

state_dir_option = click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help=f"Simulator state directory (default: ${STATE_DIR_ENV}, else .sim/ in the repo).",
)


def _state_dir(value: Path | None) -> Path:
    return value.resolve() if value else default_state_dir()


@click.group()
def sim() -> None:
    """A simulated Atlas 800T A2 cluster: real SSH, containers and msrun; fake NPUs.

    \b
    runner sim up --nodes 2        build it and write inventory/sim/
    runner sim status              nodes, addresses, reachability, NPUs, faults
    runner sim fault node1 npu 3 health Critical
    runner sim down                end everything and leave the machine as it was
    """


@sim.command()
@click.option("--nodes", "-n", type=click.IntRange(1, 64), default=2, show_default=True, help="Hosts.")
@click.option("--npus", type=click.IntRange(1, 16), default=8, show_default=True, help="NPUs per host.")
@click.option(
    "--storage",
    type=click.Choice(["shared", "local"]),
    default="shared",
    show_default=True,
    help="/mnt/data: one directory seen by every node, or one per node.",
)
@click.option("--subnet", default="10.209.0.0/24", show_default=True, help="Private subnet of the bridge.")
@click.option(
    "--prefix",
    default="arsim",
    show_default=True,
    help="Prefix of the namespaces, veths, bridge and cgroups (run two clusters side by side).",
)
@click.option(
    "--inventory",
    "inventory_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEFAULT_INVENTORY_DIR,
    show_default=True,
    help="Where to write the Ansible inventory.",
)
@click.option("--driver-version", default="25.2.0", show_default=True, help="Driver the NPUs report.")
@state_dir_option
def up(
    nodes: int,
    npus: int,
    storage: str,
    subnet: str,
    prefix: str,
    inventory_dir: Path,
    driver_version: str,
    state_dir: Path | None,
) -> None:
    """Start NODES simulated hosts (network namespace + sshd + own files each)."""
    from rich.console import Console

    from runner.sim.cluster import up as sim_up
    from runner.sim.config import make_config

    console = Console(stderr=True)
    cfg = make_config(
        state_dir=_state_dir(state_dir),
        inventory_dir=inventory_dir.resolve(),
        nodes=nodes,
        npus=npus,
        storage=storage,
        subnet=subnet,
        prefix=prefix,
        driver_version=driver_version,
    )
    started = time.monotonic()
    result = sim_up(cfg, report=lambda msg: console.print(f"[dim]sim:[/dim] {msg}"))
    elapsed = time.monotonic() - started
    click.echo(f"Simulated cluster up in {elapsed:.1f}s: {cfg.nodes} nodes x {cfg.npus} NPUs, storage {cfg.storage}")
    for k in range(cfg.nodes):
        click.echo(f"  {cfg.node_name(k):<8} {cfg.node_ip(k)}")
    click.echo(f"Inventory:  {result.inventory_dir}")
    click.echo(f"Image:      {result.image_tarball}")
    if result.stack_vars:
        click.echo(f"Stack vars: {result.stack_vars}")
    click.echo("Reach node0:")
    click.echo(f"  {cfg.ssh_command(0)}")
    click.echo(
        f"  (or: ssh -i {cfg.client_key} -o UserKnownHostsFile={cfg.known_hosts} "
        f"-o StrictHostKeyChecking=yes root@{cfg.node_ip(0)})"
    )
    click.echo(f"Provision:  ansible-playbook -i {result.inventory_dir} site.yml")
    click.echo("Stop:       runner sim down" + (f" --state-dir {cfg.state_dir}" if state_dir else ""))


@sim.command()
@click.option("--prefix", default=None, help="Prefix to clean up when the state directory is gone.")
@click.option("--purge", is_flag=True, help="Also delete the image cache when it is in the state directory.")
@state_dir_option
def down(prefix: str | None, purge: bool, state_dir: Path | None) -> None:
    """End every process of the cluster and remove its namespaces, bridge, mounts and files."""
    from runner.errors import SimError
    from runner.sim.cluster import down as sim_down

    started = time.monotonic()
    problems = sim_down(_state_dir(state_dir), prefix=prefix, purge=purge)
    if problems:
        raise SimError("simulated cluster not fully removed: " + "; ".join(problems))
    click.echo(f"Simulated cluster down in {time.monotonic() - started:.1f}s; nothing of it is left.")


@sim.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON (stable keys) instead of a table.")
@state_dir_option
def status(as_json: bool, state_dir: Path | None) -> None:
    """Nodes, addresses, SSH reachability, NPU health and injected faults."""
    from runner.sim.cluster import require_config
    from runner.sim.cluster import status as sim_status

    cfg = require_config(_state_dir(state_dir))
    rows = sim_status(cfg)
    if as_json:
        click.echo(json.dumps({"storage": cfg.storage, "nodes": [asdict(r) for r in rows]}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"simulated cluster ({cfg.state_dir}, storage {cfg.storage})")
    for col in ("node", "address", "ssh", "NPUs OK", "driver", "faults"):
        table.add_column(col)
    for r in rows:
        ssh = "[green]up[/green]" if r.reachable else "[red]unreachable[/red]"
        npus = f"{r.healthy_npus}/{r.npus}"
        table.add_row(r.name, r.address, ssh, npus, r.driver, ", ".join(r.faults) or "-")
    Console().print(table)


@sim.command(context_settings={"ignore_unknown_options": True})
@click.argument("node")
@click.argument("fault", nargs=-1, required=True)
@state_dir_option
def fault(node: str, fault: tuple[str, ...], state_dir: Path | None) -> None:
    """Inject FAULT into NODE (node0..nodeN-1).

    \b
    npu K health OK|Warning|Alarm|Critical|UNKNOWN
    npu K busy [PID [NAME]]    npu K idle
    link K down|up             ip K missing|present
    driver VERSION             e.g. driver 23.0.3 (too old)
    down                       node loss: sshd and all its processes stopped, link down
    restore                    node back up, every fault cleared
    """
    from runner.sim.cluster import inject, require_config

    cfg = require_config(_state_dir(state_dir))
    click.echo(inject(cfg, node, list(fault)))
