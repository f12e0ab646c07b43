"""Human-readable view of a Plan (rich tables)."""

from __future__ import annotations

import posixpath
import shlex

from rich.console import Console
from rich.table import Table

from runner.plan import Plan


def print_plan(plan: Plan, source: str, console: Console | None = None) -> None:
    console = console or Console()
    console.print(f"[bold]{plan.job_name}[/] ({source}): backend {plan.backend}, {plan.nnodes} node(s) x "
                  f"{plan.npus_per_node} NPU(s), {plan.storage} storage")
    summary = f"world size {plan.world_size} = TP {plan.tp} x PP {plan.pp} x DP {plan.dp}"
    if plan.layers_per_stage:
        summary += f"; layers per pipeline stage: {list(plan.layers_per_stage)}"
    console.print(summary)
    if plan.tokens_per_step:
        console.print(f"tokens per step: {plan.tokens_per_step:,}")
    master = plan.master_addr or "node 0's address (from the inventory at launch)"
    port = plan.master_port or "a free port on node 0 (chosen at launch)"
    console.print(f"master: {master}, port {port}")

    nodes = Table(title="Nodes", title_justify="left")
    for col in ("node", "NODE_RANK", "host", "devices", "global ranks"):
        nodes.add_column(col)
    for n in plan.nodes:
        ranks = f"{n.global_ranks[0]}-{n.global_ranks[-1]}" if len(n.global_ranks) > 1 else str(n.global_ranks[0])
        nodes.add_row(f"node{n.index}", str(n.node_rank), n.host or "-", ",".join(map(str, n.devices)), ranks)
    console.print(nodes)

    stages = Table(title="Stages", title_justify="left")
    for col in ("stage", "placement", "nodes", "runs", "outputs"):
        stages.add_column(col, overflow="fold")
    for s in plan.stages:
        runs = s.command if s.command is not None else f"{s.launcher} {s.entry}"
        placement = s.placement + (" (then copied to every node)" if s.distribute else "") + (
            " (shards gathered on node 0)" if s.collect else "") + (
            f" ({', '.join(posixpath.basename(p) for p in s.share)} sent to every node)" if s.share else "")
        outputs = s.outputs[0] + (f" (+{len(s.outputs) - 1})" if len(s.outputs) > 1 else "") if s.outputs else "-"
        stages.add_row(s.name, placement, ",".join(f"node{k}" for k in s.node_indices), runs, outputs)
    console.print(stages)

    if plan.memory:
        m = plan.memory
        console.print(f"memory per NPU (rough, busiest pipeline stage): weights {m.weights_gb:.1f} GB + gradients "
                      f"{m.gradients_gb:.1f} GB + optimizer {m.optimizer_gb:.1f} GB + activations "
                      f"{m.activations_gb:.1f} GB = [bold]{m.total_gb:.1f} GB[/] of {m.device_gb:.0f} GB")
    for warning in plan.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    for s in plan.stages:
        if s.entry:
            console.print(f"[dim]{s.name}: {s.entry} {' '.join(shlex.quote(a) for a in s.args)}[/]", soft_wrap=True)
