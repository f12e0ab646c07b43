"""Hosts come from Ansible's own parse of the inventory, in NODE_RANK order."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import InventoryError
from runner.inventory import known_hosts_from_args, load_hosts, parse_host_list, select_hosts

DATA = {
    "_meta": {
        "hostvars": {
            "b": {"ansible_host": "10.0.0.2", "ansible_port": 2222, "ansible_user": "ops"},
            "a": {
                "ansible_host": "10.0.0.1",
                "ascend_hccl_if_ip": "192.168.1.1",
                "ansible_ssh_common_args": "-o StrictHostKeyChecking=yes -o UserKnownHostsFile=/etc/kh",
                "ascend_run_in": "host",
            },
            "c": {},
        }
    },
    "all": {"children": ["ungrouped", "ascend"]},
    "ascend": {"hosts": ["b"], "children": ["more"]},
    "more": {"hosts": ["a", "b"]},
    "other": {"hosts": ["c"]},
}


def test_group_order_is_inventory_order_including_child_groups() -> None:
    hosts = select_hosts(DATA)
    assert [h.name for h in hosts] == ["b", "a"]
    assert hosts[0].address == "10.0.0.2" and hosts[0].port == 2222 and hosts[0].user == "ops"


def test_hccl_address_defaults_to_ansible_host() -> None:
    a, b = select_hosts(DATA, hosts=["a", "b"])
    assert a.hccl_ip == "192.168.1.1"
    assert b.hccl_ip == "10.0.0.2"


def test_stage_placement_variables_have_contract_defaults() -> None:
    a, b = select_hosts(DATA, hosts=["a", "b"])
    assert a.run_in == "host" and b.run_in == "container"
    assert b.container_name == "ascend-train" and b.data_dir == "/mnt/data"


def test_known_hosts_file_comes_from_ssh_common_args() -> None:
    assert select_hosts(DATA, hosts=["a"])[0].known_hosts == "/etc/kh"
    assert known_hosts_from_args("-oUserKnownHostsFile=/x/kh") == "/x/kh"
    assert known_hosts_from_args("-o 'UserKnownHostsFile /y/kh'") == "/y/kh"
    assert known_hosts_from_args("-o StrictHostKeyChecking=no") is None
    assert known_hosts_from_args(None) is None


def test_missing_group_names_the_groups_there_are() -> None:
    with pytest.raises(InventoryError, match=r"no group 'gpu' \(groups: all, ascend, more, other\)"):
        select_hosts(DATA, group="gpu")


def test_unknown_hosts_are_named() -> None:
    with pytest.raises(InventoryError, match="does not have: zz"):
        select_hosts(DATA, hosts=["a", "zz"])


def test_jinja_in_connection_vars_is_refused() -> None:
    data = {"_meta": {"hostvars": {"x": {"ansible_host": "{{ lookup('env', 'H') }}"}}}, "ascend": {"hosts": ["x"]}}
    with pytest.raises(InventoryError, match="host x: ansible_host is a Jinja2 expression"):
        select_hosts(data)


def test_host_list_option() -> None:
    assert parse_host_list("a, b,,c") == ["a", "b", "c"]
    assert parse_host_list("") is None


def test_reads_a_real_inventory_with_ansible(tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text(
        "all:\n  children:\n    ascend:\n      hosts:\n        n1: {ansible_host: 10.9.0.2}\n"
        "        n0: {ansible_host: 10.9.0.1}\n"
    )
    (tmp_path / "group_vars" / "ascend").mkdir(parents=True)
    (tmp_path / "group_vars" / "ascend" / "main.yml").write_text("ascend_data_dir: /data\n")
    hosts = load_hosts(tmp_path)
    assert [(h.name, h.address, h.data_dir) for h in hosts] == [
        ("n1", "10.9.0.2", "/data"),
        ("n0", "10.9.0.1", "/data"),
    ]


def test_missing_inventory_path_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="does not exist") as info:
        load_hosts(tmp_path / "nope")
    assert info.value.exit_code == 2
