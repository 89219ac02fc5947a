"""`wapa healthcheck` against real local HTTP servers: 200, 503, unreachable, too slow."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest
from wapa.cli import main
from wapa.commands.healthcheck import HealthcheckConfigError, default_url


class _Handler(http.server.BaseHTTPRequestHandler):
    status = 200
    body = b'{"whatsapp": "connected", "store": "ok", "model": "ok"}'
    paths: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        type(self).paths.append(self.path)
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return


def _serve(status: int, body: bytes) -> Iterator[tuple[int, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"status": status, "body": body, "paths": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def healthy() -> Iterator[tuple[int, type[_Handler]]]:
    yield from _serve(200, _Handler.body)


@pytest.fixture
def unhealthy() -> Iterator[tuple[int, type[_Handler]]]:
    yield from _serve(503, b'{"whatsapp": "logged_out"}' + b"x" * 2000)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_200_exits_zero_and_asks_for_healthz(
    healthy: tuple[int, type[_Handler]], capsys: pytest.CaptureFixture[str]
) -> None:
    port, handler = healthy
    assert main(["healthcheck", "--url", f"http://127.0.0.1:{port}/healthz"]) == 0
    assert handler.paths == ["/healthz"]
    assert capsys.readouterr().out.startswith('healthy: HTTP 200 {"whatsapp": "connected"')


def test_default_url_comes_from_the_environment(
    healthy: tuple[int, type[_Handler]], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, handler = healthy
    monkeypatch.setenv("WAPA_HTTP_HOST", "0.0.0.0")
    monkeypatch.setenv("WAPA_HTTP_PORT", str(port))
    assert main(["healthcheck"]) == 0
    assert handler.paths == ["/healthz"]


def test_proxy_variables_are_ignored(
    healthy: tuple[int, type[_Handler]], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, _ = healthy
    dead_proxy = f"http://127.0.0.1:{_closed_port()}"
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, dead_proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert main(["healthcheck", "--url", f"http://127.0.0.1:{port}/healthz"]) == 0


def test_503_exits_one_with_a_bounded_body(
    unhealthy: tuple[int, type[_Handler]], capsys: pytest.CaptureFixture[str]
) -> None:
    port, _ = unhealthy
    assert main(["healthcheck", "--url", f"http://127.0.0.1:{port}/healthz"]) == 1
    out = capsys.readouterr().out
    assert out.startswith('unhealthy: HTTP 503 {"whatsapp": "logged_out"}')
    assert out.rstrip().endswith("...")
    assert len(out) < 600


def test_unreachable_exits_one(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/healthz"
    assert main(["healthcheck", "--url", url]) == 1
    assert capsys.readouterr().out.startswith(f"unhealthy: {url} unreachable:")


def test_a_server_that_never_answers_times_out(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepted by the kernel's backlog, never answered
        port = listener.getsockname()[1]
        status = main(["healthcheck", "--timeout", "0.2", "--url", f"http://127.0.0.1:{port}/"])
    assert status == 1
    assert "timed out" in capsys.readouterr().out


def test_malformed_url_exits_one_not_two(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["healthcheck", "--url", "not a url"]) == 1
    assert capsys.readouterr().out.startswith("unhealthy:")


def test_bad_port_variable_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WAPA_HTTP_PORT", "eighty")
    assert main(["healthcheck"]) == 1
    assert "WAPA_HTTP_PORT='eighty' is not a port number" in capsys.readouterr().out


def test_non_positive_timeout_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["healthcheck", "--timeout", "0", "--url", "http://127.0.0.1:1/"]) == 1
    assert "--timeout must be positive" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({}, "http://127.0.0.1:8080/healthz"),
        ({"WAPA_HTTP_HOST": "0.0.0.0", "WAPA_HTTP_PORT": "9000"}, "http://127.0.0.1:9000/healthz"),
        ({"WAPA_HTTP_HOST": "::"}, "http://[::1]:8080/healthz"),
        ({"WAPA_HTTP_HOST": "::1", "WAPA_HTTP_PORT": " 81 "}, "http://[::1]:81/healthz"),
        ({"WAPA_HTTP_HOST": "10.1.2.3", "WAPA_HTTP_PORT": ""}, "http://10.1.2.3:8080/healthz"),
    ],
)
def test_default_url(env: dict[str, str], url: str) -> None:
    assert default_url(env) == url


@pytest.mark.parametrize("port", ["0", "65536", "-1", "8080.5"])
def test_default_url_rejects_bad_ports(port: str) -> None:
    with pytest.raises(HealthcheckConfigError, match="WAPA_HTTP_PORT"):
        default_url({"WAPA_HTTP_PORT": port})
