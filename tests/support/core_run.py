"""The core tests' driver: an `Assistant` on a clock advanced by hand.

`Run` owns an `Assistant`, a clock it advances by hand, and a log of every effect. Advancing
the clock fires the core's deadlines in order, exactly as a driver with one timer would."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from wapa.core import (
    Assistant,
    Decision,
    Effect,
    Event,
    Generate,
    Generated,
    GenerationFailed,
    Message,
    Persona,
    Policy,
    Send,
    SendConfirmed,
)

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
OWNER = "owner@s.whatsapp.net"
ALICE = "alice@s.whatsapp.net"
BOB = "bob@s.whatsapp.net"
GROUP = "family@g.us"
PERSONA = Persona(owner_id=OWNER, owner_name="Gilad", assistant_name="Dana")


class Run:
    def __init__(
        self,
        policy: Policy | None = None,
        persona: Persona | None = None,
        seed: int = 0,
        t0: float = T0,
    ) -> None:
        self.policy = policy or Policy()
        self.persona = persona or PERSONA
        self.a = Assistant(self.policy, self.persona, seed)
        self.t = t0
        self.log: list[tuple[float, Effect]] = []
        self._ids = itertools.count(1)

    # ------------------------------------------------------------ time and events

    def advance(self, dt: float) -> list[Effect]:
        """Move the clock forward by `dt`, firing every deadline on the way."""
        end = self.t + dt
        out: list[Effect] = []
        while (d := self.a.next_deadline()) is not None and d <= end:
            self.t = max(self.t, d)
            out += self._record(self.a.on_timer(self.t))
        self.t = end
        return out

    def feed(self, event: Event, dt: float = 0.0) -> list[Effect]:
        self.advance(dt)
        return self._record(self.a.handle(event, self.t))

    def msg(self, text: str = "hi", chat: str = ALICE, dt: float = 0.0, **kw: Any) -> list[Effect]:
        kw.setdefault("sender", OWNER if kw.get("from_me") else chat)
        kw.setdefault("id", f"m{next(self._ids)}")
        if chat.endswith("@g.us"):
            kw.setdefault("is_group", True)
            if not kw.get("from_me") and kw["sender"] == chat:
                kw["sender"] = BOB
        return self.feed(Message(chat=chat, text=text, **kw), dt)

    def owner(self, text: str, chat: str = ALICE, dt: float = 0.0, **kw: Any) -> list[Effect]:
        return self.msg(text, chat, dt, from_me=True, **kw)

    def answer(
        self, text: str = "Thanks, I'll pass it on to Gilad.", dt: float = 0.0
    ) -> list[Effect]:
        """The model answers the oldest generation still awaited."""
        return self.feed(Generated(self.pending()[0].request_id, text), dt)

    def fail(self, kind: str = "capacity", dt: float = 0.0) -> list[Effect]:
        return self.feed(GenerationFailed(self.pending()[0].request_id, kind), dt)

    def confirm(self, message_id: str = "wa1", dt: float = 0.0) -> list[Effect]:
        return self.feed(SendConfirmed(self.sends()[-1].request_id, message_id), dt)

    def reply_cycle(self, text: str = "Thanks, I'll pass it on to Gilad.") -> Send:
        """Run to the next generation, answer it and run until it is sent."""
        self.advance_until(lambda e: isinstance(e, Generate))
        self.answer(text)
        sent = self.advance_until(lambda e: isinstance(e, Send))
        assert isinstance(sent, Send)
        return sent

    def advance_until(self, pred: Callable[[Effect], bool], limit: float = 2 * 86400) -> Effect:
        start = len(self.log)
        while (d := self.a.next_deadline()) is not None and d <= self.t + limit:
            self.advance(max(0.0, d - self.t))
            for _, e in self.log[start:]:
                if pred(e):
                    return e
        raise AssertionError("no such effect before the deadlines ran out")

    # ------------------------------------------------------------ inspection

    def _record(self, effects: list[Effect]) -> list[Effect]:
        self.log += [(self.t, e) for e in effects]
        return effects

    def effects(self, kind: type | None = None) -> list[Any]:
        return [e for _, e in self.log if kind is None or isinstance(e, kind)]

    def timed(self, kind: type) -> list[tuple[float, Any]]:
        return [(t, e) for t, e in self.log if isinstance(e, kind)]

    def sends(self) -> list[Send]:
        return self.effects(Send)

    def codes(self, chat: str | None = None) -> list[str]:
        return [d.code for d in self.effects(Decision) if chat is None or d.chat == chat]

    def pending(self) -> list[Generate]:
        """Generations whose answer the core still awaits (the helper peeks at the chat state
        only to pick which request to answer)."""
        return [
            g
            for g in self.effects(Generate)
            if (c := self.a.chats.get(g.chat)) is not None
            and c.request_id == g.request_id
            and c.phase == "generating"
        ]
