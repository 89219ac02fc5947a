"""The store's seam: the SQLite `Store` is a `StateStore`, checked statically (mypy runs on the
tests: `python -m tests.support.typecheck`) and at run time."""

from __future__ import annotations

from pathlib import Path

from wapa.adapters.store import StateStore, Store
from wapa.core import Assistant, Message, Persona, Policy

from tests.support.store import driver, step

T0 = 1_700_000_000.0
CHAT = "4915111@s.whatsapp.net"
PERSONA = Persona(owner_id="491700000000@s.whatsapp.net")


def shell_side(store: StateStore) -> StateStore:
    """What a shell holds: a `StateStore`, whichever store it is. mypy checks every call."""
    return store


async def through_the_seam(store: StateStore) -> Assistant | None:
    """Only what the protocol offers: commit one message, read it back."""
    await step(store, driver(Assistant(Policy(), PERSONA)), Message(CHAT, CHAT, "m1", "hi"), T0)
    assert await store.unconfirmed_sends() == []
    assert await store.get_value("model_usage") is None
    return await store.load(Policy(), PERSONA)


async def test_the_sqlite_store_is_a_state_store(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "wapa.db")
    try:
        assert shell_side(store) is store  # static: Store satisfies StateStore
        assert isinstance(store, StateStore)  # and at run time (runtime_checkable)
        assert store.encrypted is False  # a read-only property satisfies the protocol
        loaded = await through_the_seam(store)
        assert loaded is not None and CHAT in loaded.chats
    finally:
        await store.close()


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
