"""`runner check comm --nodes N`: all-reduce over every device of every node, sums checked."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from runner.cli._run_options import inventory_option, resolve_runs_dir, runs_dir_option
from runner.inventory import DEFAULT_GROUP, parse_host_list


@click.group()
def check() -> None:
    """Checks that run on the cluster through the launch machinery."""


@check.command("comm")
@click.option("--nodes", "-n", type=click.IntRange(min=1), default=None, help="How many nodes (default: all).")
@inventory_option
@click.option("--group", default=DEFAULT_GROUP, show_default=True, help="Inventory group of the training hosts.")
@click.option("--hosts", default=None, metavar="A,B,...", help="Exactly these hosts, in this order.")
@click.option(
    "--workers-per-node",
    type=click.IntRange(min=1),
    default=None,
    help="Ranks per node (default: ascend_npu_count of the inventory, else 8).",
)
@click.option("--sizes", default="4K,64K,1M,16M", show_default=True, help="Message sizes, comma separated.")
@click.option("--iters", type=click.IntRange(min=1), default=5, show_default=True, help="Timed all-reduces per size.")
@click.option(
    "--python",
    "python",
    default=None,
    metavar="PATH",
    help="Python with MindSpore on the nodes (default: what PATH and runner-env.sh give).",
)
@click.option(
    "--master-port",
    type=click.IntRange(1024, 65535),
    default=None,
    help="Rendezvous port (default: a free port on node 0).",
)
@click.option(
    "--timeout", type=click.IntRange(min=10), default=120, show_default=True, help="msrun --cluster_time_out seconds."
)
@runs_dir_option
def comm(
    nodes: int | None,
    inventory: Path | None,
    group: str,
    hosts: str | None,
    workers_per_node: int | None,
    sizes: str,
    iters: int,
    python: str | None,
    master_port: int | None,
    timeout: int,
    runs_dir: Path | None,
) -> None:
    """All-reduce over every device of every node with MindSpore under msrun; check the sums and
    print the bus bandwidth per message size (as hccl_test and nccl-tests do).

    On the simulator it runs on CPU; on a real cluster, on the NPUs. A node whose rank fails is named.
    """
    from rich.console import Console
    from rich.table import Table

    from runner.errors import ExecError
    from runner.exec.commcheck import CommCheckOptions, run_comm_check

    signal.signal(signal.SIGINT, signal.default_int_handler)
    opts = CommCheckOptions(
        nodes=nodes,
        inventory=str(inventory) if inventory else None,
        group=group,
        hosts=parse_host_list(hosts),
        workers=workers_per_node,
        sizes=sizes,
        iters=iters,
        python=python,
        master_port=master_port,
        timeout=timeout,
        runs_dir=resolve_runs_dir(runs_dir),
    )
    state, results = run_comm_check(opts, sys.stdout)
    table = Table(title=f"all-reduce, {len(state.hosts)} node(s), run {state.run_id}", header_style="bold")
    for column in ("size", "ranks", "time (us)", "algbw (GB/s)", "busbw (GB/s)", "sum"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            _size(r.bytes),
            str(r.ranks),
            f"{r.time_us:.1f}",
            f"{r.algbw_gbps:.3g}",
            f"{r.busbw_gbps:.3g}",
            "ok" if r.ok else "[bold red]WRONG[/]",
        )
    Console().print(table)
    if not results:
        raise ExecError(f"the check ran but rank 0 reported no results; see runner logs {state.run_id} --rank 0")
    if not all(r.ok for r in results):
        raise ExecError("all-reduce sums are wrong", hint=f"runner logs {state.run_id} shows which rank")


def _size(nbytes: int) -> str:
    for unit, factor in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if nbytes >= factor and nbytes % factor == 0:
            return f"{nbytes // factor}{unit}"
    return f"{nbytes}B"
