"""The core tests' driver: an `Assistant` on a clock advanced by hand.

`Run` owns an `Assistant`, a clock it advances by hand, and a log of every effect. Advancing
the clock fires the core's deadlines in order, exactly as a driver with one timer would, and
runs the outside events a test scheduled with `at` (a model answering by itself, WhatsApp
confirming a send) in time order among them. `Run.advance` is the one place in tests/core that
fires deadlines; a test with its own world (tests/core/test_core_properties.py) builds on it."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any, TypeVar, overload

from wapa.core import (
    Assistant,
    Decision,
    Effect,
    Event,
    Generate,
    Generated,
    GenerationFailed,
    MarkRead,
    Message,
    Notice,
    Persona,
    Phase,
    Policy,
    Send,
    SendConfirmed,
    Typing,
)

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
OWNER = "owner@s.whatsapp.net"
ALICE = "alice@s.whatsapp.net"
BOB = "bob@s.whatsapp.net"
GROUP = "family@g.us"
PERSONA = Persona(owner_id=OWNER, owner_name="Gilad", assistant_name="Dana")

E = TypeVar("E", MarkRead, Typing, Generate, Send, Notice, Decision)


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
        # called with (time, effects) for everything the core returns, before the test sees it
        self.watch: Callable[[float, list[Effect]], object] | None = None
        self._ids = itertools.count(1)
        self._later: list[tuple[float, int, Callable[[], object]]] = []
        self._order = itertools.count()

    # ------------------------------------------------------------ time and events

    def advance(self, dt: float) -> list[Effect]:
        """Move the clock forward by `dt`, firing every deadline on the way and running the
        outside events due (an outside event first when both are due at the same time).
        Returns the effects of the deadlines."""
        end = self.t + dt
        out: list[Effect] = []
        later = self._later
        while True:
            d = self.a.next_deadline()
            if later and later[0][0] <= end and (d is None or later[0][0] <= d):
                t, _, action = heapq.heappop(later)
                self.t = max(self.t, t)
                action()
                continue
            if d is None or d > end:
                break
            self.t = max(self.t, d)
            out += self._record(self.a.on_timer(self.t))
        self.t = end
        return out

    def at(self, t: float, action: Callable[[], object]) -> None:
        """Run `action` (an outside event: usually `lambda: run.handle(...)`) when `advance`
        reaches `t`."""
        heapq.heappush(self._later, (t, next(self._order), action))

    def handle(self, event: Event) -> list[Effect]:
        """`event` now, without firing the deadlines due first (see `feed`)."""
        return self._record(self.a.handle(event, self.t))

    def feed(self, event: Event, dt: float = 0.0) -> list[Effect]:
        """Advance by `dt` (firing what is due, even at dt=0), then handle `event`."""
        self.advance(dt)
        return self.handle(event)

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
        self.advance_until(Generate)
        self.answer(text)
        return self.advance_until(Send)

    @overload
    def advance_until(self, pred: type[E], limit: float = ...) -> E: ...
    @overload
    def advance_until(self, pred: Callable[[Effect], bool], limit: float = ...) -> Effect: ...
    def advance_until(
        self, pred: type[Any] | Callable[[Effect], bool], limit: float = 2 * 86400
    ) -> Effect:
        """`advance` deadline by deadline until an effect of type `pred` (or one `pred` accepts)
        comes out; returns it."""
        test = (lambda e: isinstance(e, pred)) if isinstance(pred, type) else pred
        start = len(self.log)
        while (d := self.a.next_deadline()) is not None and d <= self.t + limit:
            self.advance(max(0.0, d - self.t))
            for _, e in self.log[start:]:
                if test(e):
                    return e
        raise AssertionError("no such effect before the deadlines ran out")

    # ------------------------------------------------------------ inspection

    def _record(self, effects: list[Effect]) -> list[Effect]:
        if self.watch is not None:
            self.watch(self.t, effects)
        self.log += [(self.t, e) for e in effects]
        return effects

    def recover(self) -> list[Effect]:
        """`Assistant.recover` at the current time (after the test replaced `a`)."""
        return self._record(self.a.recover(self.t))

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
            and c.phase == Phase.GENERATING
        ]


MakeRun = Callable[..., Run]  # the `make_run` fixture: make_run(policy_mapping, **Run_kwargs)
