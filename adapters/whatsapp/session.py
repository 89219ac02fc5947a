"""Where the WhatsApp session (neonize's device keys) lives, and whether it is paired.

`WAPA_SESSION_DB` holds a SQLite path (default `data/session.db`) or a PostgreSQL URL
(`postgres://user:pass@host/db`, supported by neonize). Descriptions of it never show a
password.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_SESSION_DB = "data/session.db"


class SessionError(RuntimeError):
    """The session database cannot be used (unreadable, wrong URL...)."""


def session_from_env(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get("WAPA_SESSION_DB", "").strip() or DEFAULT_SESSION_DB


def is_postgres(db: str) -> bool:
    return db.startswith(("postgres://", "postgresql://"))


def describe_session(db: str) -> str:
    """The session location for messages: a path, or a URL without user and password."""
    if not is_postgres(db):
        return db
    try:
        parts = urlsplit(db)
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "a PostgreSQL database (unparsable URL)"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def prepare_session(db: str) -> None:
    """Create the directory a SQLite session file goes into."""
    if not is_postgres(db):
        parent = Path(db).expanduser().parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SessionError(
                f"WAPA_SESSION_DB: cannot create the directory {parent} ({exc.strerror})"
            ) from exc


def paired_accounts(db: str) -> list[str]:
    """The JIDs of the accounts paired in the session database ([] when none or no file).

    Blocking (neonize opens the database in Go): call it through `asyncio.to_thread`."""
    if not is_postgres(db) and not Path(db).expanduser().is_file():
        return []
    from neonize.aioze.client import ClientFactory
    from wapa.adapters.whatsapp.jid import jid_str

    try:
        devices = ClientFactory.get_all_devices_from_db(db)
    except Exception as exc:  # neonize's parser fails on the Go side's "error: ..." answer
        raise SessionError(
            f"cannot read the WhatsApp session in {describe_session(db)} ({type(exc).__name__}); "
            "check WAPA_SESSION_DB"
        ) from exc
    return [jid_str(d.JID) for d in devices if d.JID.User]
