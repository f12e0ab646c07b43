"""A static HTTP file server for tests: honours `Range: bytes=N-` and records every request.

    with FileServer({"data": some_dir}, host="127.0.0.1") as server:
        url = server.url("data/shard.parquet")
        ...
        assert server.requests[-1] == Request("/data/shard.parquet", "bytes=100-", 206)
"""

from __future__ import annotations

import re
import shutil
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

_RANGE = re.compile(r"bytes=(\d+)-$")


@dataclass(frozen=True)
class Request:
    path: str
    range: str | None
    status: int


class BackgroundServer:
    """An HTTP server on a free port of `host`, answering from a thread inside a `with` block."""

    def _serve(self, host: str, handler: type[BaseHTTPRequestHandler]) -> None:
        self._httpd = ThreadingHTTPServer((host, 0), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)


@dataclass
class FileServer(BackgroundServer):
    """Serves `roots` (first path component -> directory) on `host`, on a free port."""

    roots: dict[str, Path]
    host: str = "127.0.0.1"
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._serve(self.host, _handler_for(self))

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}/{path.lstrip('/')}"

    def file_for(self, path: str) -> Path | None:
        root, _, rest = path.lstrip("/").partition("/")
        base = self.roots.get(root)
        if base is None or not rest or ".." in rest.split("/"):
            return None
        candidate = base / rest
        return candidate if candidate.is_file() else None


def _handler_for(server: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            wanted = self.headers.get("Range")
            path = server.file_for(self.path)
            if path is None:
                self._answer(404, wanted)
                return
            size = path.stat().st_size
            start = 0
            match = _RANGE.match(wanted or "")
            if match:
                start = int(match.group(1))
                if start >= size:
                    self._answer(416, wanted, {"Content-Range": f"bytes */{size}"})
                    return
            status = 206 if match else 200
            headers = {"Content-Length": str(size - start), "Accept-Ranges": "bytes"}
            if match:
                headers["Content-Range"] = f"bytes {start}-{size - 1}/{size}"
            self._answer(status, wanted, headers)
            with path.open("rb") as handle:
                handle.seek(start)
                shutil.copyfileobj(handle, self.wfile)

        def _answer(self, status: int, wanted: str | None, headers: dict[str, str] | None = None) -> None:
            server.requests.append(Request(self.path, wanted, status))
            self.send_response(status)
            for name, value in (headers or {"Content-Length": "0"}).items():
                self.send_header(name, value)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the tests read `requests` instead."""

    return Handler
