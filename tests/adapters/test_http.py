"""adapters/http_server.py: /healthz and /metrics over a real socket on a free port."""

from __future__ import annotations

import asyncio
import json

from wapa.adapters.http_server import HttpServer
from wapa.adapters.metrics import Metrics, resident_memory_bytes


async def http_get(port: int, path: str, method: str = "GET") -> tuple[int, bytes]:
    """One raw HTTP/1.1 request to 127.0.0.1:port: (status, body). Also used by runner tests."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_health_metrics_and_errors() -> None:
    state = {"ok": True}
    metrics = Metrics()
    metrics.decisions.labels("scheduled").inc()
    server = HttpServer(
        "127.0.0.1", 0, lambda: (state["ok"], {"status": "x", "n": 1}), metrics.render
    )
    port = await server.start()
    try:
        assert port > 0
        status, body = await http_get(port, "/healthz")
        assert status == 200 and json.loads(body) == {"status": "x", "n": 1}
        state["ok"] = False
        assert (await http_get(port, "/healthz"))[0] == 503
        status, body = await http_get(port, "/metrics?x=1")
        assert status == 200 and b'wapa_decisions_total{reason="scheduled"} 1.0' in body
        assert (await http_get(port, "/nope"))[0] == 404
        assert (await http_get(port, "/healthz", "POST"))[0] == 405
        assert (await http_get(port, "/healthz", "HEAD")) == (503, b"")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"garbage\r\n\r\n")
        await writer.drain()
        assert b" 400 " in await reader.read()
        writer.close()
    finally:
        await server.stop()


async def test_a_failing_health_function_gives_500_not_a_crash() -> None:
    def broken() -> tuple[bool, dict[str, object]]:
        raise RuntimeError("bug")

    server = HttpServer("127.0.0.1", 0, broken, lambda: b"")
    port = await server.start()
    try:
        assert (await http_get(port, "/healthz"))[0] == 500
        assert (await http_get(port, "/metrics"))[0] == 200
    finally:
        await server.stop()


def test_resident_memory_is_measured() -> None:
    assert 1_000_000 < resident_memory_bytes() < 10_000_000_000
