"""The model clients' HTTP transport: httpx's own, over asyncio's sockets instead of anyio's.

httpx hands each request to httpcore's connection pool, and httpcore does its socket I/O
through a network backend: by default anyio. Two things made that a large share of the CPU of
a model call (docs/bench.md):

- each time a request starts or a response is closed, the pool asks every idle connection
  whether its socket is readable (an idle HTTP/1.1 connection that is readable was closed by
  the server); through anyio every question rebuilt anyio's table of socket attributes (a
  `getpeername` system call included) and made a `poll`;
- anyio stops reading a socket after each receive and starts again before the next one
  (two `epoll_ctl` calls), and enters a cancel scope and a checkpoint per read and write.

`pooled_transport()` is `httpx.AsyncHTTPTransport` (the same pool, limits, TLS context, h11
and exception mapping) whose pool uses `AsyncioBackend`: httpcore's `AsyncNetworkBackend`
interface on asyncio's own transports (`loop.create_connection`, `loop.start_tls`), which
read whenever data comes, so "readable" is known without a system call: data is waiting or
the peer closed. A request's parts (httpcore writes the head, then the body, then reads)
are held and handed to the socket together when the response is read: one send per request
instead of two; a part past 64 KiB goes out at once. Timeouts are `asyncio.timeout`, set only
when a read or write has to wait; errors are httpcore's (`ConnectError`, `ReadTimeout`, ...),
which httpx maps as it always does. The bytes on the wire are the same.
The pool is `pool.LinearPool` (httpcore's, with its bookkeeping pass fixed: pool.py).
When the environment names a proxy (`HTTPS_PROXY`...), `wants_default_transport()` says so
and the factory keeps httpx's default transports, which route through it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import urllib.request
from collections.abc import Awaitable, Iterable
from typing import Any

import httpcore
import httpx
from wapa.adapters.llm.pool import pool_for

__all__ = ["AsyncioBackend", "pooled_transport", "wants_default_transport"]


_BUFFER_MAX = 1 << 20  # bytes read ahead of httpcore before the socket is paused
_HOLD_MAX = 1 << 16  # bytes of a request held back to go out with its other parts


class _Connection(asyncio.Protocol):
    """One TCP (then maybe TLS) connection: what arrived, whether the peer closed it, and
    write flow control. The event loop reads the socket whenever data comes (nothing pauses
    it between reads, as anyio does), so an idle connection the server closed is known
    without asking the kernel."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._eof = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None  # a read waiting for data
        self._drain: asyncio.Future[None] | None = None  # a write waiting for resume_writing
        self._paused = False  # writing: the transport's buffer is full
        self._reading_paused = False  # reading: `_BUFFER_MAX` bytes wait for httpcore
        self._held: list[bytes] = []  # written by httpcore, not yet handed to the transport
        self._held_size = 0

    # ------------------------------------------------------------------ asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > _BUFFER_MAX and self.transport is not None:
            self.transport.pause_reading()  # resumed by `read` (memory stays bounded)
            self._reading_paused = True
        self._wake_reader()

    def eof_received(self) -> bool | None:
        self._eof = True
        self._wake_reader()
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._error = exc
        self._wake_reader()
        self._wake_writer()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake_writer()

    # ------------------------------------------------------------------ for the stream

    @property
    def readable(self) -> bool:
        """A read would return at once: data is waiting, or the peer closed."""
        return self._eof or bool(self._buffer)

    async def read(self, max_bytes: int) -> bytes:
        while not self._buffer and not self._eof:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self._buffer:
            if len(self._buffer) <= max_bytes:  # the usual case: all of it, one copy
                data = bytes(self._buffer)
                self._buffer.clear()
            else:
                data = bytes(self._buffer[:max_bytes])
                del self._buffer[:max_bytes]
            if self._reading_paused and len(self._buffer) <= _BUFFER_MAX:
                self._reading_paused = False
                if self.transport is not None:
                    self.transport.resume_reading()
            return data
        if isinstance(self._error, OSError):
            raise self._error
        return b""

    def hold(self, data: bytes) -> bool:
        """Keep `data` to go out with the next `flush` (httpcore writes a request's head and
        its body separately, then reads: one send instead of two); False when `data` would
        take the held bytes past `_HOLD_MAX` (then `send` it)."""
        self._check_open()
        if self._held_size + len(data) > _HOLD_MAX:
            return False
        self._held.append(data)
        self._held_size += len(data)
        return True

    def flush(self) -> None:
        """Hand what `hold` kept to the transport (before a read: the request is complete).
        A connection closed meanwhile drops it: the read that follows finds the close."""
        if not self._held:
            return
        data = b"".join(self._held)
        self._held.clear()
        self._held_size = 0
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def send(self, data: bytes) -> None:
        """Hand the held bytes, then `data`, to the transport now."""
        self._check_open()
        self.flush()
        assert self.transport is not None
        self.transport.write(data)

    @property
    def writable(self) -> bool:
        """The transport's buffer has room (else `drained` waits for it)."""
        return not self._paused

    async def drained(self) -> None:
        transport = self.transport
        assert transport is not None
        while self._paused and not transport.is_closing():
            self._drain = asyncio.get_running_loop().create_future()
            try:
                await self._drain
            finally:
                self._drain = None
        if transport.is_closing() and self._error is not None:
            raise ConnectionResetError(str(self._error))

    def _check_open(self) -> None:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("the connection is closed")

    def _wake_reader(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _wake_writer(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)


class _Stream(httpcore.AsyncNetworkStream):
    """httpcore's view of one `_Connection`: timeouts and errors as httpcore's exceptions."""

    def __init__(self, connection: _Connection) -> None:
        self._conn = connection

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        conn = self._conn
        try:
            conn.flush()  # what httpcore wrote of the request goes out, in one send
            if conn.readable:  # data waiting or the peer closed: returns at once, no timer
                return await conn.read(max_bytes)
            async with asyncio.timeout(timeout):
                return await conn.read(max_bytes)
        except TimeoutError:
            raise httpcore.ReadTimeout(f"no data within {timeout}s") from None
        except OSError as exc:
            raise httpcore.ReadError(_describe(exc)) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Small writes are held until the next read (`_Connection.hold`); a large one goes
        out at once, and waits (with `timeout`) only while the transport's buffer is full."""
        if not buffer:
            return
        conn = self._conn
        try:
            if conn.hold(buffer):
                return
            conn.send(buffer)
            if not conn.writable:
                async with asyncio.timeout(timeout):
                    await conn.drained()
        except TimeoutError:
            raise httpcore.WriteTimeout(f"could not write within {timeout}s") from None
        except OSError as exc:
            raise httpcore.WriteError(_describe(exc)) from exc

    async def aclose(self) -> None:
        if self._conn.transport is not None:
            self._conn.transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        conn = self._conn
        assert conn.transport is not None
        try:
            async with asyncio.timeout(timeout):
                tls = await asyncio.get_running_loop().start_tls(
                    conn.transport, conn, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError:
            await self.aclose()
            raise httpcore.ConnectTimeout(f"no TLS handshake within {timeout}s") from None
        except OSError as exc:  # ssl.SSLError included
            await self.aclose()
            raise httpcore.ConnectError(_describe(exc)) from exc
        if tls is None:
            await self.aclose()
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        conn.transport = tls
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return self._conn.readable
        transport = self._conn.transport
        if transport is None:
            return None
        name = {"client_addr": "sockname", "server_addr": "peername"}.get(info, info)
        if name in ("ssl_object", "sockname", "peername", "socket"):
            return transport.get_extra_info(name)
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend on asyncio's own transports (its default goes through
    anyio): connections are made with `loop.create_connection` (TCP_NODELAY; for a host name,
    happy eyeballs after 0.25 s as anyio does), TLS with `loop.start_tls`."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        conn = _Connection()
        connecting = asyncio.get_running_loop().create_connection(
            lambda: conn,
            host,
            port,
            local_addr=(local_address, 0) if local_address else None,
            happy_eyeballs_delay=None if _is_address(host) else 0.25,
        )
        return await _connected(conn, connecting, timeout, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        conn = _Connection()
        connecting = asyncio.get_running_loop().create_unix_connection(lambda: conn, path)
        return await _connected(conn, connecting, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def _connected(
    conn: _Connection,
    connecting: Awaitable[Any],
    timeout: float | None,
    options: Iterable[Any] | None,
) -> _Stream:
    """`conn` once `connecting` (the loop's create_connection) is done, with the socket
    options set; a timeout or a refusal as httpcore's errors."""
    try:
        async with asyncio.timeout(timeout):
            await connecting
    except TimeoutError:
        raise httpcore.ConnectTimeout(f"no connection within {timeout}s") from None
    except OSError as exc:
        raise httpcore.ConnectError(_describe(exc)) from exc
    stream = _Stream(conn)
    sock = stream.get_extra_info("socket")
    for option in options or ():
        sock.setsockopt(*option)
    return stream


def _is_address(host: str) -> bool:
    """An IP address rather than a name: one address, nothing for happy eyeballs to race."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def wants_default_transport() -> bool:
    """True when the environment names a proxy: httpx's default transports route through it
    (`pooled_transport` would not)."""
    return bool(urllib.request.getproxies())


def pooled_transport(
    limits: httpx.Limits | None = None, verify: ssl.SSLContext | None = None
) -> httpx.AsyncHTTPTransport:
    """httpx's transport (TLS verified as httpx does by default, SSL_CERT_FILE honoured; HTTP/1.1;
    httpx's default limits) over `AsyncioBackend`. `verify`: another TLS context (tests)."""
    limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
    context = verify or httpx.create_ssl_context()
    transport = httpx.AsyncHTTPTransport(verify=context, limits=limits)
    if not isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool):
        return transport  # an httpx that keeps its pool elsewhere: its own, unchanged
    # httpx builds its pool without a way to name the network backend: the same pool again,
    # with the same arguments httpx gives it, and the backend.
    transport._pool = pool_for(
        ssl_context=context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http1=True,
        http2=False,
        network_backend=AsyncioBackend(),
    )
    return transport
