"""The discrete-event loop: the production driver, a fake WhatsApp and a simulated model service
on a virtual clock.

The assistant is driven by `core.driver.Driver`, exactly as the production runner drives it:
each input or due timer is one step, its batch is committed to the simulated process's store
(`sim.durable`: memory, or a real SQLite file) and only then are its effects dispatched to the
`SimWorld` (`sim/world.py`). Only the clock, WhatsApp, the model provider and (optionally) the
disk are simulated.

One heap holds everything that will happen, ordered by (time, sequence number) so that ties
resolve in the order things were scheduled and every run is deterministic: script inputs,
model answers and backoffs, send confirmations, the owner's traffic, crashes and restarts. The
core's own deadlines come from `Driver.next_deadline()`; an input due at the same instant as a
deadline goes first.

A crash loses what the dead process was waiting for (model answers, backoffs, send
confirmations: everything scheduled through the `sim.scheduler.Scheduler` interface), while new
traffic from WhatsApp (messages, echoes of sends it accepted) still arrives. The restart builds
the assistant from the store, as the runner does, and calls `Driver.recover`. With a downtime,
inputs arriving while the assistant is down are delivered at the restart, as WhatsApp delivers
offline messages on reconnect; messages written while the fake WhatsApp's link is down arrive
when it is up again (`FakeWhatsApp.arrival`), never after a final fault. A recorder (`on_record`) gets every input ("in") and effect
("out"), and at a restart `("restart", {"crashed_at": T})`.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any

from wapa.core.driver import Driver
from wapa.core.events import Command, Event, Message
from wapa.core.machine import Assistant
from wapa.core.policy import Persona, Policy
from wapa.sim.clock import VirtualClock
from wapa.sim.durable import DurableState, MemoryState, SimStore
from wapa.sim.fake_model import FakeModel
from wapa.sim.fake_whatsapp import FakeWhatsApp
from wapa.sim.world import (
    Crash,
    Generation,
    Lost,
    Observer,
    Restart,
    Sent,
    SimResult,
    SimWorld,
    TimelineItem,
)

__all__ = [
    "QUOTE_LAST_REPLY",
    "Crash",
    "Generation",
    "Lost",
    "Observer",
    "Restart",
    "Sent",
    "SimResult",
    "Simulation",
    "SimulationError",
    "TimelineItem",
]

# A scripted quote of this id is replaced, when delivered, by the id of the assistant's last
# message in that chat (scenario files write `quote: reply`).
QUOTE_LAST_REPLY = "\x00last-reply"

# What the heap holds: script inputs and WhatsApp traffic (kept across crashes), results and
# callbacks of the running process (lost at a crash), crashes and restarts.
_INPUT, _TRAFFIC, _RESULT, _CALL, _CRASH, _RESTART = range(6)
_MAX_SAME_INSTANT = 100_000
_EARLY = 1 << 62  # sequence numbers of scripted items start here below zero
RANDOM_DOWNTIMES = (0.0, 1.0, 5.0, 30.0, 90.0)
RANDOM_CRASH_WITHIN = 1.0  # a random crash comes this many seconds after a step at most


class SimulationError(RuntimeError):
    """The simulation cannot go on (the core keeps asking to be woken at the same instant)."""


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
        restart from; without it the process commits to memory (`MemoryState`). A simulation
        with a file store must be closed (`close()` or `with`). `crash_rate`: the probability
        that a step is followed by a crash, at a random time within `RANDOM_CRASH_WITHIN`
        seconds (model answers, send confirmations and typing are under way then), with a
        downtime drawn from `RANDOM_DOWNTIMES`. Seeded: the same run crashes alike, and at
        times that tie with nothing, so a recording of it replays exactly."""
        if not 0.0 <= crash_rate <= 1.0:
            raise ValueError(f"crash_rate must be between 0 and 1, got {crash_rate!r}")
        self.policy, self.persona, self.seed = policy, persona, seed
        self.clock = VirtualClock(start)
        self.whatsapp = whatsapp or FakeWhatsApp(seed=seed)
        self.whatsapp.owner_id = persona.owner_id
        self.on_record = on_record
        self.observer = observer
        self.result = SimResult(start=float(start), end=float(start))
        self._queue: list[tuple[float, int, int, Any, int]] = []  # (t, seq, kind, payload, epoch)
        self._seq = 0
        self._early = 0  # scripted items (`add_scripted`): ordered before the run's own
        self._epoch = 0
        self._down = False
        self._held: list[Event] = []  # inputs that arrived while down
        self._crashed_at = 0.0
        self.crash_rate = crash_rate
        self._crash_seed = seed * 1_000_003 + 17
        self.model = model if model is not None else FakeModel(seed=seed)
        self.model.bind(self)  # its answers and backoffs go through this engine's heap
        self.world = SimWorld(
            self,
            self.model,
            self.whatsapp,
            self.result,
            keep_timeline=keep_timeline,
            on_record=on_record,
            observer=observer,
        )
        self.store: SimStore
        if store is None:
            self.store = MemoryState()
        else:
            self.store = store if isinstance(store, DurableState) else DurableState(store)
        self.driver = Driver(Assistant(policy, persona, seed), self.world)
        self._commit(first=True)  # as the runner commits a new assistant at once

    @property
    def assistant(self) -> Assistant:
        return self.driver.assistant

    @property
    def keep_timeline(self) -> bool:
        return self.world.keep_timeline

    def close(self) -> None:
        """Close the store (a no-op in memory). The result stays readable."""
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

    def add_event(self, t: float, event: Event) -> None:
        """Any other input at `t` (a `CalendarUpdate`, as the runner feeds its calendar)."""
        self._push(t, _INPUT, event)

    def add_crash(self, t: float, down: float = 0.0) -> None:
        self._push(t, _CRASH, float(down))

    def add_scripted(
        self, t: float, event: Event | None = None, *, traffic: bool = False, down: float = 0.0
    ) -> None:
        """An input (or, with `event=None`, a crash with `down` seconds of downtime) that goes
        into the run as if it had been added before the run started, however late it is added:
        at the same instant it comes before everything scheduled during the run, and after
        what was scripted before it. A streaming caller (`sim.replay_stream`) adds a long
        script piece by piece, between `run(until)` calls, and gets the order it would get
        from adding it all first. `traffic`: new traffic from WhatsApp, as `traffic_at`."""
        self._early += 1
        seq = self._early - _EARLY
        kind = _CRASH if event is None else _TRAFFIC if traffic else _INPUT
        payload = float(down) if event is None else event
        heapq.heappush(self._queue, (float(t), seq, kind, payload, self._epoch))

    # ------------------------------------------------------------------ the Scheduler seam

    @property
    def now(self) -> float:
        return self.clock.now

    def call_at(self, t: float, fn: Callable[[float], None]) -> None:
        """Run `fn(t)` at `t`, unless the process crashes first (`sim.scheduler.Scheduler`)."""
        self._push(max(t, self.clock.now), _CALL, fn)

    @property
    def epoch(self) -> int:
        """How many crashes the process has had: a result belongs to the epoch it was asked in."""
        return self._epoch

    def deliver_at(self, t: float, event: Event, epoch: int | None = None) -> None:
        """Hand `event` to the driver at `t`, unless the process crashes first (or, with an
        earlier `epoch`, crashed since that epoch: then it is lost at `t`)."""
        self._seq += 1
        at = max(t, self.clock.now)
        mine = self._epoch if epoch is None else epoch
        heapq.heappush(self._queue, (float(at), self._seq, _RESULT, event, mine))

    def traffic_at(self, t: float, event: Event) -> None:
        """New traffic from WhatsApp (an echo, the owner's phone): arrives whatever happens to
        the process; while it is down, at the restart."""
        self._push(max(t, self.clock.now), _TRAFFIC, event)

    # ------------------------------------------------------------------ loop

    def run(self, until: float | None = None) -> SimResult:
        """Process everything due up to `until` (everything, when None) and return the result.
        May be called again with a later `until` to continue."""
        queue, clock, res = self._queue, self.clock, self.result
        same_instant, last_t = 0, clock.now
        while True:
            deadline = None if self._down else self.driver.next_deadline()
            top = queue[0][0] if queue else None
            if deadline is not None and (top is None or deadline < top):
                t = max(deadline, clock.now)
                if until is not None and t > until:
                    break
                clock.advance_to(t)
                self.driver.fire_due(t)
                self._commit()
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
        if kind in (_INPUT, _TRAFFIC):
            if isinstance(payload, Message):  # the link decides when WhatsApp hands it over
                arrival = self.whatsapp.arrival(t, payload)
                if arrival is None:  # after a final fault nothing reaches this device
                    return
                if arrival.at > t:  # the offline backlog, once the link is up again
                    self._push(arrival.at, kind, arrival.message)
                    return
            if kind == _TRAFFIC and isinstance(payload, Message):
                self.result.echo_ids.add(payload.id)
            if self._down:
                self._held.append(payload)
            else:
                self._deliver(t, payload)
        elif kind in (_RESULT, _CALL):
            if epoch != self._epoch or self._down:
                if kind == _RESULT:
                    self.world.note(t, Lost(payload))
            elif kind == _RESULT:
                self._deliver(t, payload)
            else:
                payload(t)
        elif kind == _CRASH:
            self._crash(t, payload)
        elif kind == _RESTART:
            self._restart(t)

    def _deliver(self, t: float, event: Event) -> None:
        if isinstance(event, Message):
            if event.quoted_id == QUOTE_LAST_REPLY:
                quoted = self.whatsapp.last_sent_id.get(event.chat, "")
                sender = self.persona.owner_id if quoted else ""
                event = replace(event, quoted_id=quoted, quoted_sender=sender)
            if not event.from_me:
                self.result.inputs += 1
            self.whatsapp.saw(event)
        self.driver.feed(event, t)
        self._commit()

    def _commit(self, first: bool = False) -> None:
        """The driver's order (core/driver.py): store the batch, then carry its effects out.
        With a `crash_rate`, a crash may follow (never after the first, empty commit)."""
        batch = self.driver.take_batch()
        if batch is None:
            return
        try:
            self.store.save(batch)
        except BaseException:
            self.driver.commit_failed(batch)
            raise
        self.driver.committed(batch)
        if self.crash_rate and not first and self._crash_rng.random() < self.crash_rate:
            at = self.clock.now + self._crash_rng.uniform(0.0, RANDOM_CRASH_WITHIN)
            self.add_crash(at, self._crash_rng.choice(RANDOM_DOWNTIMES))

    @cached_property
    def _crash_rng(self) -> random.Random:
        """The random crashes' generator, seeded at its first draw (a run with no
        `crash_rate` never draws, and seeding one costs about 6 µs)."""
        return random.Random(self._crash_seed)

    # ------------------------------------------------------------------ crash and restart

    def _crash(self, t: float, down: float) -> None:
        if self._down:
            return
        self.result.crashes.append(t)
        self._crashed_at = t
        self.store.crash()
        self.world.note(t, Crash(down))
        if self.observer is not None:
            self.observer.observe_crash(t)
        self._epoch += 1  # results and callbacks scheduled before this instant are lost
        self._down = True
        self._push(t + down, _RESTART, None)

    def _restart(self, t: float) -> None:
        assistant, unconfirmed = self.store.restart(self.policy, self.persona)
        self.result.unconfirmed.extend((t, entry.request_id) for entry in unconfirmed)
        self.driver = Driver(assistant, self.world)
        self.model.restarted(t)  # the model service belonged to the dead process too
        self._down = False
        self.world.note(t, Restart())
        if self.on_record is not None:
            self.on_record(t, "restart", {"crashed_at": self._crashed_at})
        self.driver.recover(t)
        self._commit()
        held, self._held = self._held, []
        for event in held:
            self._deliver(t, event)
