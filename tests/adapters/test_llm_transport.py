"""The model clients' pooled transport (adapters/llm/transport.py) against real sockets and a
real local HTTP/1.1 server: connections are reused, a connection the server closed while idle
is dropped and the request goes out on a new one, and a proxy in the environment keeps
httpx's default transports."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from wapa.adapters.llm import client_from_env
from wapa.adapters.llm.transport import (
    CheapReadableBackend,
    pooled_transport,
    socket_readable,
    wants_default_transport,
)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    close_after: set[int] = set()  # request numbers after which the server closes the socket
    requests = 0
    peers: list[tuple[str, int]] = []

    def do_POST(self) -> None:
        type(self).requests += 1
        n = type(self).requests
        type(self).peers.append(self.client_address)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if n in type(self).close_after:
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"close_after": set(), "requests": 0, "peers": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_socket_readable_is_the_poll_httpcore_makes() -> None:
    a, b = socket.socketpair()
    try:
        assert not socket_readable(a)  # idle: nothing to read
        b.sendall(b"x")
        assert socket_readable(a)
        a.recv(1)
        assert not socket_readable(a)
        b.close()
        assert socket_readable(a)  # the peer closed: a read returns b"" at once
    finally:
        a.close()
        b.close()
    assert socket_readable(a)  # closed here: fileno() is -1, the connection is dropped
    assert socket_readable(None)


async def _post_all(url: str, bodies: list[bytes], pause: float = 0.0) -> list[bytes]:
    out = []
    async with httpx.AsyncClient(transport=pooled_transport()) as client:
        for body in bodies:
            r = await client.post(url, content=body)
            out.append(r.content)
            if pause:
                await asyncio.sleep(pause)  # the server's close reaches the idle socket
    return out


def test_requests_reuse_one_connection(server: tuple[str, type[_Handler]]) -> None:
    url, handler = server
    bodies = [b'{"n": %d}' % i for i in range(3)]
    assert asyncio.run(_post_all(url, bodies)) == bodies
    assert handler.requests == 3
    assert len(set(handler.peers)) == 1  # one client port: kept alive and reused


def test_a_connection_the_server_closed_is_replaced(server: tuple[str, type[_Handler]]) -> None:
    url, handler = server
    handler.close_after = {1}  # the server closes the idle connection after the first answer
    bodies = [b"first", b"second", b"third"]
    assert asyncio.run(_post_all(url, bodies, pause=0.05)) == bodies
    assert len(set(handler.peers)) == 2  # a new connection after the close, then reused


def test_the_backend_keeps_the_socket_of_each_stream(server: tuple[str, type[_Handler]]) -> None:
    url, _ = server
    port = int(url.rsplit(":", 1)[1])

    async def check() -> None:
        stream = await CheapReadableBackend().connect_tcp("127.0.0.1", port, timeout=5.0)
        try:
            sock = stream.get_extra_info("socket")
            assert sock is not None and sock.fileno() >= 0
            assert stream.get_extra_info("is_readable") is False
            await stream.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5.0)
            for _ in range(100):  # the server answers (501: no do_GET) and closes
                if stream.get_extra_info("is_readable"):
                    break
                await asyncio.sleep(0.01)
            assert stream.get_extra_info("is_readable") is True
            assert (await stream.read(4096, 5.0)).startswith(b"HTTP/1.")
        finally:
            await stream.aclose()

    asyncio.run(check())


def test_a_proxy_in_the_environment_keeps_httpx_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("all_proxy", raising=False)
    assert not wants_default_transport()
    env = {
        "CLOUDFLARE_API_TOKEN": "t",
        "CLOUDFLARE_ACCOUNT_ID": "a" * 32,
        "AI_DAILY_NEURON_BUDGET": "off",
    }
    pooled = client_from_env(env)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert wants_default_transport()
    proxied = client_from_env(env)

    async def transports() -> tuple[object, object]:
        try:
            return (
                pooled.providers[0].http._transport,  # noqa: SLF001
                proxied.providers[0].http._mounts,  # noqa: SLF001
            )
        finally:
            await pooled.aclose()
            await proxied.aclose()

    plain, mounts = asyncio.run(transports())
    backend = getattr(getattr(plain, "_pool", None), "_network_backend", None)
    assert isinstance(backend, CheapReadableBackend)
    assert isinstance(mounts, dict)
    assert any(m is not None for m in mounts.values())  # the proxy's transport is mounted
