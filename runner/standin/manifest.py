"""Writing generated files only when their bytes change, and sha256 manifests of them."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` atomically unless it already holds exactly these bytes."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return False
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


def write_manifest(directory: Path, files: dict[str, bytes]) -> dict[str, str]:
    """Write ``<directory>.sha256`` (``sha256sum -c`` format, paths relative to the directory).

    Returns ``{relative path: sha256}``.
    """
    sums = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())}
    text = "".join(f"{digest}  {name}\n" for name, digest in sums.items())
    write_if_changed(directory.with_name(directory.name + ".sha256"), text.encode("utf-8"))
    return sums


def write_tree(dest: Path, files: dict[str, bytes]) -> dict[str, str]:
    """Write ``files`` into ``dest`` (only those whose bytes differ) and ``<dest>.sha256``.

    Returns ``{relative path: sha256}``.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        write_if_changed(dest / name, data)
    return write_manifest(dest, files)
