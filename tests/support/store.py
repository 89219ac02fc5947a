"""Driving a store the way the shells do: `Driver` steps, `take_batch`, `save`, `committed`.

    d = driver(Assistant(policy, persona))
    await step(store, d, message, t)          # feed, commit (one batch), effects to the world
    await step(store, d, None, t + 120)       # the timer at t + 120
    d.feed(m1, t); d.feed(m2, t)              # a group of steps...
    await commit(store, d)                    # ...in one batch

`NullWorld` carries nothing out; `Recorder` keeps what reached it, in order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from wapa.adapters.store import StateStore
from wapa.core import Assistant, Effect, Event
from wapa.core.driver import Batch, Driver, NullWorld, Step


@dataclass
class Recorder(NullWorld):
    """A world that records the effects it was handed (only committed ones reach it)."""

    done: list[Effect] = field(default_factory=list)

    def end_step(self, step: Step) -> None:
        self.done += step.effects


def driver(assistant: Assistant) -> Driver:
    return Driver(assistant, NullWorld())


async def commit(
    store: StateStore, d: Driver, *, values: Mapping[str, str] | None = None
) -> Batch | None:
    """Take the driver's batch and save it; `committed` on success, `commit_failed` (and the
    exception again) when the save raises. None when there was nothing to commit (and no
    values to write)."""
    batch = d.take_batch()
    if batch is None:
        if not values:
            return None
        empty = empty_batch(d.assistant)
        await store.save(empty, values=values)
        return empty
    try:
        await store.save(batch, values=values)
    except BaseException:
        d.commit_failed(batch)
        raise
    d.committed(batch)
    return batch


async def step(
    store: StateStore,
    d: Driver,
    event: Event | None,
    now: float,
    *,
    values: Mapping[str, str] | None = None,
) -> tuple[Effect, ...]:
    """One step (an event, or the timer when `event` is None), committed alone. The timer
    step fires whatever is due at `now` (nothing when nothing is)."""
    effects = d.feed(event, now) if event is not None else d.fire_due(now)
    await commit(store, d, values=values)
    return effects


def empty_batch(a: Assistant) -> Batch:
    """A batch with no step and no chat, only the global row: what a shell commits when
    only `values` changed. No driver awaits it."""
    now = a.now if a.now != float("-inf") else 0.0
    return Batch((), {}, a.export_meta(), now)
