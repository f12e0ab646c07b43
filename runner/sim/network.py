"""The simulator's network: one bridge on the machine, one namespace + veth per node.

Only the bridge has an address outside the namespaces (the control machine's, .1 of the
subnet); the nodes get no default route, so no packet from a node can leave the subnet.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from pathlib import Path

from runner.errors import SimError
from runner.sim.config import SimConfig

NETNS_DIR = Path("/var/run/netns")


def _ip(args: list[str], stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], input=stdin, capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise SimError(
            f"`ip {' '.join(args)}` failed: {proc.stderr.strip() or proc.stdout.strip()}",
            hint="run `runner sim down` to clean up, then retry",
        )
    return proc


def check_subnet_free(cfg: SimConfig) -> None:
    """Refuse a subnet that overlaps an address or route the machine already has."""
    ours = cfg.subnet
    addrs = json.loads(_ip(["-j", "addr", "show"]).stdout or "[]")
    for link in addrs:
        if link.get("ifname") == cfg.bridge:
            continue
        for info in link.get("addr_info", []):
            if info.get("family") != "inet":
                continue
            net = ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False)
            if net.overlaps(ours):
                raise SimError(
                    f"subnet {ours} overlaps {net} on interface {link['ifname']}",
                    hint="pick another private range with `--subnet`",
                )
    for route in json.loads(_ip(["-j", "route", "show"]).stdout or "[]"):
        dst = route.get("dst", "default")
        if dst == "default" or route.get("dev") == cfg.bridge:
            continue
        net = ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False)
        if net.overlaps(ours):
            raise SimError(
                f"subnet {ours} overlaps the route to {net} via {route.get('dev')}",
                hint="pick another private range with `--subnet`",
            )


def bridge_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def create(cfg: SimConfig) -> None:
    """Bridge, namespaces and veths of every node, in two `ip -batch` calls plus one per node."""
    plen = cfg.subnet.prefixlen
    host: list[str] = []
    if not bridge_exists(cfg.bridge):
        host += [
            f"link add {cfg.bridge} type bridge",
            f"addr add {cfg.host_ip}/{plen} dev {cfg.bridge}",
        ]
    host.append(f"link set {cfg.bridge} up")
    for k in range(cfg.nodes):
        if not (NETNS_DIR / cfg.netns(k)).exists():
            host.append(f"netns add {cfg.netns(k)}")
    _ip(["-batch", "-"], "\n".join(host) + "\n")

    links: list[str] = []
    for k in range(cfg.nodes):
        if Path("/sys/class/net", cfg.veth(k)).exists():
            continue
        links += [
            f"link add {cfg.veth(k)} type veth peer name eth0 netns {cfg.netns(k)}",
            f"link set {cfg.veth(k)} master {cfg.bridge}",
            f"link set {cfg.veth(k)} up",
        ]
    if links:
        _ip(["-batch", "-"], "\n".join(links) + "\n")
    for k in range(cfg.nodes):
        _ip(
            ["-n", cfg.netns(k), "-batch", "-"],
            f"addr replace {cfg.node_ip(k)}/{plen} dev eth0\nlink set eth0 up\nlink set lo up\n",
        )


def set_node_link(cfg: SimConfig, k: int, up: bool) -> None:
    """Node loss/restore on the wire: the node's veth goes down or up."""
    _ip(["link", "set", cfg.veth(k), "up" if up else "down"])


def link_is_up(cfg: SimConfig, k: int) -> bool:
    try:
        flags = Path("/sys/class/net", cfg.veth(k), "flags").read_text()
    except OSError:
        return False
    return bool(int(flags, 16) & 1)


def our_namespaces(prefix: str) -> list[str]:
    """Namespaces whose name marks them as this simulator's (found from the system)."""
    proc = _ip(["netns", "list"], check=False)
    names = [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]
    return [n for n in names if n.startswith(f"{prefix}-node")]


def destroy(prefix: str, bridge: str) -> list[str]:
    """Delete every namespace and veth of this prefix, then the bridge. Returns problems."""
    problems: list[str] = []
    batch = [f"netns del {name}" for name in our_namespaces(prefix)]
    if batch:
        proc = _ip(["-force", "-batch", "-"], "\n".join(batch) + "\n", check=False)
        if proc.returncode != 0:
            problems.append(proc.stderr.strip())
    for dev in Path("/sys/class/net").iterdir():
        if dev.name.startswith(f"{prefix}-v"):
            _ip(["link", "del", dev.name], check=False)
    if bridge_exists(bridge):
        proc = _ip(["link", "del", bridge], check=False)
        if proc.returncode != 0:
            problems.append(f"bridge {bridge}: {proc.stderr.strip()}")
    return problems
