"""Rules 1 (delay and debounce), 2 (cooldown) and 9 (human pacing)."""

from __future__ import annotations

import pytest
from wapa.core import Decision, Generate, Generated, MarkRead, Reason, Send, Typing

from tests.support.core_run import ALICE, BOB, T0, MakeRun, Run

# ---------------------------------------------------------------- rule 1: delay and debounce


def test_single_message_is_answered_after_response_delay(run: Run) -> None:
    run.msg("hello")
    run.advance(119.9)
    assert run.effects(Generate) == []
    run.advance(0.1)
    assert [t for t, _ in run.timed(Generate)] == [T0 + 120]


def test_two_messages_30s_apart_get_one_generation_at_150s(run: Run) -> None:
    run.msg("hello")
    run.msg("are you there?", dt=30)
    run.advance(3600)
    assert [t for t, _ in run.timed(Generate)] == [T0 + 150]
    assert run.codes(ALICE)[:2] == [Reason.SCHEDULED, Reason.DEBOUNCED]


def test_debounce_never_passes_max_wait(run: Run) -> None:
    run.msg("1")
    for _ in range(8):  # one message every 100 s: each would push the deadline 120 s further
        run.msg("more", dt=100)
    gens = run.timed(Generate)
    assert [t for t, _ in gens] == [T0 + 600]
    assert Reason.MAX_WAIT in run.codes(ALICE)


def test_rapid_messages_get_one_reply(run: Run) -> None:
    for i in range(6):
        run.msg(f"part {i}", dt=2)
    run.reply_cycle()
    run.advance(3600)
    assert len(run.sends()) == 1
    assert len(run.effects(Generate)) == 1


def test_chats_are_debounced_independently(run: Run) -> None:
    run.msg("hi", chat=ALICE)
    run.msg("hi", chat=BOB, dt=60)
    run.advance(600)
    assert [(t, g.chat) for t, g in run.timed(Generate)] == [(T0 + 120, ALICE), (T0 + 180, BOB)]


# ---------------------------------------------------------------- rule 2: cooldown


def test_cooldown_after_a_reply(run: Run) -> None:
    run.msg("hello")
    sent = run.reply_cycle()
    run.msg("thanks!", dt=3600)
    run.advance(3 * 3600)
    assert run.sends() == [sent]
    decision = [d for d in run.effects(Decision) if d.code == Reason.COOLDOWN]
    assert decision and "replied" in decision[0].detail


def test_cooldown_ends_after_five_hours(run: Run) -> None:
    run.msg("hello")
    run.reply_cycle()
    t_sent = run.timed(Send)[0][0]
    run.advance(t_sent + 5 * 3600 - run.t)  # exactly at the end of the cooldown
    run.msg("me again")
    run.reply_cycle()
    assert len(run.sends()) == 2


def test_cooldown_is_a_setting(make_run: MakeRun) -> None:
    r = make_run({"cooldown": "10m"})
    r.msg("hello")
    r.reply_cycle()
    r.msg("again", dt=11 * 60)
    r.reply_cycle()
    assert len(r.sends()) == 2


# ---------------------------------------------------------------- rule 9: human pacing


def test_deadline_marks_read_then_types_then_generates(run: Run) -> None:
    run.msg("hello", id="a1")
    run.msg("you there?", id="a2", dt=5)
    out = run.advance(125)
    kinds = [type(e) for e in out]
    assert kinds[:3] == [MarkRead, Typing, Generate]
    assert out[0] == MarkRead(ALICE, ("a1", "a2"))
    assert out[1] == Typing(ALICE, True)
    assert isinstance(out[3], Decision) and out[3].code == Reason.GENERATING


def test_send_waits_for_a_typing_time_proportional_to_length(run: Run) -> None:
    run.msg("hello")
    run.advance(120)
    t_gen = run.t
    text = "x" * 79 + "."  # 80 chars at 8 chars/s: 10 s of typing, +-20 %
    run.answer(text, dt=1)
    out = run.advance(60)
    (t_send, send) = run.timed(Send)[0]
    assert 8.0 <= t_send - t_gen <= 12.0
    assert send.text.lower() == text.lower()
    assert out.index(Typing(ALICE, False)) < out.index(send)


@pytest.mark.parametrize(
    ("text", "low", "high"), [("Ok.", 1.6, 2.4), ("y" * 590 + ".", 20.0, 30.0)]
)
def test_typing_time_is_bounded(run: Run, text: str, low: float, high: float) -> None:
    run.msg("hello")
    run.advance(120)
    t_gen = run.t
    run.answer(text)
    run.advance(60)
    t_send = run.timed(Send)[0][0]
    assert low <= t_send - t_gen <= high


def _send_delay(seed: int) -> float:
    r = Run(seed=seed)
    r.msg("hello")
    r.advance(120)
    t_gen = r.t
    r.answer("A reply of some forty characters or so.")
    r.advance(60)
    return r.timed(Send)[0][0] - t_gen


def test_typing_jitter_is_seeded() -> None:
    assert _send_delay(7) == _send_delay(7)
    assert len({_send_delay(s) for s in range(6)}) > 1


def test_a_slow_model_sends_at_once_after_the_typing_time(run: Run) -> None:
    run.msg("hello")
    run.advance(120)
    t_answer = run.t + 40
    run.answer("Fine.", dt=40)  # the model took longer than any typing time
    run.advance(0)
    assert [t for t, _ in run.timed(Send)] == [t_answer]


def test_new_message_during_generation_restarts_the_debounce(run: Run) -> None:
    run.msg("hello")
    run.advance(120)
    first = run.pending()[0]
    out = run.msg("one more thing", dt=10)
    assert Typing(ALICE, False) in out
    assert Reason.RESTARTED in [e.code for e in out if isinstance(e, Decision)]
    late = run.feed(Generated(first.request_id, "stale answer"))
    assert [e.code for e in late if isinstance(e, Decision)] == [Reason.UNKNOWN_REQUEST]
    run.advance(600)
    assert [t for t, _ in run.timed(Generate)] == [T0 + 120, T0 + 130 + 120]
    assert run.sends() == []


def test_new_message_during_typing_restarts_too(run: Run) -> None:
    run.msg("hello")
    run.advance(120)
    run.answer("x" * 160 + ".")  # 20 s of typing
    run.msg("wait", dt=5)
    run.advance(3)
    assert run.sends() == []
    assert len(run.effects(Generate)) == 1
    run.advance(200)
    assert len(run.effects(Generate)) == 2


def test_new_message_past_max_wait_keeps_the_reply_under_way(run: Run) -> None:
    run.msg("1")
    for _ in range(6):
        run.msg("more", dt=100)  # generation starts at T0 + 600
    out = run.msg("and another", dt=5)
    assert [e.code for e in out if isinstance(e, Decision)] == [Reason.KEPT]
    run.answer()
    run.advance(60)
    assert len(run.sends()) == 1 and len(run.effects(Generate)) == 1


def test_restart_during_typing_waits_a_full_delay_again(make_run: MakeRun) -> None:
    """A restart must not inherit the typing deadline as its reply deadline."""
    r = make_run({"holding_message": "Gilad will get back to you soon."})
    r.msg("urgent: call me")
    r.advance(15)
    r.fail("timeout")  # the holding message starts typing (~4 s)
    r.msg("hello?", dt=0.5)
    r.advance(600)
    assert [t for t, _ in r.timed(Generate)] == [T0 + 15, T0 + 15.5 + 15]
