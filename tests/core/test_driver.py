"""The shared driver (core/driver.py): commit before effects, in order, one step at a time."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wapa.core import Assistant, Decision, Generate, Generated, Message, Notice, Reason, Send
from wapa.core.driver import Batch, Driver, DriverError, Step
from wapa.core.events import Command, Effect, Event, MarkRead, SendConfirmed, Typing

from tests.support.compiled import PATCHES_THE_CORE
from tests.support.core_run import ALICE, BOB, OWNER, PERSONA, T0


class RecordingWorld:
    """A World that writes down every call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def begin_step(self, step: Step) -> None:
        self.calls.append(("begin", step.kind))

    def end_step(self, step: Step) -> None:
        self.calls.append(("end", step.kind))

    def decided(self, decision: Decision) -> None:
        self.calls.append(("decided", decision.code))

    def mark_read(self, effect: MarkRead) -> None:
        self.calls.append(("mark_read", effect.chat))

    def typing(self, effect: Typing) -> None:
        self.calls.append(("typing", effect.on))

    def start_generation(self, effect: Generate) -> None:
        self.calls.append(("generate", effect.request_id))

    def start_send(self, effect: Send) -> None:
        self.calls.append(("send", effect.request_id))

    def notify_owner(self, effect: Notice) -> None:
        self.calls.append(("notice", effect.text))

    def effects(self) -> list[str]:
        return [name for name, _ in self.calls if name not in ("begin", "end", "decided")]


def msg(text: str = "hi", chat: str = ALICE, mid: str = "m1", **kw: Any) -> Message:
    return Message(chat=chat, sender=kw.pop("sender", chat), id=mid, text=text, **kw)


def new_driver() -> tuple[Driver, RecordingWorld]:
    world = RecordingWorld()
    driver = Driver(Assistant(persona=PERSONA, seed=1), world)
    first = driver.take_batch()
    assert first is not None and first.steps == ()  # a new assistant is stored at once
    driver.committed(first)
    return driver, world


def commit(driver: Driver) -> Batch:
    batch = driver.take_batch()
    assert batch is not None
    driver.committed(batch)
    return batch


def test_effects_reach_the_world_only_after_the_commit() -> None:
    driver, world = new_driver()
    driver.feed(msg(), T0)
    driver.fire_due(T0 + 120)
    batch = driver.take_batch()
    assert batch is not None
    assert world.calls == []  # stepped and taken, not committed: nothing happened yet
    assert [s.kind for s in batch.steps] == ["event", "timer"]
    assert any(isinstance(e, Generate) for e in batch.effects())
    driver.committed(batch)
    assert world.effects()[:3] == ["mark_read", "typing", "generate"]
    assert world.calls[0] == ("begin", "event") and world.calls[-1] == ("end", "timer")


def test_a_failed_commit_carries_nothing_out_and_offers_the_rows_again() -> None:
    driver, world = new_driver()
    driver.feed(msg(), T0)
    failed = driver.take_batch()
    assert failed is not None and set(failed.chats) == {ALICE}
    driver.commit_failed(failed)
    assert world.calls == []
    driver.feed(msg(chat=BOB, mid="b1"), T0 + 1)
    later = commit(driver)
    assert set(later.chats) == {ALICE, BOB}  # Alice's row, lost with the failed commit
    assert [s.event for s in later.steps] == [msg(chat=BOB, mid="b1")]


def test_no_step_while_a_batch_awaits_its_commit() -> None:
    driver, _ = new_driver()
    driver.feed(msg(), T0)
    batch = driver.take_batch()
    assert batch is not None
    with pytest.raises(DriverError):
        driver.feed(msg(mid="m2"), T0 + 1)
    with pytest.raises(DriverError):
        driver.take_batch()
    with pytest.raises(DriverError):
        driver.committed(Batch((), {}, {}, T0))  # not the batch that was taken
    driver.committed(batch)
    driver.feed(msg(mid="m2"), T0 + 1)  # free again


def test_nothing_to_commit_is_no_batch_and_nothing_due_is_no_step() -> None:
    driver, _ = new_driver()
    assert driver.fire_due(T0) == ()
    assert driver.take_batch() is None
    driver.feed(msg(), T0)
    commit(driver)
    assert driver.fire_due(T0 + 119) == () and driver.pending() == 0
    assert driver.fire_due(T0 + 120) != () and driver.pending() == 1


def test_a_batch_holds_exactly_the_changed_chats_and_the_global_state() -> None:
    driver, _ = new_driver()
    driver.feed(msg(), T0)
    driver.feed(msg(chat=BOB, mid="b1"), T0 + 1)
    commit(driver)
    driver.feed(msg(mid="m2"), T0 + 2)
    batch = commit(driver)
    assert set(batch.chats) == {ALICE}
    assert batch.chats[ALICE] == driver.assistant.export_chat(ALICE)
    assert batch.meta == driver.assistant.export_meta() and batch.now == T0 + 2


@PATCHES_THE_CORE
def test_a_core_bug_costs_one_step_with_a_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    driver, world = new_driver()

    def broken(event: Event, now: float) -> list[Effect]:
        raise RuntimeError("bug")

    monkeypatch.setattr(driver.assistant, "handle", broken)
    out = driver.feed(msg(), T0)
    assert [type(e) for e in out] == [Decision]
    assert isinstance(out[0], Decision) and out[0].code == Reason.BAD_EVENT
    assert "RuntimeError" in out[0].detail
    batch = commit(driver)
    assert isinstance(batch.steps[0].error, RuntimeError)
    assert world.calls == [("begin", "event"), ("decided", Reason.BAD_EVENT), ("end", "event")]


def test_results_of_effects_come_back_through_feed() -> None:
    driver, world = new_driver()
    driver.feed(msg(), T0)
    driver.fire_due(T0 + 120)
    gen = next(e for e in commit(driver).effects() if isinstance(e, Generate))
    driver.feed(Generated(gen.request_id, "Gilad is busy; I'll pass it on."), T0 + 121)
    commit(driver)
    driver.fire_due(T0 + 200)
    send = next(e for e in commit(driver).effects() if isinstance(e, Send))
    driver.feed(SendConfirmed(send.request_id, "wa1"), T0 + 201)
    commit(driver)
    assert world.effects().count("send") == 1


# ---------------------------------------------------------------- the driver adds nothing

events = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=3000),
        st.sampled_from(["alice", "bob", "owner", "status", "answer"]),
    ),
    max_size=25,
)


def _event(kind: str, i: int, pending: list[str]) -> Event:
    if kind == "answer" and pending:
        return Generated(pending.pop(0), "Thanks, I'll tell Gilad.")
    if kind == "owner":
        return msg("I'll take this", mid=f"o{i}", from_me=True, sender=OWNER)
    if kind == "status":
        return Command("status")
    chat = ALICE if kind == "alice" else BOB
    return msg(f"message {i}", chat=chat, mid=f"{kind}{i}")


@settings(max_examples=60, deadline=None)
@given(events)
def test_the_driver_changes_no_decision_and_its_rows_rebuild_the_assistant(
    script: list[tuple[float, str]],
) -> None:
    """Same inputs through the bare core and through the driver (committing every step):
    the same effects, and the committed rows restore to the live assistant's state."""
    bare = Assistant(persona=PERSONA, seed=3)
    driver = Driver(Assistant(persona=PERSONA, seed=3), RecordingWorld())
    rows: dict[str, Any] = {}
    first = driver.take_batch()
    assert first is not None
    meta = first.meta
    driver.committed(first)
    t = T0
    bare_out: list[Effect] = []
    driven_out: list[Effect] = []
    pending_bare: list[str] = []
    pending_driven: list[str] = []
    for i, (dt, kind) in enumerate(script):
        t += dt
        for out, pending, step in (
            (bare_out, pending_bare, None),
            (driven_out, pending_driven, driver),
        ):
            if step is None:
                while (d := bare.next_deadline()) is not None and d <= t:
                    out += bare.on_timer(max(d, bare.now))
                out += bare.handle(_event(kind, i, pending), t)
            else:
                while (d := step.next_deadline()) is not None and d <= t:
                    out += step.fire_due(max(d, step.assistant.now))
                out += step.feed(_event(kind, i, pending), t)
                batch = step.take_batch()
                assert batch is not None
                for cid, row in batch.chats.items():
                    if row is None:
                        rows.pop(cid, None)
                    else:
                        rows[cid] = row
                meta = batch.meta
                step.committed(batch)
            pending += [e.request_id for e in out[len(out) - 20 :] if isinstance(e, Generate)]
            pending[:] = list(dict.fromkeys(pending))
    assert driven_out == bare_out
    state = json.loads(json.dumps({**meta, "chats": rows}))
    restored = Assistant.restore(state, persona=PERSONA)
    assert restored.export() == json.loads(json.dumps(driver.assistant.export()))
