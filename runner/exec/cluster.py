"""Connect to the nodes of a run: one transport per inventory host, opened in parallel."""

from __future__ import annotations

from collections.abc import Sequence

from runner.exec.base import Transport
from runner.exec.fanout import fan_out, raise_for_failures
from runner.exec.local import LocalTransport
from runner.exec.nodes import Node, node_run_dir
from runner.exec.ssh import SSHTransport
from runner.inventory import Host


def transport_for(host: Host) -> Transport:
    """SSH, unless the inventory says `ansible_connection: local` for the host."""
    if host.hostvars.get("ansible_connection") == "local":
        return LocalTransport(host.name)
    return SSHTransport(host)


def make_nodes(hosts: Sequence[Host], run_id: str) -> list[Node]:
    return [Node(k, host, transport_for(host), node_run_dir(host, run_id, k)) for k, host in enumerate(hosts)]


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
