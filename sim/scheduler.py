"""What the simulated world uses to make things happen later, on the virtual clock.

The discrete-event engine (`sim.engine.Simulation`) implements it. Everything scheduled belongs
to the running process: a crash before time `t` loses it, as a real crash loses the answers and
confirmations that were on their way to the dead process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from wapa.core.events import Event


class Scheduler(Protocol):
    @property
    def now(self) -> float:
        """The virtual time."""
        ...

    def call_at(self, t: float, fn: Callable[[float], None]) -> None:
        """Run `fn(t)` at virtual time `t` (not before now), unless the process crashes first."""
        ...

    def deliver_at(self, t: float, event: Event) -> None:
        """Hand `event` to the driver at virtual time `t`, unless the process crashes first."""
        ...
