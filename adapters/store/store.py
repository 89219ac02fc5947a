"""The durable store: one SQLite file (WAL) holding the core's state, the outbox and the traces.

`Store` is the production `StateStore` (`protocol.py`). A shell drives it in the driver's
order (`core/driver.py`):

    store = await Store.open(path, key)           # migrates; refuses newer schemas, wrong keys
    assistant = await store.load(policy, persona) or Assistant(policy, persona, seed)
    driver = Driver(assistant, world)
    driver.recover(now)                           # after load
    ...then for every step, or group of steps (group commit):
    driver.feed(event, now)                       # or driver.fire_due(now)
    batch = driver.take_batch()
    await store.save(batch)                       # ONE transaction, committed...
    driver.committed(batch)                       # ...before the effects it allows
    # (when save raises: driver.commit_failed(batch); its rows come again with the next batch)

A commit writes only the chats the batch carries (each once, however many of its steps
touched it), the small global row, outbox intents (`Send`), outbox outcomes (`SendConfirmed`
/ `SendFailed` events, and `send_unknown` decisions from `recover`), one trace row per
`Decision`, and optional small store_meta values (`values=`; read back with `get_value`).
The store never edits the core's state itself: retention asks the core
(`expire_chat_state`) what an exported chat looks like once its old context is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import operator
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
from wapa.adapters.filemodes import private_dir, private_sqlite
from wapa.adapters.store import backup as backups
from wapa.adapters.store import crypto
from wapa.adapters.store.errors import StoreError
from wapa.adapters.store.protocol import OutboxEntry, checked_values
from wapa.adapters.store.rows import encode_row
from wapa.adapters.store.schema import SCHEMA_VERSION, upgrade
from wapa.core import expire_chat_state
from wapa.core.driver import Batch
from wapa.core.events import Decision, Reason, Send, SendConfirmed, SendFailed
from wapa.core.machine import Assistant
from wapa.core.policy import Persona, Policy

_ENCRYPTION = "aes-256-gcm"
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class PurgeReport:
    contexts: int = 0  # chat rows whose expired context was removed
    traces: int = 0  # trace rows deleted
    outbox: int = 0  # settled outbox rows deleted

    @property
    def total(self) -> int:
        return self.contexts + self.traces + self.outbox


_UPSERT_CHAT = (
    "INSERT INTO chats (key, state, updated, ctx_oldest) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET state = excluded.state, "
    "updated = excluded.updated, ctx_oldest = excluded.ctx_oldest"
)
_UPSERT_ASSISTANT = (
    "INSERT INTO assistant (id, state, updated) VALUES (1, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET state = excluded.state, updated = excluded.updated"
)
_DELETE_CHAT = "DELETE FROM chats WHERE key = ?"
_INSERT_INTENT = (
    "INSERT INTO outbox (request_id, chat_key, payload, intent_at) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (request_id) DO NOTHING"
)
_SET_OUTCOME = (
    "UPDATE outbox SET outcome = ?, outcome_at = ?, message_id = ?, detail = ? "
    "WHERE request_id = ? AND (outcome IS NULL OR outcome = 'unknown')"
)
_SET_UNKNOWN = (
    "UPDATE outbox SET outcome = 'unknown', outcome_at = ? WHERE request_id = ? AND outcome IS NULL"
)
_INSERT_TRACE = "INSERT INTO traces (t, chat_key, code, request_id, detail) VALUES (?, ?, ?, ?, ?)"
_UPSERT_VALUE = (
    "INSERT INTO store_meta (name, value) VALUES (?, ?) "
    "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
)


_first = operator.itemgetter(0)


def _ctx_oldest(chat: dict[str, Any]) -> float | None:
    """The time of the chat's oldest context entry (None without context): its row's
    `ctx_oldest` column, which retention's query reads without decoding the row."""
    context = chat.get("context")
    return float(min(map(_first, context))) if context else None


@dataclass(slots=True)
class _Transaction:
    """One batch's statements, each with its rows, written by `_write` on the connection's
    thread. `abandoned` is set (from the event loop's thread) when the save was cancelled."""

    writes: list[tuple[str, Sequence[Sequence[Any]]]]
    abandoned: bool = False


class _Abandoned(Exception):
    """The save awaiting this transaction was cancelled before its COMMIT: roll it back."""


def _write(conn: sqlite3.Connection, tx: _Transaction) -> None:
    """The whole transaction in one call on aiosqlite's thread (`_in_thread`): one thread hop
    per commit instead of one per statement (half the CPU of a one-message commit). An error
    rolls everything back before it is raised; nothing is left half written."""
    conn.execute("BEGIN IMMEDIATE")
    with _undone_on_error(conn):
        for sql, rows in tx.writes:
            if rows:
                conn.executemany(sql, rows)
        if tx.abandoned:
            raise _Abandoned
        conn.execute("COMMIT")


@contextlib.contextmanager
def _undone_on_error(conn: sqlite3.Connection) -> Iterator[None]:
    """On aiosqlite's thread: any error (a cancellation included) inside rolls back the open
    transaction before it is raised, so nothing is left half written. A ROLLBACK that fails
    (the connection gone) does not hide the error."""
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def _nothing(conn: sqlite3.Connection) -> None:
    """A no-op on the connection's thread: awaiting it waits for what was queued before."""


class Store:
    """Open with `await Store.open(...)`; one instance per database file and process."""

    def __init__(
        self,
        db: aiosqlite.Connection,
        path: Path,
        sealer: crypto.Sealer,
        clock: Callable[[], float],
    ) -> None:
        self._db = db
        self.path = path
        self._sealer = sealer
        self._clock = clock
        self._lock = asyncio.Lock()

    @property
    def encrypted(self) -> bool:
        return self._sealer.encrypted

    # ------------------------------------------------------------------ opening

    @classmethod
    async def open(
        cls,
        path: str | Path,
        key: str | bytes | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sync: str = "full",
        busy_timeout: float = 5.0,
    ) -> Store:
        """Open (creating it 0600 and its directory 0700 if needed) and migrate. `key` is WAPA_DB_KEY;
        `sync` is SQLite's synchronous mode (full: a commit survives power loss; normal: it
        survives a process crash); `busy_timeout` is how long a write waits for a lock."""
        path = Path(path)
        if sync not in ("full", "normal"):
            raise StoreError(f"{path}: synchronous mode must be 'full' or 'normal', got {sync!r}")
        connection = None
        try:
            private_dir(path.parent)  # message text inside: 0700 / 0600 (adapters/filemodes.py)
            private_sqlite(path)
            connection = aiosqlite.connect(path, isolation_level=None, check_same_thread=False)
            db = await connection
        except (OSError, sqlite3.Error) as exc:
            await _joined(connection)
            raise StoreError(f"cannot open the database {path}: {exc}") from exc
        try:
            sealer = await cls._prepare(db, path, key, sync, busy_timeout)
        except BaseException:
            await db.close()
            raise
        return cls(db, path, sealer, clock)

    @staticmethod
    async def _prepare(
        db: aiosqlite.Connection, path: Path, key: str | bytes | None, sync: str, busy: float
    ) -> crypto.Sealer:
        try:
            opened = await _in_thread(db, _prepared, path, sync, busy)
            return await _sealer(db, path, key, opened)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: not a usable wapa database: {exc}") from exc

    async def close(self) -> None:
        async with self._lock:
            await self._db.close()

    # ------------------------------------------------------------------ loading

    async def load(
        self, policy: Policy | None = None, persona: Persona | None = None
    ) -> Assistant | None:
        """The assistant as last saved, or None for an empty store. Call `recover(now)` next."""
        state = await _in_thread(self._db, self._read_state)
        if state is None:
            return None
        try:
            return Assistant.restore(state, policy, persona)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise StoreError(f"{self.path}: saved state cannot be restored: {exc!r}") from exc

    def _read_state(self, conn: sqlite3.Connection) -> dict[str, Any] | None:
        """The saved global row with its chats (`state["chats"]`), decoded row by row on the
        connection's thread: one hop for the whole load, not one per statement and chunk."""
        row = conn.execute("SELECT state FROM assistant WHERE id = 1").fetchone()
        if row is None:
            return None
        state: dict[str, Any] = self._decode(row[0], b"assistant", "the assistant's state")
        chats: dict[str, Any] = {}
        for key, blob in conn.execute("SELECT key, state FROM chats"):
            chat = self._decode(blob, b"chat:" + key.encode(), f"chat row {key[:12]}")
            chats[chat["id"]] = chat
        state["chats"] = chats
        return state

    def _decode(self, blob: bytes, aad: bytes, what: str) -> Any:
        try:
            return json.loads(self._sealer.open(blob, aad))
        except crypto.SealError as exc:
            raise StoreError(f"{self.path}: cannot decrypt {what}: {exc}") from exc
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            hint = " (encrypted data? set WAPA_DB_KEY)" if bytes(blob[:1]) == crypto.FORMAT else ""
            raise StoreError(f"{self.path}: {what} is not valid JSON{hint}: {exc}") from exc

    # ------------------------------------------------------------------ one commit

    async def save(self, batch: Batch, *, values: Mapping[str, str] | None = None) -> None:
        """Store one driver batch (one step, or a group of steps: group commit) in ONE
        transaction, committed before this returns; on an exception nothing of it is stored.

        Every chat in `batch.chats` is written once, with its state at the end of the batch
        (deleted when None: O(1) rows per chat, however many of the batch's steps touched it);
        the global row once; every `Send`, send outcome and `Decision` of every step gets its
        row. `values` are store_meta rows (`get_value`) written in the same transaction, e.g.
        the model's daily spend. The batch is the driver's snapshot: this reads no live state,
        and the driver itself offers the rows of a failed batch again with the next one."""
        seal, key_of = self._sealer.seal, self._sealer.row_key
        now = batch.now
        upserts: list[tuple[str, bytes, float, float | None]] = []
        deletes: list[tuple[str]] = []
        encrypted = self._sealer.encrypted
        for cid, chat in batch.chats.items():
            key = key_of(cid)
            if chat is None:
                deletes.append((key,))
                continue
            data = encode_row(chat)
            if encrypted:  # no call, and no associated data built, without a key
                data = seal(data, b"chat:" + key.encode())
            upserts.append((key, data, now, _ctx_oldest(chat)))
        meta = seal(encode_row(batch.meta), b"assistant")
        intents: list[tuple[str, str, bytes, float]] = []
        traces: list[tuple[float, str, str, str, bytes]] = []
        unknown: list[tuple[float, str]] = []
        for e in batch.effects():
            if isinstance(e, Decision):
                detail = e.detail.encode("utf-8", "replace")
                if encrypted:
                    detail = seal(detail, b"trace")
                traces.append((e.t, key_of(e.chat) if e.chat else "", e.code, e.request_id, detail))
                if e.code == Reason.SEND_UNKNOWN and e.request_id:
                    unknown.append((now, e.request_id))
            elif isinstance(e, Send):
                payload = encode_row({"chat": e.chat, "text": e.text, "quote_id": e.quote_id})
                rid = e.request_id
                intents.append((rid, key_of(e.chat), seal(payload, b"outbox:" + rid.encode()), now))
        outcomes: list[tuple[str, float, str, bytes | None, str]] = []
        for ev in batch.events():
            if isinstance(ev, SendConfirmed):
                outcomes.append(("confirmed", now, str(ev.message_id), None, ev.request_id))
            elif isinstance(ev, SendFailed):
                detail_blob = seal(str(ev.detail).encode("utf-8", "replace"), b"outbox-detail")
                outcomes.append(("failed", now, "", detail_blob, ev.request_id))
        kv = checked_values(values)

        tx = _Transaction(
            [
                (_UPSERT_CHAT, upserts),
                (_DELETE_CHAT, deletes),
                (_UPSERT_ASSISTANT, [(meta, now)]),
                (_INSERT_INTENT, intents),
                (_SET_OUTCOME, outcomes),
                (_SET_UNKNOWN, unknown),
                (_INSERT_TRACE, traces),
                (_UPSERT_VALUE, kv),
            ]
        )
        async with self._lock:
            try:
                await _in_thread(self._db, _write, tx)
            except asyncio.CancelledError:
                tx.abandoned = True  # rolled back, unless its COMMIT had begun (as before)
                await _in_thread(self._db, _nothing)  # the lock is held until it is over
                raise
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: saving a batch failed: {exc}") from exc

    async def get_value(self, name: str) -> str | None:
        """A value saved with `save(..., values={name: ...})`, or None."""
        checked_values({name: ""})
        row = await _row(self._db, "SELECT value FROM store_meta WHERE name = ?", (name,))
        return None if row is None else str(row[0])

    # ------------------------------------------------------------------ reading back

    async def unconfirmed_sends(self) -> list[OutboxEntry]:
        """Sends recorded as intent with no outcome yet: after a crash, exactly the sends whose
        outcome is unknown (`recover` reports them; the next save marks them 'unknown')."""
        return await self.outbox(open_only=True)

    async def outbox(self, *, open_only: bool = False) -> list[OutboxEntry]:
        where = "WHERE outcome IS NULL" if open_only else ""
        rows = await self._db.execute_fetchall(
            f"SELECT request_id, payload, intent_at, outcome FROM outbox {where} "
            "ORDER BY intent_at, request_id"
        )
        out = []
        for rid, blob, at, outcome in rows:
            p = self._decode(blob, b"outbox:" + rid.encode(), f"outbox row {rid}")
            out.append(OutboxEntry(rid, p["chat"], p["text"], p["quote_id"], at, outcome))
        return out

    async def traces(
        self, chat: str | None = None, since: float = float("-inf"), limit: int = 1000
    ) -> list[Decision]:
        """Stored decisions, oldest first (the chat is known only when asked for by id)."""
        if chat is None:
            sql, args = "SELECT * FROM traces WHERE t >= ? ORDER BY id LIMIT ?", (since, limit)
        else:
            key = self._sealer.row_key(chat)
            sql = "SELECT * FROM traces WHERE chat_key = ? AND t >= ? ORDER BY id LIMIT ?"
            args = (key, since, limit)  # type: ignore[assignment]
        out = []
        for _, t, key, code, rid, blob in await self._db.execute_fetchall(sql, args):
            try:
                detail = self._sealer.open(blob, b"trace").decode("utf-8", "replace")
            except crypto.SealError as exc:
                raise StoreError(f"{self.path}: cannot decrypt a trace: {exc}") from exc
            shown = chat if chat is not None else ("" if self.encrypted else key)
            out.append(Decision(t, shown, code, detail, rid))
        return out

    @property
    def total_changes(self) -> int:
        """Rows changed through this connection since it opened (for O(1)-per-step checks)."""
        return self._db.total_changes

    # ------------------------------------------------------------------ retention

    async def purge(
        self, now: float, context_ttl: float, trace_ttl: float, batch: int = 500
    ) -> PurgeReport:
        """One bounded round of retention; call it periodically (or until `total` is 0).
        Expires the chat rows holding context older than `context_ttl` (each row becomes what
        the core's `expire_chat_state` makes of it: the store never edits chat state itself),
        deletes settled outbox rows older than `context_ttl` and traces older than
        `trace_ttl`; then frees a few pages with incremental_vacuum. Never a full VACUUM."""
        cutoff = now - context_ttl
        async with self._lock:
            db = self._db
            try:
                await db.execute("BEGIN IMMEDIATE")
                rows = await db.execute_fetchall(
                    "SELECT key, state FROM chats WHERE ctx_oldest IS NOT NULL AND ctx_oldest < ? "
                    "LIMIT ?",
                    (cutoff, batch),
                )
                updates = []
                for key, blob in rows:
                    aad = b"chat:" + key.encode()
                    chat = self._decode(blob, aad, f"chat row {key[:12]}")
                    try:  # the core decides what an expired chat keeps
                        chat = expire_chat_state(chat, cutoff)
                    except (KeyError, TypeError, ValueError, IndexError) as exc:
                        raise StoreError(
                            f"{self.path}: chat row {key[:12]} cannot be expired: {exc!r}"
                        ) from exc
                    updates.append(
                        (self._sealer.seal(encode_row(chat), aad), _ctx_oldest(chat), key)
                    )
                await db.executemany(
                    "UPDATE chats SET state = ?, ctx_oldest = ? WHERE key = ?", updates
                )
                cur = await db.execute(
                    "DELETE FROM outbox WHERE request_id IN (SELECT request_id FROM outbox "
                    "WHERE outcome IS NOT NULL AND intent_at < ? LIMIT ?)",
                    (cutoff, batch),
                )
                outbox = cur.rowcount
                cur = await db.execute(
                    "DELETE FROM traces WHERE id IN "
                    "(SELECT id FROM traces WHERE t < ? ORDER BY t LIMIT ?)",
                    (now - trace_ttl, batch),
                )
                traces = cur.rowcount
                await db.execute("COMMIT")
            except BaseException as exc:
                await _rollback(db)
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"{self.path}: purge failed: {exc}") from exc
                raise
            await db.executescript(f"PRAGMA incremental_vacuum({max(1, batch // 4)});")
        return PurgeReport(len(updates), traces, outbox)

    # ------------------------------------------------------------------ backups

    async def backup(self, dest: str | Path | None = None, *, backup_dir: str | Path = "") -> Path:
        """Online backup to `dest` (a file, or a directory for a timestamped name; default a
        timestamped file in `backup_dir` or `backups/` beside the database)."""
        now = self._clock()
        if dest is None:
            dest = Path(backup_dir) if backup_dir else self.path.parent / "backups"
            target = dest / backups.backup_name(now)
        else:
            target = backups.resolve_dest(dest, now)
        return await asyncio.to_thread(backups.backup_file, self.path, target)

    async def daily_backup(self, directory: str | Path, keep: int) -> Path | None:
        """A backup in `directory` unless one from today (UTC) exists; then rotation to `keep`
        days. Returns the new file, or None when today's backup was already there."""
        now = self._clock()
        made = None
        if backups.daily_backup_due(directory, now):
            made = await self.backup(Path(directory) / backups.backup_name(now))
        await asyncio.to_thread(backups.rotate_backups, directory, keep)
        return made


async def _in_thread(db: aiosqlite.Connection, fn: Callable[..., _T], *args: Any) -> _T:
    """`fn(connection, *args)` on aiosqlite's own thread, where its statements run, in order
    with them. aiosqlite (0.20 to 0.22) has no public name for this: `Connection._execute` is
    what each of its own methods calls, and `_conn` its sqlite3 connection (checked by
    tests/adapters/test_store_transaction.py, so an aiosqlite without them fails there)."""
    result: _T = await db._execute(fn, db._conn, *args)
    return result


async def _joined(connection: aiosqlite.Connection | None) -> None:
    """After a failed connect, wait (briefly) for aiosqlite's worker thread to stop: left
    running, it reports to an event loop that may be closed by then, a thread traceback."""
    thread = getattr(connection, "_thread", None)
    if thread is not None and thread.is_alive():
        await asyncio.to_thread(thread.join, 5.0)


async def _row(db: aiosqlite.Connection, sql: str, args: Sequence[Any] = ()) -> Any:
    async with db.execute(sql, args) as cursor:
        return await cursor.fetchone()


async def _rollback(db: aiosqlite.Connection) -> None:
    with contextlib.suppress(sqlite3.Error, ValueError):  # no transaction, or connection gone
        await db.execute("ROLLBACK")


@dataclass(frozen=True, slots=True)
class _Opened:
    """What `_prepared` read for `_sealer`: the store_meta rows and whether any state is saved."""

    meta: dict[str, str]
    has_data: bool


def _prepared(conn: sqlite3.Connection, path: Path, sync: str, busy: float) -> _Opened:
    """Settings and migrations of a freshly connected database, in one call on aiosqlite's
    thread (`_in_thread`): opening is one thread hop instead of 14-24 (one per statement,
    fetch and cursor close; each wakes the event loop), 1-2 ms less CPU per open.

    A new file gets incremental auto-vacuum (only possible before its first table), then WAL,
    then the schema steps it lacks in one transaction (`schema.upgrade`); an upgraded file
    gives the pages of its old tables back (v3 copies the chats)."""
    conn.execute(f"PRAGMA busy_timeout = {int(busy * 1000)}")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: schema version {version} is newer than this wapa knows "
            f"({SCHEMA_VERSION}); upgrade wapa or restore an older backup. Not opened."
        )
    if version == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only before any table
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreError(f"{path}: cannot switch to WAL mode (got {mode!r})")
    conn.execute(f"PRAGMA synchronous = {sync.upper()}")
    conn.execute("PRAGMA secure_delete = ON")  # purged text is overwritten
    if version < SCHEMA_VERSION:
        with _undone_on_error(conn):  # a step failed: none of them is kept
            conn.executescript(upgrade(version))
        if version > 0:  # v3 copied the chats: give their old pages back
            conn.executescript("PRAGMA incremental_vacuum;")
    meta = dict(conn.execute("SELECT name, value FROM store_meta").fetchall())
    has_data = bool(
        conn.execute("SELECT EXISTS (SELECT 1 FROM assistant)").fetchone()[0]
        or conn.execute("SELECT EXISTS (SELECT 1 FROM chats)").fetchone()[0]
    )
    return _Opened(meta, has_data)


async def _sealer(
    db: aiosqlite.Connection, path: Path, key: str | bytes | None, opened: _Opened
) -> crypto.Sealer:
    """Set up or check encryption. The first key given to an empty database is adopted."""
    meta = opened.meta
    mode = meta.get("encryption")
    if mode == _ENCRYPTION:
        if not key:
            raise StoreError(f"{path} is encrypted: set WAPA_DB_KEY to the key it was created with")
        sealer = crypto.AesGcmSealer(key, bytes.fromhex(meta["salt"]))
        if not sealer.matches(meta["key_check"]):
            kind = "a passphrase" if meta.get("kdf") == "scrypt" else "a base64 32-byte key"
            raise StoreError(
                f"WAPA_DB_KEY does not match this database ({path}; it was keyed with {kind})"
            )
        return sealer
    if mode is not None and mode != "none":
        raise StoreError(f"{path}: unknown encryption {mode!r} (written by a newer wapa?)")
    has_data = opened.has_data
    if not key:
        if mode is None:
            await db.execute("INSERT INTO store_meta VALUES ('encryption', 'none')")
        return crypto.Sealer()
    if has_data:
        raise StoreError(
            f"{path} holds unencrypted data but WAPA_DB_KEY is set; start from a new file "
            "(and keep the old one until the new one has what you need), or unset the key"
        )
    salt = crypto.new_salt()
    try:
        sealer = crypto.AesGcmSealer(key, salt)
    except ValueError as exc:
        raise StoreError(f"WAPA_DB_KEY cannot be used: {exc}") from exc
    try:
        await db.execute("BEGIN IMMEDIATE")
        await db.execute("DELETE FROM store_meta WHERE name = 'encryption'")
        await db.executemany(
            "INSERT INTO store_meta VALUES (?, ?)",
            [
                ("encryption", _ENCRYPTION),
                ("kdf", crypto.kdf_name(key)),
                ("salt", salt.hex()),
                ("key_check", sealer.check),
            ],
        )
        await db.execute("COMMIT")
    except BaseException:
        await _rollback(db)
        raise
    return sealer
