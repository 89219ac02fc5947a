"""`MemoryStore`: a `StateStore` in dictionaries, for tests and fakes.

It keeps the same rows as the SQLite `Store` (chats, the global row, the outbox with its
outcomes, values) with the same rules, so a shell tested against it behaves as it does
against SQLite (`tests/adapters/test_store_protocol.py` runs one contract over both). A
`save` is all or nothing: everything is checked and computed before anything is applied.
`load` rebuilds the assistant through JSON, as a real restart rebuilds it from the database.
No encryption, no traces, no retention, no files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from wapa.adapters.store.errors import StoreError
from wapa.adapters.store.protocol import OutboxEntry, checked_values
from wapa.core.driver import Batch
from wapa.core.events import Decision, Reason, Send, SendConfirmed, SendFailed
from wapa.core.machine import Assistant
from wapa.core.policy import Persona, Policy


class MemoryStore:
    """A `StateStore` that lives as long as the object (see the module docstring)."""

    def __init__(self) -> None:
        self.commits = 0
        self._meta: dict[str, Any] | None = None
        self._chats: dict[str, dict[str, Any]] = {}
        self._outbox: dict[str, OutboxEntry] = {}
        self._values: dict[str, str] = {}
        self._closed = False

    @property
    def encrypted(self) -> bool:
        return False

    async def load(
        self, policy: Policy | None = None, persona: Persona | None = None
    ) -> Assistant | None:
        self._check_open()
        if self._meta is None:
            return None
        state = json.loads(json.dumps({**self._meta, "chats": self._chats}))
        try:
            return Assistant.restore(state, policy, persona)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise StoreError(f"memory store: saved state cannot be restored: {exc!r}") from exc

    async def save(self, batch: Batch, *, values: Mapping[str, str] | None = None) -> None:
        self._check_open()
        kv = checked_values(values)
        now = batch.now
        outbox = dict(self._outbox)
        for e in batch.effects():
            if isinstance(e, Send) and e.request_id not in outbox:
                outbox[e.request_id] = OutboxEntry(e.request_id, e.chat, e.text, e.quote_id, now)
            elif isinstance(e, Decision) and e.code == Reason.SEND_UNKNOWN and e.request_id:
                entry = outbox.get(e.request_id)
                if entry is not None and entry.outcome is None:
                    outbox[e.request_id] = replace(entry, outcome="unknown")
        for ev in batch.events():
            if isinstance(ev, SendConfirmed | SendFailed):
                entry = outbox.get(ev.request_id)
                if entry is not None and entry.outcome in (None, "unknown"):
                    done = "confirmed" if isinstance(ev, SendConfirmed) else "failed"
                    outbox[ev.request_id] = replace(entry, outcome=done)
        # nothing can fail below: the batch is applied whole
        for cid, row in batch.chats.items():
            if row is None:
                self._chats.pop(cid, None)
            else:
                self._chats[cid] = row  # the driver's snapshot: nothing else holds it
        self._meta = batch.meta
        self._outbox = outbox
        self._values.update(kv)
        self.commits += 1

    async def get_value(self, name: str) -> str | None:
        checked_values({name: ""})
        return self._values.get(name)

    async def unconfirmed_sends(self) -> list[OutboxEntry]:
        return [e for e in await self.outbox() if e.outcome is None]

    async def outbox(self) -> list[OutboxEntry]:
        return sorted(self._outbox.values(), key=lambda e: (e.intent_at, e.request_id))

    async def close(self) -> None:
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("memory store: used after close()")
