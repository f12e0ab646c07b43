"""Hosts of a launch, read from the Ansible inventory the playbooks use.

The inventory is parsed by Ansible itself (`ansible-inventory --list`), never by a second parser,
so every inventory format, plugin and group_vars layout that works for `ansible-playbook` works here.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import InventoryError

DEFAULT_GROUP = "ascend"
DEFAULT_DATA_DIR = "/mnt/data"
DEFAULT_CONTAINER_NAME = "ascend-train"
INVENTORY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Host:
    """One inventory host, with what the runner needs to reach it and run on it."""

    name: str
    address: str
    port: int = 22
    user: str | None = None
    key_file: str | None = None
    known_hosts: str | None = None
    hostvars: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def hccl_ip(self) -> str:
        """Address used for HCCL and, on node 0, MASTER_ADDR."""
        return str(self.hostvars.get("ascend_hccl_if_ip") or self.address)

    @property
    def run_in(self) -> str:
        return str(self.hostvars.get("ascend_run_in", "container"))

    @property
    def container_engine(self) -> str:
        return str(self.hostvars.get("ascend_container_engine", "docker"))

    @property
    def container_name(self) -> str:
        return str(self.hostvars.get("ascend_container_name", DEFAULT_CONTAINER_NAME))

    @property
    def data_dir(self) -> str:
        return str(self.hostvars.get("ascend_data_dir", DEFAULT_DATA_DIR))

    @property
    def storage(self) -> str:
        return str(self.hostvars.get("ascend_storage", "shared"))

    @property
    def npu_count(self) -> int | None:
        value = self.hostvars.get("ascend_npu_count")
        return int(value) if value is not None else None


def ansible_inventory_command() -> str:
    """The ansible-inventory next to this Python (the venv) or else the one on PATH."""
    local = Path(sys.executable).parent / "ansible-inventory"
    if local.exists():
        return str(local)
    found = shutil.which("ansible-inventory")
    if found is None:
        raise InventoryError(
            "ansible-inventory was not found",
            hint="install ansible-core in the runner's environment (make setup)",
        )
    return found


def read_inventory(inventory: str | os.PathLike[str] | None, cwd: str | None = None) -> dict[str, Any]:
    """Return the parsed output of `ansible-inventory [-i INV] --list`."""
    cmd = [ansible_inventory_command()]
    if inventory is not None:
        if not Path(inventory).exists():
            raise InventoryError(
                f"inventory {inventory} does not exist",
                hint="pass -i with an inventory directory or file, e.g. -i inventory/sim",
            )
        cmd += ["-i", str(inventory)]
    cmd.append("--list")
    env = dict(os.environ, ANSIBLE_INVENTORY_UNPARSED_WARNING="False", ANSIBLE_NOCOLOR="1")
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=INVENTORY_TIMEOUT_S, cwd=cwd, env=env, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise InventoryError(f"ansible-inventory did not answer within {INVENTORY_TIMEOUT_S:.0f} s") from exc
    where = str(inventory) if inventory is not None else "the default inventory of ansible.cfg"
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise InventoryError(f"ansible-inventory could not read {where}:\n{tail}")
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise InventoryError(f"ansible-inventory printed something that is not JSON for {where}") from exc


def group_hosts(data: Mapping[str, Any], group: str) -> list[str]:
    """Hosts of a group and of its child groups, in inventory order, each once."""
    if group not in data:
        known = sorted(k for k in data if k != "_meta")
        raise InventoryError(
            f"the inventory has no group {group!r} (groups: {', '.join(known) or 'none'})",
            hint=f"add the training hosts to group {group!r} in NODE_RANK order, "
            "or choose hosts with --group NAME or --hosts a,b",
        )
    seen: dict[str, None] = {}

    def walk(name: str, trail: tuple[str, ...]) -> None:
        entry = data.get(name) or {}
        for host in entry.get("hosts", []):
            seen.setdefault(host, None)
        for child in entry.get("children", []):
            if child not in trail:
                walk(child, (*trail, child))

    walk(group, (group,))
    return list(seen)


def known_hosts_from_args(common_args: str | None) -> str | None:
    """The UserKnownHostsFile given in ansible_ssh_common_args, if any."""
    if not common_args:
        return None
    words = shlex.split(common_args)
    options: list[str] = []
    for i, word in enumerate(words):
        if word == "-o" and i + 1 < len(words):
            options.append(words[i + 1])
        elif word.startswith("-o") and len(word) > 2:
            options.append(word[2:])
    for option in options:
        key, sep, value = option.partition("=")
        if not sep:
            key, _, value = option.partition(" ")
        if key.strip().lower() == "userknownhostsfile" and value.strip():
            return os.path.expanduser(value.strip().split()[0])
    return None


def _host_from_vars(name: str, hostvars: Mapping[str, Any]) -> Host:
    def pick(*keys: str) -> Any:
        for key in keys:
            if hostvars.get(key) not in (None, ""):
                return hostvars[key]
        return None

    for key in ("ansible_host", "ansible_port", "ansible_user", "ansible_ssh_private_key_file"):
        if "{{" in str(hostvars.get(key, "")):
            raise InventoryError(
                f"host {name}: {key} is a Jinja2 expression ({hostvars[key]}) the runner cannot evaluate",
                hint=f"give {key} a literal value for host {name}",
            )
    port = pick("ansible_port", "ansible_ssh_port") or 22
    try:
        port = int(port)
    except (TypeError, ValueError) as exc:
        raise InventoryError(f"host {name}: ansible_port {port!r} is not a number") from exc
    key_file = pick("ansible_ssh_private_key_file")
    return Host(
        name=name,
        address=str(pick("ansible_host", "ansible_ssh_host") or name),
        port=port,
        user=pick("ansible_user", "ansible_ssh_user"),
        key_file=os.path.expanduser(str(key_file)) if key_file else None,
        known_hosts=known_hosts_from_args(pick("ansible_ssh_common_args")),
        hostvars=dict(hostvars),
    )


def select_hosts(
    data: Mapping[str, Any], *, group: str = DEFAULT_GROUP, hosts: Sequence[str] | None = None
) -> list[Host]:
    """Hosts of `group` in inventory order, or exactly `hosts` in the order given."""
    hostvars: Mapping[str, Any] = data.get("_meta", {}).get("hostvars", {})
    if hosts:
        names = list(hosts)
        known = set(hostvars) | {h for g, v in data.items() if g != "_meta" for h in v.get("hosts", [])}
        missing = [n for n in names if n not in known]
        if missing:
            raise InventoryError(
                f"--hosts names hosts the inventory does not have: {', '.join(missing)}",
                hint=f"known hosts: {', '.join(sorted(known)) or 'none'}",
            )
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InventoryError(f"--hosts names {', '.join(dupes)} more than once")
    else:
        names = group_hosts(data, group)
        if not names:
            raise InventoryError(
                f"group {group!r} of the inventory has no hosts",
                hint=f"add the training hosts to group {group!r}",
            )
    return [_host_from_vars(n, hostvars.get(n, {})) for n in names]


def load_hosts(
    inventory: str | os.PathLike[str] | None = None,
    *,
    group: str = DEFAULT_GROUP,
    hosts: Sequence[str] | None = None,
    cwd: str | None = None,
) -> list[Host]:
    """Read the inventory with Ansible and return the chosen hosts in NODE_RANK order."""
    return select_hosts(read_inventory(inventory, cwd=cwd), group=group, hosts=hosts)


def parse_host_list(value: str | None) -> list[str] | None:
    """`--hosts a,b` -> ["a", "b"]; None or empty -> None."""
    if not value:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]
