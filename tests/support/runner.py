"""Fakes for the runner tests: the outside world (WhatsApp, the model, the clock), never the
runner. Imported by tests/app/test_runner_*.py; holds no tests itself."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from wapa.adapters.llm import AuthError, GenerationResult
from wapa.adapters.llm.usage import LLMStats
from wapa.adapters.transport import OnLifecycle, OnMessage, SendError
from wapa.core import ChatMessage, Message


class ManualClock:
    """Epoch seconds that move only when the test says so; `sleep` waits on this clock."""

    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._n = 0

    def __call__(self) -> float:
        return self.t

    async def sleep(self, delay: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._n += 1
        heapq.heappush(self._waiters, (self.t + max(0.0, delay), self._n, fut))
        if delay <= 0:
            self._wake()
        await fut

    def _wake(self) -> None:
        while self._waiters and self._waiters[0][0] <= self.t:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)

    async def advance(self, seconds: float, runner: Any = None) -> None:
        """Move time in small steps, letting the runner finish its work at each."""
        end = self.t + seconds
        while self.t < end:
            self.t = min(end, self.t + 0.25)
            self._wake()
            await settle(runner)


async def settle(runner: Any = None, timeout: float = 5.0) -> None:
    """Let the event loop run until the runner has nothing left to do. The store commits in
    aiosqlite's thread, so this yields to the loop with tiny waits; it never waits for time
    to pass on the runner's clock."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    quiet = 0
    while loop.time() < end and quiet < 3:
        await asyncio.sleep(0.001)
        quiet = quiet + 1 if runner is None or not runner.busy() else 0


async def until(condition: Any, timeout: float = 5.0) -> None:
    """Yield to the loop until `condition()` holds (work in other threads: aiosqlite)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        assert loop.time() < end, "condition not reached"
        await asyncio.sleep(0.001)


class FakeTransport:
    """Records every call in `journal` (shared with the store, to check the order)."""

    name = "fake"

    def __init__(self, journal: list[tuple[Any, ...]] | None = None) -> None:
        self.journal = journal if journal is not None else []
        self.on_message: OnMessage | None = None
        self.runner: Any = None
        self.on_lifecycle: OnLifecycle | None = None
        self.sendable = True
        self.fail_sends = False
        self.send_gate: asyncio.Event | None = None
        self.stopped = False
        self.sent: list[tuple[str, str, str]] = []
        self.notices: list[str] = []
        self._n = 0

    async def start(self, on_message: OnMessage, on_lifecycle: OnLifecycle) -> None:
        self.on_message, self.on_lifecycle = on_message, on_lifecycle
        on_lifecycle("connected", "fake")

    async def deliver(self, msg: Any) -> None:
        assert self.on_message is not None
        await self.on_message(msg)
        await settle(self.runner)

    async def mark_read(self, chat: str, message_ids: Sequence[str], sender: str) -> None:
        self.journal.append(("mark_read", chat, tuple(message_ids)))

    async def typing(self, chat: str, on: bool) -> None:
        self.journal.append(("typing", chat, on))

    async def send(self, chat: str, text: str, quote_id: str = "") -> str:
        self.journal.append(("send", chat, text))
        if self.send_gate is not None:
            await self.send_gate.wait()
        if self.fail_sends:
            raise SendError("refused")
        self._n += 1
        self.sent.append((chat, text, quote_id))
        return f"wa-{self._n}"

    async def notify_owner(self, text: str) -> None:
        self.journal.append(("notice", text))
        self.notices.append(text)

    def can_send(self) -> bool:
        return self.sendable

    async def stop(self) -> None:
        self.journal.append(("stop",))
        self.stopped = True


@dataclass
class FakeModel:
    """A model client (`adapters.llm.LLMClient`) below the runner's real model service."""

    reply: str = "Thanks, I will pass it on."
    fail_kind: str = ""
    calls: list[tuple[ChatMessage, ...]] = field(default_factory=list)
    stats: LLMStats = field(default_factory=lambda: LLMStats(budget_left=9876.0))

    async def generate(self, messages: Sequence[ChatMessage]) -> GenerationResult:
        self.calls.append(tuple(messages))
        if self.fail_kind == "auth":
            raise AuthError("Cloudflare 10000: authentication error")
        if self.fail_kind:
            raise RuntimeError("boom")
        return GenerationResult(self.reply, "fake-model", 10, 5, 1.5, attempts=2, latency_s=0.4)

    async def health(self) -> dict[str, Any]:
        return {"ok": True}

    async def aclose(self) -> None:
        return None


def contact(text: str, chat: str = "15551234567@s.whatsapp.net", mid: str = "m1") -> Message:
    return Message(chat, chat, mid, text, sender_name="Alice")
