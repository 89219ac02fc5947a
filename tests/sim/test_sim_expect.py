"""Expectation failures explain themselves: an `at` missed by the reply's model latency and
typing says when the reply's turn began."""

from __future__ import annotations

from wapa.sim.scenario import load_text
from wapa.sim.suite import run_scenario

ISSUE_EXAMPLE = """\
name: the issue's example
chats:
  alice: {name: Alice}
script:
  - {at: 0s, chat: alice, text: "Hi! Are you free tomorrow?"}
expect:
  - {reply: alice, at: %s, within: %s}
"""


def _failures(at: str, within: str) -> list[str]:
    return run_scenario(load_text(ISSUE_EXAMPLE % (at, within), "x.yaml")).failures


def test_a_reply_at_the_deadline_is_sent_after_model_and_typing() -> None:
    assert _failures("2m", "30s") == []
    [failure] = _failures("2m", "1s")
    lines = failure.splitlines()
    assert lines[0] == (
        "expect[0] (line 7): expected a reply in alice at +2m (±1s): none was sent "
        "(replies there at +2m14.1s)"
    )
    assert lines[1] == (
        "  `at` is the time of the send. This reply's turn began at +2m (09:02:00: `generating`, "
        "the message read, typing on, the model asked); the model answered at +2m0.8s, and "
        "typing ran until the send at +2m14.1s (14.1s after the turn began)."
    )
    assert lines[2] == (
        "  Widen `within` (default 30s), or expect the turn itself: "
        "{decision: generating, chat: alice, at: 2m, within: 1s}"
    )


def test_the_suggested_decision_expectation_holds() -> None:
    text = ISSUE_EXAMPLE.replace(
        "{reply: alice, at: %s, within: %s}",
        "{decision: generating, chat: alice, at: 2m, within: 1s}",
    )
    assert run_scenario(load_text(text, "x.yaml")).passed


def test_a_reply_a_minute_or_more_away_gets_no_turn_note() -> None:
    [failure] = _failures("4m", "1s")
    assert "none was sent (replies there at +2m14.1s)" in failure
    assert "turn began" not in failure
    [early] = _failures("2m10s", "1s")  # 2.7 s too early for the window: explained too
    assert "This reply's turn began at +2m" in early
