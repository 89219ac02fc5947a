"""Group commit in the store: many steps in one batch give the same stored state as one
commit per step, write each changed chat once, and store_meta values travel in the same
transaction."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from wapa.adapters.store import Store, StoreError
from wapa.core import Assistant, Decision, Generated, Policy, Send, SendConfirmed
from wapa.core.driver import Driver

from tests.adapters.test_store_basics import PERSONA, T0, msg
from tests.support.store import Recorder, commit, driver, empty_batch

CHATS = [f"4915{i:07d}@s.whatsapp.net" for i in range(5)]


async def script(d: Driver, store: Store | None = None) -> None:
    """Ten messages in each of five chats, interleaved, then a reply cycle's first steps in
    the first chat. With `store`, each step is committed alone; without, the steps wait in
    the driver for one commit."""
    for i in range(50):
        d.feed(msg(CHATS[i % 5], f"m{i}", f"message {i}"), T0 + i)
        if store is not None:
            await commit(store, d)
    d.fire_due(T0 + 300)
    if store is not None:
        await commit(store, d)
    rid = d.assistant.chats[CHATS[0]].request_id
    d.feed(Generated(rid, "He'll call you back."), T0 + 305)
    if store is not None:
        await commit(store, d)


async def test_a_group_stores_what_one_commit_per_step_stores(tmp_path: Path) -> None:
    one = driver(Assistant(Policy(), PERSONA, seed=3))
    world = Recorder()
    group = Driver(Assistant(Policy(), PERSONA, seed=3), world)
    per_step = await Store.open(tmp_path / "per-step.db")
    grouped = await Store.open(tmp_path / "group.db")
    try:
        await script(one, per_step)
        await script(group)
        assert group.pending() == 52
        before = grouped.total_changes
        batch = await commit(grouped, group)
        assert batch is not None and len(batch.steps) == 52
        changes = grouped.total_changes - before
        decisions = sum(isinstance(e, Decision) for e in batch.effects())
        # each chat once, the global row once, one row per decision: not one per step
        assert changes == len(CHATS) + 1 + decisions
        assert world.done == list(batch.effects())  # the effects followed the commit
        a = await per_step.load(Policy(), PERSONA)
        b = await grouped.load(Policy(), PERSONA)
        assert a is not None and b is not None and a.export() == b.export()
        assert await per_step.traces() == await grouped.traces()
    finally:
        await per_step.close()
        await grouped.close()


async def test_a_group_with_a_send_and_its_outcome_in_the_next_group(tmp_path: Path) -> None:
    d = driver(Assistant(Policy(), PERSONA, seed=3))
    store = await Store.open(tmp_path / "w.db")
    try:
        await script(d)
        (send,) = [e for e in d.fire_due(T0 + 400) if isinstance(e, Send)]
        await commit(store, d)
        assert [o.request_id for o in await store.unconfirmed_sends()] == [send.request_id]
        d.feed(SendConfirmed(send.request_id, "wa-1"), T0 + 401)
        d.feed(msg(CHATS[1], "late", "one more"), T0 + 402)
        await commit(store, d)
        assert await store.unconfirmed_sends() == []
        assert [o.outcome for o in await store.outbox()] == ["confirmed"]
    finally:
        await store.close()


async def test_values_are_saved_with_the_batch_and_read_back(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "w.db")
    d = driver(a := Assistant(Policy(), PERSONA))
    try:
        assert await store.get_value("model_usage") is None
        d.feed(msg(CHATS[0], "m1"), T0)
        await commit(store, d, values={"model_usage": '{"spent": 1}'})
        assert await store.get_value("model_usage") == '{"spent": 1}'
        await store.save(empty_batch(a), values={"model_usage": '{"spent": 2}'})
        assert await store.get_value("model_usage") == '{"spent": 2}'
        for bad in ({"salt": "00"}, {"": "x"}, {"key_check": "x"}):
            with pytest.raises(StoreError, match="reserved"):
                await store.save(empty_batch(a), values=bad)
        with pytest.raises(StoreError, match="must be text"):
            await store.save(empty_batch(a), values={"model_usage": 3})  # type: ignore[dict-item]
        assert await store.get_value("model_usage") == '{"spent": 2}'
    finally:
        await store.close()


async def test_a_failed_commit_writes_neither_state_nor_values(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    store = await Store.open(path, busy_timeout=0.05)
    world = Recorder()
    d = Driver(a := Assistant(Policy(), PERSONA), world)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        await store.save(empty_batch(a), values={"model_usage": "old"})
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        d.feed(msg(CHATS[0], "m1"), T0)
        with pytest.raises(StoreError, match="saving a batch failed"):
            await commit(store, d, values={"model_usage": "new"})
        other.execute("ROLLBACK")
        assert world.done == []  # no effect of the failed batch happened
        assert await store.get_value("model_usage") == "old"
        assert (await store.load(Policy(), PERSONA)).chats == {}  # type: ignore[union-attr]
        await commit(store, d)  # the chat of the failed batch is written with the next
        loaded = await store.load(Policy(), PERSONA)
        assert loaded is not None and CHATS[0] in loaded.chats
    finally:
        other.close()
        await store.close()


async def test_a_deleted_chat_is_removed_from_the_store(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "w.db")
    d = driver(a := Assistant(Policy(), PERSONA))
    try:
        d.feed(msg(CHATS[0], "m1"), T0)
        d.feed(msg(CHATS[1], "m2"), T0)
        await commit(store, d)
        batch = empty_batch(a)
        batch.chats[CHATS[1]] = None  # what a batch carries for a chat the core dropped
        await store.save(batch)
        loaded = await store.load(Policy(), PERSONA)
        assert loaded is not None and set(loaded.chats) == {CHATS[0]}
    finally:
        await store.close()
