"""Schema v3 (chats as a rowid table), from real v2 files: `tests/data/store/v2*.db`, written
by the wapa that wrote schema v2 (commit 1d1f591; `tests/data/store/make_v2.py` says how)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from wapa.adapters.store import SCHEMA_VERSION, Store, StoreError
from wapa.core import Message, Persona, Policy

from tests.support.store import commit, driver

DATA = Path(__file__).parent.parent / "data" / "store"
KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # make_v2.KEY: base64 of bytes 0..31
POLICY = Policy.from_mapping({"cooldown": "0s"})
PERSONA = Persona(owner_id="owner", owner_name="Gilad", assistant_name="Dana")
TABLES = ("store_meta", "assistant", "chats", "outbox", "traces")


def v2_copy(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.db"
    shutil.copyfile(DATA / f"{name}.db", path)
    return path


def rows(path: Path) -> dict[str, set[tuple[Any, ...]]]:
    """Every row of every table, as SQLite holds them (bytes, floats, text)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {t: set(con.execute(f"SELECT * FROM {t}")) for t in TABLES}  # noqa: S608
    finally:
        con.close()


def schema(path: Path) -> tuple[int, str, list[str]]:
    """(user_version, the chats table's SQL, the chats table's indexes)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        version = con.execute("PRAGMA user_version").fetchone()[0]
        sql = con.execute("SELECT sql FROM sqlite_master WHERE name = 'chats'").fetchone()[0]
        indexes = [r[1] for r in con.execute("PRAGMA index_list(chats)")]
        return version, sql, sorted(indexes)
    finally:
        con.close()


def saved_export(name: str) -> Any:
    return json.loads((DATA / f"{name}.export.json").read_text(encoding="utf-8"))


def test_the_fixtures_are_v2_files_with_chats_without_rowid(tmp_path: Path) -> None:
    for name in ("v2", "v2-encrypted"):  # copies: even a read-only open adds WAL side files
        version, sql, _ = schema(v2_copy(tmp_path, name))
        assert version == 2
        assert sql.rstrip().endswith("WITHOUT ROWID")


@pytest.mark.parametrize(("name", "key"), [("v2", None), ("v2-encrypted", KEY)])
async def test_a_v2_file_becomes_v3_with_every_row_unchanged(
    tmp_path: Path, name: str, key: str | None
) -> None:
    path = v2_copy(tmp_path, name)
    before = rows(path)
    assert len(before["chats"]) == 6 and len(before["outbox"]) == 12
    store = await Store.open(path, key)
    try:
        loaded = await store.load(POLICY, PERSONA)
        assert loaded is not None
        # what the v2 wapa loaded from this file, the same after the migration
        assert json.loads(json.dumps(loaded.export())) == saved_export(name)
        assert [e.outcome for e in await store.unconfirmed_sends()] == [None]
        assert json.loads(await store.get_value("model_usage") or "") == {
            "day": "2026-01-05",
            "n": 11,
        }
    finally:
        await store.close()
    assert rows(path) == before
    version, sql, indexes = schema(path)
    assert version == SCHEMA_VERSION == 3
    assert "WITHOUT ROWID" not in sql
    assert "chats_ctx_oldest" in indexes and len(indexes) == 2  # and the primary key's
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert (
        con.execute("SELECT count(*) FROM sqlite_master WHERE name = 'chats_v3'").fetchone()[0] == 0
    )
    # the old table's pages are not left in the file: the open after the migration freed them
    assert con.execute("PRAGMA freelist_count").fetchone()[0] == 0
    con.close()
    assert path.stat().st_size <= (DATA / f"{name}.db").stat().st_size
    assert path.stat().st_mode & 0o777 == 0o600


async def test_after_the_migration_it_goes_on_saving_and_purging(tmp_path: Path) -> None:
    path = v2_copy(tmp_path, "v2")
    store = await Store.open(path)
    try:
        a = await store.load(POLICY, PERSONA)
        assert a is not None
        d = driver(a)
        chat, new = "4915000@s.whatsapp.net", "4915999@s.whatsapp.net"
        t = a.now + 60
        d.feed(Message(chat, chat, "m-after", "and one more thing", sender_name="Contact 0"), t)
        d.feed(Message(new, new, "m-new", "hello", sender_name="New"), t)
        await commit(store, d)
        again = await store.load(POLICY, PERSONA)
        assert again is not None and again.export() == a.export()
        assert len(again.chats) == 7
        # retention reads ctx_oldest through the rebuilt index, and rewrites rows in place
        report = await store.purge(t + 1, context_ttl=30.0, trace_ttl=1e9)
        assert report.contexts == 6  # the six old chats; the new one's context is younger
    finally:
        await store.close()
    con = sqlite3.connect(path)
    assert con.execute("SELECT count(*) FROM chats").fetchone()[0] == 7
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()


async def test_the_encrypted_v2_file_still_needs_its_key(tmp_path: Path) -> None:
    path = v2_copy(tmp_path, "v2-encrypted")
    with pytest.raises(StoreError, match="encrypted: set WAPA_DB_KEY"):
        await Store.open(path)
    store = await Store.open(path, KEY)  # the migration ran; the key opens every row
    try:
        loaded = await store.load(POLICY, PERSONA)
        assert loaded is not None
        assert json.loads(json.dumps(loaded.export())) == saved_export("v2-encrypted")
    finally:
        await store.close()


async def test_a_migration_that_fails_halfway_leaves_the_v2_file_as_it_was(
    tmp_path: Path,
) -> None:
    path = v2_copy(tmp_path, "v2")
    con = sqlite3.connect(path)  # a view on chats: the rename fails, after the copy and drop
    con.execute("CREATE VIEW chat_keys AS SELECT key FROM chats")
    con.close()
    before = rows(path)
    with pytest.raises(StoreError, match="not a usable wapa database.*chat_keys"):
        await Store.open(path)
    assert rows(path) == before
    version, sql, indexes = schema(path)
    assert version == 2 and sql.rstrip().endswith("WITHOUT ROWID")
    assert "chats_ctx_oldest" in indexes
    con = sqlite3.connect(path)
    assert (
        con.execute("SELECT count(*) FROM sqlite_master WHERE name = 'chats_v3'").fetchone()[0] == 0
    )
    con.execute("DROP VIEW chat_keys")
    con.close()
    store = await Store.open(path)  # once it is out of the way, the migration goes through
    await store.close()
    assert schema(path)[0] == SCHEMA_VERSION
    assert rows(path) == before
