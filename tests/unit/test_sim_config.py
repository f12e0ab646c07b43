"""Simulator options, names and the inventory it writes (no root, nothing started)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from runner.cli.main import main
from runner.errors import InputError
from runner.sim import inventory, nodefs
from runner.sim.config import make_config


def cfg(tmp_path: Path, **kw):
    return make_config(state_dir=tmp_path / "state", inventory_dir=tmp_path / "inv", **kw)


def test_names_and_addresses(tmp_path):
    c = cfg(tmp_path, nodes=16, prefix="arsim", subnet="10.209.0.0/24")
    assert c.bridge == "arsim0"
    assert c.host_ip == "10.209.0.1"
    assert [c.node_ip(0), c.node_ip(15)] == ["10.209.0.10", "10.209.0.25"]
    assert c.netns(3) == "arsim-node3"
    assert max(len(c.veth(k)) for k in range(16)) <= 15  # Linux interface name limit
    assert c.node_index("node15") == 15


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"subnet": "8.8.8.0/24"}, r"`subnet`.*not a private range"),
        ({"subnet": "10.209.0.0/29", "nodes": 4}, r"too small for 4 nodes"),
        ({"prefix": "Bad-Prefix"}, r"`prefix`"),
        ({"storage": "nfs"}, r"`storage`"),
        ({"nodes": 0}, r"`nodes`"),
    ],
)
def test_bad_options_name_the_option(tmp_path, options, message):
    with pytest.raises(InputError, match=message):
        cfg(tmp_path, **options)


def test_unknown_node_names_the_valid_ones(tmp_path):
    with pytest.raises(InputError, match="no simulated node named 'node9'") as err:
        cfg(tmp_path, nodes=2).node_index("node9")
    assert "node0, node1" in str(err.value)


def test_boot_script_mounts_node_files_and_execs_sshd(tmp_path):
    c = cfg(tmp_path, nodes=2, storage="local")
    script = nodefs.boot_script(c, 1)
    node = str(c.node_dir(1))
    assert f"N={node}" in script
    for target in ("/dev", "/etc", "/usr/local", "/var", "/root"):
        assert f" {target}\n" in script
    assert 'mount --bind "$N/ascend" /usr/local/Ascend' in script
    assert f"mount --bind {c.node_dir(1)}/data /mnt/data" in script
    assert script.rstrip().splitlines()[-1].startswith("exec /usr/sbin/sshd -D")
    shared = cfg(tmp_path, nodes=2, storage="shared")
    assert f"mount --bind {shared.state_dir}/shared-data /mnt/data" in nodefs.boot_script(shared, 1)


def test_sshd_config_listens_on_the_node_address_only_with_keys(tmp_path):
    c = cfg(tmp_path, nodes=2)
    text = nodefs.sshd_config(c, 1)
    assert f"ListenAddress {c.node_ip(1)}\n" in text
    assert "PasswordAuthentication no\n" in text
    assert f"AuthorizedKeysFile {c.authorized_keys}\n" in text


def _ansible_inventory() -> str:
    beside = Path(sys.executable).parent / "ansible-inventory"
    return str(beside) if beside.exists() else "ansible-inventory"


def test_inventory_is_what_ansible_and_the_runner_read(tmp_path):
    c = cfg(tmp_path, nodes=3, npus=4, storage="local")
    tarball = tmp_path / "image.tar"
    tarball.write_text("x")
    image = inventory.image_reference()  # the version manifest's image when there is one
    inventory.write(c, tarball, "ab" * 32, image)
    proc = subprocess.run([_ansible_inventory(), "-i", str(c.inventory_dir), "--list"],
                          capture_output=True, text=True, check=True, timeout=120)  # fmt: skip
    inv = json.loads(proc.stdout)
    assert inv["ascend"]["hosts"] == ["node0", "node1", "node2"]
    hv = inv["_meta"]["hostvars"]["node2"]
    assert hv["ansible_host"] == c.node_ip(2)
    assert hv["ansible_user"] == "root"
    assert hv["ansible_ssh_private_key_file"] == str(c.client_key)
    assert f"-o UserKnownHostsFile={c.known_hosts}" in hv["ansible_ssh_common_args"]
    assert "-o StrictHostKeyChecking=yes" in hv["ansible_ssh_common_args"]
    assert hv["ascend_container_engine"] == "podman"
    assert hv["ascend_image_source"] == "tarball"
    assert hv["ascend_image_tarball"] == str(tarball)
    assert hv["ascend_image_sha256"] == "ab" * 32
    assert hv["ascend_storage"] == "local"
    assert hv["ascend_data_dir"] == "/mnt/data"
    assert hv["ascend_npu_count"] == 4
    assert (hv["ascend_image_name"], str(hv["ascend_image_tag"])) == image[:2]
    assert all(v.endswith(":ro") for v in hv["ascend_container_extra_volumes"])
    assert hv["ascend_preflight_min_free_disk_gb"] == 20  # the machine's disk, not a 7B-sized one
    # down removes what up wrote, and only that
    inventory.remove(c.inventory_dir)
    assert not c.inventory_dir.exists()


def test_inventory_refuses_to_overwrite_a_foreign_directory(tmp_path):
    c = cfg(tmp_path)
    c.inventory_dir.mkdir(parents=True)
    (c.inventory_dir / "hosts.ini").write_text("[ascend]\nreal-host\n")
    with pytest.raises(Exception, match="was not written by the simulator"):
        inventory.write(c, tmp_path / "t.tar", "0" * 64, ("a", "b", False))
    assert (c.inventory_dir / "hosts.ini").exists()


def test_status_without_a_cluster_is_bad_input(tmp_path, capsys):
    assert main(["sim", "status", "--state-dir", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "no simulated cluster in" in err and "runner sim up" in err


def test_bad_fault_on_the_cli_is_bad_input_without_traceback(tmp_path, capsys):
    c = cfg(tmp_path, nodes=2)
    c.save()
    assert main(["sim", "fault", "node1", "npu", "12", "busy", "--state-dir", str(c.state_dir)]) == 2
    err = capsys.readouterr().err
    assert "NPU index '12' is not one of 0..7" in err
    assert "Traceback" not in err
    assert yaml.safe_load((c.state_dir / "cluster.json").read_text())["nodes"] == 2
