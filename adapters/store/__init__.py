"""The durable SQLite store: core state, outbox, traces; encryption at rest; backups.

`StateStore` is the seam every store satisfies (the SQLite `Store`, the in-memory
`MemoryStore`); a driver's shell depends on it alone."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wapa.adapters.lazy import lazy_names

if TYPE_CHECKING:
    from wapa.adapters.store.backup import backup_file, daily_backup_due, rotate_backups
    from wapa.adapters.store.errors import StoreError
    from wapa.adapters.store.memory import MemoryStore
    from wapa.adapters.store.protocol import OutboxEntry, StateStore
    from wapa.adapters.store.schema import SCHEMA_VERSION
    from wapa.adapters.store.settings import StoreSettings
    from wapa.adapters.store.store import PurgeReport, Store

# The names below are loaded on first use (PEP 562). Importing any submodule runs this file
# first, and the simulator needs only `MemoryStore`: importing the SQLite `Store` here loaded
# aiosqlite, asyncio and cryptography into every `wapa simulate`.
_WHERE = {
    "backup_file": "backup",
    "daily_backup_due": "backup",
    "rotate_backups": "backup",
    "StoreError": "errors",
    "MemoryStore": "memory",
    "OutboxEntry": "protocol",
    "StateStore": "protocol",
    "SCHEMA_VERSION": "schema",
    "StoreSettings": "settings",
    "PurgeReport": "store",
    "Store": "store",
}


if not TYPE_CHECKING:  # mypy reads the imports above: a misspelt name stays an error
    __getattr__, __dir__ = lazy_names(__name__, _WHERE, globals())


__all__ = [
    "SCHEMA_VERSION",
    "MemoryStore",
    "OutboxEntry",
    "PurgeReport",
    "StateStore",
    "Store",
    "StoreError",
    "StoreSettings",
    "backup_file",
    "daily_backup_due",
    "rotate_backups",
]
