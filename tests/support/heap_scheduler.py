"""A scheduler for driving a fake (the model) alone: the engine's side reduced to a heap of
callbacks and deliveries in (time, order), as `sim.scheduler.Scheduler` asks."""

from __future__ import annotations

import heapq
from collections.abc import Callable

from wapa.core.events import Event


class HeapScheduler:
    """The engine's side, reduced to a heap: callbacks and deliveries in (time, order)."""

    def __init__(self, start: float) -> None:
        self._now = start
        self._heap: list[tuple[float, int, Callable[[float], None]]] = []
        self._seq = 0
        self.delivered: list[tuple[float, Event]] = []

    @property
    def now(self) -> float:
        return self._now

    def call_at(self, t: float, fn: Callable[[float], None]) -> None:
        assert t >= self._now
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, fn))

    def deliver_at(self, t: float, event: Event) -> None:
        assert t >= self._now
        self.delivered.append((t, event))

    def run(self, until: float = float("inf")) -> list[tuple[float, Event]]:
        while self._heap and self._heap[0][0] <= until:
            t, _, fn = heapq.heappop(self._heap)
            self._now = t
            fn(t)
        self._now = max(self._now, until) if until != float("inf") else self._now
        return self.delivered

    def crash(self) -> None:
        self._heap.clear()  # what was scheduled dies with the process
