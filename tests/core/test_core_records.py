"""Named records in the core's state, compact JSON outside: sends are packed records read as
`SendRecord`s (core/sends.py), phases,
reasons and kinds are `StrEnum`s, and a state exported before these existed still loads and
exports to the very same JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from wapa.core import (
    Assistant,
    Decision,
    MediaKind,
    Message,
    MessageKind,
    Phase,
    Policy,
    Reason,
    SendConfirmed,
    SendFailed,
    sends,
    utc_text,
)
from wapa.core.events import MEDIA_KINDS, MESSAGE_KINDS
from wapa.core.machine import _seen_of
from wapa.core.sends import SendRecord, id_hash, records

from tests.support.core_run import ALICE, OWNER, PERSONA, Run

OLD = Path(__file__).with_name("state_v1.json")
OLD_POLICY = Policy.from_mapping({"caps": {"per_chat_per_day": 5}})


def _old() -> tuple[float, dict[str, Any]]:
    data = json.loads(OLD.read_text(encoding="utf-8"))
    return data["t"], data["state"]


def _json(a: Assistant) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(a.export(), allow_nan=False))
    return out


# ------------------------------------------------------------------ sends as records


def test_a_send_is_a_named_record_through_its_life(run: Run) -> None:
    run.msg("hello")
    sent = run.reply_cycle("Hi! Gilad is away.")
    assert records(run.a.chats[ALICE].sends) == [SendRecord(sent.request_id, b"", 0.0, False)]
    run.confirm("WA-7")
    (record,) = records(run.a.chats[ALICE].sends)
    assert record.message_hash == id_hash("WA-7") and not record.echoed
    run.owner("Hi! Gilad is away.", id="WA-7", dt=1)  # its echo
    (record,) = records(run.a.chats[ALICE].sends)
    assert record.echoed and run.codes(ALICE)[-1] == Reason.ECHO


def test_a_send_keeps_no_text_its_context_entry_holds_it(run: Run) -> None:
    run.msg("hello")
    sent = run.reply_cycle("Hi! Gilad is away.")
    assert b"Gilad" not in run.a.chats[ALICE].sends
    (entry,) = [e for e in run.a.chats[ALICE].context if e.id == sent.request_id]
    assert entry.text == "Hi! Gilad is away."


def test_a_failed_send_gives_back_the_cooldown_its_record_remembers(run: Run) -> None:
    run.msg("hello")
    run.reply_cycle()
    run.confirm("WA-1")
    before = run.a.chats[ALICE].cooldown_until
    run.msg("urgent!! please call", dt=3600)  # breaks the cooldown once
    second = run.reply_cycle("He will call you.")
    assert records(run.a.chats[ALICE].sends)[-1].prev_cooldown == before
    run.feed(SendFailed(second.request_id), dt=1)
    assert run.a.chats[ALICE].cooldown_until == before
    kept = [s.request_id for s in records(run.a.chats[ALICE].sends)]
    assert kept == [run.sends()[0].request_id]


def test_sends_export_as_the_hex_of_their_records(run: Run) -> None:
    run.msg("hello")
    run.reply_cycle("Hi!")
    run.confirm("WA-2")
    exported = _json(run.a)["chats"][ALICE]["sends"]
    assert isinstance(exported, str) and len(exported) == 2 * sends.SIZE
    assert sends.restore(exported) == run.a.chats[ALICE].sends


def test_sends_saved_as_lists_restore_as_the_same_records() -> None:
    saved = [["r1", "Hi!", "WA-1", 0.0, True], ["r2", "He will call.", "", 1700000000.5, False]]
    assert records(sends.restore(saved)) == [
        SendRecord("r1", id_hash("WA-1"), 0.0, True),
        SendRecord("r2", b"", 1700000000.5, False),
    ]
    for bad in ("abc", "00" * (sends.SIZE + 1), 7, [["x1", "", "", 0.0, False]]):
        with pytest.raises(ValueError):
            sends.restore(bad)


# ------------------------------------------------------------------ enums stay plain JSON


def test_phases_reasons_and_kinds_are_strings() -> None:
    assert Phase.GENERATING == "generating" and Reason.SENT == "sent"
    assert MessageKind.MESSAGE == "message" and MediaKind.VOICE == "voice"
    assert tuple(MediaKind) == MEDIA_KINDS and "voice" in MEDIA_KINDS
    assert tuple(MessageKind) == MESSAGE_KINDS and "reaction" in MESSAGE_KINDS
    assert json.dumps([Phase.IDLE, Reason.ECHO]) == '["idle", "echo"]'
    assert f"{Reason.COOLDOWN}" == "cooldown"


def test_an_exported_phase_is_a_string_and_restores_as_a_phase(run: Run) -> None:
    run.msg("hello")
    state = _json(run.a)
    assert state["chats"][ALICE]["phase"] == "waiting"
    restored = Assistant.restore(state, run.policy, run.persona)
    assert restored.chats[ALICE].phase is Phase.WAITING


def test_a_media_kind_given_as_either_enum_or_string_reads_the_same(run: Run) -> None:
    run.msg("", media=MediaKind.VOICE)
    run.msg("", chat="bob@s.whatsapp.net", media="voice")
    texts = [c.context[-1].text for c in run.a.chats.values()]
    assert texts == ["[voice message]", "[voice message]"]


def test_utc_text() -> None:
    assert utc_text(1_700_000_000.0) == "2023-11-14 22:13:20"
    assert utc_text(0) == "1970-01-01 00:00:00"
    for bad in (-1.0, float("nan"), float("inf"), 1.7e12):
        assert utc_text(bad) == "never"


# ------------------------------------------------------------------ states exported before


def test_a_state_exported_before_the_records_restores_and_exports_unchanged() -> None:
    _, state = _old()
    a = Assistant.restore(json.loads(json.dumps(state)), OLD_POLICY, PERSONA)
    out = _json(a)
    for added in ("budget_left", "model_auth_failed", "escalations", "digest", "calendar"):
        del out[added]  # the only additions
    for chat in state["chats"].values():  # and remembered ids kept as hashes (issue 18)
        chat["seen"] = _seen_of(chat["seen"]).hex()
        chat["sends"] = sends.export(sends.restore(chat["sends"]))  # and sends packed
    assert out == state


def test_a_restored_old_state_goes_on_as_it_would_have() -> None:
    t, state = _old()
    a = Assistant.restore(state, OLD_POLICY, PERSONA)
    alice = a.chats[ALICE]
    assert records(alice.sends)[0].echoed
    assert a.status(t).startswith("wapa is active: 2 replies pending, 2 chats cooling down, 2")
    # the unconfirmed send in Bob's chat is settled by its confirmation...
    effects = a.handle(SendConfirmed("r2", "WA-2"), t + 1)
    assert [e.code for e in effects if isinstance(e, Decision)] == [Reason.SEND_CONFIRMED]
    # ...its echo, by id, is ours; the owner's own message afterwards is a takeover
    bob = "bob@s.whatsapp.net"
    codes = [
        d.code
        for m in (
            Message(bob, OWNER, "WA-2", "I'll pass it on", from_me=True),
            Message(bob, OWNER, "x9", "Hey Bob, calling you now", from_me=True),
        )
        for d in a.handle(m, t + 2)
        if isinstance(d, Decision)
    ]
    assert codes == [Reason.ECHO, Reason.OWNER_TAKEOVER]
    # a pending chat fires as before
    assert a.next_deadline() is not None
