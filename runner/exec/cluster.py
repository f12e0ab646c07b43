"""Connect to the nodes of a run: one transport per inventory host, opened in parallel."""

from __future__ import annotations

import time
from collections.abc import Sequence

from runner.exec.base import Transport
from runner.exec.fanout import fan_out, raise_for_failures
from runner.exec.local import LocalTransport
from runner.exec.nodes import Node, node_run_dir
from runner.exec.ssh import SSHTransport
from runner.inventory import Host, load_hosts
from runner.runs import RunState


def transport_for(host: Host) -> Transport:
    """SSH, unless the inventory says `ansible_connection: local` for the host."""
    if host.hostvars.get("ansible_connection") == "local":
        return LocalTransport(host.name)
    return SSHTransport(host)


def make_nodes(hosts: Sequence[Host], run_id: str, attempt: int = 1) -> list[Node]:
    return [Node(k, host, transport_for(host), node_run_dir(host, run_id, k), attempt) for k, host in enumerate(hosts)]


def connect(nodes: Sequence[Node]) -> None:
    """Open every node's connection at once; one error listing every node that cannot be reached."""

    def open_one(node: Node) -> None:
        opener = getattr(node.transport, "open", None)
        if opener is not None:
            opener()

    raise_for_failures(fan_out(nodes, open_one).outcomes, "connecting")


def close(nodes: Sequence[Node]) -> None:
    for node in nodes:
        node.transport.close()


def nodes_of_run(state: RunState) -> list[Node]:
    """The nodes a recorded run ran on, re-read from the same inventory."""
    hosts = load_hosts(state.inventory, hosts=state.hosts)
    nodes = make_nodes(hosts, state.run_id, state.attempt)
    for node, directory in zip(nodes, state.node_dirs, strict=False):
        node.run_dir = directory
    return nodes


def refresh(state: RunState, nodes: Sequence[Node]) -> bool:
    """Ask the nodes about stages the state calls running; update the state. True if it changed."""
    by_index = {n.index: n for n in nodes}
    asks = [
        (record.name, int(k))
        for record in state.stages
        for k, entry in record.nodes.items()
        if entry.state == "running" and int(k) in by_index
    ]
    if not asks:
        return False
    answers = fan_out(asks, lambda a: by_index[a[1]].status(a[0]))
    for (name, k), answer in answers.outcomes.items():
        entry = state.stage(name).nodes[str(k)]
        if isinstance(answer, BaseException):
            entry.state = "lost"
            continue
        if answer["state"] == "exited":
            entry.exit_code = answer["exit_code"]
            entry.state = "succeeded" if entry.exit_code == 0 else ("stopped" if answer["stopped"] else "failed")
            entry.ended = entry.ended or time.time()
        elif answer["state"] in ("lost", "not-started"):
            entry.state = "lost"
    for record in state.stages:
        states = {e.state for e in record.nodes.values()}
        if record.state == "running" and "running" not in states:
            record.state = (
                "succeeded" if states <= {"succeeded"} else "failed" if states & {"failed", "lost"} else "stopped"
            )
    return True
