"""`MemoryStore`: a `StateStore` in dictionaries, for tests and fakes.

It keeps the same rows as the SQLite `Store` (chats, the global row, the outbox with its
outcomes, values) with the same rules, so a shell tested against it behaves as it does
against SQLite (`tests/adapters/test_store_protocol.py` runs one contract over both). A
`save` is all or nothing: everything is checked and computed before anything is applied.
`load` rebuilds the assistant through JSON, as a real restart rebuilds it from the database.
No encryption, no traces, no retention, no files.

The simulator commits to it on every step (`sim.durable.MemoryState` calls the synchronous
`*_now` methods: its virtual clock does not move while a batch is stored), so a save costs
O(batch), and settled outbox entries are kept only up to `settled_kept` (the SQLite store keeps
them until `purge`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson
from wapa.adapters.store.errors import StoreError
from wapa.adapters.store.protocol import OutboxEntry, checked_values
from wapa.adapters.store.rows import transient_row
from wapa.core.driver import Batch
from wapa.core.events import Decision, Reason, Send, SendConfirmed, SendFailed
from wapa.core.machine import Assistant
from wapa.core.policy import Persona, Policy


def _through_json(value: Any) -> Any:
    """`value` written as the SQLite store writes its rows and read back: what a real restart
    gets (orjson both ways where it can: a crash in a long fuzz run copies every chat)."""
    data = transient_row(value)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:  # NaN or Infinity, which only the stdlib writes and reads
        return json.loads(data)


class MemoryStore:
    """A `StateStore` that lives as long as the object (see the module docstring)."""

    def __init__(self, settled_kept: int = 1024) -> None:
        self.commits = 0
        self.settled_kept = settled_kept
        self._meta: dict[str, Any] | None = None
        self._chats: dict[str, dict[str, Any]] = {}
        self._outbox: dict[str, OutboxEntry] = {}
        self._open: set[str] = set()  # request ids with no outcome yet
        self._settled: dict[str, None] = {}  # settled request ids, oldest first
        self._values: dict[str, str] = {}
        self._closed = False

    @property
    def encrypted(self) -> bool:
        return False

    async def load(
        self, policy: Policy | None = None, persona: Persona | None = None
    ) -> Assistant | None:
        return self.load_now(policy, persona)

    def load_now(
        self, policy: Policy | None = None, persona: Persona | None = None
    ) -> Assistant | None:
        """`load`, synchronously."""
        self._check_open()
        if self._meta is None:
            return None
        state = _through_json({**self._meta, "chats": self._chats})
        try:
            return Assistant.restore(state, policy, persona)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise StoreError(f"memory store: saved state cannot be restored: {exc!r}") from exc

    async def save(self, batch: Batch, *, values: Mapping[str, str] | None = None) -> None:
        self.save_now(batch, values=values)

    def save_now(self, batch: Batch, *, values: Mapping[str, str] | None = None) -> None:
        """`save`, synchronously."""
        self._check_open()
        kv = checked_values(values)
        now = batch.now
        outbox = self._outbox
        changed: dict[str, OutboxEntry] = {}  # computed first, applied whole below
        for e in batch.effects():
            if isinstance(e, Send) and e.request_id not in outbox and e.request_id not in changed:
                changed[e.request_id] = OutboxEntry(e.request_id, e.chat, e.text, e.quote_id, now)
            elif isinstance(e, Decision) and e.code == Reason.SEND_UNKNOWN and e.request_id:
                entry = changed.get(e.request_id) or outbox.get(e.request_id)
                if entry is not None and entry.outcome is None:
                    changed[e.request_id] = replace(entry, outcome="unknown")
        for ev in batch.events():
            if isinstance(ev, SendConfirmed | SendFailed):
                entry = changed.get(ev.request_id) or outbox.get(ev.request_id)
                if entry is not None and entry.outcome in (None, "unknown"):
                    done = "confirmed" if isinstance(ev, SendConfirmed) else "failed"
                    changed[ev.request_id] = replace(entry, outcome=done)
        # nothing can fail below: the batch is applied whole
        for cid, row in batch.chats.items():
            if row is None:
                self._chats.pop(cid, None)
            else:
                self._chats[cid] = row  # the driver's snapshot: nothing else holds it
        self._meta = batch.meta
        for rid, entry in changed.items():
            if entry.outcome is None:
                self._open.add(rid)
            else:
                self._open.discard(rid)
                self._settled[rid] = None
            outbox[rid] = entry
        while len(self._settled) > self.settled_kept:
            oldest = next(iter(self._settled))
            del self._settled[oldest]
            outbox.pop(oldest, None)
        self._values.update(kv)
        self.commits += 1

    async def get_value(self, name: str) -> str | None:
        checked_values({name: ""})
        return self._values.get(name)

    async def unconfirmed_sends(self) -> list[OutboxEntry]:
        return self.unconfirmed_now()

    def unconfirmed_now(self) -> list[OutboxEntry]:
        """`unconfirmed_sends`, synchronously."""
        entries = (self._outbox[rid] for rid in self._open)
        return sorted(entries, key=lambda e: (e.intent_at, e.request_id))

    async def outbox(self) -> list[OutboxEntry]:
        return sorted(self._outbox.values(), key=lambda e: (e.intent_at, e.request_id))

    async def close(self) -> None:
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("memory store: used after close()")
