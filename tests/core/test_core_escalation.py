"""Rule 14, escalation: an urgent contact message is told to the owner at once, within bounds."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wapa.core import Assistant, Decision, Notice, NoticeKind, Policy, Reason, Send
from wapa.core.escalation import QUOTE_CHARS, clean, notice_line
from wapa.core.events import MediaText

from tests.support.core_run import ALICE, BOB, GROUP, OWNER, T0, MakeRun, Run

CAROL = "carol@s.whatsapp.net"
BERLIN_NIGHT = 1_767_652_200.0  # 2026-01-05 22:30 UTC: 23:30 in Berlin
QUIET = {"quiet_hours": {"start": "22:00", "end": "07:00", "tz": "Europe/Berlin"}}


def escalations(run: Run) -> list[Notice]:
    return [n for n in run.effects(Notice) if n.kind == NoticeKind.ESCALATION]


def test_an_urgent_message_is_told_to_the_owner_at_once(run: Run) -> None:
    out = run.msg("the server is down, call me", sender_name="Dana")
    assert Notice('Urgent from Dana: "the server is down, call me" (direct)', "escalation") in out
    assert Reason.ESCALATED in [e.code for e in out if isinstance(e, Decision)]


def test_an_ordinary_message_is_not_told(run: Run) -> None:
    run.msg("see you friday", sender_name="Dana")
    run.reply_cycle()
    assert escalations(run) == []


def test_once_per_chat_per_cooldown(make_run: MakeRun) -> None:
    run = make_run({"cooldown": "1h"})
    run.msg("urgent: call me", sender_name="Dana")
    run.msg("URGENT!!! please", sender_name="Dana", dt=600)
    run.msg("urgent, another chat", chat=BOB, sender_name="Bob")
    assert len(escalations(run)) == 2
    assert "told already within the cooldown" in " ".join(
        d.detail for d in run.effects(Decision) if d.code == Reason.NOT_ESCALATED
    )
    run.msg("urgent again, an hour later", sender_name="Dana", dt=3600)
    assert len(escalations(run)) == 3


def test_whatever_the_reply_pipeline_does(run: Run) -> None:
    """Paused, muted or cooling down, the owner still hears of an urgent message."""
    run.msg("hello", sender_name="Alice")
    run.reply_cycle()  # cooling down now
    run.msg("mute Alice", chat=OWNER, from_me=True)
    run.msg("pause", chat=OWNER, from_me=True)
    run.msg("emergency at home", sender_name="Alice", dt=60)
    assert [n.text for n in escalations(run)] == ['Urgent from Alice: "emergency at home" (direct)']


def test_groups_only_when_the_owner_is_addressed(run: Run) -> None:
    kw: dict[str, Any] = {"chat": GROUP, "sender_name": "Carl", "group_title": "Ops"}
    run.msg("URGENT the build is broken", **kw)
    assert escalations(run) == []
    run.msg("@Gilad urgent, call me", mentions=(OWNER,), **kw)
    assert [n.text for n in escalations(run)] == [
        'Urgent from Carl in "Ops": "@Gilad urgent, call me" (group, you were addressed)'
    ]


def test_a_backlog_message_is_not_escalated(run: Run) -> None:
    run.msg("urgent!", sent_at=T0 - 7200)
    assert escalations(run) == []


def test_the_off_switch(make_run: MakeRun) -> None:
    run = make_run({"escalate": False})
    out = run.msg("urgent, call me")
    assert not escalations(run)
    assert [d.detail for d in out if isinstance(d, Decision) and d.code == "not_escalated"] == [
        "escalation is off"
    ]
    assert "Escalation is off." in run.a.status(run.t)


def test_the_per_day_cap(make_run: MakeRun) -> None:
    run = make_run({"escalate_per_day": 2})
    for chat in (ALICE, BOB, CAROL):
        run.msg("urgent!", chat=chat, dt=60)
    assert len(escalations(run)) == 2
    capped = [d for d in run.effects(Decision) if d.code == Reason.NOT_ESCALATED]
    assert [d.chat for d in capped] == [CAROL] and "2 escalations within a day" in capped[0].detail
    run.msg("urgent, the next day", chat=CAROL, dt=86400)
    assert len(escalations(run)) == 3


def test_quiet_hours_hold_it_and_one_notice_tells_all_when_they_end(make_run: MakeRun) -> None:
    run = make_run(QUIET, t0=BERLIN_NIGHT)
    run.msg("emergency, water everywhere", sender_name="Eli")
    run.msg("urgent: call me", chat=BOB, sender_name="Bob", dt=600)
    assert escalations(run) == []
    wake = 1_767_679_200.0  # 2026-01-06 06:00 UTC: 07:00 in Berlin
    assert run.a.next_deadline() is not None
    run.advance(wake - run.t - 1)
    assert escalations(run) == []
    run.advance(1)
    told = run.timed(Notice)
    assert [(t, n.kind) for t, n in told if n.kind == "escalation"] == [(wake, "escalation")]
    text = escalations(run)[0].text
    assert text.startswith("During quiet hours:\n- Urgent from Eli")
    assert 'Urgent from Bob at 23:40: "urgent: call me" (direct)' in text
    assert "Held for the end" not in run.a.status(run.t)


def test_escalate_in_quiet_hours_tells_at_once(make_run: MakeRun) -> None:
    run = make_run({**QUIET, "escalate_in_quiet_hours": True}, t0=BERLIN_NIGHT)
    run.msg("emergency", sender_name="Eli")
    assert len(escalations(run)) == 1


def test_held_escalations_survive_a_restart(make_run: MakeRun) -> None:
    run = make_run(QUIET, t0=BERLIN_NIGHT)
    run.msg("emergency", sender_name="Eli")
    state = json.loads(json.dumps(run.a.export(), allow_nan=False))
    run.a = Assistant.restore(state, run.policy, run.persona)
    assert run.a.export() == state
    run.advance(9 * 3600)
    assert [n.text for n in escalations(run)] == [
        'During quiet hours: Urgent from Eli at 23:30: "emergency" (direct)'
    ]


def test_the_notice_is_cut_and_cleaned() -> None:
    hostile = "call me \u202egnp.exe\u202c now\x07\x1b[31m " + "x" * 400
    line = notice_line("Da\u200bna\u2066", "", hostile, False)
    assert "\u202e" not in line and "\x1b" not in line and "\x07" not in line
    assert "\u200b" not in line and "\u2066" not in line
    quoted = line.split('"')[1]
    assert len(quoted) == QUOTE_CHARS and quoted.endswith("…")
    assert line.startswith('Urgent from Dana: "call me gnp.exe now[31m')
    assert clean("a\n\tb", 10) == "a b"


def test_notices_never_count_toward_the_send_caps(make_run: MakeRun) -> None:
    run = make_run({"caps": {"per_hour": 2, "per_day": 2, "per_chat_per_day": 1}})
    for chat in (ALICE, BOB):
        run.msg("urgent, call me", chat=chat)
    run.advance(60)
    for _ in range(2):
        run.answer()
    run.advance(60)
    assert len(escalations(run)) == 2 and len(run.sends()) == 2


def test_an_echoed_escalation_is_our_own_never_the_owner(run: Run) -> None:
    run.msg("urgent, call me", sender_name="Dana")
    notice = escalations(run)[0]
    out = run.msg(notice.text, chat=OWNER, from_me=True, own_device=True)
    assert [d.code for d in out if isinstance(d, Decision)] == [Reason.ECHO]
    assert run.a.chats[ALICE].cooldown_reason == ""  # no takeover anywhere
    assert isinstance(run.reply_cycle(), Send)  # the reply still goes out


def test_an_urgent_transcript_is_escalated(run: Run) -> None:
    run.msg("", media="voice", id="v1", sender_name="Dana")
    assert escalations(run) == []
    run.feed(MediaText(ALICE, "v1", "it's an emergency, call me"), 3)
    assert [n.text for n in escalations(run)] == [
        'Urgent from Dana: "[voice message] it\'s an emergency, call me" (direct)'
    ]


# ---------------------------------------------------------------- invariant: the cap holds

MESSAGE = st.tuples(
    st.sampled_from([ALICE, BOB, CAROL, GROUP, "dan@s.whatsapp.net"]),
    st.sampled_from(["urgent!", "hello", "EMERGENCY call me", "@Gilad urgent", "ok"]),
    st.floats(min_value=0, max_value=12 * 3600),
)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    cap=st.integers(min_value=0, max_value=4),
    cooldown=st.sampled_from([60, 3600, 5 * 3600]),
    quiet=st.booleans(),
    messages=st.lists(MESSAGE, max_size=40),
)
def test_escalations_never_exceed_their_cap(
    cap: int, cooldown: int, quiet: bool, messages: list[tuple[str, str, float]]
) -> None:
    policy: dict[str, Any] = {"escalate_per_day": cap, "cooldown": cooldown}
    if quiet:
        policy.update(QUIET)
    run = Run(Policy.from_mapping(policy), t0=BERLIN_NIGHT)
    for chat, text, dt in messages:
        mentions = (OWNER,) if "@Gilad" in text else ()
        run.msg(text, chat=chat, dt=dt, mentions=mentions, sender_name="X")
    run.advance(2 * 86400)
    told = sorted(
        d.t
        for d in run.effects(Decision)
        if d.code in (Reason.ESCALATED, Reason.ESCALATION_HELD) and d.chat != OWNER
    )
    for i, t in enumerate(told):  # in every rolling day, at most `cap`
        assert sum(1 for u in told[i:] if u - t < 86400) <= cap
    lines = sum(n.text.count("Urgent from") for n in escalations(run))
    assert lines == len(told)  # every counted one is told, once
    per_chat: dict[str, list[float]] = {}
    for d in run.effects(Decision):
        if d.code in (Reason.ESCALATED, Reason.ESCALATION_HELD) and d.chat != OWNER:
            per_chat.setdefault(d.chat, []).append(d.t)
    for times in per_chat.values():  # once per chat per cooldown
        assert all(b - a >= cooldown for a, b in zip(times, times[1:], strict=False))
    assert GROUP not in per_chat or any(
        chat == GROUP and text == "@Gilad urgent" for chat, text, _ in messages
    )


def test_the_owners_part_of_the_state_stays_bounded(make_run: MakeRun) -> None:
    from wapa.core.digest import CHATS_KEPT, KEPT_CHARS
    from wapa.core.escalation import HELD_KEPT, LAST_KEPT

    run = make_run({**QUIET, "escalate_per_day": 1000, "cooldown": "1m"}, t0=BERLIN_NIGHT)
    for i in range(1500):
        run.msg("urgent! " + "x" * 5000, chat=f"c{i}@s.whatsapp.net", sender_name="N" * 500)
    meta = run.a.export_meta()
    assert len(meta["escalations"]["last"]) == LAST_KEPT
    assert len(meta["escalations"]["held"]) == HELD_KEPT
    assert meta["escalations"]["held_more"] == 1000 - HELD_KEPT  # the cap counted them
    entries = [c["digest"] for c in run.a.export()["chats"].values() if "digest" in c]
    assert len(entries) == CHATS_KEPT  # the digest's entries are kept in their chats' rows
    assert all(len(row[4]) <= KEPT_CHARS and len(row[0]) <= KEPT_CHARS for row in entries)
    assert len(json.dumps(meta)) < 400_000
    run.advance(9 * 3600)  # quiet hours end: one bounded notice
    told = escalations(run)[-1].text
    assert told.count("Urgent from") == HELD_KEPT and told.endswith("... and 980 more")


def test_held_escalations_keep_no_text_and_expire_with_the_context(make_run: MakeRun) -> None:
    run = make_run(QUIET, t0=BERLIN_NIGHT)
    run.msg("emergency: the code is 4711", sender_name="Eli")
    assert "4711" not in json.dumps(run.a.export_meta())
    run.a.expire(run.t + 1)  # data retention empties the context before the notice goes
    run.advance(9 * 3600)
    assert [n.text for n in escalations(run)] == [
        "During quiet hours: Urgent from Eli (the message expired)"
    ]


def test_escalation_notices_are_not_kept_in_the_state(run: Run) -> None:
    run.msg("urgent: the code is 4711", sender_name="Dana")
    assert "4711" not in json.dumps(run.a.export_meta())
    out = run.msg(escalations(run)[0].text, chat=OWNER, from_me=True)  # an echo without own_device
    assert [d.code for d in out if isinstance(d, Decision)] == [Reason.IGNORED]  # a note to self
