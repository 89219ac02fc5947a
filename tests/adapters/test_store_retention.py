"""Retention purge, online backups, daily rotation and the `wapa backup` command."""

from __future__ import annotations

import argparse
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from wapa.adapters.store import Store, StoreError, daily_backup_due, rotate_backups
from wapa.adapters.store.backup import backup_name
from wapa.cli import main
from wapa.commands import backup as backup_command
from wapa.core import (
    Assistant,
    Generated,
    Message,
    Persona,
    Policy,
    Send,
    SendConfirmed,
    expire_chat_state,
    sends,
)

from tests.support.store import driver, step

T0 = 1_700_000_000.0
DAY = 86400.0
OLD, NEW = "4915711111111@s.whatsapp.net", "4915722222222@s.whatsapp.net"
PERSONA = Persona(owner_id="491700000000@s.whatsapp.net")
OLD_TEXT, OLD_REPLY = "my old secret: pineapple pizza", "I will tell him about the pizza"


async def conversation(store: Store) -> Assistant:
    """OLD talks (and gets a confirmed reply) at T0; NEW talks two days later."""
    d = driver(a := Assistant(Policy(), PERSONA))
    await step(store, d, Message(OLD, OLD, "o1", OLD_TEXT), T0)
    await step(store, d, None, T0 + 120)
    await step(store, d, Generated(a.chats[OLD].request_id, OLD_REPLY), T0 + 125)
    effects = await step(store, d, None, T0 + 200)
    (send,) = [e for e in effects if isinstance(e, Send)]
    await step(store, d, SendConfirmed(send.request_id, "WA1"), T0 + 201)
    await step(store, d, Message(NEW, NEW, "n1", "fresh news"), T0 + 2 * DAY)
    return a


async def test_purge_removes_expired_context_traces_and_outbox(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "wapa.db")
    try:
        await conversation(store)
        now = T0 + 2 * DAY + 10
        report = await store.purge(now, context_ttl=DAY, trace_ttl=1.5 * DAY)
        assert (report.contexts, report.outbox) == (1, 1)
        assert report.traces == 5  # OLD's decisions at T0..T0+201 (scheduled, generating,
        # reply_ready, sent, send_confirmed); NEW's is younger
        assert (await store.purge(now, context_ttl=DAY, trace_ttl=1.5 * DAY)).total == 0
        a = await store.load(Policy(), PERSONA)
        assert a is not None
        assert list(a.chats[OLD].context) == []
        # the reply's text went with its context (send records keep none); its id stays, hashed,
        # for echo detection
        (record,) = sends.records(a.chats[OLD].sends)
        assert record.message_hash == sends.id_hash("WA1")
        assert a.chats[OLD].cooldown_until == T0 + 200 + Policy().cooldown  # state is kept
        assert [e.text for e in a.chats[NEW].context] == ["fresh news"]
        assert await store.outbox() == []
        assert {d.chat for d in await store.traces()} == {NEW}
    finally:
        await store.close()
    data = (tmp_path / "wapa.db").read_bytes()  # no key, but purged text is really gone
    assert b"pineapple" not in data and b"pizza" not in data
    assert b"fresh news" in data


async def test_purge_stores_what_the_core_makes_of_each_expired_chat(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "wapa.db", b"r" * 32)
    try:
        await conversation(store)
        now, cutoff = T0 + 2 * DAY + 10, T0 + DAY + 10
        before = await store.load(Policy(), PERSONA)
        assert before is not None
        await store.purge(now, context_ttl=DAY, trace_ttl=30 * DAY)
        after = await store.load(Policy(), PERSONA)
        assert after is not None
        # the store does not edit chat state itself: each row is the core's expire_chat_state
        expected = {cid: expire_chat_state(before.export_chat(cid), cutoff) for cid in (OLD, NEW)}
        assert {cid: after.export_chat(cid) for cid in (OLD, NEW)} == expected
        assert expected[NEW] == before.export_chat(NEW)  # young chats are left as they were
        before.expire(cutoff)  # and it is what the live assistant's own expire does
        assert after.export() == before.export()
    finally:
        await store.close()


async def test_a_row_the_core_cannot_read_is_a_clear_purge_error(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "wapa.db")
    try:
        await conversation(store)
    finally:
        await store.close()
    con = sqlite3.connect(tmp_path / "wapa.db")
    con.execute("UPDATE chats SET state = ?", (b'{"context": [[0, "c", "", "x", "m"]]}',))
    con.commit()
    con.close()
    store = await Store.open(tmp_path / "wapa.db")
    try:
        traces = await store.traces()
        with pytest.raises(StoreError, match=r"wapa\.db: chat row .* cannot be expired"):
            await store.purge(T0 + 3 * DAY, DAY, DAY)
        assert await store.traces() == traces  # the round was rolled back whole
    finally:
        await store.close()


async def test_purge_works_in_small_batches(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "wapa.db")
    d = driver(Assistant(Policy(), PERSONA))
    try:
        for i in range(25):
            await step(
                store, d, Message(f"49157{i:08d}@s.whatsapp.net", "x", f"m{i}", "hi"), T0 + i
            )
        now = T0 + 3 * DAY
        rounds = []
        while (report := await store.purge(now, DAY, DAY, batch=10)).total:
            rounds.append((report.contexts, report.traces))
        assert rounds == [(10, 10), (10, 10), (5, 5)]
    finally:
        await store.close()


async def test_open_outbox_rows_are_never_purged(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "wapa.db")
    d = driver(a := Assistant(Policy(), PERSONA))
    try:
        await step(store, d, Message(OLD, OLD, "o1", "hi"), T0)
        await step(store, d, None, T0 + 120)
        await step(store, d, Generated(a.chats[OLD].request_id, "ok"), T0 + 125)
        await step(store, d, None, T0 + 200)
        await store.purge(T0 + 30 * DAY, DAY, DAY)
        assert len(await store.unconfirmed_sends()) == 1
    finally:
        await store.close()


# ---------------------------------------------------------------- backups


async def test_online_backup_holds_the_data_and_opens_with_the_key(tmp_path: Path) -> None:
    key = b"b" * 32
    store = await Store.open(tmp_path / "wapa.db", key, clock=lambda: T0)
    try:
        a = await conversation(store)
        path = await store.backup()  # while the store is open and in WAL mode
        assert path == tmp_path / "backups" / backup_name(T0)
        with pytest.raises(StoreError, match="already exists"):
            await store.backup(path)
    finally:
        await store.close()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one self-contained file
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    assert not Path(f"{path}-wal").exists() and not list(path.parent.glob("*.part"))
    with pytest.raises(StoreError, match="does not match"):
        await Store.open(path, b"c" * 32)
    copy = await Store.open(path, key)
    try:
        b = await copy.load(Policy(), PERSONA)
        assert b is not None and b.export() == a.export()
    finally:
        await copy.close()


def _touch_backups(directory: Path, stamps: list[str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for stamp in stamps:
        (directory / f"wapa-{stamp}.db").write_bytes(b"x")


def test_rotation_keeps_the_newest_backup_of_the_last_n_days(tmp_path: Path) -> None:
    _touch_backups(
        tmp_path,
        [
            "20240101-030000",
            "20240102-030000",
            "20240102-150000",
            "20240103-030000",
            "20240105-030000",
            "20240105-040000",
        ],
    )
    (tmp_path / "my-notes.db").write_bytes(b"not ours")
    (tmp_path / "wapa.db").write_bytes(b"not a backup either")
    removed = rotate_backups(tmp_path, keep=3)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [
        "my-notes.db",
        "wapa-20240102-150000.db",
        "wapa-20240103-030000.db",
        "wapa-20240105-040000.db",
        "wapa.db",
    ]
    assert len(removed) == 3
    with pytest.raises(StoreError, match="keep must be >= 1"):
        rotate_backups(tmp_path, keep=0)


async def test_daily_backup_once_a_day_with_rotation(tmp_path: Path) -> None:
    clock = [datetime(2024, 3, 1, 3, 0, tzinfo=UTC).timestamp()]
    store = await Store.open(tmp_path / "wapa.db", clock=lambda: clock[0])
    backups = tmp_path / "backups"
    try:
        await conversation(store)
        assert daily_backup_due(backups, clock[0])
        first = await store.daily_backup(backups, keep=2)
        assert first is not None and first.exists()
        clock[0] += 3600
        assert await store.daily_backup(backups, keep=2) is None  # today's exists
        made = []
        for _ in range(3):
            clock[0] += DAY
            made.append(await store.daily_backup(backups, keep=2))
        assert sorted(backups.iterdir()) == made[-2:]
    finally:
        await store.close()


# ---------------------------------------------------------------- wapa backup


async def _database(path: Path) -> None:
    store = await Store.open(path)
    await conversation(store)
    await store.close()


async def test_cli_backup_to_a_directory_with_rotation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await _database(tmp_path / "wapa.db")
    dest = tmp_path / "copies"
    _touch_backups(dest, ["20200101-000000", "20200102-000000"])
    status = main(["backup", f"{dest}/", "--db", str(tmp_path / "wapa.db"), "--keep", "2"])
    out = capsys.readouterr().out
    assert status == 0 and "backup written:" in out
    assert out.count("old backup removed:") == 1
    names = sorted(p.name for p in dest.iterdir())
    assert names[0] == "wapa-20200102-000000.db" and len(names) == 2
    con = sqlite3.connect(dest / names[1])
    assert con.execute("SELECT count(*) FROM chats").fetchone()[0] == 2
    con.close()


async def test_cli_backup_defaults_come_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await _database(tmp_path / "live.db")
    env = {"WAPA_DB": str(tmp_path / "live.db"), "WAPA_BACKUP_DIR": str(tmp_path / "bk")}
    args = argparse.Namespace(dest=None, db=None, keep=None)
    assert backup_command.run(args, env, clock=lambda: T0) == 0
    assert (tmp_path / "bk" / backup_name(T0)).is_file()


def test_cli_backup_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["backup", str(tmp_path / "out.db"), "--db", str(tmp_path / "missing.db")])
    assert status == 1
    assert f"no database at {tmp_path / 'missing.db'}" in capsys.readouterr().err
    (tmp_path / "junk.db").write_text("hello")
    status = main(["backup", str(tmp_path / "out.db"), "--db", str(tmp_path / "junk.db")])
    assert status == 1 and "not a readable SQLite database" in capsys.readouterr().err
    assert not (tmp_path / "out.db").exists()


async def test_a_purge_round_gives_up_to_a_quarter_batch_of_pages_back(tmp_path: Path) -> None:
    """Python's sqlite3 steps `PRAGMA incremental_vacuum(N)` once when it is executed as a
    query, which frees one page, not N: the purge runs it as a script."""
    path = tmp_path / "wapa.db"
    store = await Store.open(path)
    await store.close()
    con = sqlite3.connect(path, isolation_level=None)
    con.executemany(
        "INSERT INTO traces (t, chat_key, code, request_id, detail) VALUES (?, ?, ?, ?, ?)",
        [(T0, "c", "scheduled", "", b"x" * 3000) for _ in range(400)],  # about a page each
    )
    pages = con.execute("PRAGMA page_count").fetchone()[0]
    con.close()
    store = await Store.open(path)
    try:
        report = await store.purge(T0 + 3 * DAY, DAY, DAY, batch=500)
    finally:
        await store.close()
    assert report.traces == 400
    con = sqlite3.connect(path)
    freed = pages - con.execute("PRAGMA page_count").fetchone()[0]
    free = con.execute("PRAGMA freelist_count").fetchone()[0]
    con.close()
    assert freed == 500 // 4  # what one round gives back; the rest waits, free, for reuse
    assert free >= 400 - freed - 5
