"""A read-only container registry for tests: serves one image from a `docker save` tarball over
the registry HTTP API (GET/HEAD /v2/, manifests, blobs), enough for `podman pull` and `docker pull`.

    with Registry(Path("image.tar"), "mindformers/cann", "20250520", host=bridge_ip) as registry:
        ref = registry.ref          # "10.x.y.1:PORT/mindformers/cann:20250520"
        ...
        registry.requests           # [(method, path, status), ...]
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from http_files import BackgroundServer

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


def _blobs_of(tarball: Path) -> tuple[bytes, dict[str, bytes]]:
    """The OCI manifest and {digest: bytes} of every blob, from a docker-archive tarball."""
    with tarfile.open(tarball) as archive:

        def read(name: str) -> bytes:
            member = archive.extractfile(name)
            assert member is not None, f"{name} missing from {tarball}"
            return member.read()

        (entry,) = json.loads(read("manifest.json"))
        config = read(entry["Config"])
        layers = [read(name) for name in entry["Layers"]]

    def digest(data: bytes) -> str:
        return "sha256:" + hashlib.sha256(data).hexdigest()

    blobs = {digest(config): config, **{digest(layer): layer for layer in layers}}
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(layer),
                    "size": len(layer)} for layer in layers],
    }
    return json.dumps(manifest).encode(), blobs


@dataclass
class Registry(BackgroundServer):
    """Serves the image of `tarball` as `repository:tag` on `host`, on a free port."""

    tarball: Path
    repository: str
    tag: str
    host: str = "127.0.0.1"
    requests: list[tuple[str, str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.manifest, self.blobs = _blobs_of(self.tarball)
        self.manifest_digest = "sha256:" + hashlib.sha256(self.manifest).hexdigest()
        self._serve(self.host, _handler_for(self))

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def ref(self) -> str:
        return f"{self.address}/{self.repository}:{self.tag}"

    def answer(self, path: str) -> tuple[int, bytes, dict[str, str]]:
        if path in ("/v2/", "/v2"):
            return 200, b"{}", {"Content-Type": "application/json"}
        prefix = f"/v2/{self.repository}/"
        if not path.startswith(prefix):
            return 404, b"", {}
        kind, _, ref = path[len(prefix):].partition("/")
        if kind == "manifests" and ref in (self.tag, self.manifest_digest):
            return 200, self.manifest, {"Content-Type": MANIFEST_TYPE, "Docker-Content-Digest": self.manifest_digest}
        if kind == "blobs" and ref in self.blobs:
            return 200, self.blobs[ref], {"Content-Type": "application/octet-stream", "Docker-Content-Digest": ref}
        return 404, b"", {}


def _handler_for(registry: Registry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, body: bool) -> None:
            path = self.path.split("?", 1)[0]
            status, data, headers = registry.answer(path)
            registry.requests.append((self.command, path, status))
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(data))}.items():
                self.send_header(name, value)
            self.end_headers()
            if body:
                self.wfile.write(data)

        def do_GET(self) -> None:
            self._reply(body=True)

        def do_HEAD(self) -> None:
            self._reply(body=False)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the tests read `requests` instead."""

    return Handler
