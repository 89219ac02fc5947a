"""Rule 4: urgency (word-boundary keywords, bursts, emphasis) and the bounded breakthrough."""

from __future__ import annotations

from typing import Any

import pytest
from wapa.core import Decision, Generate, Policy, Reason, SendFailed
from wapa.core.urgency import keyword_pattern, score

from tests.support.core_run import ALICE, T0, MakeRun, Run

PATTERN = keyword_pattern(Policy().urgent_keywords)


@pytest.mark.parametrize(
    "text",
    [
        "URGENT",
        "this is urgent.",
        "Emergency!",
        "please call me",
        "ich brauche das dringend",
        "es urgente",
        "זה דחוף",
        "c'est l'urgence",
        "come RIGHT   NOW",
    ],
)
def test_keywords_match_on_word_boundaries(text: str) -> None:
    assert score(text, PATTERN, False) >= 2


@pytest.mark.parametrize(
    "text",
    ["nonurgent stuff", "the network is down", "I know", "insurgent", "emergencyroom", "callme"],
)
def test_keywords_do_not_match_inside_words(text: str) -> None:
    assert score(text, PATTERN, False) == 0


def test_know_does_not_match_now_and_network_does_not_match_work() -> None:
    pattern = keyword_pattern(["now", "work"])
    assert score("I know", pattern, False) == 0
    assert score("the network", pattern, False) == 0
    assert score("now", pattern, False) == 2
    assert score("at work", pattern, False) == 2


def test_emphasis_and_burst_each_score_one() -> None:
    assert score("come here!!!", PATTERN, False) == 1
    assert score("WHERE ARE YOU GILAD", PATTERN, False) == 1
    assert score("where are you", PATTERN, True) == 1
    assert score("where are you!!!", PATTERN, True) == 2


def _generation_delay(run: Run, text: str) -> float:
    start = run.t
    run.msg(text)
    run.advance(3600)
    return run.timed(Generate)[0][0] - start


def test_urgent_message_uses_urgent_delay(run: Run) -> None:
    assert _generation_delay(run, "urgent: call me please") == 15


def test_network_is_not_urgent_for_work_keyword(make_run: MakeRun) -> None:
    r = make_run({"urgent_keywords": ["work", "now"]})
    assert _generation_delay(r, "the network is slow, I know") == 120


def test_burst_plus_emphasis_is_urgent(run: Run) -> None:
    run.msg("hey")
    run.msg("hey", dt=5)
    out = run.msg("ANSWER THE PHONE PLEASE", dt=5)
    assert Reason.URGENT in [e.code for e in out if isinstance(e, Decision)]
    run.advance(600)
    assert [t for t, _ in run.timed(Generate)] == [T0 + 25]


_TOLD = (Reason.ESCALATED, Reason.NOT_ESCALATED, Reason.ESCALATION_HELD)


def _reply_codes(out: list[Any]) -> list[str]:
    """The reply pipeline's decisions (rule 14's escalation decisions are another rule's)."""
    return [e.code for e in out if isinstance(e, Decision) and e.code not in _TOLD]


def test_urgent_message_breaks_a_reply_cooldown_once(run: Run) -> None:
    run.msg("hello")
    run.reply_cycle()
    run.msg("thanks", dt=600)  # plain message: cooldown holds
    out = run.msg("it's an emergency, call me", dt=600)
    assert Reason.BREAKTHROUGH in [e.code for e in out if isinstance(e, Decision)]
    run.reply_cycle()
    assert len(run.sends()) == 2
    # a second urgent message inside the (renewed) cooldown does not break through again
    out = run.msg("URGENT again!!!", dt=600)
    assert _reply_codes(out) == [Reason.COOLDOWN]
    for _ in range(5):
        run.msg("urgent, urgent", dt=1800)
    run.advance(3600)
    assert len(run.sends()) == 2
    assert run.codes(ALICE).count(Reason.BREAKTHROUGH) == 1


def test_breakthrough_is_available_again_after_the_cooldown(run: Run) -> None:
    run.msg("hello")
    run.reply_cycle()
    run.msg("urgent!", dt=60)
    run.reply_cycle()
    run.advance(5 * 3600 + 60)
    run.msg("hi")  # after the cooldown: a normal reply
    run.reply_cycle()
    run.msg("urgent, call me", dt=60)
    assert run.codes(ALICE).count(Reason.BREAKTHROUGH) == 2


def test_urgent_message_does_not_break_an_owner_cooldown(run: Run) -> None:
    run.msg("hello")
    run.reply_cycle()
    run.owner("I'll call you later", dt=30)
    out = run.msg("URGENT call me now!!!", dt=60)
    assert _reply_codes(out) == [Reason.COOLDOWN]
    cooldown = next(e for e in out if isinstance(e, Decision) and e.code == Reason.COOLDOWN)
    assert "owner wrote" in cooldown.detail


def test_an_earlier_send_failing_keeps_the_breakthrough_cooldown(run: Run) -> None:
    run.msg("hello")
    first = run.reply_cycle()
    run.msg("urgent: call me", dt=60)
    run.reply_cycle()
    run.feed(SendFailed(first.request_id, "late failure"), dt=5)  # the second send stands
    out = run.msg("ok, and?", dt=600)
    assert [e.code for e in out if isinstance(e, Decision)] == [Reason.COOLDOWN]
    run.advance(3600)
    assert len(run.sends()) == 2
