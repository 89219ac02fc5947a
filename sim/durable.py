"""The real SQLite store behind the synchronous simulator: restarts from disk, not from JSON.

`DurableState` drives `adapters.store.Store` on one private event loop, the way the production
runner does: every engine step is committed with `save_step` before its effects are carried
out; a crash closes the connection (the process is gone; every step it made is on disk), and the
restart opens the file again, reads `unconfirmed_sends()` and `load()`s the assistant, which the
engine then `recover`s. Opening refuses a file that already holds an assistant, so a simulation
never writes over real state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from pathlib import Path
from typing import Any, TypeVar

from wapa.adapters.store import OutboxEntry, Store
from wapa.core.events import Effect, Event
from wapa.core.machine import Assistant
from wapa.core.policy import Persona, Policy

T = TypeVar("T")
SYNC = "normal"  # a commit survives a crash of the process: what a simulated crash is


class StoreInUseError(RuntimeError):
    """The store file given to a simulation already holds an assistant's state."""


class DurableState:
    """One store file for one simulation. Close it (or use `with`): aiosqlite runs a thread."""

    def __init__(self, path: str | Path, *, key: str | None = None, sync: str = SYNC) -> None:
        self.path = Path(path)
        self.key, self.sync = key, sync
        self.commits = 0
        self.restarts = 0
        self._loop = asyncio.new_event_loop()
        self._store: Store | None = None
        try:
            self._store = self._run(Store.open(self.path, key, sync=sync))
            if self._run(self._store.load()) is not None:
                raise StoreInUseError(
                    f"{self.path} already holds an assistant's state: give the simulation a new "
                    "file (it never writes over a real store)"
                )
        except BaseException:
            self.close()
            raise

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(coro)

    def _open_store(self) -> Store:
        if self._store is None:
            self._store = self._run(Store.open(self.path, self.key, sync=self.sync))
        return self._store

    def save(
        self, assistant: Assistant, effects: Iterable[Effect], events: Iterable[Event] = ()
    ) -> None:
        """One step, committed before this returns (and so before its effects happen)."""
        self._run(self._open_store().save_step(assistant, effects, events))
        self.commits += 1

    def crash(self) -> None:
        """The process died: its connection goes with it (nothing is left uncommitted)."""
        if self._store is not None:
            store, self._store = self._store, None
            self._run(store.close())

    def restart(self, policy: Policy, persona: Persona) -> tuple[Assistant, list[OutboxEntry]]:
        """Open the file again and load the assistant as last committed, with the sends the store
        holds as intent with no outcome (before `recover` marks them unknown)."""
        store = self._open_store()
        unconfirmed = self._run(store.unconfirmed_sends())
        assistant = self._run(store.load(policy, persona))
        if assistant is None:  # cannot happen: the simulation commits its first state at once
            raise StoreInUseError(f"{self.path}: the assistant's state is gone after a restart")
        self.restarts += 1
        return assistant, unconfirmed

    def outbox(self) -> list[OutboxEntry]:
        return self._run(self._open_store().outbox())

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self.crash()
        finally:
            self._loop.close()

    def __enter__(self) -> DurableState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
