"""The files of one simulated node: what its mount namespace shows over the machine's own.

A node directory holds:
  ascend/            bind-mounted on /usr/local/Ascend (driver, firmware, toolkit, nnal, hccn_tool)
  upper/<dir>        overlay upper layers over /dev, /etc, /usr/local, /root, /var, /opt
  work/<dir>         their overlay work directories
  containers/        bind-mounted on /var/lib/containers (the node's own podman storage)
  data/              /mnt/data when storage is local
  boot.sh            run inside the node's new mount + UTS namespace; ends by exec'ing sshd
Nothing here touches the machine: the overlays and binds exist only inside the node.
"""

from __future__ import annotations

import os
import platform
import shlex
import stat
from pathlib import Path

from runner.sim import fake_tools, keys
from runner.sim.config import SimConfig, base_python

OVERLAID = ("/dev", "/etc", "/usr/local", "/root", "/var", "/opt")
OPTIONAL = ("/root", "/var", "/opt", "/tmp")  # left shared when the simulator's own files are there
HIDDEN = ("/dev", "/etc", "/usr/local", "/run", "/mnt")  # never a place for the state directory
DEVICE_MAJOR = {"davinci": 236, "davinci_manager": 237, "devmm_svm": 238, "hisi_hdc": 239}
STATE_FILE = Path(fake_tools.STATE_PATH).name  # in ascend/driver/


def _key(path: str) -> str:
    return path.strip("/").replace("/", "-")


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def driver_version_info(version: str) -> str:
    return (
        f"Version={version}\nascendhal_version=7.35.23\naicpu_version=1.0\ntdt_version=1.0\n"
        "log_version=1.0\nprof_version=2.0\ndvppkernels_version=1.1\ntsfw_version=1.0\n"
        "Innerversion=V100R001C22SPC001B221\n"
        "compatible_version=[V100R001C19],[V100R001C20],[V100R001C21],[V100R001C22]\n"
        f"compatible_version_fw=[7.0.0,7.7.99]\npackage_version={version}\n"
    )


def firmware_version_info(firmware: str, driver: str) -> str:
    return (
        f"Version={firmware}\nfirmware_version=1.0\npackage_version={driver}\n"
        "compatible_version_drv=[23.0.0,23.0.0.],[24.0,24.0.],[25.0,25.2.]\n"
    )


def toolkit_set_env() -> str:
    """The variables CANN's ascend-toolkit/set_env.sh exports (it appends unguarded, like the real one)."""
    return """\
# Simulated CANN toolkit environment (ascend-runner simulator): same variables as the real script.
export ASCEND_TOOLKIT_HOME=/usr/local/Ascend/ascend-toolkit/latest
export LD_LIBRARY_PATH=${ASCEND_TOOLKIT_HOME}/lib64:${ASCEND_TOOLKIT_HOME}/lib64/plugin/opskernel:\
${ASCEND_TOOLKIT_HOME}/lib64/plugin/nnengine:\
${ASCEND_TOOLKIT_HOME}/opp/built-in/op_impl/ai_core/tbe/op_tiling/lib/linux/$(arch):$LD_LIBRARY_PATH
export LD_LIBRARY_PATH=${ASCEND_TOOLKIT_HOME}/tools/aml/lib64:${ASCEND_TOOLKIT_HOME}/tools/aml/lib64/plugin:\
$LD_LIBRARY_PATH
export PYTHONPATH=${ASCEND_TOOLKIT_HOME}/python/site-packages:\
${ASCEND_TOOLKIT_HOME}/opp/built-in/op_impl/ai_core/tbe:$PYTHONPATH
export PATH=${ASCEND_TOOLKIT_HOME}/bin:${ASCEND_TOOLKIT_HOME}/compiler/ccec_compiler/bin:\
${ASCEND_TOOLKIT_HOME}/tools/ccec_compiler/bin:$PATH
export ASCEND_AICPU_PATH=${ASCEND_TOOLKIT_HOME}
export ASCEND_OPP_PATH=${ASCEND_TOOLKIT_HOME}/opp
export TOOLCHAIN_HOME=${ASCEND_TOOLKIT_HOME}/toolkit
export ASCEND_HOME_PATH=${ASCEND_TOOLKIT_HOME}
"""


def atb_set_env() -> str:
    """The variables NNAL's atb/set_env.sh exports; `--cxx_abi=0|1` picks the ABI directory."""
    return """\
# Simulated NNAL/ATB environment (ascend-runner simulator): same variables as the real script.
cxx_abi=1
for arg in "$@"; do
    case "$arg" in
        --cxx_abi=0) cxx_abi=0 ;;
        --cxx_abi=1) cxx_abi=1 ;;
    esac
done
export ATB_HOME_PATH=/usr/local/Ascend/nnal/atb/latest/atb/cxx_abi_${cxx_abi}
export LD_LIBRARY_PATH=${ATB_HOME_PATH}/lib:${ATB_HOME_PATH}/examples:${ATB_HOME_PATH}/tests/atbopstest:\
$LD_LIBRARY_PATH
export PATH=${ATB_HOME_PATH}/bin:$PATH
export ATB_STREAM_SYNC_EVERY_KERNEL_ENABLE=0
export ATB_STREAM_SYNC_EVERY_RUNNER_ENABLE=0
export ATB_STREAM_SYNC_EVERY_OPERATION_ENABLE=0
export ATB_OPSRUNNER_SETUP_CACHE_ENABLE=1
export ATB_OPSRUNNER_KERNEL_CACHE_TYPE=3
export ATB_OPSRUNNER_KERNEL_CACHE_LOCAL_COUNT=1
export ATB_OPSRUNNER_KERNEL_CACHE_GLOABL_COUNT=5
export ATB_OPSRUNNER_KERNEL_CACHE_TILING_SIZE=10240
export ATB_WORKSPACE_MEM_ALLOC_ALG_TYPE=1
export ATB_WORKSPACE_MEM_ALLOC_GLOBAL=0
export ATB_COMPARE_TILING_EVERY_KERNEL=0
export ATB_HOST_TILING_BUFFER_BLOCK_NUM=128
export ATB_DEVICE_TILING_BUFFER_BLOCK_NUM=32
export ATB_SHARE_MEMORY_NAME_SUFFIX=""
export ATB_LAUNCH_KERNEL_WITH_TILING=1
export ATB_MATMUL_SHUFFLE_K_ENABLE=1
export ATB_RUNNER_POOL_SIZE=64
export ASDOPS_HOME_PATH=${ATB_HOME_PATH}
export ASDOPS_MATMUL_PP_FLAG=1
export ASDOPS_LOG_LEVEL=ERROR
export ASDOPS_LOG_TO_STDOUT=0
export ASDOPS_LOG_TO_FILE=1
export ASDOPS_LOG_TO_FILE_FLUSH=0
export ASDOPS_LOG_TO_BOOST_TYPE=atb
export ASDOPS_LOG_PATH=~
export LCCL_DETERMINISTIC=0
export LCCL_PARALLEL=0
"""


def toolkit_install_info(version: str, arch: str) -> str:
    return (
        f"package_name=Ascend-cann-toolkit\nversion={version}\ninnerversion=V100R001C22SPC001B231\n"
        "compatible_version=[V100R001C15],[V100R001C17],[V100R001C18],[V100R001C19],[V100R001C20],"
        f"[V100R001C21],[V100R001C22]\narch={arch}\nos=linux\n"
        f"path=/usr/local/Ascend/ascend-toolkit/{version}/{arch}-linux\n"
    )


ASCEND_INSTALL_INFO = """\
UserName=HwHiAiUser
UserGroup=HwHiAiUser
Driver_Install_Type=full
Driver_Install_Path_Param=/usr/local/Ascend
Driver_Install_For_All=yes
Driver_Install_Mode=normal
Firmware_Install_Type=full
Firmware_Install_Path_Param=/usr/local/Ascend
"""

CONTAINERS_CONF = """\
# Podman on a simulated node (see the simulator's notes): runc, cgroupfs, no default ulimits.
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
"""

DOCKER_WRAPPER = """\
#!/bin/sh
# Simulated Atlas node: `docker` is podman, configured by /etc/containers/containers.conf.
exec /usr/bin/podman "$@"
"""


def hccn_conf(state: dict) -> str:
    lines = []
    for k, npu in enumerate(state["npus"]):
        lines += [
            f"address_{k}={npu['ipaddr']}",
            f"netmask_{k}={npu['netmask']}",
            f"netdetect_{k}={npu['gateway']}",
            f"gateway_{k}={npu['gateway']}",
        ]
    return "\n".join(lines) + "\n"


def fake_tool_script() -> str:
    """fake_tools.py with a shebang naming the control machine's base interpreter.

    That interpreter is at the same path on every node and, through the inventory's extra
    volumes, in every container, so the tools also work inside the NPU container. `-S` skips
    site-packages: the tools need only the standard library, and a .pth file there (certifi's)
    would triple the start-up time of every call, which preflight makes 25 times per host.
    """
    source = Path(fake_tools.__file__).read_text()
    return f"#!{base_python()} -IS\n" + source


def _hosts_file(cfg: SimConfig) -> str:
    try:
        base = Path("/etc/hosts").read_text()
    except OSError:
        base = "127.0.0.1\tlocalhost\n"
    ours = "".join(f"{cfg.node_ip(k)}\t{cfg.node_name(k)}\n" for k in range(cfg.nodes))
    return base.rstrip("\n") + "\n# simulated cluster\n" + ours


def _passwd_files(upper_etc: Path) -> None:
    """Real hosts have the HwHiAiUser account the driver installer creates."""
    for name, line in (
        ("passwd", "HwHiAiUser:x:1000:1000::/home/HwHiAiUser:/bin/bash\n"),
        ("group", "HwHiAiUser:x:1000:\n"),
    ):
        try:
            text = Path("/etc", name).read_text()
        except OSError:
            continue
        if "HwHiAiUser:" not in text:
            _write(upper_etc / name, text.rstrip("\n") + "\n" + line)


def write_npu_state(cfg: SimConfig, k: int, state: dict) -> None:
    fake_tools.save_state(state, str(cfg.node_dir(k) / "ascend" / "driver" / STATE_FILE))


def read_npu_state(cfg: SimConfig, k: int) -> dict:
    return fake_tools.load_state(str(cfg.node_dir(k) / "ascend" / "driver" / STATE_FILE))


def set_driver_version(cfg: SimConfig, k: int, version: str) -> None:
    _write(cfg.node_dir(k) / "ascend" / "driver" / "version.info", driver_version_info(version))


def build_ascend(cfg: SimConfig, k: int, tool: str) -> None:
    """/usr/local/Ascend of node k: driver, firmware, toolkit, nnal, hccn_tool and NPU state."""
    root = cfg.node_dir(k) / "ascend"
    arch = platform.machine()
    state = fake_tools.default_state(k, cfg.npus)
    set_driver_version(cfg, k, cfg.driver_version)
    write_npu_state(cfg, k, state)
    for sub in ("lib64/common", "lib64/driver", "include"):
        (root / "driver" / sub).mkdir(parents=True, exist_ok=True)
    _write(root / "driver" / "tools" / "hccn_tool", tool, 0o755)
    _write(
        root / "driver" / "tools" / "upgrade-tool",
        f'#!/bin/sh\necho "{{Get system version({cfg.firmware_version}) succeed, deviceId(0)}}"\n',
        0o755,
    )
    _write(root / "firmware" / "version.info", firmware_version_info(cfg.firmware_version, cfg.driver_version))
    toolkit = root / "ascend-toolkit" / cfg.cann_version
    _write(toolkit / f"{arch}-linux" / "ascend_toolkit_install.info", toolkit_install_info(cfg.cann_version, arch))
    for sub in ("bin", "lib64", "opp", "python/site-packages"):
        (toolkit / sub).mkdir(parents=True, exist_ok=True)
    latest = root / "ascend-toolkit" / "latest"
    if not latest.is_symlink():
        latest.symlink_to(cfg.cann_version)
    _write(root / "ascend-toolkit" / "set_env.sh", toolkit_set_env())
    for abi in (0, 1):
        (root / "nnal" / "atb" / cfg.cann_version / "atb" / f"cxx_abi_{abi}" / "lib").mkdir(parents=True, exist_ok=True)
    atb_latest = root / "nnal" / "atb" / "latest"
    if not atb_latest.is_symlink():
        atb_latest.symlink_to(cfg.cann_version)
    _write(root / "nnal" / "atb" / "set_env.sh", atb_set_env())
    os.chmod(root, 0o755)


def _devices(cfg: SimConfig, dev: Path) -> None:
    dev.mkdir(parents=True, exist_ok=True)
    nodes = [(f"davinci{i}", DEVICE_MAJOR["davinci"], i) for i in range(cfg.npus)]
    nodes += [(name, DEVICE_MAJOR[name], 0) for name in ("davinci_manager", "devmm_svm", "hisi_hdc")]
    for name, major, minor in nodes:
        path = dev / name
        if not path.exists():
            # A major number no driver here registers: the node exists, opening it fails (ENXIO).
            os.mknod(path, 0o660 | stat.S_IFCHR, os.makedev(major, minor))
            path.chmod(0o660)


ROOT_SHELL_RC = """\
# Shell start-up of root on a simulated Atlas node (written by `runner sim up`).
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
"""


def build_node(cfg: SimConfig, k: int) -> None:
    """Write every file of node k (idempotent: an existing tree is refreshed)."""
    node = cfg.node_dir(k)
    for path in OVERLAID:
        (node / "upper" / _key(path)).mkdir(parents=True, exist_ok=True)
        (node / "work" / _key(path)).mkdir(parents=True, exist_ok=True)
    for sub in ("containers", "stage/pts", "stage/mqueue"):
        (node / sub).mkdir(parents=True, exist_ok=True)
    if cfg.storage == "local":
        cfg.data_dir(k).mkdir(parents=True, exist_ok=True)
    tool = fake_tool_script()
    build_ascend(cfg, k, tool)
    _devices(cfg, node / "upper" / "dev")

    etc = node / "upper" / "etc"
    _write(etc / "hccn.conf", hccn_conf(fake_tools.default_state(k, cfg.npus)))
    _write(etc / "ascend_install.info", ASCEND_INSTALL_INFO)
    _write(etc / "containers" / "containers.conf", CONTAINERS_CONF)
    _write(etc / "hostname", cfg.node_name(k) + "\n")
    _write(etc / "hosts", _hosts_file(cfg))
    _passwd_files(etc)

    local = node / "upper" / "usr-local"
    (local / "Ascend").mkdir(exist_ok=True)  # the mount point of ascend/
    (local / "dcmi").mkdir(exist_ok=True)
    _write(local / "bin" / "npu-smi", tool, 0o755)
    _write(local / "bin" / "docker", DOCKER_WRAPPER, 0o755)
    link = local / "bin" / "hccn_tool"
    if not link.is_symlink():
        link.symlink_to("/usr/local/Ascend/driver/tools/hccn_tool")
    for sub in ("slog", "profiling", "dump"):
        (node / "upper" / "var" / "log" / "npu" / sub).mkdir(parents=True, exist_ok=True)

    # root's shell start-up is a plain host's, not this machine's: a developer's .bashrc (pyenv,
    # conda) would run in every SSH session of every node, and its rehash locks can stall them.
    for name in (".bashrc", ".profile"):
        _write(node / "upper" / "root" / name, ROOT_SHELL_RC)

    _write(node / "sshd_config", sshd_config(cfg, k), 0o600)
    _write(node / "boot.sh", boot_script(cfg, k), 0o755)


def sshd_config(cfg: SimConfig, k: int) -> str:
    node = cfg.node_dir(k)
    return f"""\
# sshd of simulated node {cfg.node_name(k)} (written by `runner sim up`)
ListenAddress {cfg.node_ip(k)}
Port 22
HostKey {node}/ssh_host_ed25519_key
PidFile {node}/sshd.pid
AuthorizedKeysFile {cfg.authorized_keys}
PermitRootLogin prohibit-password
StrictModes {"no" if keys.needs_lax_strict_modes(cfg.state_dir) else "yes"}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
MaxStartups 256
MaxSessions 256
AcceptEnv LANG LC_*
SetEnv PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
Subsystem sftp /usr/lib/openssh/sftp-server
LogLevel INFO
"""


def shared_dirs(cfg: SimConfig) -> set[str]:
    """Directories nodes must see as the machine's, because the simulator's state directory or the
    Python it mounts lives below them (e.g. a checkout under /root or /tmp). The node then shares
    that directory with the machine instead of getting its own."""
    # An overlay shows the machine's files (Python included) but cannot hold its own upper layer;
    # a tmpfs hides everything below it.
    shared = {d for d in OPTIONAL if cfg.state_dir.is_relative_to(d)}
    if any(p.is_relative_to("/tmp") for p in cfg.python_prefixes):
        shared.add("/tmp")
    return shared


def boot_script(cfg: SimConfig, k: int) -> str:
    """Mounts of node k, run in its fresh private mount namespace; then exec sshd."""
    node = cfg.node_dir(k)
    q = shlex.quote
    lines = [
        "#!/bin/sh",
        f"# Boot of simulated node {cfg.node_name(k)}: runs inside its own mount and UTS namespace.",
        "set -eu",
        f"N={q(str(node))}",
        # /dev: keep the machine's devpts and mqueue, add this node's NPU devices on top.
        'mount --bind /dev/pts "$N/stage/pts"',
        'mount --bind /dev/mqueue "$N/stage/mqueue" 2>/dev/null || true',
    ]
    shared = shared_dirs(cfg)
    for path in OVERLAID:
        if path in shared:
            continue
        key = _key(path)
        lines.append(
            f'mount -t overlay sim-{key} -o "lowerdir={path},upperdir=$N/upper/{key},workdir=$N/work/{key}" {path}'
        )
        if path == "/dev":
            lines += [
                'mount --move "$N/stage/pts" /dev/pts',
                'mountpoint -q "$N/stage/mqueue" && mount --move "$N/stage/mqueue" /dev/mqueue',
                "mount -t tmpfs -o mode=1777,nosuid,nodev,size=64g sim-shm /dev/shm",  # a limit, not a reservation
            ]
    lines += [
        'mount --bind "$N/ascend" /usr/local/Ascend',
        'mount --bind "$N/containers" /var/lib/containers',
        "mount -t tmpfs -o mode=755,nosuid,nodev sim-run /run",
        "mkdir -p /run/sshd /run/lock",
    ]
    if "/tmp" not in shared:
        lines.append("mount -t tmpfs -o mode=1777,nosuid,nodev sim-tmp /tmp")
    lines += [
        "mount -t tmpfs -o mode=755 sim-mnt /mnt",
        "mkdir -p /mnt/data",
        f"mount --bind {q(str(cfg.data_dir(k)))} /mnt/data",
        f"hostname {cfg.node_name(k)}",
        'exec /usr/sbin/sshd -D -e -f "$N/sshd_config" 2>>"$N/sshd.log"',
    ]
    return "\n".join(lines) + "\n"
