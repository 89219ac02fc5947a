"""One save is one transaction run in one call on aiosqlite's thread: a statement failing
half-way, or a save cancelled before its COMMIT, leaves nothing of the batch stored, and the
store goes on working."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiosqlite
import pytest
from wapa.adapters.store import Store, StoreError
from wapa.core import Assistant, Policy

from tests.adapters.test_store_basics import PERSONA, T0, msg
from tests.support.store import commit, driver

CHAT = "4915111@s.whatsapp.net"


def test_aiosqlite_still_runs_a_function_on_its_thread() -> None:
    """`Store.save` hands its whole transaction to `Connection._execute` (aiosqlite has no
    public name for it): an aiosqlite without it must fail here, by name."""
    assert callable(getattr(aiosqlite.Connection, "_execute", None))
    assert isinstance(getattr(aiosqlite.Connection, "_conn", None), property)


def rows(path: Path) -> tuple[int, int, int]:
    con = sqlite3.connect(path)
    try:
        chats, assistant, traces = (
            con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("chats", "assistant", "traces")
        )
        return chats, assistant, traces
    finally:
        con.close()


async def test_a_statement_failing_half_way_rolls_back_the_whole_batch(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    store = await Store.open(path)
    d = driver(Assistant(Policy(), PERSONA))
    other = sqlite3.connect(path, isolation_level=None)
    try:
        await commit(store, d)  # the new assistant: its global row
        assert rows(path) == (0, 1, 0)
        # the trace rows are written after the chat and global rows: make them fail
        other.execute(
            "CREATE TRIGGER no_traces BEFORE INSERT ON traces BEGIN SELECT RAISE(ABORT, 'no'); END"
        )
        d.feed(msg(CHAT, "m1"), T0)
        with pytest.raises(StoreError, match="saving a batch failed: no"):
            await commit(store, d)
        assert rows(path) == (0, 1, 0)  # the chat row written before the failure is gone
        other.execute("DROP TRIGGER no_traces")
        await commit(store, d)  # not left inside a transaction: the next save works
        assert rows(path) == (1, 1, 0)  # the chat again; the failed step's traces went with it
        loaded = await store.load(Policy(), PERSONA)
        assert loaded is not None and CHAT in loaded.chats
    finally:
        other.close()
        await store.close()


async def test_a_save_cancelled_before_its_commit_stores_nothing(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    store = await Store.open(path, busy_timeout=5.0)
    d = driver(Assistant(Policy(), PERSONA))
    d.feed(msg(CHAT, "m1"), T0)
    batch = d.take_batch()
    assert batch is not None
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # the save's BEGIN waits for this writer
        task = asyncio.create_task(store.save(batch))
        await asyncio.sleep(0)  # the save runs up to its transaction, queued on the thread
        task.cancel()
        await asyncio.sleep(0)  # the save takes its cancellation while BEGIN still waits
        blocker.execute("ROLLBACK")  # now the transaction runs, and finds itself abandoned
        with pytest.raises(asyncio.CancelledError):
            await task
        assert rows(path) == (0, 0, 0)
        d.commit_failed(batch)
        await commit(store, d)  # the store goes on: the driver offers the rows again
        loaded = await store.load(Policy(), PERSONA)
        assert loaded is not None and CHAT in loaded.chats
    finally:
        blocker.close()
        await store.close()
