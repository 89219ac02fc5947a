"""Bad input never raises out of the core; a Decision trace explains what happened."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wapa.core import (
    Assistant,
    Command,
    Decision,
    Effect,
    Generate,
    Generated,
    GenerationFailed,
    Message,
    Reason,
    Send,
    SendConfirmed,
    SendFailed,
)

from tests.support.compiled import ILL_TYPED_FIELDS
from tests.support.core_run import ALICE, PERSONA, T0, Run


def _codes(out: list[Effect]) -> list[str]:
    return [e.code for e in out if isinstance(e, Decision)]


@pytest.mark.parametrize(
    "event",
    [
        Generated("r999", "hello"),
        GenerationFailed("r999", "timeout"),
        SendConfirmed("r999", "wa1"),
        SendFailed("r999", "gone"),
        pytest.param(Generated(None, "x"), marks=ILL_TYPED_FIELDS),  # type: ignore[arg-type]
    ],
)
def test_results_for_unknown_requests(run: Run, event: Any) -> None:
    assert _codes(run.feed(event)) == [Reason.UNKNOWN_REQUEST]


def test_result_with_an_unhashable_request_id(run: Run) -> None:
    assert _codes(run.feed(SendConfirmed(["r1"], "wa"))) == [Reason.BAD_EVENT]  # type: ignore[arg-type]


def test_result_for_a_stale_request(run: Run) -> None:
    run.msg("hello")
    run.advance(120)
    rid = run.pending()[0].request_id
    run.msg("more", dt=5)  # restarts: rid is stale now
    assert _codes(run.feed(Generated(rid, "old"))) == [Reason.UNKNOWN_REQUEST]
    assert _codes(run.feed(GenerationFailed(rid, "x"))) == [Reason.UNKNOWN_REQUEST]


def test_second_result_for_the_same_request(run: Run) -> None:
    run.msg("hello")
    run.advance(120)
    rid = run.pending()[0].request_id
    run.answer()
    assert _codes(run.feed(Generated(rid, "again"))) == [Reason.UNKNOWN_REQUEST]


def test_events_out_of_time_order_are_treated_as_now(run: Run) -> None:
    run.msg("hello")
    out = run.a.handle(Message(ALICE, ALICE, "late", "older"), T0 - 3600)
    assert _codes(out)[0] == Reason.CLOCK_SKEW
    assert all(d.t == T0 for d in out if isinstance(d, Decision))
    assert _codes(run.a.on_timer(T0 - 10)) == [Reason.CLOCK_SKEW]


@pytest.mark.parametrize("bad", [math.nan, None, "noon", math.inf, -math.inf, 1e300, True])
def test_bad_times_are_refused_and_do_not_move_the_clock(run: Run, bad: Any) -> None:
    run.msg("hello")
    out = run.a.handle(Message(ALICE, ALICE, "x2", "more"), bad)
    assert _codes(out)[0] == Reason.BAD_EVENT
    out = run.a.on_timer(bad)
    assert _codes(out) == [Reason.BAD_EVENT]
    assert run.a.now == T0
    state = json.dumps(run.a.export(), allow_nan=False)  # still strict JSON
    assert state
    run.advance(3600)
    assert len(run.effects(Generate)) == 1


@pytest.mark.parametrize("bad", [math.nan, None, math.inf])
def test_bad_time_before_any_good_time(bad: Any) -> None:
    a = Assistant(persona=PERSONA)
    out = a.handle(Message(ALICE, ALICE, "x1", "hello"), bad)
    assert _codes(out) == [Reason.BAD_EVENT]
    assert all(math.isfinite(d.t) for d in out if isinstance(d, Decision))
    assert a.next_deadline() is None
    json.dumps(a.export(), allow_nan=False)


@pytest.mark.parametrize(
    "text", ["", "x" * 1_000_000, "bad \ud800 surrogate", "\udfff", "\x00\x00"]
)
def test_odd_texts(run: Run, text: str) -> None:
    run.msg(text)
    run.advance(3600)
    for g in run.effects(Generate):
        for m in g.messages:
            m.content.encode("utf-8")  # never a lone surrogate towards the model
    json.dumps(run.a.export(), allow_nan=False).encode("utf-8")


def test_lone_surrogates_in_a_model_reply(run: Run) -> None:
    run.msg("hello")
    run.advance(120)
    run.answer("Gilad is out \ud83d right now.")
    run.advance(60)
    (send,) = run.sends()
    send.text.encode("utf-8")


def test_one_megabyte_model_reply_is_capped(run: Run) -> None:
    run.msg("hello")
    run.advance(120)
    run.answer("Gilad is busy. " * 70_000)
    run.advance(60)
    (send,) = run.sends()
    assert len(send.text) <= run.policy.max_reply_chars


@pytest.mark.parametrize(
    "fields",
    [
        {"chat": 42},
        {"chat": None},
        {"id": None},
        {"text": None},
        {"text": 12345},
        {"sender": None},
        {"mentions": ["owner@s.whatsapp.net"]},
        {"mentions": None},
        {"media": 7},
        {"kind": None},
        {"participants": "many", "is_group": True, "chat": "g@g.us"},
        {"group_title": ["x"], "is_group": True, "chat": "g@g.us"},
        {"quoted_id": 5, "is_group": True, "chat": "g@g.us"},
        {"sender_name": {"a": 1}},
        {"from_me": "yes"},
    ],
)
def test_wrong_field_types_never_raise(run: Run, fields: dict[str, Any]) -> None:
    base: dict[str, Any] = {"chat": ALICE, "sender": ALICE, "id": "w1", "text": "hello"}
    base.update(fields)
    out = run.feed(Message(**base))
    assert _codes(out), "every input leaves a trace"
    run.advance(3600)
    json.dumps(run.a.export(), allow_nan=False)


def test_wrong_types_in_results_and_commands(run: Run) -> None:
    run.msg("hello")
    run.advance(120)
    rid = run.pending()[0].request_id
    assert _codes(run.feed(GenerationFailed(rid, None)))  # type: ignore[arg-type]
    assert _codes(run.feed(Command(None)))  # type: ignore[arg-type]
    assert _codes(run.feed(Command("mute", None)))  # type: ignore[arg-type]


@ILL_TYPED_FIELDS
def test_a_model_reply_that_is_not_text(run: Run) -> None:
    run.msg("hello")
    run.advance(120)
    out = run.feed(Generated(run.pending()[0].request_id, None))  # type: ignore[arg-type]
    assert Reason.REJECTED in _codes(out)
    run.advance(60)
    assert run.sends() == []


@pytest.mark.parametrize("event", [object(), "Message", 42, None, {"type": "Message"}])
def test_unknown_event_objects(run: Run, event: Any) -> None:
    assert _codes(run.feed(event)) == [Reason.BAD_EVENT]


def test_unknown_command(run: Run) -> None:
    out = run.feed(Command("selfdestruct"))
    assert Reason.COMMAND in _codes(out)


def test_send_for_a_chat_never_seen(run: Run) -> None:
    assert run.feed(SendFailed("r1")) and not any(isinstance(e, Send) for _, e in run.log)


# ---------------------------------------------------------------- garbage of every JSON shape

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=5,
)
FIELDS = [f for f in Message.__dataclass_fields__ if f not in ("chat", "id")]


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    chat=st.sampled_from([ALICE, "g@g.us"]) | JSONISH,
    overrides=st.dictionaries(st.sampled_from(FIELDS), JSONISH, max_size=4),
    result=st.sampled_from([Generated, GenerationFailed, SendConfirmed, SendFailed]),
    junk=JSONISH,
)
def test_garbage_never_raises_and_state_stays_json(
    chat: Any, overrides: dict[str, Any], result: type, junk: Any
) -> None:
    run = Run()
    run.msg("hello")
    out = run.feed(Message(chat=chat, id="g1", **{"sender": ALICE, **overrides}))
    assert _codes(out)
    run.advance(120)
    rid = run.pending()[0].request_id if run.pending() else "r1"
    run.feed(result(rid, junk))
    run.advance(3600)
    state = json.loads(json.dumps(run.a.export(), allow_nan=False))
    assert Assistant.restore(state, run.policy, run.persona).export() == state


@pytest.mark.parametrize("sender", [math.nan, {"x": 1}, object(), ["a"], 7])
def test_a_strange_sender_never_poisons_the_state(run: Run, sender: Any) -> None:
    run.feed(Message(ALICE, sender, "s1", "hello"))
    state = json.dumps(run.a.export(), allow_nan=False)
    assert Assistant.restore(json.loads(state), run.policy, run.persona).export() == json.loads(
        state
    )
