"""The driver: how an event becomes state, a commit, and effects. Both worlds go through here.

The simulator (`sim/engine.py`) and the production runner (`app/runner.py`) are shells around
one `Driver`; they differ only in what sits at the edges (a virtual clock, fakes and an
in-memory or SQLite store; or asyncio, neonize, httpx and SQLite). Every step takes this path:

    shell                                   Driver (synchronous, no I/O, no clock)
    -----                                   --------------------------------------
    an event arrives        -> feed(event, now, tag)      core: Assistant.handle
    the timer is due        -> fire_due(now)              core: Assistant.on_timer
    after a restart         -> recover(now)               core: Assistant.recover
      (a group commit feeds several steps before it commits)
                            <- take_batch() -> Batch      the steps + the state they changed
    commit the batch (one transaction; the simulator's store, or SQLite)
                            -> committed(batch)           effects go to the World, in order
    or, when it failed      -> commit_failed(batch)       effects dropped, rows kept for later

The rules, once:

1. **Commit before effects.** A step's effects reach the world only through `committed`,
   after the state that allows them is stored. A crash between the commit and the effects
   loses effects, never state; `Assistant.recover` then finds generations and sends with no
   outcome (the store's outbox holds every `Send` as intent).
2. **In order.** Effects are handed to the world step by step, in the order the core produced
   them; what the world runs concurrently (per-chat lanes, model calls) is its own business.
3. **One step at a time.** `feed`/`fire_due`/`recover` refuse to run while a taken batch waits
   for its commit: a shell commits (or fails) each batch before it steps again.
4. **A bug costs one step.** The core never raises on bad input; if it raises anyway, the step
   is kept with no effects but a `bad_event` decision, and `Step.error` holds the exception
   for the shell to log.
5. **Rows, not the world.** A batch carries the exported state of exactly the chats its steps
   changed (O(1) rows per message) and the small global part, snapshotted when it is taken,
   so the shell may await the commit while the assistant moves on.

Outcomes of effects (model answers, send confirmations) come back as events through `feed`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from wapa.core.events import (
    Decision,
    Effect,
    Event,
    Generate,
    MarkRead,
    Notice,
    Reason,
    Send,
    Typing,
)
from wapa.core.machine import Assistant

StepKind = Literal["event", "timer", "recover"]


@dataclass(frozen=True, slots=True)
class Step:
    """One pass through the core: what came in (`event`, None for the timer and for
    recovery), when, and what came out."""

    kind: StepKind
    t: float
    event: Event | None
    effects: tuple[Effect, ...]
    tag: str = ""  # the shell's label for the step (the runner's correlation id)
    error: Exception | None = None  # the core raised (a bug): see rule 4


@dataclass(frozen=True, slots=True)
class Batch:
    """Steps since the last commit and the state they leave: what one transaction stores."""

    steps: tuple[Step, ...]
    chats: dict[str, dict[str, Any] | None]  # changed chats' exported state; None: deleted
    meta: dict[str, Any]  # the assistant's global state (`Assistant.export_meta`)
    now: float  # the assistant's clock at the end of the batch
    seq: int = 0  # batches taken by this driver, 1, 2, ...

    def effects(self) -> Iterator[Effect]:
        for step in self.steps:
            yield from step.effects

    def events(self) -> Iterator[Event]:
        for step in self.steps:
            if step.event is not None:
                yield step.event


class World(Protocol):
    """What carries effects out: the simulator's fakes or the runner's adapters. Every method
    returns at once (fire and forget); outcomes come back later as events."""

    def begin_step(self, step: Step) -> None:
        """Before the step's effects (recording, log context)."""

    def decided(self, decision: Decision) -> None:
        """A decision trace: log it, count it, show it."""

    def mark_read(self, effect: MarkRead) -> None: ...

    def typing(self, effect: Typing) -> None: ...

    def start_generation(self, effect: Generate) -> None: ...

    def start_send(self, effect: Send) -> None: ...

    def notify_owner(self, effect: Notice) -> None: ...

    def end_step(self, step: Step) -> None:
        """After the step's effects."""


class NullWorld:
    """A `World` that carries nothing out: for measuring or testing what is stored."""

    def begin_step(self, step: Step) -> None:
        pass

    def decided(self, decision: Decision) -> None:
        pass

    def mark_read(self, effect: MarkRead) -> None:
        pass

    def typing(self, effect: Typing) -> None:
        pass

    def start_generation(self, effect: Generate) -> None:
        pass

    def start_send(self, effect: Send) -> None:
        pass

    def notify_owner(self, effect: Notice) -> None:
        pass

    def end_step(self, step: Step) -> None:
        pass


class DriverError(RuntimeError):
    """A shell broke the driver's protocol (e.g. stepped while a batch awaited its commit)."""


@dataclass
class Driver:
    """Owns one `Assistant` and the order of everything around it (see the rules above)."""

    assistant: Assistant
    world: World
    _steps: list[Step] = field(default_factory=list)
    _unsaved: set[str] = field(default_factory=set)  # rows of a failed commit, written next
    _taken: Batch | None = None
    _seq: int = 0

    # ------------------------------------------------------------------ stepping

    def feed(self, event: Event, now: float, tag: str = "") -> tuple[Effect, ...]:
        """One event through the core; its effects wait for the commit."""
        return self._step("event", now, event, tag)

    def fire_due(self, now: float, tag: str = "") -> tuple[Effect, ...]:
        """The core's deadlines that are due at `now` (nothing when none is)."""
        deadline = self.assistant.next_deadline()
        if deadline is None or deadline > now:
            return ()
        return self._step("timer", now, None, tag)

    def recover(self, now: float, tag: str = "") -> tuple[Effect, ...]:
        """After a restart from stored state: what was under way at the crash."""
        return self._step("recover", now, None, tag)

    def next_deadline(self) -> float | None:
        return self.assistant.next_deadline()

    def pending(self) -> int:
        """Steps taken since the last batch (the shell's group size so far)."""
        return len(self._steps)

    def _step(
        self, kind: StepKind, now: float, event: Event | None, tag: str
    ) -> tuple[Effect, ...]:
        if self._taken is not None:
            raise DriverError("a batch awaits its commit: call committed() or commit_failed()")
        a = self.assistant
        error: Exception | None = None
        try:
            if kind == "event":
                assert event is not None
                out = a.handle(event, now)
            elif kind == "timer":
                out = a.on_timer(now)
            else:
                out = a.recover(now)
        except Exception as exc:  # rule 4: the core never raises on bad input; a bug costs one step
            error = exc
            what = type(event).__name__ if event is not None else kind
            detail = f"internal error on {what}: {type(exc).__name__}; step skipped"
            out = [Decision(max(a.now, 0.0), "", Reason.BAD_EVENT, detail)]
        step = Step(kind, now, event, tuple(out), tag, error)
        self._steps.append(step)
        return step.effects

    # ------------------------------------------------------------------ committing

    def take_batch(self) -> Batch | None:
        """The steps since the last commit and the state they changed, snapshotted now;
        None when there is nothing to commit. A new driver's first batch always exists, so
        that a new assistant is stored at once (a restart then always finds a state)."""
        if self._taken is not None:
            raise DriverError("the previous batch awaits its commit")
        a = self.assistant
        dirty = a.take_dirty() | self._unsaved
        if not self._steps and not dirty and self._seq:
            return None
        chats = a.chats
        rows = {cid: (a.export_chat(cid) if cid in chats else None) for cid in dirty}
        now = a.now if a.now != float("-inf") else 0.0
        self._seq += 1
        batch = Batch(tuple(self._steps), rows, a.export_meta(), now, self._seq)
        self._steps = []
        self._taken = batch
        return batch

    def committed(self, batch: Batch) -> None:
        """The batch is stored: carry its effects out, in order (rules 1 and 2)."""
        self._release(batch)
        self._unsaved = set()
        dispatch(batch, self.world)

    def commit_failed(self, batch: Batch) -> None:
        """The batch could not be stored: none of its effects happens; its rows are written
        with the next batch that commits."""
        self._release(batch)
        self._unsaved |= set(batch.chats)

    def _release(self, batch: Batch) -> None:
        if batch is not self._taken:
            raise DriverError("this batch is not the one awaiting its commit")
        self._taken = None


def dispatch(batch: Batch, world: World) -> None:
    """Hand a committed batch's effects to the world, step by step, in order."""
    for step in batch.steps:
        world.begin_step(step)
        for e in step.effects:
            if isinstance(e, Decision):
                world.decided(e)
            elif isinstance(e, Typing):
                world.typing(e)
            elif isinstance(e, MarkRead):
                world.mark_read(e)
            elif isinstance(e, Generate):
                world.start_generation(e)
            elif isinstance(e, Send):
                world.start_send(e)
            elif isinstance(e, Notice):
                world.notify_owner(e)
        world.end_step(step)
