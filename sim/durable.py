"""Where the simulated process commits its state: memory by default, or a real SQLite store.

Both take the driver's `Batch` exactly as the runner's store does (`core/driver.py`, rule 1:
a batch is stored before its effects happen) and both give the restart what the runner's start
gets: the assistant as last committed, and the sends stored as intent with no outcome.

- `MemoryState` keeps the committed rows in dictionaries: a crash loses nothing that was
  committed and everything that was not; a restart rebuilds the assistant from the rows through
  JSON, as a real restart rebuilds it from the database. Fast enough for fuzzing weeks of
  traffic over thousands of chats.
- `DurableState` drives the real `adapters.store.Store` on one private event loop: every batch
  is a SQLite transaction, a crash closes the connection, the restart opens the file again.
  Opening refuses a file that already holds an assistant, so a simulation never writes over
  real state.
"""

from __future__ import annotations

from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from wapa.adapters.store.memory import MemoryStore
from wapa.adapters.store.protocol import OutboxEntry
from wapa.core.driver import Batch
from wapa.core.machine import Assistant
from wapa.core.policy import Persona, Policy

if TYPE_CHECKING:
    from wapa.adapters.store.store import Store

T = TypeVar("T")
SYNC = "normal"  # a commit survives a crash of the process: what a simulated crash is


class StoreInUseError(RuntimeError):
    """The store file given to a simulation already holds an assistant's state."""


class SimStore(Protocol):
    """What the simulator commits to: the production stores (`adapters.store`), called
    synchronously (the virtual clock does not move while a batch is stored)."""

    @property
    def commits(self) -> int: ...

    @property
    def restarts(self) -> int: ...

    def save(self, batch: Batch) -> None: ...

    def crash(self) -> None: ...

    def restart(self, policy: Policy, persona: Persona) -> tuple[Assistant, list[OutboxEntry]]: ...

    def close(self) -> None: ...


class MemoryState:
    """The committed rows in memory: `adapters.store.MemoryStore`, called synchronously."""

    def __init__(self) -> None:
        self.store = MemoryStore()
        self.restarts = 0

    @property
    def commits(self) -> int:
        return self.store.commits

    def save(self, batch: Batch) -> None:
        self.store.save_now(batch)

    def crash(self) -> None:
        """Nothing to do: what was committed stays, what was not never was."""

    def restart(self, policy: Policy, persona: Persona) -> tuple[Assistant, list[OutboxEntry]]:
        unconfirmed = self.store.unconfirmed_now()
        assistant = self.store.load_now(policy, persona)
        if assistant is None:  # cannot happen: the simulation commits its first state at once
            raise StoreInUseError("nothing was committed before the restart")
        self.restarts += 1
        return assistant, unconfirmed

    def close(self) -> None:
        pass


class DurableState:
    """One SQLite store file for one simulation. Close it (or use `with`): aiosqlite runs a
    thread."""

    def __init__(self, path: str | Path, *, key: str | None = None, sync: str = SYNC) -> None:
        # Imported here and in `_open_store`, not with the module: only the scenarios that
        # restart from a store (three of the suite's) need asyncio, aiosqlite and cryptography;
        # every other one commits to the MemoryStore.
        import asyncio

        self.path = Path(path)
        self.key, self.sync = key, sync
        self.commits = 0
        self.restarts = 0
        self._loop = asyncio.new_event_loop()
        self._store: Store | None = None
        try:
            if self._run(self._open_store().load()) is not None:
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
            from wapa.adapters.store.store import Store  # see __init__

            self._store = self._run(Store.open(self.path, self.key, sync=self.sync))
        return self._store

    def save(self, batch: Batch) -> None:
        """One batch, committed before this returns (and so before its effects happen)."""
        self._run(self._open_store().save(batch))
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
