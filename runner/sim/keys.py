"""SSH identities of a simulated cluster: one client key, one host key per node.

Clients check host keys against the known_hosts file written here; nothing is added to the
user's own ~/.ssh.
"""

from __future__ import annotations

import stat
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from runner.errors import SimError
from runner.sim.config import SimConfig


def _keygen(path: Path, comment: str) -> None:
    if path.exists() and path.with_suffix(".pub").exists():
        return
    path.unlink(missing_ok=True)
    proc = subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if proc.returncode != 0:
        raise SimError(f"ssh-keygen for {path} failed: {proc.stderr.strip()}")


def needs_lax_strict_modes(path: Path) -> bool:
    """Whether sshd's StrictModes would refuse keys under `path`; raise if they are truly exposed.

    sshd refuses keys below any group/world-writable directory. Below a sticky one such as /tmp
    (a CI checkout may live there) nobody else can replace our directories, so sshd is told not
    to check (StrictModes no). A writable directory without the sticky bit is refused.
    """
    lax = False
    for parent in [path, *path.parents]:
        if not parent.exists():
            continue
        mode = parent.stat().st_mode
        if mode & 0o022 and not mode & stat.S_ISVTX:
            raise SimError(
                f"state directory {path} is under {parent}, which is group/world-writable "
                f"(mode {oct(mode & 0o777)}); its SSH keys would not be private",
                hint="use a state directory under a private path, e.g. the default .sim/ of the repo",
            )
        lax = lax or bool(mode & 0o022)
    return lax


def generate(cfg: SimConfig) -> None:
    """Client key, per-node host keys, authorized_keys, known_hosts and an ssh_config."""
    cfg.ssh_dir.mkdir(parents=True, exist_ok=True)
    cfg.ssh_dir.chmod(0o700)
    jobs = [(cfg.client_key, f"runner-sim-{cfg.prefix}-client")]
    jobs += [(cfg.node_dir(k) / "ssh_host_ed25519_key", f"root@{cfg.node_name(k)}") for k in range(cfg.nodes)]
    for path, _ in jobs:
        path.parent.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda job: _keygen(*job), jobs))

    cfg.authorized_keys.write_text(cfg.client_key.with_suffix(".pub").read_text())
    cfg.authorized_keys.chmod(0o600)
    entries = []
    for k in range(cfg.nodes):
        pub = (cfg.node_dir(k) / "ssh_host_ed25519_key.pub").read_text().split()
        entries.append(f"{cfg.node_ip(k)} {pub[0]} {pub[1]}\n")
    cfg.known_hosts.write_text("".join(entries))
    cfg.known_hosts.chmod(0o600)
    cfg.ssh_config.write_text("".join(ssh_config_entry(cfg, k) for k in range(cfg.nodes)))
    cfg.ssh_config.chmod(0o600)


def ssh_options(cfg: SimConfig) -> list[str]:
    """The `-o` options every client of the cluster uses: our known_hosts, checking on."""
    return [
        f"-o UserKnownHostsFile={cfg.known_hosts}",
        "-o StrictHostKeyChecking=yes",
        "-o IdentitiesOnly=yes",
    ]


def ssh_config_entry(cfg: SimConfig, k: int) -> str:
    return (
        f"Host {cfg.node_name(k)}\n"
        f"    HostName {cfg.node_ip(k)}\n"
        "    User root\n"
        f"    IdentityFile {cfg.client_key}\n"
        "    IdentitiesOnly yes\n"
        f"    UserKnownHostsFile {cfg.known_hosts}\n"
        "    StrictHostKeyChecking yes\n"
        "    ConnectTimeout 5\n"
        "    LogLevel ERROR\n"
    )
