"""What a simulated cluster is: its options, names and paths, derived in one place.

Every name the simulator creates on the machine (network namespaces, veths, bridge, cgroups)
starts with the cluster's `prefix`, so `runner sim down` can find them again from the system
alone, even when the state directory was lost or `up` crashed half-way.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from runner.errors import InputError, SimError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = REPO_ROOT / ".sim"
DEFAULT_INVENTORY_DIR = REPO_ROOT / "inventory" / "sim"
STATE_DIR_ENV = "RUNNER_SIM_DIR"
CACHE_DIR_ENV = "RUNNER_SIM_CACHE"
# The cgroup v2 tree: beside the v1 controllers on a hybrid machine, or the whole of /sys/fs/cgroup.
CGROUP_ROOT = Path("/sys/fs/cgroup/unified") if Path("/sys/fs/cgroup/unified").is_dir() else Path("/sys/fs/cgroup")
CONFIG_FILE = "cluster.json"
FIRST_NODE_HOST = 10  # node k gets the subnet's address number 10 + k; .1 is the control machine


def default_state_dir() -> Path:
    env = os.environ.get(STATE_DIR_ENV)
    return Path(env).resolve() if env else DEFAULT_STATE_DIR


class SimConfig(BaseModel):
    """The options of `runner sim up`, saved as <state_dir>/cluster.json."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state_dir: Path = Field(description="Where the simulator keeps keys, node files and its cache.")
    inventory_dir: Path = Field(description="Where the Ansible inventory of the cluster is written.")
    nodes: int = Field(2, ge=1, le=64, description="Number of simulated hosts.")
    npus: int = Field(8, ge=1, le=16, description="NPUs per host (an Atlas 800T A2 has 8).")
    storage: Literal["shared", "local"] = Field("shared", description="Is /mnt/data one directory?")
    subnet: ipaddress.IPv4Network = Field(
        ipaddress.IPv4Network("10.209.0.0/24"), description="Private subnet of the simulator's bridge."
    )
    prefix: str = Field(
        "arsim",
        pattern=r"^[a-z][a-z0-9]{1,7}$",
        description="Start of every name the simulator creates (netns, veth, bridge, cgroup).",
    )
    driver_version: str = Field("25.2.0", description="Ascend HDK driver version the nodes report.")
    firmware_version: str = Field("7.7.0.6.236", description="NPU firmware version the nodes report.")
    cann_version: str = Field("8.2.RC1", description="CANN toolkit version installed on the nodes.")
    image_cache_dir: Path = Field(
        default_factory=lambda: default_cache_dir(),
        description="Cache of the image tarball and stand-in assets, shared by every cluster; "
        "kept by `down` (default $RUNNER_SIM_CACHE, else .sim/cache in the repo).",
    )
    python_prefixes: tuple[Path, ...] = Field(
        default_factory=lambda: python_prefixes(),
        description="Control-machine Python trees mounted read-only into containers.",
    )

    @field_validator("subnet")
    @classmethod
    def _private(cls, value: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
        if not value.is_private or value.is_loopback:
            raise ValueError(f"{value} is not a private range; use e.g. 10.209.0.0/24")
        return value

    @model_validator(mode="after")
    def _fits(self) -> SimConfig:
        if self.subnet.num_addresses < FIRST_NODE_HOST + self.nodes + 2:
            raise ValueError(f"`subnet` {self.subnet} is too small for {self.nodes} nodes; use a /24 or larger")
        return self

    # ---- names ---------------------------------------------------------------------------

    @property
    def bridge(self) -> str:
        return f"{self.prefix}0"

    @property
    def host_ip(self) -> str:
        return str(self.subnet.network_address + 1)

    def node_name(self, k: int) -> str:
        return f"node{k}"

    def node_ip(self, k: int) -> str:
        return str(self.subnet.network_address + FIRST_NODE_HOST + k)

    def netns(self, k: int) -> str:
        return f"{self.prefix}-node{k}"

    def veth(self, k: int) -> str:
        return f"{self.prefix}-v{k}"

    @property
    def cgroup_dir(self) -> Path:
        return cgroup_dir_for(self.prefix)

    def node_cgroup(self, k: int) -> Path:
        return self.cgroup_dir / self.node_name(k)

    # ---- paths ---------------------------------------------------------------------------

    @property
    def ssh_dir(self) -> Path:
        return self.state_dir / "ssh"

    @property
    def client_key(self) -> Path:
        return self.ssh_dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.ssh_dir / "known_hosts"

    @property
    def ssh_config(self) -> Path:
        return self.ssh_dir / "ssh_config"

    @property
    def authorized_keys(self) -> Path:
        return self.ssh_dir / "authorized_keys"

    def node_dir(self, k: int) -> Path:
        return self.state_dir / "nodes" / self.node_name(k)

    @property
    def shared_data_dir(self) -> Path:
        return self.state_dir / "shared-data"

    def data_dir(self, k: int) -> Path:
        return self.shared_data_dir if self.storage == "shared" else self.node_dir(k) / "data"

    @property
    def cache_dir(self) -> Path:
        return self.image_cache_dir

    def node_index(self, name: str) -> int:
        """`node3` -> 3, or an InputError naming the valid nodes."""
        names = [self.node_name(k) for k in range(self.nodes)]
        if name not in names:
            raise InputError(
                f"no simulated node named {name!r}",
                hint=f"the cluster has {', '.join(names)}",
            )
        return names.index(name)

    def ssh_command(self, k: int) -> str:
        return f"ssh -F {self.ssh_config} {self.node_name(k)}"

    # ---- persistence ---------------------------------------------------------------------

    def save(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / CONFIG_FILE).write_text(self.model_dump_json(indent=2) + "\n")


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_DIR_ENV)
    return Path(env).resolve() if env else DEFAULT_STATE_DIR / "cache"


def cgroup_dir_for(prefix: str) -> Path:
    return CGROUP_ROOT / f"ascend-runner-sim-{prefix}"


def python_prefixes() -> tuple[Path, ...]:
    """The venv running us and the base interpreter it links to (both needed to run it)."""
    found: list[Path] = []
    for raw in (sys.prefix, sys.base_prefix):
        path = Path(raw).resolve()
        if path not in found:
            found.append(path)
    return tuple(found)


def base_python() -> Path:
    """The real interpreter binary behind the venv: present at the same path in containers."""
    return Path(os.path.realpath(sys.executable))


def make_config(**options: object) -> SimConfig:
    """Build a SimConfig from CLI options; a bad value is an InputError naming the option."""
    try:
        return SimConfig.model_validate(options)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "options"
        raise InputError(
            f"bad simulator option `{field}`: {err['msg']} (got {err.get('input')!r})",
            hint="see `runner sim up --help`",
        ) from None


def load_config(state_dir: Path) -> SimConfig | None:
    """The config of the cluster recorded in `state_dir`, or None when there is none."""
    path = state_dir / CONFIG_FILE
    if not path.exists():
        return None
    try:
        return SimConfig.model_validate(json.loads(path.read_text()))
    except (ValueError, ValidationError) as exc:
        raise SimError(
            f"{path} is unreadable: {exc}",
            hint="run `runner sim down --prefix PREFIX` to clean up from the system alone",
        ) from None
