"""The store's seam: what a driver's shell needs from durable state, in one Protocol.

The production store (`Store`, SQLite) and the simulator's stores satisfy `StateStore`; a
shell (the runner, the simulator) is written against it and never against one of them. The
contract, in the driver's order (`core/driver.py`):

    assistant = await store.load(policy, persona)    # None: an empty store, start afresh
    open_sends = await store.unconfirmed_sends()     # before recover: sends with no outcome
    ...
    batch = driver.take_batch()
    await store.save(batch, values=...)              # ONE transaction: all of it or nothing
    driver.committed(batch)                          # only now the effects happen
    # on an exception from save: driver.commit_failed(batch); the rows come again next time

This module has no I/O and imports no database library: a fake store depends on it alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from wapa.adapters.store.errors import StoreError
from wapa.core.driver import Batch
from wapa.core.machine import Assistant
from wapa.core.policy import Persona, Policy


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A send recorded as intent. `outcome` is None while unknown to the store."""

    request_id: str
    chat: str
    text: str
    quote_id: str
    intent_at: float
    outcome: str | None = None


# store_meta rows the SQLite store owns (its encryption setup): `values` may not name them.
RESERVED_VALUES = frozenset({"encryption", "kdf", "salt", "key_check"})


def checked_values(values: Mapping[str, str] | None) -> list[tuple[str, str]]:
    """`save`'s `values` as (name, text) rows; StoreError for an empty or reserved name, or a
    value that is not text (every store checks them the same way, before it writes)."""
    if not values:
        return []
    out = []
    for name, value in values.items():
        if not isinstance(name, str) or not name or name in RESERVED_VALUES:
            raise StoreError(f"store value name {name!r} is empty or reserved for the store")
        if not isinstance(value, str):
            raise StoreError(f"store value {name!r} must be text, got {type(value).__name__}")
        out.append((name, value))
    return out


@runtime_checkable
class StateStore(Protocol):
    """Durable state for one assistant: the core's state, the outbox, small named values.

    `save` stores a whole `Batch` in one transaction before it returns: the chats it names
    (upserted, or deleted when None), the global row, a send intent per `Send`, an outcome per
    `SendConfirmed` / `SendFailed` event, the `send_unknown` mark of each send `recover`
    reported, a trace per `Decision`, and `values`. When it raises, nothing of the batch is
    stored (the driver offers its rows again with the next batch)."""

    @property
    def encrypted(self) -> bool:
        """Whether the rows are encrypted at rest (the runner warns once when not)."""
        ...

    async def load(self, policy: Policy | None, persona: Persona | None) -> Assistant | None:
        """The assistant as last saved, or None for an empty store."""
        ...

    async def save(self, batch: Batch, *, values: Mapping[str, str] | None = None) -> None:
        """Commit the batch (and `values`, small text rows) in one transaction."""
        ...

    async def get_value(self, name: str) -> str | None:
        """A value saved with `save(..., values={name: ...})`, or None."""
        ...

    async def unconfirmed_sends(self) -> list[OutboxEntry]:
        """Sends stored as intent with no outcome yet, oldest first."""
        ...

    async def close(self) -> None: ...
