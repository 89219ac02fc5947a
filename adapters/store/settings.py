"""Store settings from the environment, with defaults, validated with errors naming the variable."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_DB = "data/wapa.db"
DEFAULT_BACKUP_DIR = "data/backups"
DEFAULT_TRACE_DAYS = 14.0
DEFAULT_BACKUP_KEEP = 7
SYNC_MODES = ("full", "normal")


@dataclass(frozen=True, slots=True)
class StoreSettings:
    db: str = DEFAULT_DB  # WAPA_DB
    key: str | None = None  # WAPA_DB_KEY (never logged)
    trace_days: float = DEFAULT_TRACE_DAYS  # WAPA_TRACE_DAYS
    backup_dir: str = DEFAULT_BACKUP_DIR  # WAPA_BACKUP_DIR
    backup_keep: int = DEFAULT_BACKUP_KEEP  # WAPA_BACKUP_KEEP (0: no daily backups)
    sync: str = "full"  # WAPA_DB_SYNC

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
        env = os.environ if env is None else env
        days_text = env.get("WAPA_TRACE_DAYS", "").strip() or str(DEFAULT_TRACE_DAYS)
        try:
            days = float(days_text)
        except ValueError:
            days = -1.0
        if not 0 < days < 100000:
            raise ValueError(f"WAPA_TRACE_DAYS: expected a number of days > 0, got {days_text!r}")
        keep_text = env.get("WAPA_BACKUP_KEEP", "").strip() or str(DEFAULT_BACKUP_KEEP)
        if not keep_text.isdigit():
            raise ValueError(f"WAPA_BACKUP_KEEP: expected a whole number >= 0, got {keep_text!r}")
        sync = env.get("WAPA_DB_SYNC", "").strip().lower() or "full"
        if sync not in SYNC_MODES:
            raise ValueError(f"WAPA_DB_SYNC: expected one of {', '.join(SYNC_MODES)}, got {sync!r}")
        return cls(
            db=env.get("WAPA_DB", "").strip() or DEFAULT_DB,
            key=env.get("WAPA_DB_KEY") or None,
            trace_days=days,
            backup_dir=env.get("WAPA_BACKUP_DIR", "").strip() or DEFAULT_BACKUP_DIR,
            backup_keep=int(keep_text),
            sync=sync,
        )
