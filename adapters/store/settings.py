"""Store settings: the store's configuration variables, and `StoreSettings.from_env`.

The variables are declared here, in `VARIABLES`, with the parsers of `wapa.adapters.variables`;
they are part of wapa's one configuration table (`wapa.config.VARIABLES`). Defaults are
written once, in `StoreSettings` below. Errors are the one `ConfigError` (a `ValueError`),
naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from wapa.adapters.variables import ConfigError, Var, choice, integer, number, read, text

__all__ = [
    "DEFAULT_BACKUP_DIR",
    "DEFAULT_DB",
    "SYNC_MODES",
    "VARIABLES",
    "ConfigError",
    "StoreSettings",
]

DEFAULT_DB = "data/wapa.db"
DEFAULT_BACKUP_DIR = "data/backups"
SYNC_MODES = ("full", "normal")


@dataclass(frozen=True, slots=True)
class StoreSettings:
    db: str = DEFAULT_DB  # WAPA_DB
    key: str | None = None  # WAPA_DB_KEY (never logged)
    trace_days: float = 14.0  # WAPA_TRACE_DAYS
    backup_dir: str = DEFAULT_BACKUP_DIR  # WAPA_BACKUP_DIR
    backup_keep: int = 7  # WAPA_BACKUP_KEEP (0: no daily backups)
    sync: str = SYNC_MODES[0]  # WAPA_DB_SYNC

    @property
    def trace_ttl(self) -> float:
        return self.trace_days * 86400.0

    def __repr__(self) -> str:  # the key stays out of logs and tracebacks
        key = "set" if self.key else "unset"
        return (
            f"StoreSettings(db={self.db!r}, key={key}, trace_days={self.trace_days:g}, "
            f"backup_dir={self.backup_dir!r}, backup_keep={self.backup_keep}, sync={self.sync!r})"
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StoreSettings:
        """Raises `ConfigError` naming the variable."""
        values = read(VARIABLES, os.environ if env is None else env)
        return cls(**{v.target: values[v.name] for v in VARIABLES if v.name in values})


_D = StoreSettings()  # the defaults, as written above, for the table

# `target`: the StoreSettings field.
VARIABLES: tuple[Var, ...] = (
    Var(
        "WAPA_DB",
        _D.db,
        "The assistant's SQLite database (state, outbox, traces)",
        "store",
        "db",
        text,
    ),
    Var(
        "WAPA_DB_KEY",
        "",
        "Encrypts message text and names in WAPA_DB; empty = not encrypted (a warning at start)",
        "store",
        "key",
        text,
        secret=True,
    ),
    Var(
        "WAPA_TRACE_DAYS",
        f"{_D.trace_days:g}",
        "Days decision traces are kept",
        "store",
        "trace_days",
        number(0.0, 100_000.0, lo_open=True),
    ),
    Var("WAPA_BACKUP_DIR", _D.backup_dir, "Where daily backups go", "store", "backup_dir", text),
    Var(
        "WAPA_BACKUP_KEEP",
        str(_D.backup_keep),
        "Daily backups kept; 0 = no daily backups",
        "store",
        "backup_keep",
        integer(0),
    ),
    Var(
        "WAPA_DB_SYNC",
        _D.sync,
        "SQLite synchronous mode: full or normal",
        "store",
        "sync",
        choice(*SYNC_MODES),
    ),
)
