"""The model clients' pooled transport (adapters/llm/transport.py) against real sockets and
real local HTTP/1.1 servers, plain and TLS: connections are reused, a connection the server
closed while idle is dropped and the request goes out on a new one, timeouts and refused
connections are httpcore's errors (httpx's once through the client), and a proxy in the
environment keeps httpx's default transports."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpcore
import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wapa.adapters.llm import client_from_env
from wapa.adapters.llm.factory import KEEPALIVE_EXPIRY, keep_alive_limits
from wapa.adapters.llm.pool import LinearPool, pool_for
from wapa.adapters.llm.transport import AsyncioBackend, pooled_transport, wants_default_transport


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    close_after: set[int] = set()  # request numbers after which the server closes the socket
    server_closed: threading.Semaphore  # released as the server closes each connection
    requests = 0
    peers: list[tuple[str, int]] = []
    cookies: list[str | None] = []  # the Cookie header of each request

    def do_POST(self) -> None:
        type(self).requests += 1
        n = type(self).requests
        type(self).peers.append(self.client_address)
        type(self).cookies.append(self.headers.get("Cookie"))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.send_response(200)
        self.send_header("Set-Cookie", "__cf_bm=abc; path=/; HttpOnly")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if n in type(self).close_after:
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    """Notes each connection it has closed."""

    request_queue_size = 128  # a burst of connections (http.server's default backlog is 5)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.closed = threading.Semaphore(0)

    def shutdown_request(self, request: object) -> None:
        super().shutdown_request(request)  # type: ignore[arg-type]
        self.closed.release()


def _serve(tls: ssl.SSLContext | None = None) -> Iterator[tuple[str, type[_Handler]]]:
    handler: type[_Handler] = type(
        "Handler", (_Handler,), {"close_after": set(), "requests": 0, "peers": [], "cookies": []}
    )
    httpd = _Server(("127.0.0.1", 0), handler)
    handler.server_closed = httpd.closed
    httpd.daemon_threads = True
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if tls is not None else "http"
    try:
        yield f"{scheme}://localhost:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Handler]]]:
    yield from _serve()


def _self_signed(folder: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting only it) for a certificate for localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert_file, key_file)
    client_side = ssl.create_default_context(cafile=str(cert_file))
    return server_side, client_side


async def _post_all(
    url: str,
    bodies: list[bytes],
    verify: ssl.SSLContext | None = None,
    closed: threading.Semaphore | None = None,
) -> list[bytes]:
    """POST each body in turn; with `closed`, after the first answer wait until the server
    has closed that connection (and the event loop has had a turn to read its end)."""
    out = []
    async with httpx.AsyncClient(transport=pooled_transport(verify=verify)) as client:
        for body in bodies:
            r = await client.post(url, content=body)
            out.append(r.content)
            if closed is not None and len(out) == 1:
                assert await asyncio.to_thread(closed.acquire, True, 10.0)
                for _ in range(3):
                    await asyncio.sleep(0)
    return out


def test_requests_reuse_one_connection(server: tuple[str, type[_Handler]]) -> None:
    url, handler = server
    bodies = [b'{"n": %d}' % i for i in range(3)]
    assert asyncio.run(_post_all(url, bodies)) == bodies
    assert handler.requests == 3
    assert len(set(handler.peers)) == 1  # one client port: kept alive and reused


def test_a_connection_the_server_closed_is_replaced(server: tuple[str, type[_Handler]]) -> None:
    url, handler = server
    handler.close_after = {1}  # the server closes the connection after the first answer
    bodies = [b"first", b"second", b"third"]
    assert asyncio.run(_post_all(url, bodies, closed=handler.server_closed)) == bodies
    assert len(set(handler.peers)) == 2  # a new connection after the close, then reused


def test_large_bodies_both_ways(server: tuple[str, type[_Handler]]) -> None:
    """8 MiB up and back: past the transport's write buffer and the connection's 1 MiB
    read-ahead (reading pauses and resumes), every byte arrives, in order."""
    url, _ = server
    big = bytes(range(256)) * (8 * 4096)
    assert asyncio.run(_post_all(url, [big, b"after"])) == [big, b"after"]


def test_tls_requests_are_verified_and_reuse_one_connection(tmp_path: Path) -> None:
    server_side, client_side = _self_signed(tmp_path)
    for url, handler in _serve(server_side):
        bodies = [b"one", b"two"]
        assert asyncio.run(_post_all(url, bodies, verify=client_side)) == bodies
        assert len(set(handler.peers)) == 1

        untrusted = _post_all(url, [b"x"], verify=ssl.create_default_context())
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            asyncio.run(untrusted)  # the default context does not trust this certificate


def test_a_stream_knows_when_the_server_closed_it(server: tuple[str, type[_Handler]]) -> None:
    port = int(server[0].rsplit(":", 1)[1])

    async def check() -> None:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5.0)
        try:
            assert stream.get_extra_info("socket").fileno() >= 0
            assert stream.get_extra_info("is_readable") is False  # idle, open
            await stream.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5.0)
            answer = b""
            while chunk := await stream.read(4096, 5.0):  # b"": the server closed
                answer += chunk
            assert answer.startswith(b"HTTP/1.") and b" 501 " in answer  # no do_GET
            assert stream.get_extra_info("is_readable") is True  # closed: httpcore drops it
        finally:
            await stream.aclose()

    asyncio.run(check())


def test_reading_ahead_is_bounded() -> None:
    """A server sending 4 MiB that nobody reads yet: the connection stops reading at its
    1 MiB bound (the rest waits in the kernel and the server), then gives every byte."""
    data = bytes(range(256)) * (16 * 1024)
    listener = socket.create_server(("127.0.0.1", 0))

    def send() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(data)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()

    async def check() -> None:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", listener.getsockname()[1], 5.0)
        conn = stream._conn  # type: ignore[attr-defined]  # noqa: SLF001
        try:
            for _ in range(500):
                if conn._reading_paused:  # noqa: SLF001
                    break
                await asyncio.sleep(0.01)  # the event loop reads what arrives meanwhile
            assert conn._reading_paused  # noqa: SLF001
            got = bytearray()
            while chunk := await stream.read(65536, 5.0):
                got += chunk
            assert got == data and not conn._reading_paused  # noqa: SLF001
        finally:
            await stream.aclose()

    try:
        asyncio.run(check())
    finally:
        sender.join(5)
        listener.close()


def test_timeouts_and_refusals_are_httpcore_errors() -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (backlog), never answers
    refused = socket.create_server(("127.0.0.1", 0))
    closed_port = refused.getsockname()[1]
    refused.close()

    async def check() -> None:
        backend = AsyncioBackend()
        stream = await backend.connect_tcp("127.0.0.1", silent.getsockname()[1], timeout=5.0)
        try:
            with pytest.raises(httpcore.ReadTimeout):
                await stream.read(10, timeout=0.01)
        finally:
            await stream.aclose()
        with pytest.raises(httpcore.ConnectError):
            await backend.connect_tcp("127.0.0.1", closed_port, timeout=5.0)

    try:
        asyncio.run(check())
    finally:
        silent.close()


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
    assert isinstance(backend, AsyncioBackend)
    assert isinstance(mounts, dict)
    assert any(m is not None for m in mounts.values())  # the proxy's transport is mounted


def test_an_httpx_without_the_pool_it_expects_keeps_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The backend is put in by rebuilding httpx's private `_pool`: an httpx that keeps its pool
    elsewhere gets its transport back unchanged, never a half-replaced one."""
    real_init = httpx.AsyncHTTPTransport.__init__

    def init_elsewhere(self: httpx.AsyncHTTPTransport, *args: object, **kw: object) -> None:
        real_init(self, *args, **kw)  # type: ignore[arg-type]
        self._elsewhere = self._pool  # type: ignore[attr-defined]  # noqa: SLF001
        del self._pool  # noqa: SLF001

    monkeypatch.setattr(httpx.AsyncHTTPTransport, "__init__", init_elsewhere)
    transport = pooled_transport()
    assert not hasattr(transport, "_pool")
    backend = transport._elsewhere._network_backend  # type: ignore[attr-defined]  # noqa: SLF001
    assert not isinstance(backend, AsyncioBackend)


# ---------------------------------------------------------------------- the pool (pool.py)


def _pool(transport: httpx.AsyncHTTPTransport) -> httpcore.AsyncConnectionPool:
    return transport._pool  # noqa: SLF001


async def _burst(client: httpx.AsyncClient, url: str, n: int) -> list[bytes]:
    answers = await asyncio.gather(*(client.post(url, content=b"%d" % i) for i in range(n)))
    return [a.content for a in answers]


def test_a_burst_reuses_its_connections_when_the_limits_match_it(
    server: tuple[str, type[_Handler]],
) -> None:
    """httpx's default keeps 20 idle connections, and httpcore counted every connection
    against it (active ones too), closing the idle ones a burst had just used: limits matched
    to the concurrency (`keep_alive_limits`) keep them, and each request is handed exactly
    one connection (two assignment passes per request: queued, released; none re-queued)."""
    url, handler = server
    limits = keep_alive_limits(15)
    assert limits is not None and limits.max_keepalive_connections == 16

    async def run() -> tuple[list[bytes], int, int]:
        transport = pooled_transport(limits)
        pool = _pool(transport)
        assert isinstance(pool, LinearPool)
        passes = 0
        real = pool._assign_requests_to_connections  # noqa: SLF001

        def counted() -> list[Any]:
            nonlocal passes
            passes += 1
            return real()

        pool._assign_requests_to_connections = counted  # type: ignore[method-assign]  # noqa: SLF001
        async with httpx.AsyncClient(transport=transport) as client:
            answers = await _burst(client, url, 16) + await _burst(client, url, 16)
            return answers, len(pool.connections), passes

    answers, kept, passes = asyncio.run(run())
    assert answers == [b"%d" % i for i in range(16)] * 2
    assert len(set(handler.peers)) == kept <= 16  # the second burst made no new connection
    assert passes == 2 * 32


def test_a_connections_locks_take_no_extra_turn_and_only_a_waiting_request_is_woken(
    server: tuple[str, type[_Handler]],
) -> None:
    """After its first request a connection's locks (request, HTTP/1.1 state) are anyio locks
    with `fast_acquire`; a request the pass gave a connection at once never made an anyio
    event, while one that waited for a free connection was woken through its event."""
    url, _ = server
    events: list[str] = []

    async def run() -> list[tuple[bool, bool]]:
        from httpcore._async.connection_pool import AsyncPoolRequest

        real = AsyncPoolRequest.assign_to_connection

        def spy(self: AsyncPoolRequest, connection: Any) -> None:
            events.append(self._connection_acquired._backend)  # noqa: SLF001
            real(self, connection)

        AsyncPoolRequest.assign_to_connection = spy  # type: ignore[method-assign]
        try:
            transport = pooled_transport(httpx.Limits(max_connections=1))
            async with httpx.AsyncClient(transport=transport) as client:
                await _burst(client, url, 3)  # one connection: two requests wait for it
                return [
                    (
                        c._request_lock._anyio_lock._fast_acquire,  # type: ignore[attr-defined]  # noqa: SLF001
                        c._connection._state_lock._anyio_lock._fast_acquire,  # type: ignore[attr-defined]  # noqa: SLF001
                    )
                    for c in _pool(transport).connections
                ]
        finally:
            AsyncPoolRequest.assign_to_connection = real  # type: ignore[method-assign]

    assert asyncio.run(run()) == [(True, True)]
    assert events == ["asyncio", "asyncio"]  # only the two that waited: their events, set


def test_the_keep_alive_limit_counts_idle_connections(
    server: tuple[str, type[_Handler]],
) -> None:
    """Four idle connections are kept after a burst of eight, whatever was active."""
    url, handler = server

    async def run() -> list[str]:
        transport = pooled_transport(httpx.Limits(max_connections=8, max_keepalive_connections=4))
        async with httpx.AsyncClient(transport=transport) as client:
            await _burst(client, url, 8)
            return [c.info() for c in _pool(transport).connections]

    kept = asyncio.run(run())
    assert len(kept) == 4 and all("IDLE" in info for info in kept)
    assert len(set(handler.peers)) == 8


def test_a_full_pool_queues_requests_until_a_connection_is_free(
    server: tuple[str, type[_Handler]],
) -> None:
    url, handler = server

    async def run() -> list[bytes]:
        transport = pooled_transport(httpx.Limits(max_connections=2, max_keepalive_connections=2))
        async with httpx.AsyncClient(transport=transport) as client:
            return await _burst(client, url, 7)

    assert asyncio.run(run()) == [b"%d" % i for i in range(7)]
    assert len(set(handler.peers)) <= 2 and handler.requests == 7


def test_a_full_pool_closes_an_idle_connection_to_reach_another_origin(
    server: tuple[str, type[_Handler]],
) -> None:
    url, first = server
    for other, second in _serve():

        async def run(other: str = other) -> list[str]:
            transport = pooled_transport(
                httpx.Limits(max_connections=1, max_keepalive_connections=1)
            )
            async with httpx.AsyncClient(transport=transport) as client:
                assert (await client.post(url, content=b"a")).content == b"a"
                assert (await client.post(other, content=b"b")).content == b"b"
                return [c.info() for c in _pool(transport).connections]

        kept = asyncio.run(run())
        assert len(kept) == 1 and other.rsplit(":", 1)[1] in kept[0]
        assert first.requests == second.requests == 1


def test_an_expired_idle_connection_is_closed_not_reused(
    server: tuple[str, type[_Handler]],
) -> None:
    url, handler = server

    async def run() -> None:
        limits = httpx.Limits(max_connections=4, max_keepalive_connections=4, keepalive_expiry=0)
        async with httpx.AsyncClient(transport=pooled_transport(limits)) as client:
            for body in (b"one", b"two"):
                assert (await client.post(url, content=body)).content == body
                await asyncio.sleep(0.001)  # past the expiry (0 s): closed at the next pass

    asyncio.run(run())
    assert len(set(handler.peers)) == 2


def test_http2_and_an_unknown_httpcore_get_httpcores_own_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert type(pool_for(http2=True)) is httpcore.AsyncConnectionPool
    assert type(pool_for(http2=False)) is LinearPool
    monkeypatch.delattr(httpcore.AsyncConnectionPool, "_assign_requests_to_connections")
    assert type(pool_for()) is httpcore.AsyncConnectionPool


def test_a_request_goes_out_in_one_send(server: tuple[str, type[_Handler]]) -> None:
    """httpcore writes a request's head and its body separately: both reach the socket in one
    transport write, when the response is read; a body past 64 KiB goes out at once."""
    url = httpx.URL(server[0])

    async def writes(body: bytes) -> tuple[int, bytes]:
        stream = await AsyncioBackend().connect_tcp(url.host, url.port or 80, timeout=5.0)
        transport = stream._conn.transport  # type: ignore[attr-defined]  # noqa: SLF001
        calls = 0
        real = transport.write

        def counted(data: bytes) -> None:
            nonlocal calls
            calls += 1
            real(data)

        transport.write = counted
        origin = httpcore.Origin(b"http", url.host.encode(), url.port or 80)
        async with httpcore.AsyncHTTP11Connection(origin, stream) as conn:
            answer = await conn.request("POST", str(url), content=body)
        return calls, answer.content

    assert asyncio.run(writes(b'{"small": true}')) == (1, b'{"small": true}')
    big = b"x" * (1 << 17)
    calls, echoed = asyncio.run(writes(big))
    assert echoed == big and calls == 2  # the head held, then flushed before the big body


def test_the_model_client_keeps_no_cookies(server: tuple[str, type[_Handler]]) -> None:
    """The server sets a cookie on every answer; the model client never sends one back."""
    url, handler = server
    env = {
        "CLOUDFLARE_API_TOKEN": "t",
        "CLOUDFLARE_ACCOUNT_ID": "a" * 32,
        "AI_DAILY_NEURON_BUDGET": "off",
    }
    chain = client_from_env(env)
    http = chain.providers[0].http

    async def run() -> None:
        try:
            for _ in range(2):
                assert (await http.post(url, content=b"x")).status_code == 200
            assert len(http.cookies) == 0
            with pytest.raises(AttributeError, match="no cookies"):
                http.cookies = {"a": "b"}
        finally:
            await chain.aclose()

    asyncio.run(run())
    assert handler.cookies == [None, None]


class _Conn:
    """A connection's state as the pool's pass reads it (httpcore's interface)."""

    def __init__(self, origin: httpcore.Origin, *, idle: bool = True, expired: bool = False):
        self.origin, self.idle, self.expired = origin, idle, expired

    def is_closed(self) -> bool:
        return False

    def is_idle(self) -> bool:
        return self.idle

    def has_expired(self) -> bool:
        return self.expired

    def is_available(self) -> bool:
        return self.idle

    def can_handle_request(self, origin: httpcore.Origin) -> bool:
        return origin == self.origin


async def test_the_pass_gives_an_idle_connection_once_and_keeps_it_until_used() -> None:
    """The assignment pass alone, on connections whose state is set by hand: two requests
    queued in one turn and one idle connection in a full pool: the first gets it, the second
    waits (httpcore gave it to both); a later pass neither gives it again nor closes it as
    surplus; once it has expired it is closed, and the room goes to the request waiting."""
    from httpcore._async.connection_pool import AsyncPoolRequest

    origin = httpcore.Origin(b"http", b"a", 80)
    pool = LinearPool(max_connections=1, max_keepalive_connections=1)
    conn = _Conn(origin)
    pool._connections = [conn]  # type: ignore[list-item]  # noqa: SLF001
    first, second = (AsyncPoolRequest(httpcore.Request("GET", "http://a/")) for _ in range(2))
    pool._requests = [first, second]  # noqa: SLF001
    assert pool._assign_requests_to_connections() == []  # noqa: SLF001
    assert first.connection is conn and second.is_queued()
    pool._max_keepalive_connections = 0  # noqa: SLF001  # every free idle one is surplus now
    assert pool._assign_requests_to_connections() == []  # noqa: SLF001
    assert second.is_queued() and pool.connections == [conn]  # spoken for: kept
    conn.expired = True
    assert pool._assign_requests_to_connections() == [conn]  # noqa: SLF001
    (fresh,) = pool.connections  # the room it left goes to the request still waiting
    assert fresh is not conn and second.connection is fresh
    first.clear_connection()  # what httpcore does when its connection turns out closed
    assert pool._assign_requests_to_connections() == []  # noqa: SLF001
    assert first.is_queued()  # the pool is full: it waits for a release


_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=60)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.fixed_dictionaries({"role": _TEXT, "content": _TEXT}), max_size=5),
    st.integers(min_value=1, max_value=4096),
    st.floats(min_value=0.0, max_value=5.0),
)
def test_request_bodies_are_the_json_httpx_writes(
    messages: list[dict[str, str]], max_tokens: int, temperature: float
) -> None:
    """The providers encode their JSON bodies with orjson: the bytes httpx's `json=` writes
    (any text but lone surrogates, which the core refuses: control characters, quotes,
    backslashes, non-ASCII, U+2028; integers; floats), except that a float below 1e-4 spells
    its exponent 1e-5 where Python writes 1e-05 (the same number)."""
    body = {"messages": messages, "max_tokens": max_tokens, "temperature": temperature}
    ours, httpx_json = orjson.dumps(body), httpx.Request("POST", "http://x/", json=body).content
    assert orjson.loads(ours) == orjson.loads(httpx_json) == body
    if temperature == 0 or temperature >= 1e-4:
        assert ours == httpx_json


class _Later:
    """httpcore's clock (`time` as its HTTP/1.1 connection reads it), `ahead` seconds on."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.ahead


@pytest.mark.parametrize(("idle", "connections"), [(60.0, 1), (299.0, 1), (301.0, 2)])
def test_an_idle_connection_is_kept_for_keepalive_expiry(
    server: tuple[str, type[_Handler]],
    monkeypatch: pytest.MonkeyPatch,
    idle: float,
    connections: int,
) -> None:
    """A runner answering a message a minute reuses its connection (httpx's default of 5 s
    made a new TLS connection per generation); past KEEPALIVE_EXPIRY it makes a new one."""
    import httpcore._async.http11 as http11

    url, handler = server
    later = _Later()
    monkeypatch.setattr(http11, "time", later)
    assert KEEPALIVE_EXPIRY == 300.0

    async def run() -> None:
        transport = pooled_transport(keep_alive_limits(2))
        async with httpx.AsyncClient(transport=transport) as client:
            await client.post(url, content=b"1")
            later.ahead = idle
            await client.post(url, content=b"2")

    asyncio.run(run())
    assert handler.requests == 2 and len(set(handler.peers)) == connections


def test_requests_cancelled_together_in_a_full_pool_leave_no_connection_behind(
    server: tuple[str, type[_Handler]],
) -> None:
    """Two requests in a pool of one, both cancelled at once (a shutdown, an overall
    timeout): the first is cancelled as it connects, its failed connection is dropped and the
    room goes to the second, whose cancellation lands before it starts on that new
    connection. httpcore keeps such a connection (never connected, never closed) in its only
    slot for ever, and every later request waits for it (encode/httpcore issue 1093): the
    pass drops it, and the next request is served."""
    url, handler = server

    async def run() -> tuple[list[httpx.Response | BaseException], bytes]:
        transport = pooled_transport(httpx.Limits(max_connections=1, max_keepalive_connections=1))
        pool = _pool(transport)
        async with httpx.AsyncClient(transport=transport, timeout=5.0) as client:
            tasks = [asyncio.create_task(client.post(url, content=b"%d" % i)) for i in range(2)]
            await asyncio.sleep(0)  # the first is connecting, the second queued
            for task in tasks:
                task.cancel()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            assert [c.info() for c in pool.connections] == []  # none held for requests gone
            answer = (await client.post(url, content=b"after")).content
        return outcomes, answer

    outcomes, answer = asyncio.run(run())
    assert all(isinstance(o, asyncio.CancelledError) for o in outcomes)
    assert answer == b"after" and handler.requests == 1


def test_a_request_cancelled_as_its_connection_opens_leaves_no_socket_behind(
    server: tuple[str, type[_Handler]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request's cancellation lands the moment its TCP connection is made (the backend
    cancels the task as it returns the stream): httpcore raises it while taking its HTTP/1.1
    connection's state lock, outside the code that would close it, so the connection stays
    open and NEW, held by no request, in the pool's only slot. The pass closes it (the server
    sees the socket close) and the next request gets a connection of its own."""
    url, handler = server
    connect = AsyncioBackend.connect_tcp

    async def cancelled_once_connected(
        self: AsyncioBackend, *args: Any, **kwargs: Any
    ) -> httpcore.AsyncNetworkStream:
        stream = await connect(self, *args, **kwargs)
        monkeypatch.setattr(AsyncioBackend, "connect_tcp", connect)  # the next one is left be
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        return stream

    monkeypatch.setattr(AsyncioBackend, "connect_tcp", cancelled_once_connected)

    async def run() -> bytes:
        transport = pooled_transport(httpx.Limits(max_connections=1, max_keepalive_connections=1))
        async with httpx.AsyncClient(transport=transport, timeout=5.0) as client:
            with pytest.raises(asyncio.CancelledError):
                await asyncio.create_task(client.post(url, content=b"lost"))
            assert [c.info() for c in _pool(transport).connections] == []
            assert await asyncio.to_thread(handler.server_closed.acquire, True, 10.0)
            return (await client.post(url, content=b"after")).content

    assert asyncio.run(run()) == b"after"
    assert handler.requests == 1 and len(set(handler.peers)) == 1
