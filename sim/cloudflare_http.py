"""The HTTP side of `sim.fake_cloudflare.FakeCloudflare`: one request in, `FakeCloudflare.handle`
answers it. Its own module so that the simulator, which uses only the fake's answers
(`cloudflare_response`), does not load http.server."""

from __future__ import annotations

import io
import json
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from wapa.sim.fake_cloudflare import _envelope_error

if TYPE_CHECKING:
    from wapa.sim.fake_cloudflare import FakeCloudflare


class CloudflareHandler(BaseHTTPRequestHandler):
    fake: FakeCloudflare
    protocol_version = "HTTP/1.1"
    # An answer goes out in one send, its head and body together, with Nagle off, as a web
    # server's does (nginx: tcp_nodelay on). http.server's defaults wrote the head, then the
    # body, each at once (an unbuffered wfile), and Nagle held the body back until the client
    # acknowledged the head: a delayed ACK, about 40 ms more per answer on loopback.
    wbufsize = io.DEFAULT_BUFFER_SIZE  # flushed by http.server after each request
    disable_nagle_algorithm = True

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = unquote(urlsplit(self.path).path)
        auth = self.headers.get("Authorization") or ""
        try:
            status, payload, headers = self.fake.handle(method, path, auth, body)
        except Exception as exc:  # the fake must answer, even when it has a bug
            status, payload, headers = 500, _envelope_error(3043, f"fake: {type(exc).__name__}"), {}
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self.send_response(status)
        ctype = "text/html" if isinstance(payload, str) else "application/json"
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def log_message(self, format: str, *args: Any) -> None:  # quiet: no request lines
        return
