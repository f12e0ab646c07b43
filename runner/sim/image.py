"""The NPU container image of the simulator, built locally and saved as an offline tarball.

No registry is reachable, so the image is a root filesystem assembled from this machine's own
programs and libraries (`podman import`), saved with `podman save` like an image an offline
site receives. It carries what a MindSpeed image carries that matters here: a shell and the
usual tools, the CANN toolkit and NNAL files with their set_env.sh, and every system library
the control machine's Python and MindSpore need. Python itself is not copied: the inventory
mounts the control machine's interpreter and venv read-only at the same paths
(`ascend_container_extra_volumes`).

The tarball is cached under <state_dir>/cache/image/, keyed by image name and tag.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from runner.errors import SimError
from runner.sim import nodefs
from runner.sim.config import SimConfig

PACKAGES = (
    "bash", "dash", "coreutils", "grep", "sed", "mawk", "findutils", "tar", "gzip",
    "procps", "util-linux", "hostname", "debianutils", "libc-bin",
)  # fmt: skip
LDD_LINE = re.compile(r"=>\s+(/\S+)\s+\(")
LOADER = Path("/lib64/ld-linux-x86-64.so.2")
# Bump when the image's content changes, so cached tarballs are rebuilt.
IMAGE_REVISION = 3
# A MindSpore image has these on PATH; here they lead into the venv mounted at its own path.
# python is an exec wrapper, not a symlink: Python looks for the venv's pyvenv.cfg next to the
# path it was started as, so a symlink elsewhere would lose the venv's packages.
VENV_PROGRAMS = ("python", "python3", "msrun")

PROFILE = """\
# /etc/profile of the simulator's NPU image
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
if [ -d /etc/profile.d ]; then
  for f in /etc/profile.d/*.sh; do
    [ -r "$f" ] && . "$f"
  done
  unset f
fi
"""


def _package_programs() -> list[Path]:
    proc = subprocess.run(["dpkg", "-L", *PACKAGES], capture_output=True, text=True, check=False)
    progs = []
    for line in proc.stdout.splitlines():
        path = Path(line)
        if re.match(r"^/(usr/)?s?bin/[^/]+$", line) and path.is_file() and os.access(path, os.X_OK):
            progs.append(path)
    return progs


def _shared_objects(python_prefixes: tuple[Path, ...]) -> list[Path]:
    found: list[Path] = []
    for prefix in python_prefixes:
        for path in prefix.rglob("*.so*"):
            if path.is_file() and not path.is_symlink():
                found.append(path)
    return found


def _ldd_closure(files: list[Path], exclude: tuple[Path, ...]) -> set[Path]:
    """System libraries the files link to (libraries inside `exclude` trees are mounted)."""
    libs: set[Path] = set()
    for start in range(0, len(files), 200):
        proc = subprocess.run(
            ["ldd", *map(str, files[start : start + 200])], capture_output=True, text=True, check=False
        )
        for match in LDD_LINE.finditer(proc.stdout):
            lib = Path(match.group(1))
            if not any(lib.is_relative_to(p) for p in exclude):
                libs.add(lib)
    return libs


def _add_file(tar: tarfile.TarFile, src: Path, seen: set[str]) -> None:
    """Add src at its real path, plus the symlink chain that leads to it."""
    path = Path(os.path.abspath(src))
    while path.is_symlink():
        name = str(path.parent.resolve() / path.name).lstrip("/")
        if name not in seen:
            seen.add(name)
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(path)
            tar.addfile(info)
        path = (path.parent / os.readlink(path)).resolve(strict=False)
    real = path.resolve()
    name = str(real).lstrip("/")
    if name in seen or not real.is_file():
        return
    seen.add(name)
    tar.add(str(real), arcname=name, recursive=False)


def _add_text(tar: tarfile.TarFile, name: str, text: str, mode: int = 0o644) -> None:
    data = text.encode()
    info = tarfile.TarInfo(name.lstrip("/"))
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name.lstrip("/"))
    info.type, info.mode = tarfile.DIRTYPE, mode
    tar.addfile(info)


def _add_tree(tar: tarfile.TarFile, src: Path, arcname: str) -> None:
    tar.add(str(src), arcname=arcname.lstrip("/"))


def build_rootfs(cfg: SimConfig, dest: Path, work: Path) -> None:
    """Write the image's root filesystem as a tar file."""
    programs = _package_programs()
    libs = _ldd_closure(programs + _shared_objects(cfg.python_prefixes), cfg.python_prefixes)
    libs |= _ldd_closure([Path(os.path.realpath(p)) for p in (Path("/usr/bin/python3"),)], ())
    # Ascend toolkit + NNAL as an image has them (the driver comes from the host at run time).
    ascend = work / "ascend"
    scratch = SimConfig.model_validate({**cfg.model_dump(), "state_dir": work, "nodes": 1})
    nodefs.build_ascend(scratch, 0, "#!/bin/sh\n")
    shutil.rmtree(ascend, ignore_errors=True)
    shutil.move(str(scratch.node_dir(0) / "ascend"), ascend)
    shutil.rmtree(ascend / "driver", ignore_errors=True)
    shutil.rmtree(ascend / "firmware", ignore_errors=True)

    seen: set[str] = set()
    with tarfile.open(dest, "w") as tar:
        for top in ("bin", "lib", "lib64", "sbin"):
            link = Path("/") / top
            if link.is_symlink():
                info = tarfile.TarInfo(top)
                info.type, info.linkname = tarfile.SYMTYPE, os.readlink(link)
                tar.addfile(info)
                seen.add(top)
        for d in ("usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "etc/profile.d", "root", "home",
                  "proc", "sys", "dev", "run", "mnt", "opt", "var/log", "var/lib", "usr/local/bin",
                  "usr/local/Ascend"):  # fmt: skip
            _add_dir(tar, d, 0o700 if d == "root" else 0o755)
        for d in ("tmp", "var/tmp"):
            _add_dir(tar, d, 0o1777)
        for path in sorted(programs) + sorted(libs) + [LOADER]:
            _add_file(tar, path, seen)
        _add_tree(tar, ascend / "ascend-toolkit", "usr/local/Ascend/ascend-toolkit")
        _add_tree(tar, ascend / "nnal", "usr/local/Ascend/nnal")
        _add_text(tar, "etc/passwd", "root:x:0:0:root:/root:/bin/bash\n"
                  "HwHiAiUser:x:1000:1000::/home/HwHiAiUser:/bin/bash\n")  # fmt: skip
        _add_text(tar, "etc/group", "root:x:0:\nHwHiAiUser:x:1000:\n")
        _add_text(tar, "etc/profile", PROFILE)
        venv_bin = cfg.python_prefixes[0] / "bin"
        for program in VENV_PROGRAMS:
            _add_text(tar, f"usr/local/bin/{program}", f'#!/bin/sh\nexec {venv_bin / program} "$@"\n', 0o755)
        _add_text(tar, "etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n")
        if Path("/etc/os-release").exists():
            _add_file(tar, Path("/etc/os-release"), seen)


def _podman(args: list[str], store: Path) -> subprocess.CompletedProcess[str]:
    conf = store / "containers.conf"
    conf.write_text(nodefs.CONTAINERS_CONF)
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    # podman refuses a run root path longer than 50 characters: keep it short, out of the cache.
    short = Path(tempfile.gettempdir()) / f"arsim-img-{os.getpid()}"
    short.mkdir(mode=0o700, exist_ok=True)
    cmd = [
        "podman", "--root", str(store / "root"), "--runroot", str(short / "run"),
        "--tmpdir", str(short / "tmp"), "--storage-driver", "vfs", "--events-backend", "none",
        "--cgroup-manager", "cgroupfs", *args,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    if proc.returncode != 0:
        raise SimError(f"`podman {' '.join(args[:2])}` failed: {proc.stderr.strip()[-800:]}")
    return proc


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def image_tarball(cfg: SimConfig, name: str, tag: str) -> tuple[Path, str]:
    """The saved image `name:tag` (built on first use) and its sha256."""
    key = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{name}_{tag}_r{IMAGE_REVISION}")
    out_dir = cfg.cache_dir / "image"
    tarball = out_dir / f"{key}.tar"
    sha_file = out_dir / f"{key}.tar.sha256"
    if tarball.exists() and sha_file.exists():
        return tarball, sha_file.read_text().split()[0]
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / f"build-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        rootfs = work / "rootfs.tar"
        build_rootfs(cfg, rootfs, work)
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
        _podman(["import", "--arch", arch, "--change", "CMD=/bin/bash", "--change",
                 "ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                 str(rootfs), f"{name}:{tag}"], work)  # fmt: skip
        partial = work / "image.tar"
        _podman(["save", "--format", "docker-archive", "-o", str(partial), f"{name}:{tag}"], work)
        digest = sha256_of(partial)
        if sha_file.exists() and tarball.exists():  # built meanwhile by another `up`: use that one
            return tarball, sha_file.read_text().split()[0]
        partial.rename(tarball)
        sha_file.write_text(f"{digest}  {tarball.name}\n")
    finally:
        _cleanup_store(work)
    return tarball, digest


def _cleanup_store(work: Path) -> None:
    """The build storage is plain directories (vfs driver, no mounts): remove them."""
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(Path(tempfile.gettempdir()) / f"arsim-img-{os.getpid()}", ignore_errors=True)
