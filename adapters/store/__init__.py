"""The durable SQLite store: core state, outbox, traces; encryption at rest; backups.

`StateStore` is the seam every store satisfies (the SQLite `Store`, the in-memory
`MemoryStore`); a driver's shell depends on it alone."""

from wapa.adapters.store.backup import backup_file, daily_backup_due, rotate_backups
from wapa.adapters.store.errors import StoreError
from wapa.adapters.store.memory import MemoryStore
from wapa.adapters.store.protocol import OutboxEntry, StateStore
from wapa.adapters.store.schema import SCHEMA_VERSION
from wapa.adapters.store.settings import StoreSettings
from wapa.adapters.store.store import PurgeReport, Store

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
