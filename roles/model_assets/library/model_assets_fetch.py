#!/usr/bin/python
"""Fetch one file from a URL, resuming an interrupted download, and check its sha256."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: model_assets_fetch
short_description: Download a file with resume and a sha256 check
description:
  - Does nothing when I(dest) already has the expected sha256.
  - Otherwise downloads I(url) into C(<dest>.part), continuing a partial C(.part) left by an
    interrupted run with an HTTP Range request, checks the sha256 and moves the file into place.
  - A C(.part) whose content turns out wrong is removed, so the next run starts afresh.
options:
  url:
    description: http(s) or file URL of the file.
    type: str
    required: true
  dest:
    description: Path of the file on the host.
    type: path
    required: true
  sha256:
    description: Expected sha256 (hex) of the file.
    type: str
    required: true
  timeout:
    description: Seconds to wait for the server before giving up.
    type: int
    default: 60
  mode:
    description: Permissions of the file.
    type: str
    default: "0644"
author:
  - ascend-runner
"""

RETURN = r"""
resumed_from:
  description: Bytes of a previous partial download that were kept (0 when none).
  type: int
  returned: changed
size:
  description: Size of the file in bytes.
  type: int
  returned: always
"""

import hashlib
import os
import shutil
import urllib.error
import urllib.request

from ansible.module_utils.basic import AnsibleModule

_CHUNK = 1 << 20


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, part: str, timeout: int) -> int:
    """Append the rest of `url` to `part`; return how many bytes were already there."""
    have = os.path.getsize(part) if os.path.exists(part) else 0
    request = urllib.request.Request(url)
    if have and url.startswith(("http://", "https://")):
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - URL is the operator's
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the partial file is already complete
            return have
        raise
    with response:
        status = getattr(response, "status", None) or response.getcode()
        resumed = have if status == 206 else 0
        with open(part, "ab" if resumed else "wb") as handle:
            shutil.copyfileobj(response, handle, _CHUNK)
    return resumed


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "dest": {"type": "path", "required": True},
            "sha256": {"type": "str", "required": True},
            "timeout": {"type": "int", "default": 60},
            "mode": {"type": "str", "default": "0644"},
        },
        supports_check_mode=True,
    )
    url, dest = module.params["url"], module.params["dest"]
    want = module.params["sha256"].strip().lower()
    if os.path.isfile(dest) and _sha256(dest) == want:
        module.exit_json(changed=False, size=os.path.getsize(dest))
    if module.check_mode:
        module.exit_json(changed=True, size=0, resumed_from=0)
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    part = dest + ".part"
    try:
        resumed = _download(url, part, module.params["timeout"])
    except (OSError, urllib.error.URLError) as exc:
        kept = os.path.getsize(part) if os.path.exists(part) else 0
        module.fail_json(msg=f"download of {url} to {dest} failed: {exc}. {kept} bytes are kept in {part}; "
                             "re-run to resume, or check the URL and the network")
    got = _sha256(part)
    if got != want:
        os.unlink(part)
        module.fail_json(msg=f"{url} has sha256 {got}, the manifest says {want}: the source file differs from "
                             f"the one the manifest was made from (fix the URL or the manifest); the download "
                             f"was removed")
    os.chmod(part, int(module.params["mode"], 8))
    os.replace(part, dest)
    module.exit_json(changed=True, size=os.path.getsize(dest), resumed_from=resumed)


if __name__ == "__main__":
    main()
