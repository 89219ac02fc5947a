"""`wapa doctor`'s port check: a port taken by a running wapa is fine (as when `docker compose
exec wapa wapa doctor` runs beside the assistant); taken by anything else is a warning."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from wapa.commands.doctor import OK, WARN, _port
from wapa.sim.fake_cloudflare import FakeCloudflare

from tests.support.console_process import ConsoleWapa, clean_env


@pytest.fixture
def listening() -> Iterator[int]:
    """A port some other program listens on (a bare TCP socket, no HTTP)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_a_free_port_is_ok() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    check = _port("127.0.0.1", port)
    assert (check.status, check.detail) == (OK, f"127.0.0.1:{port} is free")


def test_a_port_taken_by_another_program_warns(listening: int) -> None:
    check = _port("127.0.0.1", listening)
    assert check.status == WARN
    assert "is taken by another program" in check.detail and "WAPA_HTTP_PORT" in check.fix


def test_another_http_server_is_not_taken_for_wapa() -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"status": "ok"}).encode()  # JSON, but not wapa's shape
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        check = _port("127.0.0.1", server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
    assert check.status == WARN and "another program" in check.detail


def test_the_port_of_a_running_wapa_is_fine(tmp_path: Path) -> None:
    with FakeCloudflare(latency=0.05) as cloudflare:
        env = clean_env(
            **cloudflare.env(),
            WAPA_DB=str(tmp_path / "wapa.db"),
            WAPA_HTTP_PORT="0",
            WAPA_OWNER_NAME="Gilad",
        )
        wapa = ConsoleWapa(env)
        try:
            port = int(wapa.expect(r"^\[http\] ").rsplit(":", 1)[1])
            check = _port("127.0.0.1", port)
        finally:
            wapa.stop()
    assert check.status == OK, check
    assert check.detail == f"127.0.0.1:{port} is served by a running wapa (ok)"
