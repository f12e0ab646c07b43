#!/usr/bin/python
"""Check every file of a directory against a sha256 manifest, in one call."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: model_assets_verify
short_description: Check files against a sha256 manifest
description:
  - Hashes every file named in I(sha256) under I(path) and reports the missing and the
    mismatched ones. Never changes the files and never fails by itself.
  - With I(cache), a file whose size and modification time are those recorded when it last
    matched is not hashed again (as rsync and make decide), so re-runs over tens of GB of
    weights take seconds. The cache lives outside I(path), where training never reads it.
options:
  path:
    description: Directory the manifest's relative paths start from.
    type: path
    required: true
  sha256:
    description: Manifest, relative path to expected sha256.
    type: dict
    required: true
  cache:
    description: JSON file of the files that matched (size, mtime, sha256); empty hashes every file.
    type: path
    default: ""
  record:
    description: Whether to write what matched into I(cache); off in check mode, where only reading is allowed.
    type: bool
    default: true
author:
  - ascend-runner
"""

RETURN = r"""
missing:
  description: Manifest paths with no file.
  type: list
  returned: always
mismatched:
  description: Files whose sha256 differs, as {path, sha256, expected}.
  type: list
  returned: always
problems:
  description: One line per missing or mismatched file, with its full path.
  type: list
  returned: always
verified:
  description: Number of files whose sha256 matched.
  type: int
  returned: always
hashed:
  description: Number of files hashed in this call (the others were unchanged since they matched).
  type: int
  returned: always
"""

import hashlib
import json
import os

from ansible.module_utils.basic import AnsibleModule


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_cache(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_cache(path: str, entries: dict) -> None:
    """Written whole and renamed into place: a reader never sees half a cache."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(entries, handle, indent=1, sort_keys=True)
    os.replace(tmp, path)


def verify(root: str, manifest: dict, cache: dict) -> tuple[list[str], list[dict], dict, int]:
    """(missing, mismatched, the new cache, how many files were hashed) for `manifest` under `root`."""
    missing: list[str] = []
    mismatched: list[dict] = []
    matched: dict = {}
    hashed = 0
    for rel, want in sorted(manifest.items()):
        path = os.path.join(root, rel)
        if not os.path.isfile(path):
            missing.append(rel)
            continue
        want = str(want).strip().lower()
        stat = os.stat(path)
        seen = cache.get(path)
        if seen == {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": want}:
            got = want
        else:
            got = _sha256(path)
            hashed += 1
        if got == want:
            matched[path] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": got}
        else:
            mismatched.append({"path": rel, "sha256": got, "expected": want})
    return missing, mismatched, matched, hashed


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "sha256": {"type": "dict", "required": True},
            "cache": {"type": "path", "default": ""},
            "record": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    root, cache_path = module.params["path"], module.params["cache"]
    cache = _load_cache(cache_path) if cache_path else {}
    missing, mismatched, matched, hashed = verify(root, module.params["sha256"], cache)
    verified = len(matched)
    # Entries of other directories sharing the cache file are kept; this directory's are replaced.
    prefix = os.path.join(root, "")
    merged = {**{p: e for p, e in cache.items() if not p.startswith(prefix)}, **matched}
    if cache_path and merged != cache and module.params["record"] and not module.check_mode:
        try:
            _save_cache(cache_path, merged)
        except OSError as exc:
            module.warn(f"could not record the verified files in {cache_path}: {exc}; the next run hashes them again")
    problems = [f"{os.path.join(root, rel)}: missing" for rel in missing] + [
        f"{os.path.join(root, m['path'])}: sha256 {m['sha256']}, the manifest says {m['expected']}" for m in mismatched
    ]
    # The cache is bookkeeping of this module, not a change to the host's configuration.
    module.exit_json(changed=False, missing=missing, mismatched=mismatched, verified=verified, hashed=hashed,
                     problems=problems)


if __name__ == "__main__":
    main()
