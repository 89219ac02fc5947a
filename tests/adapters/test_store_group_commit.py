"""Group commit in the store: many steps in one `save_step` give the same stored state as one
commit per step, write each changed chat once, and store_meta values travel in the same
transaction."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from wapa.adapters.store import Store, StoreError
from wapa.core import Assistant, Effect, Event, Generated, Policy, Send, SendConfirmed

from tests.adapters.test_store_basics import PERSONA, T0, msg

CHATS = [f"4915{i:07d}@s.whatsapp.net" for i in range(5)]


def script(a: Assistant) -> list[tuple[list[Effect], list[Event]]]:
    """Ten messages in each of five chats, interleaved, then a reply cycle in the first chat:
    the steps with their effects and events, run through `a`."""
    steps: list[tuple[list[Effect], list[Event]]] = []
    for i in range(50):
        m = msg(CHATS[i % 5], f"m{i}", f"message {i}")
        steps.append((a.handle(m, T0 + i), [m]))
    steps.append((a.on_timer(T0 + 300), []))
    rid = a.chats[CHATS[0]].request_id
    g = Generated(rid, "He'll call you back.")
    steps.append((a.handle(g, T0 + 305), [g]))
    return steps


async def test_a_group_stores_what_one_commit_per_step_stores(tmp_path: Path) -> None:
    one, group = Assistant(Policy(), PERSONA, seed=3), Assistant(Policy(), PERSONA, seed=3)
    per_step = await Store.open(tmp_path / "per-step.db")
    grouped = await Store.open(tmp_path / "group.db")
    try:
        for effects, events in script(one):
            await per_step.save_step(one, effects, events)
        steps = script(group)
        before = grouped.total_changes
        await grouped.save_step(
            group, [e for s, _ in steps for e in s], [ev for _, evs in steps for ev in evs]
        )
        changes = grouped.total_changes - before
        decisions = sum(type(e).__name__ == "Decision" for s, _ in steps for e in s)
        # each chat once, the global row once, one row per decision: not one per step
        assert changes == len(CHATS) + 1 + decisions
        a = await per_step.load(Policy(), PERSONA)
        b = await grouped.load(Policy(), PERSONA)
        assert a is not None and b is not None and a.export() == b.export()
        assert await per_step.traces() == await grouped.traces()
    finally:
        await per_step.close()
        await grouped.close()


async def test_a_group_with_a_send_and_its_outcome_in_the_next_group(tmp_path: Path) -> None:
    a = Assistant(Policy(), PERSONA, seed=3)
    store = await Store.open(tmp_path / "w.db")
    try:
        steps = script(a)
        effects = a.on_timer(T0 + 400)
        steps.append((effects, []))
        (send,) = [e for e in effects if isinstance(e, Send)]
        await store.save_step(
            a, [e for s, _ in steps for e in s], [ev for _, evs in steps for ev in evs]
        )
        assert [o.request_id for o in await store.unconfirmed_sends()] == [send.request_id]
        ok = SendConfirmed(send.request_id, "wa-1")
        second = msg(CHATS[1], "late", "one more")
        await store.save_step(a, a.handle(ok, T0 + 401) + a.handle(second, T0 + 402), [ok, second])
        assert await store.unconfirmed_sends() == []
        assert [o.outcome for o in await store.outbox()] == ["confirmed"]
    finally:
        await store.close()


async def test_values_are_saved_with_the_step_and_read_back(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "w.db")
    a = Assistant(Policy(), PERSONA)
    try:
        assert await store.get_value("model_usage") is None
        m = msg(CHATS[0], "m1")
        await store.save_step(a, a.handle(m, T0), [m], values={"model_usage": '{"spent": 1}'})
        assert await store.get_value("model_usage") == '{"spent": 1}'
        await store.save_step(a, [], values={"model_usage": '{"spent": 2}'})
        assert await store.get_value("model_usage") == '{"spent": 2}'
        for bad in ({"salt": "00"}, {"": "x"}, {"key_check": "x"}):
            with pytest.raises(StoreError, match="reserved"):
                await store.save_step(a, [], values=bad)
        with pytest.raises(StoreError, match="must be text"):
            await store.save_step(a, [], values={"model_usage": 3})  # type: ignore[dict-item]
        assert await store.get_value("model_usage") == '{"spent": 2}'
    finally:
        await store.close()


async def test_a_failed_commit_writes_neither_state_nor_values(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    store = await Store.open(path, busy_timeout=0.05)
    a = Assistant(Policy(), PERSONA)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        await store.save_step(a, [], values={"model_usage": "old"})
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        m = msg(CHATS[0], "m1")
        with pytest.raises(StoreError, match="saving a step failed"):
            await store.save_step(a, a.handle(m, T0), [m], values={"model_usage": "new"})
        other.execute("ROLLBACK")
        assert await store.get_value("model_usage") == "old"
        assert (await store.load(Policy(), PERSONA)).chats == {}  # type: ignore[union-attr]
        await store.save_step(a, [])  # the chat of the failed step is written with the next
        loaded = await store.load(Policy(), PERSONA)
        assert loaded is not None and CHATS[0] in loaded.chats
    finally:
        other.close()
        await store.close()
