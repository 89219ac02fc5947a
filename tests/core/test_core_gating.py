"""Rules 6 (what is ignored), 7 (quiet hours) and 8 (caps)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from wapa.core import Decision, Generate, Reason, Send

from tests.support.core_run import ALICE, BOB, MakeRun, Run

BERLIN = ZoneInfo("Europe/Berlin")
UTC = ZoneInfo("UTC")

# ---------------------------------------------------------------- rule 6: ignored


def _codes(out: Sequence[object]) -> list[str]:
    return [e.code for e in out if isinstance(e, Decision)]


@pytest.mark.parametrize("kind", ["reaction", "system", "status", "protocol"])
def test_non_message_kinds_are_ignored(run: Run, kind: str) -> None:
    assert _codes(run.msg("👍", kind=kind)) == [Reason.IGNORED]
    run.advance(3600)
    assert run.effects(Generate) == []


def test_status_broadcast_is_ignored(run: Run) -> None:
    assert _codes(run.msg("my holiday pics", chat="status@broadcast")) == [Reason.IGNORED]


@pytest.mark.parametrize("text", ["", "   \n\t", "\x00"])
def test_empty_messages_are_ignored(run: Run, text: str) -> None:
    assert _codes(run.msg(text)) == [Reason.IGNORED]
    run.advance(3600)
    assert run.effects(Generate) == []


def test_redelivered_ids_are_dropped(run: Run) -> None:
    run.msg("hello", id="dup")
    sent = run.reply_cycle()
    run.advance(6 * 3600)  # past the cooldown: a new message would get a reply
    assert _codes(run.msg("hello", id="dup")) == [Reason.DUPLICATE]
    run.advance(3600)
    assert run.sends() == [sent]


def test_remembered_ids_are_bounded(make_run: MakeRun) -> None:
    r = make_run({"remembered_ids": 3})
    for i in range(5):
        r.msg("x", id=f"id{i}")
    assert len(bytes.fromhex(r.a.export()["chats"][ALICE]["seen"])) == 3 * 8  # 8-byte hashes
    assert _codes(r.msg("x", id="id4")) == [Reason.DUPLICATE]
    assert _codes(r.msg("x", id="id0")) != [Reason.DUPLICATE]  # forgotten, by design


@pytest.mark.parametrize(
    ("policy", "chat", "sender", "allowed"),
    [
        ({"deny": [ALICE]}, ALICE, ALICE, False),
        ({"deny": ["team@g.us"]}, "team@g.us", BOB, False),
        ({"deny": ["carol@s.whatsapp.net"]}, "team@g.us", "carol@s.whatsapp.net", False),
        ({"allow": [BOB]}, ALICE, ALICE, False),
        ({"allow": [BOB]}, BOB, BOB, True),
    ],
)
def test_deny_and_allow_lists(
    make_run: MakeRun, policy: dict[str, Any], chat: str, sender: str, allowed: bool
) -> None:
    r = make_run(policy)
    out = r.msg("@Gilad hello", chat=chat, sender=sender)
    assert (_codes(out) == [Reason.DENIED]) is not allowed
    r.advance(3600)
    assert bool(r.effects(Generate)) is allowed


def test_media_without_text_is_a_placeholder_in_context(run: Run) -> None:
    run.msg("", media="voice")
    run.msg("look", media="image", dt=10)
    run.advance(3600)
    (gen,) = run.effects(Generate)
    assert [m.content for m in gen.messages[1:]] == ["[voice message]", "[photo] look"]


# ---------------------------------------------------------------- rule 7: quiet hours


def _at(y: int, mo: int, d: int, h: int, mi: int, tz: tzinfo = BERLIN) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=tz).timestamp()


def _quiet_run(make_run: MakeRun, start: float) -> Run:
    policy = {"quiet_hours": {"start": "22:00", "end": "07:00", "tz": "Europe/Berlin"}}
    return make_run(policy, t0=start)


@pytest.mark.parametrize(
    ("sent_at", "wake_utc"),
    [
        # an ordinary winter night
        ((2024, 1, 10, 23, 0), (2024, 1, 11, 6, 0)),
        # after midnight, same window
        ((2024, 1, 11, 3, 0), (2024, 1, 11, 6, 0)),
        # the night the clocks go forward (31 March 2024): 07:00 CEST is 05:00 UTC
        ((2024, 3, 30, 23, 0), (2024, 3, 31, 5, 0)),
        # the night they go back (27 October 2024): 07:00 CET is 06:00 UTC
        ((2024, 10, 26, 23, 30), (2024, 10, 27, 6, 0)),
    ],
)
def test_quiet_hours_cross_midnight_in_berlin(
    make_run: MakeRun,
    sent_at: tuple[int, int, int, int, int],
    wake_utc: tuple[int, int, int, int, int],
) -> None:
    r = _quiet_run(make_run, _at(*sent_at))
    r.msg("hello")
    r.advance(120)
    assert r.effects(Generate) == []
    assert Reason.QUIET_HOURS in r.codes(ALICE)
    r.advance(86400)
    assert [t for t, _ in r.timed(Generate)] == [_at(*wake_utc, tz=UTC)]


def test_outside_quiet_hours_nothing_waits(make_run: MakeRun) -> None:
    r = _quiet_run(make_run, _at(2024, 1, 10, 21, 50))
    r.msg("hello")
    r.advance(3600)
    assert [t for t, _ in r.timed(Generate)] == [_at(2024, 1, 10, 21, 52)]


def test_urgent_messages_bypass_quiet_hours(make_run: MakeRun) -> None:
    r = _quiet_run(make_run, _at(2024, 1, 10, 23, 0))
    r.msg("emergency, call me")
    r.advance(60)
    assert [t for t, _ in r.timed(Generate)] == [_at(2024, 1, 10, 23, 0) + 15]


def test_quiet_hours_window_inside_one_day(make_run: MakeRun) -> None:
    r = make_run(
        {"quiet_hours": {"start": "13:00", "end": "15:00", "tz": "Asia/Tokyo"}},
        t0=_at(2024, 5, 1, 14, 0, ZoneInfo("Asia/Tokyo")),
    )
    r.msg("hello")
    r.advance(86400)
    assert [t for t, _ in r.timed(Generate)] == [_at(2024, 5, 1, 15, 0, ZoneInfo("Asia/Tokyo"))]


# ---------------------------------------------------------------- rule 8: caps


def test_per_chat_cap_drops_with_a_trace(make_run: MakeRun) -> None:
    r = make_run({"cooldown": 0, "caps": {"per_chat_per_day": 2}})
    for _ in range(3):
        r.msg("hello", dt=600)
        r.advance(120)
        if r.pending():
            r.answer()
            r.advance(60)
    assert len(r.sends()) == 2
    capped = [d for d in r.effects(Decision) if d.code == Reason.CAPPED]
    assert len(capped) == 1 and "2 replies in this chat" in capped[0].detail
    assert r.a.next_deadline() is None  # dropped, not queued
    r.advance(86400)
    r.msg("a day later")
    r.reply_cycle()
    assert len(r.sends()) == 3


def test_global_hourly_cap(make_run: MakeRun) -> None:
    r = make_run({"caps": {"per_hour": 2}})
    chats = [f"c{i}@s.whatsapp.net" for i in range(3)]
    for chat in chats:
        r.msg("hi", chat=chat, dt=200)
        r.advance(120)
        if r.pending():
            r.answer()
        r.advance(60)
    assert [s.chat for s in r.sends()] == chats[:2]
    assert [d.chat for d in r.effects(Decision) if d.code == Reason.CAPPED] == [chats[2]]


def test_global_daily_cap(make_run: MakeRun) -> None:
    r = make_run({"caps": {"per_day": 1, "per_hour": 0}})
    r.msg("hi", chat=ALICE)
    r.reply_cycle()
    r.msg("hi", chat=BOB, dt=7200)
    r.advance(3600)
    assert len(r.sends()) == 1 and Reason.CAPPED in r.codes(BOB)


def test_cap_is_checked_again_before_sending(make_run: MakeRun) -> None:
    r = make_run({"caps": {"per_hour": 1}})
    r.msg("hi", chat=ALICE)
    r.msg("hi", chat=BOB)
    r.advance(120)  # both chats generate: the cap is not reached yet
    assert len(r.effects(Generate)) == 2
    r.answer()
    r.answer()
    out = r.advance(60)
    assert len([e for e in out if isinstance(e, Send)]) == 1
    capped = [d for d in r.effects(Decision) if d.code == Reason.CAPPED]
    assert len(capped) == 1 and "before sending" in capped[0].detail
