"""The discrete-event loop: the core, a fake WhatsApp and a fake model on a virtual clock.

One heap holds everything that will happen, ordered by (time, sequence number) so that ties
resolve in the order things were scheduled and every run is deterministic: script inputs,
model answers, send confirmations, echoes, crashes and restarts. The core's own deadlines come
from `Assistant.next_deadline()`; an input due at the same instant as a deadline goes first.

A crash exports the core's state through JSON, restores it and calls `recover`; with a
`store`, every step is instead committed to a real SQLite store (`sim.durable`) before its
effects are carried out, as the production runner does, and the restart loads the assistant
from that file. Model answers and send confirmations in flight belong to the dead process and
are lost, while echoes of sends WhatsApp already accepted still arrive. With a downtime, inputs
arriving while the assistant is down are delivered at the restart, as WhatsApp delivers
offline messages on reconnect. A recorder (`on_record`) gets every input ("in") and effect
("out"), and at a restart `("restart", {"crashed_at": T})`.
"""

from __future__ import annotations

import heapq
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from wapa.adapters.codec import encode
from wapa.core.events import (
    ChatMessage,
    Command,
    Decision,
    Effect,
    Event,
    Generate,
    MarkRead,
    Message,
    Notice,
    Send,
    SendFailed,
    Typing,
)
from wapa.core.machine import Assistant
from wapa.core.policy import Persona, Policy
from wapa.sim.clock import VirtualClock
from wapa.sim.durable import DurableState
from wapa.sim.fake_model import FakeModel
from wapa.sim.fake_whatsapp import Delivery, FakeWhatsApp

# A scripted quote of this id is replaced, when delivered, by the id of the assistant's last
# message in that chat (scenario files write `quote: reply`).
QUOTE_LAST_REPLY = "\x00last-reply"

_INPUT, _CRASH, _RESTART, _RESULT, _ECHO = range(5)
_MAX_SAME_INSTANT = 100_000
RANDOM_DOWNTIMES = (0.0, 1.0, 5.0, 30.0, 90.0)
RANDOM_CRASH_WITHIN = 1.0  # a random crash comes this many seconds after a step at most


class SimulationError(RuntimeError):
    """The simulation cannot go on (the core keeps asking to be woken at the same instant)."""


class Sent(NamedTuple):
    t: float
    chat: str
    text: str
    request_id: str
    quote_id: str


class Generation(NamedTuple):
    t: float
    request_id: str
    chat: str
    messages: tuple[ChatMessage, ...]


@dataclass(frozen=True, slots=True)
class Crash:
    down: float  # seconds until the restart


@dataclass(frozen=True, slots=True)
class Restart:
    pass


@dataclass(frozen=True, slots=True)
class Lost:
    """A result in flight at a crash: it belonged to the dead process and never arrives."""

    event: Event


class Observer(Protocol):
    """What the simulation tells a watcher such as `sim.invariants.InvariantChecker`."""

    def observe_input(self, t: float, event: Event) -> None: ...
    def observe_effects(self, t: float, effects: Sequence[Effect]) -> None: ...
    def observe_crash(self, t: float) -> None: ...


TimelineItem = Event | Effect | Crash | Restart | Lost


@dataclass
class SimResult:
    start: float
    end: float = 0.0
    sent: list[Sent] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    generations: list[Generation] = field(default_factory=list)
    timeline: list[tuple[float, TimelineItem]] = field(default_factory=list)
    send_failures: list[tuple[float, str]] = field(default_factory=list)  # (t, request id)
    crashes: list[float] = field(default_factory=list)
    # with a store: (restart time, request id) of each send the outbox held with no outcome
    unconfirmed: list[tuple[float, str]] = field(default_factory=list)
    echo_ids: set[str] = field(default_factory=set)  # ids of messages that were our echoes
    inputs: int = 0
    steps: int = 0


class Simulation:
    def __init__(
        self,
        *,
        policy: Policy,
        persona: Persona,
        seed: int,
        start: float,
        model: FakeModel | None = None,
        whatsapp: FakeWhatsApp | None = None,
        on_record: Callable[[float, str, dict[str, Any]], None] | None = None,
        observer: Observer | None = None,
        keep_timeline: bool = True,
        store: str | Path | DurableState | None = None,
        crash_rate: float = 0.0,
    ) -> None:
        """`store`: a new SQLite file (or a `DurableState`) to commit every step to and to
        restart from; without it a crash restarts from the state exported through JSON. A
        simulation with a store must be closed (`close()` or `with`). `crash_rate`: the
        probability that a step is followed by a crash, at a random time within
        `RANDOM_CRASH_WITHIN` seconds (model answers, send confirmations and typing are under
        way then), with a downtime drawn from `RANDOM_DOWNTIMES`. Seeded: the same run crashes
        alike, and at times that tie with nothing, so a recording of it replays exactly."""
        if not 0.0 <= crash_rate <= 1.0:
            raise ValueError(f"crash_rate must be between 0 and 1, got {crash_rate!r}")
        self.policy, self.persona, self.seed = policy, persona, seed
        self.clock = VirtualClock(start)
        self.model = model or FakeModel(seed=seed)
        self.whatsapp = whatsapp or FakeWhatsApp(seed=seed)
        self.whatsapp.owner_id = persona.owner_id
        self.assistant = Assistant(policy, persona, seed)
        self.on_record = on_record
        self.observer = observer
        self.keep_timeline = keep_timeline
        self.result = SimResult(start=float(start), end=float(start))
        self._queue: list[tuple[float, int, int, Any, int]] = []  # (t, seq, kind, payload, epoch)
        self._seq = 0
        self._epoch = 0
        self._down = False
        self._held: list[Event] = []  # inputs that arrived while down
        self._crashed_at = 0.0
        self.crash_rate = crash_rate
        self._crash_rng = random.Random(seed * 1_000_003 + 17)
        self.store: DurableState | None = None
        if store is not None:
            self.store = store if isinstance(store, DurableState) else DurableState(store)
            self.store.save(self.assistant, ())  # as the runner commits a new assistant at once

    def close(self) -> None:
        """Close the store (a no-op without one). The result stays readable."""
        if self.store is not None:
            self.store.close()

    def __enter__(self) -> Simulation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ script

    def _push(self, t: float, kind: int, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (float(t), self._seq, kind, payload, self._epoch))

    def add_message(self, t: float, event: Message) -> None:
        self._push(t, _INPUT, event)

    def add_command(self, t: float, event: Command) -> None:
        self._push(t, _INPUT, event)

    def add_crash(self, t: float, down: float = 0.0) -> None:
        self._push(t, _CRASH, float(down))

    # ------------------------------------------------------------------ loop

    def run(self, until: float | None = None) -> SimResult:
        """Process everything due up to `until` (everything, when None) and return the result.
        May be called again with a later `until` to continue."""
        queue, clock, res = self._queue, self.clock, self.result
        same_instant, last_t = 0, clock.now
        while True:
            deadline = None if self._down else self.assistant.next_deadline()
            top = queue[0][0] if queue else None
            if deadline is not None and (top is None or deadline < top):
                t = max(deadline, clock.now)
                if until is not None and t > until:
                    break
                clock.advance_to(t)
                self._step(self.assistant.on_timer(t), (), t)
            elif top is not None:
                if until is not None and top > until:
                    break
                t, _, kind, payload, epoch = heapq.heappop(queue)
                t = max(t, clock.now)
                clock.advance_to(t)
                self._dispatch(t, kind, payload, epoch)
            else:
                break
            res.steps += 1
            if t == last_t:
                same_instant += 1
                if same_instant > _MAX_SAME_INSTANT:
                    raise SimulationError(
                        f"more than {_MAX_SAME_INSTANT} steps at t={t}: the core keeps asking "
                        "to be woken at the same instant"
                    )
            else:
                same_instant, last_t = 0, t
        res.end = max(res.end, clock.now)
        return res

    def _dispatch(self, t: float, kind: int, payload: Any, epoch: int) -> None:
        if kind in (_INPUT, _ECHO):
            if kind == _ECHO:
                self.result.echo_ids.add(payload.id)
            if self._down:
                self._held.append(payload)
            else:
                self._deliver(t, payload)
        elif kind == _RESULT:
            if epoch != self._epoch or self._down:
                self._note(t, Lost(payload))
            else:
                self._deliver(t, payload)
        elif kind == _CRASH:
            self._crash(t, payload)
        elif kind == _RESTART:
            self._restart(t)

    def _deliver(self, t: float, event: Event) -> None:
        if isinstance(event, Message):
            if event.quoted_id == QUOTE_LAST_REPLY:
                quoted = self.whatsapp.last_sent_id.get(event.chat, "")
                sender = self.persona.owner_id if quoted else ""
                event = _replace_quote(event, quoted, sender)
            if not event.from_me:
                self.result.inputs += 1
            self.whatsapp.saw(event)
        self._note(t, event)
        if self.on_record is not None:
            self.on_record(t, "in", encode(event))
        if self.observer is not None:
            self.observer.observe_input(t, event)
        self._step(self.assistant.handle(event, t), (event,), t)

    def _step(self, effects: list[Effect], events: tuple[Event, ...], t: float) -> None:
        """Commit the step (with a store), then carry out its effects."""
        if self.store is not None:
            self.store.save(self.assistant, effects, events)
        self._apply(effects, t)
        if self.crash_rate and self._crash_rng.random() < self.crash_rate:
            at = t + self._crash_rng.uniform(0.0, RANDOM_CRASH_WITHIN)
            self.add_crash(at, self._crash_rng.choice(RANDOM_DOWNTIMES))

    def _note(self, t: float, item: TimelineItem) -> None:
        if self.keep_timeline:
            self.result.timeline.append((t, item))

    def _apply(self, effects: list[Effect], t: float) -> None:
        if not effects:
            return
        res, wa = self.result, self.whatsapp
        record = self.on_record
        for e in effects:
            self._note(t, e)
            if record is not None:
                record(t, "out", encode(e))
            if isinstance(e, Decision):
                res.decisions.append(e)
            elif isinstance(e, Typing):
                wa.set_typing(t, e)
            elif isinstance(e, MarkRead):
                wa.mark_read(t, e)
            elif isinstance(e, Generate):
                res.generations.append(Generation(t, e.request_id, e.chat, e.messages))
                for delay, event in self.model.answer(e, t):
                    self._push(t + delay, _RESULT, event)
            elif isinstance(e, Send):
                res.sent.append(Sent(t, e.chat, e.text, e.request_id, e.quote_id))
                self._schedule(t, wa.send(t, e))
            elif isinstance(e, Notice):
                self._schedule(t, wa.notice(t, e))
        if self.observer is not None:
            self.observer.observe_effects(t, effects)

    def _schedule(self, t: float, deliveries: list[Delivery]) -> None:
        for d in deliveries:
            if isinstance(d.event, SendFailed):
                self.result.send_failures.append((t, d.event.request_id))
            self._push(t + d.delay, _ECHO if d.survives_crash else _RESULT, d.event)

    # ------------------------------------------------------------------ crash and restart

    def _crash(self, t: float, down: float) -> None:
        if self._down:
            return
        self.result.crashes.append(t)
        self._crashed_at = t
        if self.store is not None:
            self.store.crash()
        self._note(t, Crash(down))
        if self.observer is not None:
            self.observer.observe_crash(t)
        self._epoch += 1  # results scheduled before this instant are lost
        self._down = True
        self._push(t + down, _RESTART, None)

    def _restart(self, t: float) -> None:
        if self.store is not None:
            self.assistant, unconfirmed = self.store.restart(self.policy, self.persona)
            self.result.unconfirmed.extend((t, entry.request_id) for entry in unconfirmed)
        else:
            state = json.loads(json.dumps(self.assistant.export()))
            self.assistant = Assistant.restore(state, self.policy, self.persona)
        self._down = False
        self._note(t, Restart())
        if self.on_record is not None:
            self.on_record(t, "restart", {"crashed_at": self._crashed_at})
        self._step(self.assistant.recover(t), (), t)
        held, self._held = self._held, []
        for event in held:
            self._deliver(t, event)


def _replace_quote(m: Message, quoted_id: str, quoted_sender: str) -> Message:
    return replace(m, quoted_id=quoted_id, quoted_sender=quoted_sender)
