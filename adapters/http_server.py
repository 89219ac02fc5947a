"""A tiny asyncio HTTP/1.1 server for `GET /healthz` and `GET /metrics` (no framework).

`health()` returns `(healthy, body)`: 200 with the JSON body when healthy, 503 otherwise.
`metrics()` returns the Prometheus text exposition. Anything else is 404 (405 for methods other
than GET/HEAD). Each connection serves one request and closes; a slow or broken client costs
only its own connection (bounded header size, 5 s to send the request).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from wapa.adapters.logs import log_event

log = logging.getLogger("wapa.http")

HealthFn = Callable[[], tuple[bool, dict[str, Any]]]
MetricsFn = Callable[[], bytes]
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class HttpServer:
    def __init__(self, host: str, port: int, health: HealthFn, metrics: MetricsFn) -> None:
        self.host, self.port = host, port
        self._health, self._metrics = health, metrics
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Listen; returns the bound port (useful with port 0)."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                await self._respond(writer, 400, b"bad request\n", "text/plain", False)
                return
            parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(parts) != 3:
                await self._respond(writer, 400, b"bad request\n", "text/plain", False)
                return
            method, target = parts[0], parts[1].split("?", 1)[0]
            if method not in ("GET", "HEAD"):
                await self._respond(writer, 405, b"method not allowed\n", "text/plain", False)
                return
            head_only = method == "HEAD"
            if target == "/healthz":
                ok, body = self._health()
                data = (json.dumps(body, sort_keys=True) + "\n").encode()
                await self._respond(writer, 200 if ok else 503, data, "application/json", head_only)
            elif target == "/metrics":
                await self._respond(writer, 200, self._metrics(), METRICS_TYPE, head_only)
            else:
                await self._respond(writer, 404, b"not found\n", "text/plain", head_only)
        except (ConnectionError, OSError):
            pass
        except Exception:  # a bug here must not take the runner down
            log_event(log, logging.ERROR, "http_error", exc_info=True)
            with contextlib.suppress(ConnectionError, OSError):
                await self._respond(writer, 500, b"internal error\n", "text/plain", False)
        finally:
            writer.close()

    @staticmethod
    async def _respond(
        writer: asyncio.StreamWriter, status: int, body: bytes, ctype: str, head_only: bool
    ) -> None:
        headers = (
            f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
        )
        writer.write(headers.encode("latin-1") + (b"" if head_only else body))
        await writer.drain()
