"""The store's seam: every store is a `StateStore` (checked statically: mypy runs on the tests,
`python -m tests.support.typecheck`; and at run time), and one contract, run against each of
them, says what a shell may rely on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from wapa.adapters.store import MemoryStore, StateStore, Store, StoreError
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

from tests.support.store import commit, driver, empty_batch, step

T0 = 1_700_000_000.0
ALICE, BOB, CAROL = (f"49151{i}@s.whatsapp.net" for i in (1, 2, 3))
PERSONA = Persona(owner_id="491700000000@s.whatsapp.net")

Factory = Callable[[Path], Awaitable[StateStore]]


async def _sqlite(tmp: Path) -> StateStore:
    return await Store.open(tmp / "wapa.db")


async def _sqlite_encrypted(tmp: Path) -> StateStore:
    return await Store.open(tmp / "wapa.db", b"k" * 32)


async def _memory(tmp: Path) -> StateStore:
    return MemoryStore()


FACTORIES: dict[str, Factory] = {
    "sqlite": _sqlite,
    "sqlite-encrypted": _sqlite_encrypted,
    "memory": _memory,
}


@pytest.fixture(params=list(FACTORIES))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StateStore]:
    s = await FACTORIES[request.param](tmp_path)
    yield s
    await s.close()


# ---------------------------------------------------------------- the types


def shell_side(store: StateStore) -> StateStore:
    """What a shell holds: a `StateStore`, whichever store it is. mypy checks every call."""
    return store


async def test_the_sqlite_store_is_a_state_store(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "wapa.db")
    try:
        assert shell_side(store) is store  # static: Store satisfies StateStore
        assert isinstance(store, StateStore)  # and at run time (runtime_checkable)
        assert store.encrypted is False  # a read-only property satisfies the protocol
    finally:
        await store.close()


def test_the_memory_store_is_a_state_store() -> None:
    store = MemoryStore()
    assert shell_side(store) is store
    assert isinstance(store, StateStore)


def test_something_without_save_is_not_a_state_store() -> None:
    class OldStore:  # the shape before the shared driver: save_step(assistant, effects, ...)
        encrypted = False

        async def load(self, policy: Policy | None, persona: Persona | None) -> None:
            return None

        async def save_step(self, assistant: Assistant, effects: object) -> None:
            pass

        async def close(self) -> None:
            pass

    assert not isinstance(OldStore(), StateStore)
    assert not hasattr(Store, "save_step")


# ---------------------------------------------------------------- the contract


async def reply_cycle(store: StateStore, d: Driver, chat: str, t: float) -> Send:
    await step(store, d, Message(chat, chat, f"{chat}-{t}", "hello"), t)
    await step(store, d, None, t + 120)
    await step(store, d, Generated(d.assistant.chats[chat].request_id, "He'll call."), t + 125)
    (send,) = [e for e in await step(store, d, None, t + 200) if isinstance(e, Send)]
    return send


async def test_load_gives_back_what_was_committed(store: StateStore) -> None:
    assert await store.load(Policy(), PERSONA) is None
    d = driver(a := Assistant(Policy(), PERSONA, seed=4))
    await reply_cycle(store, d, ALICE, T0)
    await step(store, d, Message(BOB, BOB, "b1", "hi"), T0 + 300)
    d.feed(Message(CAROL, CAROL, "c1", "not committed"), T0 + 301)  # taken, never saved
    b = await store.load(Policy(), PERSONA)
    assert b is not None and set(b.chats) == {ALICE, BOB}
    assert b.export()["chats"][ALICE] == a.export()["chats"][ALICE]
    assert b is not a


async def test_outbox_intents_outcomes_and_unknown_sends(store: StateStore) -> None:
    d = driver(Assistant(Policy(), PERSONA))
    s1 = await reply_cycle(store, d, ALICE, T0)
    s2 = await reply_cycle(store, d, BOB, T0 + 1000)
    s3 = await reply_cycle(store, d, CAROL, T0 + 2000)
    assert [e.request_id for e in await store.unconfirmed_sends()] == [
        s1.request_id,
        s2.request_id,
        s3.request_id,
    ]
    (first, *_) = await store.unconfirmed_sends()
    assert (first.chat, first.text, first.outcome) == (s1.chat, s1.text, None)
    await step(store, d, SendConfirmed(s1.request_id, "WA1"), T0 + 3000)
    await step(store, d, SendFailed(s2.request_id, "not on WhatsApp"), T0 + 3001)
    assert [e.request_id for e in await store.unconfirmed_sends()] == [s3.request_id]
    # a restart: recover reports the open send, and the commit marks it unknown
    loaded = await store.load(Policy(), PERSONA)
    assert loaded is not None
    d = driver(loaded)
    reported = [
        e.request_id
        for e in d.recover(T0 + 4000)
        if isinstance(e, Decision) and e.code == Reason.SEND_UNKNOWN
    ]
    assert reported == [s3.request_id]
    await commit(store, d)
    assert await store.unconfirmed_sends() == []


async def test_values_travel_with_a_batch_and_are_checked(store: StateStore) -> None:
    a = Assistant(Policy(), PERSONA)
    assert await store.get_value("model_usage") is None
    await store.save(empty_batch(a), values={"model_usage": "1"})
    assert await store.get_value("model_usage") == "1"
    for bad in ({"salt": "x"}, {"": "x"}, {"model_usage": 2}):
        with pytest.raises(StoreError):
            await store.save(empty_batch(a), values=bad)  # type: ignore[arg-type]
    assert await store.get_value("model_usage") == "1"


async def test_a_batch_with_bad_values_stores_nothing_of_itself(store: StateStore) -> None:
    d = driver(Assistant(Policy(), PERSONA))
    d.feed(Message(ALICE, ALICE, "m1", "hi"), T0)
    with pytest.raises(StoreError):
        await commit(store, d, values={"key_check": "x"})
    assert await store.load(Policy(), PERSONA) is None
    await commit(store, d)  # the driver offers the failed batch's rows again
    loaded = await store.load(Policy(), PERSONA)
    assert loaded is not None and ALICE in loaded.chats


async def test_a_chat_the_core_dropped_is_deleted(store: StateStore) -> None:
    d = driver(a := Assistant(Policy(), PERSONA))
    d.feed(Message(ALICE, ALICE, "m1", "hi"), T0)
    d.feed(Message(BOB, BOB, "m2", "hi"), T0)
    await commit(store, d)
    batch = empty_batch(a)
    batch.chats[BOB] = None
    await store.save(batch)
    loaded = await store.load(Policy(), PERSONA)
    assert loaded is not None and set(loaded.chats) == {ALICE}
