"""`wapa backup [DEST] [--db PATH] [--keep N]`: an online backup of the database.

Uses SQLite's online backup API, so it is safe while `wapa run` is writing. No key is needed:
an encrypted database gives an encrypted backup (restore it with the same WAPA_DB_KEY).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "backup",
        help="copy the database safely while it is in use (SQLite online backup)",
        description=(
            "Copy the wapa database with SQLite's online backup API (safe while wapa runs). "
            "DEST may be a file or a directory; by default a timestamped file "
            "wapa-YYYYMMDD-HHMMSS.db under $WAPA_BACKUP_DIR (data/backups)."
        ),
    )
    p.add_argument("dest", nargs="?", help="backup file or directory (default: data/backups/)")
    p.add_argument("--db", help="database to copy (default: $WAPA_DB or data/wapa.db)")
    p.add_argument(
        "--keep",
        type=int,
        metavar="N",
        help="then keep only the newest backup of each of the last N days in that directory",
    )
    p.set_defaults(func=run)


def run(
    args: argparse.Namespace,
    env: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
) -> int:
    from wapa.adapters.store import StoreError, backup_file, rotate_backups
    from wapa.adapters.store.backup import backup_name, resolve_dest
    from wapa.adapters.store.settings import DEFAULT_BACKUP_DIR, DEFAULT_DB

    env = os.environ if env is None else env
    db = args.db or env.get("WAPA_DB", "").strip() or DEFAULT_DB
    now = clock()
    if args.dest:
        dest = resolve_dest(args.dest, now, folder=args.keep is not None)
    else:
        dest = Path(env.get("WAPA_BACKUP_DIR", "").strip() or DEFAULT_BACKUP_DIR) / backup_name(now)
    if args.keep is not None and args.keep < 1:
        print("wapa backup: --keep must be 1 or more", file=sys.stderr)
        return 2
    try:
        written = backup_file(db, dest)
        removed = rotate_backups(written.parent, args.keep) if args.keep else []
    except StoreError as exc:
        print(f"wapa backup: {_without_prefix(str(exc))}", file=sys.stderr)
        return 1
    print(f"backup written: {written}")
    for path in removed:
        print(f"old backup removed: {path}")
    return 0


def _without_prefix(message: str) -> str:
    """The store's errors start with "backup: " (they are logged by the runner too); the
    command's own "wapa backup: " prefix already says it."""
    return message.removeprefix("backup: ")
