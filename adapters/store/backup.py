"""Backups with SQLite's online backup API, and a daily rotation.

A backup is one self-contained file (rollback journal, not WAL), written beside its final name
and renamed into place, so a half-written backup never looks like a good one. An encrypted
database stays encrypted in its backups: the salt travels inside, the key does not.
Rotation only ever touches files named like `wapa-YYYYMMDD-HHMMSS.db`. Backups are created
0600 and the folders made for them 0700 (adapters/filemodes.py).
"""

from __future__ import annotations

import os
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from wapa.adapters.filemodes import private_dir, private_sqlite
from wapa.adapters.store.errors import StoreError

_NAME = re.compile(r"^wapa-(\d{8})-(\d{6})\.db$")


def backup_name(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("wapa-%Y%m%d-%H%M%S.db")


def resolve_dest(dest: str | os.PathLike[str], now: float, *, folder: bool = False) -> Path:
    """A directory (existing, written with a trailing slash, or any `dest` when `folder`,
    e.g. with rotation: `wapa backup DIR --keep N`) gets a timestamped file."""
    path = Path(dest)
    if folder or path.is_dir() or str(dest).endswith(("/", os.sep)):
        return path / backup_name(now)
    return path


def backup_connection(source: sqlite3.Connection, dest: Path) -> Path:
    """Copy an open database to `dest` (refused if it exists). Returns the path written."""
    if dest.exists():
        raise StoreError(f"backup: {dest} already exists; choose another name or remove it")
    tmp = dest.with_name(dest.name + ".part")
    try:
        private_dir(dest.parent)  # backups hold the messages: folder 0700, file 0600
        tmp.unlink(missing_ok=True)
        private_sqlite(tmp)
    except OSError as exc:
        raise StoreError(f"backup: cannot write {dest}: {exc.strerror or exc}") from exc
    try:
        target = sqlite3.connect(tmp)
        try:
            source.backup(target, pages=-1)  # one step: a consistent snapshot
            target.execute("PRAGMA journal_mode=DELETE")
            (ok,) = target.execute("PRAGMA quick_check").fetchone()
            if ok != "ok":
                raise StoreError(f"backup: the copy at {tmp} fails its check: {ok}")
        finally:
            target.close()
        os.replace(tmp, dest)
    except sqlite3.Error as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"backup to {dest} failed: {exc}") from exc
    return dest


def backup_file(db: str | os.PathLike[str], dest: Path) -> Path:
    """Back up a database file without opening it as a store (no key needed)."""
    if not Path(db).is_file():
        raise StoreError(f"backup: no database at {db}")
    try:
        source = sqlite3.connect(f"file:{Path(db).resolve()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"backup: cannot open {db}: {exc}") from exc
    try:
        try:
            source.execute("PRAGMA schema_version").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"backup: {db} is not a readable SQLite database: {exc}") from exc
        return backup_connection(source, dest)
    finally:
        source.close()


def _backups(directory: Path) -> list[tuple[str, Path]]:
    """(YYYYMMDDHHMMSS, path) of our backups in `directory`, oldest first."""
    found = []
    if directory.is_dir():
        for path in directory.iterdir():
            m = _NAME.match(path.name)
            if m and path.is_file():
                found.append((m.group(1) + m.group(2), path))
    return sorted(found)


def rotate_backups(directory: str | os.PathLike[str], keep: int) -> list[Path]:
    """Keep the newest backup of each of the `keep` most recent days; remove the rest.
    Returns the removed files. `keep` < 1 is refused (it would remove every backup)."""
    if keep < 1:
        raise StoreError(f"rotate_backups: keep must be >= 1, got {keep}")
    kept_days: set[str] = set()
    removed: list[Path] = []
    for stamp, path in reversed(_backups(Path(directory))):
        day = stamp[:8]
        if day not in kept_days and len(kept_days) < keep:
            kept_days.add(day)
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def daily_backup_due(directory: str | os.PathLike[str], now: float) -> bool:
    """True when `directory` holds no backup from today (UTC)."""
    today = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d")
    return not any(stamp[:8] == today for stamp, _ in _backups(Path(directory)))
