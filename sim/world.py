"""The simulator's `World`: where the driver's effects land when nothing real is attached.

It is the simulated counterpart of the runner's `app/world.py`: the same `core.driver.World`
methods, called by the same `core.driver.dispatch`, in the same order. Sends and notices go to
the fake WhatsApp, whose answers (confirmations, failures, the owner's phone traffic) come back
through the engine's scheduler; generations go to the simulated model service, which runs the
production model policy on the virtual clock. Everything that happens is written into the
`SimResult` (sends, decisions, generations, the timeline) and shown to the recorder and the
observer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from wapa.adapters.codec import encode
from wapa.core.driver import Step
from wapa.core.events import (
    ChatMessage,
    Decision,
    Effect,
    Event,
    Generate,
    MarkRead,
    Notice,
    Send,
    SendFailed,
    Typing,
)
from wapa.core.records import Record
from wapa.sim.fake_whatsapp import Delivery, FakeWhatsApp


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


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Crash(Record):
    """The process died (a timeline item); it starts again `down` seconds later."""

    down: float  # seconds until the restart


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Restart(Record):
    """The process started again from what it had committed (a timeline item)."""


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Lost(Record):
    """A result in flight at a crash: it belonged to the dead process and never arrives."""

    event: Event


TimelineItem = Event | Effect | Crash | Restart | Lost


@dataclass
class SimResult:
    """What a simulation did: its sends, decisions, prompts, timeline, crashes and counts."""

    start: float
    end: float = 0.0
    sent: list[Sent] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    generations: list[Generation] = field(default_factory=list)
    timeline: list[tuple[float, TimelineItem]] = field(default_factory=list)
    send_failures: list[tuple[float, str]] = field(default_factory=list)  # (t, request id)
    crashes: list[float] = field(default_factory=list)
    # (restart time, request id) of each send stored as intent with no outcome at a restart
    unconfirmed: list[tuple[float, str]] = field(default_factory=list)
    echo_ids: set[str] = field(default_factory=set)  # ids of messages that were our echoes
    inputs: int = 0
    steps: int = 0


class Observer(Protocol):
    """What the simulation tells a watcher such as `sim.invariants.InvariantChecker`."""

    def observe_input(self, t: float, event: Event) -> None: ...
    def observe_effects(self, t: float, effects: Sequence[Effect]) -> None: ...
    def observe_crash(self, t: float) -> None: ...


class SimModel(Protocol):
    """The simulated model service (`sim.fake_model`): answers through the engine's scheduler."""

    def start_generation(self, g: Generate, now: float) -> None: ...


class Outlet(Protocol):
    """How the world hands WhatsApp's answers back to the engine."""

    @property
    def now(self) -> float: ...

    def deliver_at(self, t: float, event: Event) -> None: ...

    def traffic_at(self, t: float, event: Event) -> None: ...


Recorder = Callable[[float, str, dict[str, Any]], None]


class SimWorld:
    """`core.driver.World` for the simulator (see the module docstring)."""

    def __init__(
        self,
        outlet: Outlet,
        model: SimModel,
        whatsapp: FakeWhatsApp,
        result: SimResult,
        *,
        keep_timeline: bool = True,
        on_record: Recorder | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.outlet, self.model, self.whatsapp, self.result = outlet, model, whatsapp, result
        self.keep_timeline = keep_timeline
        self.on_record = on_record
        self.observer = observer

    def note(self, t: float, item: TimelineItem) -> None:
        if self.keep_timeline:
            self.result.timeline.append((t, item))

    # ------------------------------------------------------------------ World

    def begin_step(self, step: Step) -> None:
        if step.event is not None:
            self.note(step.t, step.event)
            if self.on_record is not None:
                self.on_record(step.t, "in", encode(step.event))
            if self.observer is not None:
                self.observer.observe_input(step.t, step.event)
        if self.keep_timeline or self.on_record is not None:
            for e in step.effects:
                self.note(step.t, e)
                if self.on_record is not None:
                    self.on_record(step.t, "out", encode(e))

    def end_step(self, step: Step) -> None:
        if self.observer is not None and step.effects:
            self.observer.observe_effects(step.t, step.effects)

    def decided(self, decision: Decision) -> None:
        self.result.decisions.append(decision)

    def typing(self, effect: Typing) -> None:
        self.whatsapp.set_typing(self.outlet.now, effect)

    def mark_read(self, effect: MarkRead) -> None:
        self.whatsapp.mark_read(self.outlet.now, effect)

    def start_generation(self, effect: Generate) -> None:
        t = self.outlet.now
        self.result.generations.append(
            Generation(t, effect.request_id, effect.chat, effect.messages)
        )
        self.model.start_generation(effect, t)

    def start_send(self, effect: Send) -> None:
        t = self.outlet.now
        self.result.sent.append(
            Sent(t, effect.chat, effect.text, effect.request_id, effect.quote_id)
        )
        self._schedule(t, self.whatsapp.send(t, effect))

    def notify_owner(self, effect: Notice) -> None:
        t = self.outlet.now
        self._schedule(t, self.whatsapp.notice(t, effect))

    def _schedule(self, t: float, deliveries: list[Delivery]) -> None:
        for d in deliveries:
            if isinstance(d.event, SendFailed):
                self.result.send_failures.append((t, d.event.request_id))
            if d.survives_crash:  # new traffic from WhatsApp, not an answer to this process
                self.outlet.traffic_at(t + d.delay, d.event)
            else:
                self.outlet.deliver_at(t + d.delay, d.event)
