"""Where the WhatsApp session (neonize's device keys) lives, and whether it is paired.

`WAPA_SESSION_DB` holds a SQLite path (default `data/session.db`) or a PostgreSQL URL
(`postgres://user:pass@host/db`, supported by neonize). Descriptions of it never show a
password.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Mapping
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

    Not through neonize's `ClientFactory.get_all_devices_from_db`: its Go side answers
    `"%s,%s,%s,%t"` (JID, push name, business name, initialized; neonize `goneonize/main.go`
    `GetAllDevices`) and the Python side splits that on every comma, so an account whose push
    name holds a comma ("Doe, John", synced after the first login) stops every restart. A
    SQLite session is read directly from whatsmeow's own table (`whatsmeow_device.jid`, see
    whatsmeow `store/sqlstore/upgrades/00-latest-schema.sql`), read-only; a PostgreSQL one
    through the same Go call, taking only the JID, which never holds a comma.

    Blocking: call it through `asyncio.to_thread`."""
    if is_postgres(db):
        return _paired_through_neonize(db)
    path = Path(db).expanduser()
    if not path.is_file():
        return []
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
        try:
            rows = con.execute("SELECT jid FROM whatsmeow_device").fetchall()
        finally:
            con.close()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []  # neonize created the file, nothing was ever paired
        raise _unreadable(db, exc) from exc
    except sqlite3.DatabaseError as exc:
        raise _unreadable(db, exc) from exc
    return _accounts(str(row[0]) for row in rows if row and row[0])


def _paired_through_neonize(db: str) -> list[str]:
    from neonize._binder import func_callback_bytes2, gocode
    from neonize.utils.log import log_whatsmeow

    try:
        answer = gocode.GetAllDevices(db.encode(), func_callback_bytes2(log_whatsmeow)).decode()
    except Exception as exc:  # noqa: BLE001
        raise _unreadable(db, exc) from exc
    if answer.startswith("error: "):
        raise _unreadable(db, RuntimeError("the session store refused"))
    return _accounts(record.split(",", 1)[0] for record in answer.split("|\u0001|") if record)


def _accounts(jids: Iterable[str]) -> list[str]:
    """Phone-number JIDs without the device part ("972...:12@s.whatsapp.net" -> "972...@...")."""
    out: list[str] = []
    for jid in jids:
        if "@" not in jid:
            continue
        user, server = jid.split("@", 1)
        user = user.split(":", 1)[0].split(".", 1)[0]
        if user and f"{user}@{server}" not in out:
            out.append(f"{user}@{server}")
    return out


def _unreadable(db: str, exc: BaseException) -> SessionError:
    return SessionError(
        f"cannot read the WhatsApp session in {describe_session(db)} ({type(exc).__name__}); "
        "check WAPA_SESSION_DB"
    )
