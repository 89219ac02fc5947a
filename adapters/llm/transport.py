"""The model clients' HTTP transport: httpx's own, with a cheaper idle-connection check.

httpcore's connection pool looks at every pooled connection each time a request starts or a
response is closed, and asks each idle one whether its socket is readable (an idle HTTP/1.1
connection that is readable has been closed by the server). Through the default anyio
backend every such question rebuilds anyio's table of socket attributes (a `getpeername`
system call included) before the one `poll` that answers it: with the 10-30 connections a
busy runner keeps, that was a quarter of the CPU time of a model call (docs/bench.md).

`pooled_transport()` is `httpx.AsyncHTTPTransport` (same pool, limits, TLS context, h11,
timeouts and exception mapping) whose pool uses `CheapReadableBackend`: httpcore's anyio
backend, each stream remembering its socket, so the question costs one `poll(0)`, the same
check httpcore makes (`httpcore._utils.is_socket_readable`). Nothing on the wire changes.
When the environment names a proxy (`HTTPS_PROXY`...), `wants_default_transport()` says so
and the factory keeps httpx's default transports, which route through it.
"""

from __future__ import annotations

import select
import ssl
import urllib.request
from collections.abc import Iterable
from typing import Any, Protocol

import httpcore
import httpx

__all__ = ["CheapReadableBackend", "pooled_transport", "socket_readable", "wants_default_transport"]


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


def socket_readable(sock: _HasFileno | None) -> bool:
    """Whether a read on `sock` (a socket, or asyncio's `TransportSocket` around one) would
    return at once (data, or b"" after the peer closed); True for a socket that is gone, as
    httpcore treats it (the connection is dropped)."""
    fd = -1 if sock is None else sock.fileno()
    if fd < 0:
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class _Stream(httpcore.AsyncNetworkStream):
    """An anyio network stream that remembers its socket for `is_readable`."""

    __slots__ = ("_inner", "_sock")

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        sock = inner.get_extra_info("socket")  # asyncio's TransportSocket: same fileno()
        self._sock: _HasFileno | None = sock if callable(getattr(sock, "fileno", None)) else None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return socket_readable(self._sock)
        return self._inner.get_extra_info(info)


class CheapReadableBackend(httpcore.AsyncNetworkBackend):
    """httpcore's anyio backend whose streams answer `is_readable` with one `poll(0)`."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return _Stream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options
        )
        return _Stream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def wants_default_transport() -> bool:
    """True when the environment names a proxy: httpx's default transports route through it
    (`pooled_transport` would not)."""
    return bool(urllib.request.getproxies())


def pooled_transport(limits: httpx.Limits | None = None) -> httpx.AsyncHTTPTransport:
    """httpx's transport (TLS verified as httpx does by default, SSL_CERT_FILE honoured; HTTP/1.1;
    httpx's default limits) over `CheapReadableBackend`."""
    limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
    context = httpx.create_ssl_context()
    transport = httpx.AsyncHTTPTransport(verify=context, limits=limits)
    # httpx builds its pool without a way to name the network backend: the same pool again,
    # with the same arguments httpx gives it, and the backend.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http1=True,
        http2=False,
        network_backend=CheapReadableBackend(),
    )
    return transport
