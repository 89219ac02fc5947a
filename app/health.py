"""The runner's health, metrics and resource watch: what /healthz and /metrics show.

`/healthz` is one JSON object: `status` ("ok" or "fail") and four components:

    whatsapp  state (adapters/whatsapp/link.py LinkHealth), transport, can_send, reason
    store     state ("ok", or "error" after a failed load or commit), encrypted
    model     state, budget_left (neurons, when metered): adapters/llm/service.py
    runner    state (starting, running, stopping, stopped), uptime_s, paused, chats,
              pending (chats with a reply under way), cooling (chats in a cooldown)

Health is red (HTTP 503) while WhatsApp is lost for good (logged out, replaced by another
client, not paired), after a store failure, or when the model's credentials were rejected.
Everything else (a dropped connection, a temporary ban, a failing model) is shown but green:
a restart would not help, and a supervisor restarting on red would make it worse.

`Monitor` samples the event loop's lag and the resident memory every few seconds; above 80 %
of `WAPA_MEMORY_WARN_MB` it starts tracemalloc, above 100 % it warns once, naming the top
allocation sites.

`StartError` is a start-up failure whose message is the one line `wapa run` prints before it
exits non-zero (the HTTP port taken or its host unknown, an unusable WAPA_RECORD path).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from wapa.adapters.http_server import HttpServer
from wapa.adapters.llm.service import ModelService
from wapa.adapters.logs import log_event
from wapa.adapters.metrics import Metrics, resident_memory_bytes
from wapa.adapters.store.protocol import StateStore
from wapa.adapters.transport import Transport
from wapa.adapters.whatsapp.link import LinkHealth
from wapa.core import Assistant

log = logging.getLogger("wapa.health")

Clock = Callable[[], float]


class StartError(Exception):
    """The runner cannot start; the message says why and what to change, in one line."""


def can_send(transport: Transport) -> bool:
    try:
        return bool(transport.can_send())
    except Exception:
        return False


def pending(a: Assistant | None) -> int:
    return sum(c.phase != "idle" for c in a.chats.values()) if a else 0


def cooling(a: Assistant | None, now: float) -> int:
    return sum(c.cooldown_until > now for c in a.chats.values()) if a else 0


class Health:
    """The components' states, in one place; the runner sets `runner` and `store`."""

    def __init__(
        self,
        transport: Transport,
        store: StateStore,
        model: ModelService,
        metrics: Metrics,
        clock: Clock,
        link: LinkHealth | None = None,
    ) -> None:
        self.transport, self.store, self.model = transport, store, model
        self.metrics, self.clock = metrics, clock
        self.link = link if link is not None else LinkHealth()
        self.runner = "starting"
        self.store_state = "ok"
        self.assistant: Assistant | None = None
        self._started_at = time.monotonic()

    def green(self) -> tuple[bool, bool, bool]:
        """(whatsapp, store, model): each True when it does not make health red."""
        return (
            not self.link.red,
            self.store_state == "ok",
            self.model.healthy,
        )

    def health(self) -> tuple[bool, dict[str, Any]]:
        a, link = self.assistant, self.link
        whatsapp: dict[str, Any] = {
            "state": link.state,
            "transport": self.transport.name,
            "can_send": can_send(self.transport),
        }
        if link.reason:
            whatsapp["reason"] = link.reason
        components = {
            "whatsapp": whatsapp,
            "store": {
                "state": self.store_state,
                "encrypted": bool(getattr(self.store, "encrypted", False)),
            },
            "model": self.model.component(),
            "runner": {
                "state": self.runner,
                "uptime_s": round(time.monotonic() - self._started_at, 1),
                "paused": bool(a and a.paused),
                "chats": len(a.chats) if a else 0,
                "pending": pending(a),
                "cooling": cooling(a, self.clock()),
            },
        }
        ok = all(self.green())
        return ok, {"status": "ok" if ok else "fail", "components": components}

    def lifecycle(self, kind: str, detail: str = "") -> None:
        """A WhatsApp connection change: counted, logged as `LinkHealth` says, shown in
        /healthz. Losing the session to another client (or to the phone) stops sending but
        not the runner: exiting would make a supervisor restart it, and a restarted client
        takes the session back, over and over. Never raises."""
        try:
            self.metrics.lifecycle.labels(kind).inc()
            note = self.link.on_lifecycle(kind, detail)
            if note is not None:
                log_event(log, note.level, note.event, detail=note.detail, hint=note.hint)
        except Exception:
            log_event(log, logging.ERROR, "lifecycle_handler_failed", kind=kind, exc_info=True)

    async def serve(self, host: str, port: int) -> HttpServer:
        """/healthz and /metrics on `host:port` (0: a free port, in `server.port`)."""
        server = HttpServer(host, port, self.health, self.render_metrics)
        try:
            await server.start()
        except OSError as exc:  # the port is taken (a second wapa?), or the host is unknown
            errno = exc.errno if isinstance(exc.errno, int) and exc.errno > 0 else None
            reason = os.strerror(errno) if errno else exc.strerror or str(exc) or type(exc).__name__
            hint = (
                "check WAPA_HTTP_HOST"
                if isinstance(exc, socket.gaierror)
                else "another wapa running? set WAPA_HTTP_PORT, or 0 for any free port"
            )
            raise StartError(f"cannot serve /healthz on {host}:{port}: {reason} ({hint})") from None
        log_event(log, logging.INFO, "http_listening", host=host, port=server.port)
        return server

    def render_metrics(self) -> bytes:
        a, m = self.assistant, self.metrics
        if a is not None:
            m.pending_chats.set(pending(a))
            m.cooling_chats.set(cooling(a, self.clock()))
            m.known_chats.set(len(a.chats))
        for name, ok in zip(("whatsapp", "store", "model"), self.green(), strict=True):
            m.component_ok.labels(name).set(ok)
        m.rss.set(resident_memory_bytes())
        return m.render()


class Monitor:
    """Event-loop lag and resident memory, sampled every `interval` seconds."""

    def __init__(self, metrics: Metrics, warn_mb: float) -> None:
        self.metrics = metrics
        self.warn_mb = warn_mb
        self.warned = False

    async def run(self, interval: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(interval)
            self.metrics.loop_lag.set(max(0.0, loop.time() - before - interval))
            rss = resident_memory_bytes()
            self.metrics.rss.set(rss)
            self.check(rss)

    def check(self, rss: int) -> None:
        limit = self.warn_mb * 1024 * 1024
        if limit <= 0 or self.warned:
            return
        if rss > 0.8 * limit and not tracemalloc.is_tracing():
            tracemalloc.start(10)  # to name the allocation sites if it keeps growing
            log_event(log, logging.INFO, "memory_tracing_started", rss_mb=rss // 2**20)
        if rss > limit:
            self.warned = True
            top = []
            if tracemalloc.is_tracing():
                stats = tracemalloc.take_snapshot().statistics("lineno")[:10]
                top = [
                    f"{s.traceback[0].filename}:{s.traceback[0].lineno} {s.size // 1024} KiB"
                    for s in stats
                ]
                tracemalloc.stop()
            log_event(
                log,
                logging.WARNING,
                "memory_high",
                rss_mb=rss // 2**20,
                limit_mb=self.warn_mb,
                top_allocations=top,
            )
