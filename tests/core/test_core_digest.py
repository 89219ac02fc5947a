"""Rule 15, the digest: what happened, from the core's own decisions, at the owner's 18:00."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wapa.core import Assistant, Decision, Notice, NoticeKind, Policy, PolicyError, Reason
from wapa.core import digest as digest_module
from wapa.core.digest import CHATS_KEPT, ChatLog, DigestLog, next_time
from wapa.core.events import Effect, MediaText, Message
from wapa.core.machine import Chat

from tests.support.core_run import ALICE, BOB, GROUP, OWNER, MakeRun, Run

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY_9_UTC = 1_767_603_600.0  # 2026-01-05 09:00 UTC, 10:00 in Berlin
DAILY = {"digest_at": "18:00", "digest_tz": "Europe/Berlin"}


def digests(run: Run) -> list[Notice]:
    return [n for n in run.effects(Notice) if n.kind == NoticeKind.DIGEST]


def ask(run: Run) -> str:
    run.msg("digest", chat=OWNER, from_me=True)
    return digests(run)[-1].text


def test_who_wrote_what_was_answered_and_who_waits_and_why(make_run: MakeRun) -> None:
    run = make_run(DAILY, t0=MONDAY_9_UTC)
    run.msg("are you coming friday?", sender_name="Alice")
    run.reply_cycle()
    run.msg("and the tickets?", sender_name="Alice", dt=600)  # cooling down
    run.msg("URGENT: the server is down", chat=BOB, sender_name="Bob")
    run.reply_cycle()
    run.msg("lunch?", chat=GROUP, sender_name="Carl", group_title="Team")
    text = ask(run)
    assert text.splitlines() == [
        "Digest since 10:00: 3 chats, 4 messages, 2 replies.",
        "Urgent:",
        '- Bob, 1 message, 10:12 "URGENT: the server is down": answered 10:12',
        "Still waiting:",
        "- Team (group), 1 message, 10:12: not addressed to you",
        '- Alice, 2 messages, last 10:12 "and the tickets?": answered 10:02; now quiet after a reply',
    ]
    assert ask(run) == "Digest since 10:12: nothing new."  # the log starts over


def test_each_reason_to_wait_is_named(make_run: MakeRun) -> None:
    run = make_run({"caps": {"per_chat_per_day": 1}})
    run.msg("hi", sender_name="Alice")
    run.owner("I'll call you", dt=30)
    run.msg("ok, when?", sender_name="Alice", dt=30)
    run.msg("mute Bob", chat=OWNER, from_me=True)  # no such chat yet
    run.msg("hello", chat=BOB, sender_name="Bob")
    run.msg("mute Bob", chat=OWNER, from_me=True)
    run.msg("still there?", chat=BOB, sender_name="Bob")
    text = ask(run)
    assert "Alice, 2 messages" in text and "you wrote last" in text
    assert '"still there?": muted' in text
    run.msg("pause", chat=OWNER, from_me=True)
    run.msg("hello?", sender_name="Carol", chat="carol@s.whatsapp.net")
    assert '"hello?": paused' in ask(run)


def test_names_only_never_includes_message_text(make_run: MakeRun) -> None:
    run = make_run({"digest_detail": "names"})
    run.msg("my password is hunter2", sender_name="Alice")
    run.msg("URGENT secret plans", chat=BOB, sender_name="Bob")
    entries = [run.a.export_chat(cid)["digest"] for cid in run.a.chats]
    assert "hunter2" not in json.dumps([run.a.export_meta(), entries])  # the log never holds text
    text = ask(run)
    assert "hunter2" not in text and "secret" not in text and "password" not in text
    assert "Alice, 1 message" in text and "Bob, 1 message" in text


def test_the_daily_digest_follows_berlin_time_across_the_clock_change(make_run: MakeRun) -> None:
    saturday = datetime(2026, 10, 24, 9, 0, tzinfo=BERLIN).timestamp()
    run = make_run(DAILY, t0=saturday)
    for _ in range(3):
        run.msg("hello")
        run.advance(86400)
    sent = [t for t, n in run.timed(Notice) if n.kind == NoticeKind.DIGEST]
    local = [datetime.fromtimestamp(t, BERLIN).strftime("%a %H:%M %Z") for t in sent]
    assert local == ["Sat 18:00 CEST", "Sun 18:00 CET", "Mon 18:00 CET"]


def test_a_day_with_nothing_new_has_no_digest_and_no_deadline(make_run: MakeRun) -> None:
    run = make_run(DAILY, t0=MONDAY_9_UTC)
    run.msg("x", chat=OWNER, from_me=True)  # a note to self: the clock is known
    assert run.a.next_deadline() is None
    run.advance(3 * 86400)
    assert digests(run) == []
    run.msg("hello")
    run.reply_cycle()
    evening = datetime(2026, 1, 8, 18, 0, tzinfo=BERLIN).timestamp()
    assert run.a.next_deadline() == evening
    run.advance(evening - run.t)
    assert len(digests(run)) == 1 and run.a.next_deadline() is None


def test_the_digest_is_bounded_with_and_n_more(make_run: MakeRun) -> None:
    run = make_run({"cooldown": "1d"})
    for i in range(400):
        run.msg("x" * 300, chat=f"c{i}@s.whatsapp.net", sender_name=f"Contact number {i}")
    held = [cid for cid, row in run.a.export()["chats"].items() if "digest" in row]
    assert held == [f"c{i}@s.whatsapp.net" for i in range(400 - CHATS_KEPT, 400)]
    text = ask(run)
    assert len(text) <= Policy().digest_max_chars == 1500
    assert text.endswith("more chats.") and "Contact number 399" in text
    assert len(run.a._digest.chats) == 0  # and the log is bounded in between: CHATS_KEPT
    assert not any("digest" in row for row in run.a.export()["chats"].values())  # all gone


def test_the_digest_length_is_a_setting(make_run: MakeRun) -> None:
    run = make_run({"cooldown": "1d", "digest_max_chars": 300})
    for i in range(20):
        run.msg("hello there", chat=f"c{i}@s.whatsapp.net", sender_name=f"Contact number {i}")
    text = ask(run)
    assert 200 < len(text) <= 300 and text.endswith("more chats.")
    with pytest.raises(PolicyError, match="digest_max_chars: expected a whole number 200..60000"):
        Policy.from_mapping({"digest_max_chars": 100})


def test_the_log_survives_a_restart_as_plain_json(make_run: MakeRun) -> None:
    run = make_run(DAILY, t0=MONDAY_9_UTC)
    run.msg("are you coming?", sender_name="Alice")
    run.reply_cycle()
    run.msg("urgent!", chat=BOB, sender_name="Bob")
    state = json.loads(json.dumps(run.a.export(), allow_nan=False))
    restored = Assistant.restore(state, run.policy, run.persona)
    assert restored.export() == state
    assert restored.next_deadline() == run.a.next_deadline()
    assert restored._digest.build(run.t, BERLIN, limit=1500) == run.a._digest.build(
        run.t, BERLIN, limit=1500
    )


def test_help_lists_digest_and_profile(run: Run) -> None:
    run.msg("help", chat=OWNER, from_me=True)
    text = run.effects(Notice)[-1].text
    assert "digest" in text and "profile CHAT NAME" in text


def test_next_time_skips_to_the_next_day_and_handles_the_gap() -> None:
    six_pm = datetime(2026, 3, 28, 18, 0, tzinfo=BERLIN).timestamp()
    assert next_time(six_pm - 1, "18:00", BERLIN) == six_pm
    assert next_time(six_pm, "18:00", BERLIN) == six_pm + 86400 - 3600  # summer time begins
    gap = next_time(six_pm, "02:30", BERLIN)  # 02:30 does not exist on 29 March
    assert datetime.fromtimestamp(gap, BERLIN).strftime("%d %H:%M") == "29 03:30"


def test_the_digest_decision_says_why(make_run: MakeRun) -> None:
    run = make_run(DAILY, t0=MONDAY_9_UTC)
    run.msg("hi")
    run.advance(86400)
    found = [d for d in run.effects(Decision) if d.code == Reason.DIGEST]
    assert [d.detail.split(":")[0] for d in found] == ["digest sent (daily at 18"]


# ---------------------------------------------------------------- invariants

WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", min_size=1, max_size=40)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    messages=st.lists(
        st.tuples(st.integers(0, 30), WORDS, st.booleans(), st.floats(0, 4 * 3600)),
        max_size=60,
    ),
    names_only=st.booleans(),
    limit=st.integers(200, 2000),
)
def test_a_digest_is_bounded_and_names_only_has_no_text(
    messages: list[tuple[int, str, bool, float]], names_only: bool, limit: int
) -> None:
    detail = "names" if names_only else "text"
    settings = {"digest_detail": detail, "cooldown": "30m", "digest_max_chars": limit}
    run = Run(Policy.from_mapping(settings))
    for i, (chat, words, urgent, dt) in enumerate(messages):
        text = f"zq{i}x {words}" + (" urgent" if urgent else "")
        if chat % 7 == 0:
            run.msg(f"mute c{chat}", chat=OWNER, from_me=True)
        run.msg(text, chat=f"c{chat}@s.whatsapp.net", dt=dt, sender_name=f"C{chat}")
    run.advance(3600)
    text = ask(run)
    assert len(text) <= limit
    if names_only:
        assert "zq" not in text and "urgent" not in text.replace("Urgent:", "")
    state = run.a.export()
    assert json.loads(json.dumps(state, allow_nan=False)) == state


def _line(row: list[Any]) -> ChatLog:
    line = Chat("x")  # a chat is a line (ChatLog declares no fields of its own)
    line.log_load(row)
    return line


def test_digest_log_rows_restore() -> None:
    log, a, b = DigestLog(), Chat("a"), Chat("b")
    log.wrote("a", a, "Alice", False, "m1", True, 10.0)
    log.wrote("b", b, "Bob", False, "m2", False, 11.0)
    log.wrote("a", a, "Alice", False, "m3", False, 12.0)
    rows = json.loads(json.dumps({cid: x.log_export() for cid, x in log.chats.items()}))
    assert rows == {
        "b": ["Bob", False, 1, 11.0, "m2", False, [], "", 2],
        "a": ["Alice", False, 2, 12.0, "m3", True, [], "", 3],
    }
    held = {cid: _line(row) for cid, row in reversed(rows.items())}
    again = DigestLog.restore(json.loads(json.dumps(log.export())), held)
    assert list(again.chats) == ["b", "a"]  # the order comes from `seq`
    assert {cid: x.log_export() for cid, x in again.chats.items()} == rows
    assert again.build(20.0, BERLIN, limit=1500) == log.build(20.0, BERLIN, limit=1500)
    with pytest.raises(ValueError, match="9"):
        _line([*rows["a"], 0])


def test_a_line_out_of_the_log_is_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    """A chat's line keeps its initial values unless the chat is in the log: the line a new
    chat pushes out of a full log is cleared (its ids and times let go), as a digest clears
    every line, and a chat that writes again starts a new line."""
    monkeypatch.setattr(digest_module, "CHATS_KEPT", 2)
    log = DigestLog()
    lines = [Chat(f"c{i}") for i in range(3)]
    for i, line in enumerate(lines):
        log.wrote(f"c{i}", line, f"C{i}", False, f"m{i}", i == 0, 10.0 + i)
    assert list(log.chats) == ["c1", "c2"]
    assert lines[0].log_export() == Chat("new").log_export() and lines[0].log_seq == 0
    log.wrote("c0", lines[0], "C0", False, "m9", False, 20.0)
    assert lines[0].log_export() == ["C0", False, 1, 20.0, "m9", False, [], "", 4]
    log.reset(30.0)
    assert all(line.log_export() == Chat("new").log_export() for line in lines)


# ---------------------------------------------------------------- kept in the chats' rows


def test_each_entry_is_in_its_chats_row_and_the_meta_keeps_only_numbers(
    make_run: MakeRun,
) -> None:
    run = make_run(DAILY, t0=MONDAY_9_UTC)
    for i in range(50):
        run.msg("are you coming?", chat=f"c{i}@s.whatsapp.net", sender_name=f"Contact {i}")
    meta = run.a.export_meta()["digest"]
    assert meta == {"since": MONDAY_9_UTC, "first": MONDAY_9_UTC, "seq": 50, "start": 0}
    row = run.a.export_chat("c7@s.whatsapp.net")["digest"]
    assert row == ["Contact 7", False, 1, MONDAY_9_UTC, "m8", False, [], "", 8]
    assert len(run.a.take_dirty()) == 50
    run.msg("hi", chat=OWNER, from_me=True)  # a note to self: no chat's entry changes
    assert run.a.take_dirty() == set()


def _stored_rows(run: Run, written: list[set[str]]) -> dict[str, Any]:
    """What a store holds that writes, after every step, only the dirty chats (their ids are
    appended to `written`) and the meta, as `Driver.take_batch` does. Returns its rows,
    updated as the run goes on."""
    rows: dict[str, Any] = {"chats": {}}
    run.a.take_dirty()
    rows.update(run.a.export_meta(), chats={c: run.a.export_chat(c) for c in run.a.chats})

    def write(t: float, effects: list[Effect]) -> None:
        dirty = run.a.take_dirty()
        written.append(dirty)
        for cid in dirty:
            rows["chats"][cid] = run.a.export_chat(cid)
        rows.update(run.a.export_meta())

    run.watch = write
    return rows


def test_a_store_writing_only_dirty_chats_holds_the_whole_log(
    make_run: MakeRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every change of an entry (a message, a decision naming its chat, an urgent media text)
    marks its chat dirty: the rows written step by step restore to the same state and digest.
    An entry dropped for CHATS_KEPT or by a digest costs no write: it stays in its row, stale
    (its `seq` says so), and restore leaves it out."""
    monkeypatch.setattr(digest_module, "CHATS_KEPT", 3)
    run = make_run({**DAILY, "cooldown": "30m"}, t0=MONDAY_9_UTC)
    written: list[set[str]] = []
    stored = _stored_rows(run, written)

    def same() -> Assistant:
        again = Assistant.restore(json.loads(json.dumps(stored)), run.policy, run.persona)
        assert again.export() == run.a.export()
        assert list(again._digest.chats) == list(run.a._digest.chats)
        assert again.export_meta()["digest"] == run.a.export_meta()["digest"]
        assert again._digest.build(run.t, BERLIN, limit=1500) == run.a._digest.build(
            run.t, BERLIN, limit=1500
        )
        return again

    run.msg("are you coming friday?", sender_name="Alice")
    run.reply_cycle()  # decisions alone (sent) change Alice's entry
    same()
    run.msg("and the tickets?", sender_name="Alice", dt=600)  # quiet after a reply
    run.msg("", chat=BOB, sender_name="Bob", media="voice", id="v1")
    run.handle(MediaText(BOB, "v1", "urgent, the server is down", "transcript"))
    run.owner("I'll call you", chat=BOB, dt=5)
    same()
    for i in range(4):  # four more chats: Alice's and Bob's entries make room
        run.msg("hello", chat=f"c{i}@s.whatsapp.net", sender_name=f"C{i}", dt=1)
        assert written[-1] == {f"c{i}@s.whatsapp.net"}  # one row per message, as before
    assert "digest" in stored["chats"][ALICE]  # stale in its row...
    assert list(same()._digest.chats) == [f"c{i}@s.whatsapp.net" for i in (1, 2, 3)]  # ...only
    ask(run)  # the log starts over: the entries stay in their rows, stale, no row written
    assert written[-1] == set() and same()._digest.chats == {}
    run.msg("me again", sender_name="Alice", dt=60)
    assert list(same()._digest.chats) == [ALICE]
    run.advance(86400)  # the daily digest
    same()
    assert len(digests(run)) == 2


def test_a_state_with_the_whole_log_in_the_meta_still_restores(make_run: MakeRun) -> None:
    """States saved before the entries moved into their chats kept the log in the meta, as
    8-field rows, most recent last: each moves into its chat, which is then dirty (the next
    commit must write it). An entry whose chat the state lacks is dropped."""
    run = make_run(DAILY, t0=MONDAY_9_UTC)
    run.msg("are you coming?", sender_name="Alice")
    run.reply_cycle()
    run.msg("urgent!", chat=BOB, sender_name="Bob", dt=60)
    run.msg("lunch?", chat=GROUP, sender_name="Carl", group_title="Team", dt=60)
    run.msg("and the tickets?", sender_name="Alice", dt=60)
    new = json.loads(json.dumps(run.a.export()))
    old = json.loads(json.dumps(new))
    entries = {cid: row.pop("digest") for cid, row in old["chats"].items() if "digest" in row}
    order = sorted(entries, key=lambda cid: entries[cid][8])
    assert order == [BOB, GROUP, ALICE]
    gone = ["Gone", False, 1, MONDAY_9_UTC, "m0", False, [], "", 0][:8]
    old["digest"] = {
        "since": new["digest"]["since"],
        "first": new["digest"]["first"],
        "chats": {"gone@s.whatsapp.net": gone} | {cid: entries[cid][:8] for cid in order},
    }
    restored = Assistant.restore(old, run.policy, run.persona)
    assert restored.take_dirty() == {ALICE, BOB, GROUP}
    assert restored._digest.build(run.t, BERLIN, limit=1500) == run.a._digest.build(
        run.t, BERLIN, limit=1500
    )
    assert "Gone" not in restored._digest.build(run.t, BERLIN, limit=1500)
    again = restored.export()
    assert list(restored._digest.chats) == order
    assert {cid: row.get("digest", [])[:8] for cid, row in again["chats"].items()} == {
        cid: row.get("digest", [])[:8] for cid, row in new["chats"].items()
    }
    assert set(again["digest"]) == {"since", "first", "seq", "start"}
    mine = restored.handle(Message(OWNER, OWNER, "x1", "digest", from_me=True), run.t)
    theirs = run.msg("digest", chat=OWNER, from_me=True, id="x1")
    assert [n for n in mine if isinstance(n, Notice)] == [
        n for n in theirs if isinstance(n, Notice)
    ]


def test_the_excerpt_goes_with_the_context_it_was_read_from(make_run: MakeRun) -> None:
    """Data retention empties old context; the digest log holds no text of its own."""
    run = make_run({"context_ttl": "1h"})
    run.msg("my old secret: pineapple", sender_name="Alice")
    assert '"my old secret: pineapple"' in ask(run)
    run.msg("and another secret: mango", sender_name="Alice", dt=60)
    assert "mango" not in json.dumps([run.a.export_meta(), run.a.export_chat(ALICE)["digest"]])
    run.a.expire(run.t + 1)
    text = ask(run)
    assert "mango" not in text and "Alice, 1 message" in text
