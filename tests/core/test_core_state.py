"""Export/restore round trips exactly through JSON, state stays bounded, `recover` after a crash."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial

import pytest
from wapa.core import (
    Assistant,
    Decision,
    Effect,
    Generate,
    Generated,
    Message,
    Reason,
    Send,
    SendConfirmed,
    Typing,
    sends,
)

from tests.support.core_run import ALICE, BOB, GROUP, OWNER, MakeRun, Run


def _json_round_trip(run: Run) -> Assistant:
    state = json.loads(json.dumps(run.a.export(), allow_nan=False))
    return Assistant.restore(state, run.policy, run.persona)


def _idle(r: Run) -> None:
    r.msg("hello")
    r.reply_cycle()


def _waiting(r: Run) -> None:
    r.msg("hello", sender_name="Alice")
    r.msg("@Gilad hi", chat=GROUP, sender_name="Bob", participants=3, group_title="G")


def _generating(r: Run) -> None:
    r.msg("hello")
    r.advance(120)


def _typing(r: Run) -> None:
    _generating(r)
    r.answer("x" * 100 + ".")


def _muted_paused(r: Run) -> None:
    r.msg("hello", sender_name="Alice")
    r.msg("mute Alice 2h", chat=OWNER, from_me=True)
    r.msg("pause", chat=OWNER, from_me=True)


SETUPS: dict[str, Callable[[Run], None]] = {
    "fresh": lambda r: None,
    "idle": _idle,
    "waiting": _waiting,
    "generating": _generating,
    "typing": _typing,
    "muted": _muted_paused,
}


@pytest.mark.parametrize("setup", SETUPS)
def test_export_round_trips_exactly_through_json(setup: str) -> None:
    r = Run(seed=3)
    SETUPS[setup](r)
    restored = _json_round_trip(r)
    assert restored.export() == r.a.export()
    assert restored.next_deadline() == r.a.next_deadline()


def _continue(a: Assistant, t: float) -> list[tuple[float, Effect]]:
    """The same scripted future for any assistant: messages, timers, model answers 1 s later."""
    run = Run(t0=t)
    run.a = a

    def answer(now: float, effects: list[Effect]) -> None:
        for g in effects:
            if isinstance(g, Generate):
                reply = Generated(g.request_id, f"Reply {g.request_id}: Gilad will be back soon.")
                run.at(now + 1, partial(run.handle, reply))

    run.watch = answer
    for dt, chat, text in [(5, ALICE, "one more"), (40, BOB, "hi there"), (400, ALICE, "urgent!")]:
        run.feed(Message(chat=chat, sender=chat, id=f"{chat}-{run.t + dt}", text=text), dt)
    run.advance(86400)
    return run.log


@pytest.mark.parametrize("setup", SETUPS)
def test_restored_assistant_behaves_identically(setup: str) -> None:
    r = Run(seed=11)
    SETUPS[setup](r)
    twin = _json_round_trip(r)
    future = _continue(r.a, r.t)
    assert _continue(twin, r.t) == future
    assert any(isinstance(e, Send) for _, e in future) is (setup != "muted")  # paused there


def test_state_is_bounded_per_chat(make_run: MakeRun) -> None:
    r = make_run({"cooldown": 0})
    for i in range(300):
        r.msg(f"message {i}", dt=30, id=f"id{i}")
        if i % 10 == 9:
            r.advance(120)
            if r.pending():
                r.answer()
            r.advance(60)
            r.confirm(f"wa{i}")
    chat = r.a.export()["chats"][ALICE]
    policy = r.policy
    assert len(chat["context"]) <= policy.max_context
    assert len(bytes.fromhex(chat["seen"])) <= 8 * policy.remembered_ids  # 8-byte hashes
    assert len(chat["arrivals"]) <= policy.burst_count
    assert len(bytes.fromhex(chat["sends"])) <= 8 * sends.SIZE  # packed records
    assert len(chat["unread"]) <= 32
    assert len(chat["replies"]) <= policy.caps.per_chat_per_day


def test_huge_messages_do_not_bloat_the_state(run: Run) -> None:
    for i in range(12):
        run.msg("z" * 1_000_000, dt=1, id=f"big{i}")
    size = len(json.dumps(run.a.export_chat(ALICE)))
    assert size < 100_000
    run.advance(3600)
    assert run.effects(Generate)[0].messages[-1].content.endswith(" [...]")


# ---------------------------------------------------------------- recover() after a crash


def _crash(r: Run, downtime: float = 0.0) -> list[Effect]:
    r.a = _json_round_trip(r)
    r.t += downtime
    return r.recover()


def _codes(out: list[Effect]) -> list[str]:
    return [e.code for e in out if isinstance(e, Decision)]


def test_recover_asks_the_model_again(run: Run) -> None:
    _generating(run)
    old = run.pending()[0].request_id
    out = _crash(run, 5)
    assert _codes(out) == [Reason.RECOVERED]
    run.advance(0)
    gens = run.effects(Generate)
    assert len(gens) == 2 and gens[1].request_id != old
    late = run.feed(Generated(old, "too late"))
    assert _codes(late) == [Reason.UNKNOWN_REQUEST]
    run.answer()
    run.advance(60)
    assert len(run.sends()) == 1


def test_recover_resumes_typing(run: Run) -> None:
    _typing(run)
    out = _crash(run, 1)
    assert Typing(ALICE, True) in out and _codes(out) == [Reason.RECOVERED]
    run.advance(60)
    assert len(run.sends()) == 1


def test_recover_reports_an_unknown_send_and_does_not_repeat_it(run: Run) -> None:
    _idle(run)
    rid = run.sends()[0].request_id
    out = _crash(run, 2)
    assert _codes(out) == [Reason.SEND_UNKNOWN]
    late = run.feed(SendConfirmed(rid, "wa1"))
    assert _codes(late) == [Reason.UNKNOWN_REQUEST]
    run.advance(86400)
    assert len(run.sends()) == 1


def test_recover_after_confirmation_reports_nothing(run: Run) -> None:
    _idle(run)
    run.confirm("wa1")
    assert _codes(_crash(run, 2)) == []


def test_recover_drops_stale_replies(run: Run) -> None:
    _waiting(run)
    out = _crash(run, 120 + 3601)
    assert _codes(out).count(Reason.STALE) == 2
    run.advance(86400)
    assert run.effects(Generate) == []


def test_recover_fires_a_slightly_late_reply(run: Run) -> None:
    _waiting(run)
    out = _crash(run, 600)
    assert _codes(out) == [Reason.RECOVERED, Reason.RECOVERED]
    out = run.advance(0)
    assert len([e for e in out if isinstance(e, Generate)]) == 2


def test_restore_refuses_an_unknown_version(run: Run) -> None:
    state = run.a.export()
    state["version"] = 999
    with pytest.raises(ValueError, match="version"):
        Assistant.restore(state)


def test_take_dirty_lists_changed_chats(run: Run) -> None:
    run.msg("hi", chat=ALICE)
    run.msg("hi", chat=BOB)
    assert run.a.take_dirty() == {ALICE, BOB}
    assert run.a.take_dirty() == set()
    run.advance(120)
    assert run.a.take_dirty() == {ALICE, BOB}
    assert isinstance(run.effects(Send), list)
