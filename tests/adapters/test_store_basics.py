"""Store basics: round trip, O(1) rows per message, outbox and traces, migrations, settings."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from wapa.adapters.store import SCHEMA_VERSION, Store, StoreError, StoreSettings
from wapa.adapters.store.schema import MIGRATIONS, script, upgrade
from wapa.core import (
    Assistant,
    Decision,
    Generated,
    Message,
    Persona,
    Policy,
    Reason,
    Send,
    SendConfirmed,
    SendFailed,
)
from wapa.core.driver import Driver

from tests.support.store import commit, driver, step

T0 = 1_700_000_000.0
OWNER = "491700000000@s.whatsapp.net"
PERSONA = Persona(owner_id=OWNER)


def msg(chat: str, mid: str, text: str = "hello") -> Message:
    return Message(chat, chat, mid, text, sender_name="Bob")


async def reply_cycle(store: Store, d: Driver, chat: str, t: float) -> Send:
    """A contact message, its deadline, the model's answer and the send, each step committed
    alone."""
    await step(store, d, msg(chat, f"{chat}-{t}"), t)
    await step(store, d, None, t + 120)
    rid = d.assistant.chats[chat].request_id
    await step(store, d, Generated(rid, "He'll call you back."), t + 125)
    effects = await step(store, d, None, t + 200)
    (send,) = [e for e in effects if isinstance(e, Send)]
    return send


async def test_empty_store_loads_none_and_creates_its_directory(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "a" / "b" / "wapa.db")
    try:
        assert await store.load() is None
        assert store.encrypted is False
        assert (tmp_path / "a" / "b" / "wapa.db").exists()
    finally:
        await store.close()


async def test_round_trip_restores_the_exact_state(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "wapa.db")
    d = driver(a := Assistant(Policy(), PERSONA, seed=5))
    await reply_cycle(store, d, "4915111@s.whatsapp.net", T0)
    await step(store, d, msg("4915222@s.whatsapp.net", "x1"), T0 + 300)
    await store.close()
    store = await Store.open(tmp_path / "wapa.db")
    try:
        b = await store.load(Policy(), PERSONA)
        assert b is not None
        assert b.export() == a.export()
        assert b.next_deadline() == a.next_deadline()
        again = await store.load(Policy(), PERSONA)
        assert again is not None and again.export() == a.export()  # load is pure
    finally:
        await store.close()


async def test_one_message_changes_a_constant_number_of_rows(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "wapa.db")
    d = driver(Assistant(Policy(), PERSONA))
    try:
        for i in range(300):  # a database with many chats
            await step(store, d, msg(f"49151{i:05d}@s.whatsapp.net", f"m{i}"), T0 + i)
        before = store.total_changes
        effects = await step(store, d, msg("4915100007@s.whatsapp.net", "again"), T0 + 400)
        decisions = sum(isinstance(e, Decision) for e in effects)
        # one chat row + the global row + one trace per decision, whatever the size of the db
        assert store.total_changes - before == 1 + 1 + decisions
        assert decisions == 1
    finally:
        await store.close()


async def test_outbox_records_intent_then_outcome(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "wapa.db")
    d = driver(Assistant(Policy(), PERSONA))
    try:
        s1 = await reply_cycle(store, d, "4915111@s.whatsapp.net", T0)
        s2 = await reply_cycle(store, d, "4915222@s.whatsapp.net", T0 + 1000)
        s3 = await reply_cycle(store, d, "4915333@s.whatsapp.net", T0 + 2000)
        assert [e.request_id for e in await store.unconfirmed_sends()] == [
            s1.request_id,
            s2.request_id,
            s3.request_id,
        ]
        entry = (await store.unconfirmed_sends())[0]
        assert (entry.chat, entry.text, entry.outcome) == (s1.chat, s1.text, None)
        await step(store, d, SendConfirmed(s1.request_id, "WA1"), T0 + 3000)
        await step(store, d, SendFailed(s2.request_id, "not on WA"), T0 + 3001)
        assert [e.request_id for e in await store.unconfirmed_sends()] == [s3.request_id]
        outcomes = {e.request_id: e.outcome for e in await store.outbox()}
        assert outcomes == {
            s1.request_id: "confirmed",
            s2.request_id: "failed",
            s3.request_id: None,
        }
    finally:
        await store.close()


async def test_decisions_are_kept_as_traces(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "wapa.db")
    chat = "4915111@s.whatsapp.net"
    try:
        await reply_cycle(store, driver(Assistant(Policy(), PERSONA)), chat, T0)
        codes = [d.code for d in await store.traces(chat)]
        assert codes == [Reason.SCHEDULED, Reason.GENERATING, Reason.REPLY_READY, Reason.SENT]
        assert all(d.chat == chat for d in await store.traces())  # plain ids without a key
        assert await store.traces(chat, since=T0 + 150) == [
            d for d in await store.traces(chat) if d.t >= T0 + 150
        ]
    finally:
        await store.close()


async def test_a_failed_commit_names_the_file_and_the_next_batch_carries_its_rows(
    tmp_path: Path,
) -> None:
    store = await Store.open(tmp_path / "wapa.db", busy_timeout=0)
    d = driver(Assistant(Policy(), PERSONA))
    d.feed(msg("4915111@s.whatsapp.net", "m1"), T0)
    blocker = sqlite3.connect(tmp_path / "wapa.db", timeout=0)
    blocker.execute("PRAGMA busy_timeout = 0")
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        with pytest.raises(StoreError, match=f"{tmp_path / 'wapa.db'}: saving a batch failed"):
            await commit(store, d)
        blocker.rollback()
        assert await store.load(Policy(), PERSONA) is None  # nothing of it was written
        batch = await commit(store, d)  # no new step: the driver offers the failed rows again
        assert batch is not None and batch.steps == ()
        b = await store.load(Policy(), PERSONA)
        assert b is not None and "4915111@s.whatsapp.net" in b.chats
    finally:
        blocker.close()
        await store.close()


# ---------------------------------------------------------------- migrations


def v1_file(path: Path) -> None:
    """A database exactly as wapa with schema v1 left it, holding one chat."""
    a = Assistant(Policy(), PERSONA)
    a.handle(msg("4915111@s.whatsapp.net", "m1", "remember the milk"), T0)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.executescript(script(1))
    con.execute("INSERT INTO store_meta VALUES ('encryption', 'none')")
    con.execute(
        "INSERT INTO assistant VALUES (1, ?, ?)", (json.dumps(a.export_meta()).encode(), T0)
    )
    chat = a.export_chat("4915111@s.whatsapp.net")
    con.execute("INSERT INTO chats VALUES (?, ?, ?)", (chat["id"], json.dumps(chat).encode(), T0))
    con.close()


async def test_migrates_an_empty_file_to_the_latest_schema(tmp_path: Path) -> None:
    (tmp_path / "wapa.db").touch()
    store = await Store.open(tmp_path / "wapa.db")
    await store.close()
    con = sqlite3.connect(tmp_path / "wapa.db")
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == max(MIGRATIONS)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    columns = [r[1] for r in con.execute("PRAGMA table_info(chats)")]
    assert "ctx_oldest" in columns
    con.close()


async def test_upgrades_a_v1_file_and_keeps_its_data(tmp_path: Path) -> None:
    v1_file(tmp_path / "wapa.db")
    store = await Store.open(tmp_path / "wapa.db")
    try:
        a = await store.load(Policy(), PERSONA)
        assert a is not None and a.chats["4915111@s.whatsapp.net"].phase == "waiting"
        # the v1 row has no ctx_oldest yet: the first purge fixes it from the row itself
        report = await store.purge(T0 + 60, context_ttl=86400, trace_ttl=86400)
        assert report.contexts == 1
        assert (await store.purge(T0 + 60, context_ttl=86400, trace_ttl=86400)).contexts == 0
        again = await store.load(Policy(), PERSONA)
        assert again is not None and again.export() == a.export()
    finally:
        await store.close()
    con = sqlite3.connect(tmp_path / "wapa.db")
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert con.execute("SELECT ctx_oldest FROM chats").fetchone()[0] == T0
    con.close()


def sqlite_schema(path: Path) -> tuple[int, int, list[tuple[str, str, str, str]]]:
    """(user_version, auto_vacuum, every table's and index's SQL) of a database file."""
    con = sqlite3.connect(path)
    try:
        return (
            con.execute("PRAGMA user_version").fetchone()[0],
            con.execute("PRAGMA auto_vacuum").fetchone()[0],
            sorted(con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master")),
        )
    finally:
        con.close()


async def test_a_new_file_gets_the_schema_of_every_step_in_one_commit(tmp_path: Path) -> None:
    """`Store.open` runs a new file's steps as one transaction (`upgrade(0)`): the same
    statements, so the same tables and indexes as committing each step alone."""
    stepwise = tmp_path / "stepwise.db"
    con = sqlite3.connect(stepwise, isolation_level=None)
    con.execute("PRAGMA auto_vacuum = INCREMENTAL")
    for version in range(1, SCHEMA_VERSION + 1):
        con.executescript(script(version))
    con.close()
    store = await Store.open(tmp_path / "new.db")
    await store.close()
    assert sqlite_schema(tmp_path / "new.db") == sqlite_schema(stepwise)
    one = upgrade(0)
    assert one.count("BEGIN IMMEDIATE;") == one.count("COMMIT;") == 1
    assert one.count("PRAGMA user_version") == 1
    assert all(MIGRATIONS[v] in one for v in MIGRATIONS)
    with pytest.raises(ValueError, match="no upgrade"):
        upgrade(SCHEMA_VERSION)


async def test_a_v1_file_whose_upgrade_fails_stays_v1(tmp_path: Path) -> None:
    """The steps a file lacks commit together: when v3 fails, v2's column is not kept either."""
    path = tmp_path / "wapa.db"
    v1_file(path)
    con = sqlite3.connect(path)  # a view on chats: v3's rename fails, after v2 and v3's copy
    con.execute("CREATE VIEW chat_keys AS SELECT key FROM chats")
    con.close()
    before = sqlite_schema(path)
    with pytest.raises(StoreError, match="not a usable wapa database.*chat_keys"):
        await Store.open(path)
    assert sqlite_schema(path) == before
    assert before[0] == 1
    con = sqlite3.connect(path)
    con.execute("DROP VIEW chat_keys")
    con.close()
    store = await Store.open(path)
    try:
        a = await store.load(Policy(), PERSONA)
        assert a is not None and "4915111@s.whatsapp.net" in a.chats
    finally:
        await store.close()
    assert sqlite_schema(path)[0] == SCHEMA_VERSION


async def test_refuses_a_newer_schema_without_touching_it(tmp_path: Path) -> None:
    path = tmp_path / "wapa.db"
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    before = path.read_bytes()
    with pytest.raises(StoreError) as err:
        await Store.open(path)
    assert str(path) in str(err.value)
    assert f"schema version {SCHEMA_VERSION + 1}" in str(err.value)
    assert f"({SCHEMA_VERSION})" in str(err.value)
    assert path.read_bytes() == before


async def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "wapa.db"
    path.write_bytes(b"this is a text file, not SQLite" * 100)
    with pytest.raises(StoreError, match="not a usable wapa database"):
        await Store.open(path)


async def test_a_damaged_row_is_a_clear_error(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "wapa.db")
    await step(store, driver(Assistant(Policy(), PERSONA)), msg("4915111@s.whatsapp.net", "m1"), T0)
    await store.close()
    con = sqlite3.connect(tmp_path / "wapa.db")
    con.execute("UPDATE chats SET state = ?", (b"{not json",))
    con.commit()
    con.close()
    store = await Store.open(tmp_path / "wapa.db")
    try:
        with pytest.raises(StoreError, match="chat row 4915111@s.wh.* is not valid JSON"):
            await store.load()
    finally:
        await store.close()


# ---------------------------------------------------------------- settings


def test_settings_defaults_and_errors() -> None:
    s = StoreSettings.from_env({})
    assert (s.db, s.key, s.trace_days, s.backup_keep, s.sync) == (
        "data/wapa.db",
        None,
        14.0,
        7,
        "full",
    )
    s = StoreSettings.from_env(
        {"WAPA_DB": "/x/y.db", "WAPA_DB_KEY": "sesame", "WAPA_TRACE_DAYS": "2.5"}
    )
    assert (s.db, s.key, s.trace_ttl) == ("/x/y.db", "sesame", 2.5 * 86400)
    assert "sesame" not in repr(s)
    with pytest.raises(ValueError, match="WAPA_TRACE_DAYS"):
        StoreSettings.from_env({"WAPA_TRACE_DAYS": "forever"})
    with pytest.raises(ValueError, match="WAPA_BACKUP_KEEP"):
        StoreSettings.from_env({"WAPA_BACKUP_KEEP": "-1"})
    with pytest.raises(ValueError, match="WAPA_DB_SYNC"):
        StoreSettings.from_env({"WAPA_DB_SYNC": "off"})
