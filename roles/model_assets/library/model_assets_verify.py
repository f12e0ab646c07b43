#!/usr/bin/python
"""Check every file of a directory against a sha256 manifest, in one call."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: model_assets_verify
short_description: Check files against a sha256 manifest
description:
  - Hashes every file named in I(sha256) under I(path) and reports the missing and the
    mismatched ones. Read-only; never fails by itself.
options:
  path:
    description: Directory the manifest's relative paths start from.
    type: path
    required: true
  sha256:
    description: Manifest, relative path to expected sha256.
    type: dict
    required: true
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
"""

import hashlib
import os

from ansible.module_utils.basic import AnsibleModule


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main() -> None:
    module = AnsibleModule(
        argument_spec={"path": {"type": "path", "required": True}, "sha256": {"type": "dict", "required": True}},
        supports_check_mode=True,
    )
    root = module.params["path"]
    missing: list[str] = []
    mismatched: list[dict] = []
    verified = 0
    for rel, want in sorted(module.params["sha256"].items()):
        path = os.path.join(root, rel)
        if not os.path.isfile(path):
            missing.append(rel)
            continue
        got = _sha256(path)
        if got == str(want).strip().lower():
            verified += 1
        else:
            mismatched.append({"path": rel, "sha256": got, "expected": want})
    problems = [f"{os.path.join(root, rel)}: missing" for rel in missing] + [
        f"{os.path.join(root, m['path'])}: sha256 {m['sha256']}, the manifest says {m['expected']}" for m in mismatched
    ]
    module.exit_json(changed=False, missing=missing, mismatched=mismatched, verified=verified, problems=problems)


if __name__ == "__main__":
    main()
