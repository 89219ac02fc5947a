"""The simulator's virtual clock: time only moves when the engine moves it, and never back."""

from __future__ import annotations


class VirtualClock:
    """Epoch seconds, advanced by the discrete-event loop. Reading it costs nothing and never
    sleeps, so a simulated week takes as long as its events take to process."""

    __slots__ = ("_now",)

    def __init__(self, start: float) -> None:
        self._now = float(start)

    @property
    def now(self) -> float:
        return self._now

    def advance_to(self, t: float) -> None:
        if t < self._now:
            raise ValueError(f"virtual clock cannot go back from {self._now} to {t}")
        self._now = float(t)
