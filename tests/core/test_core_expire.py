"""Data retention by the core: `expire_chat_state` on one exported chat (what a store purges
with) and `Assistant.expire` on a live assistant forget old context (replies' texts with it:
the send records keep none) and an idle chat's last prompt and reply; nothing else."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from wapa.core import (
    Assistant,
    Decision,
    Generate,
    Message,
    Policy,
    Reason,
    expire_chat_state,
    sends,
)
from wapa.core.machine import _seen_of

from tests.support.core_run import ALICE, BOB, GROUP, OWNER, PERSONA, Run

OLD = Path(__file__).with_name("state_v1.json")
HOUR = 3600.0


def _store_expire(chat: dict[str, Any], cutoff: float) -> None:
    """What adapters/store/store.py did to stored chats before the core owned this (kept here
    as the reference the core's function must agree with)."""
    chat["context"] = [e for e in chat.get("context", []) if float(e[0]) >= cutoff]
    live = {e[4] for e in chat["context"]}
    saved = chat.get("sends", [])  # packed (hex) since issue 18: no text in them
    for send in saved if isinstance(saved, list) else []:
        if send[0] not in live:
            send[1] = ""
    if chat.get("phase") == "idle":
        chat["system"] = ""
        chat["reply"] = ""


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(data, allow_nan=False))
    return out


def _busy_run() -> Run:
    """Alice answered an hour ago and again now; Bob waiting; the group generating."""
    run = Run()
    run.msg("hello, is Gilad around?", sender_name="Alice")
    run.reply_cycle("Hi Alice! Gilad is away; I'll tell him you wrote.")
    run.confirm("WA-1")
    run.msg("thanks!", dt=HOUR)
    run.msg("urgent!!! call me", dt=6 * HOUR)
    run.reply_cycle("He will call you as soon as he can.")
    run.msg("are you there?", chat=BOB, sender_name="Bob", dt=10)
    run.msg("@Gilad dinner?", chat=GROUP, sender_name="Carol", group_title="Family", dt=1)
    run.advance_until(lambda e: isinstance(e, Generate) and e.chat == GROUP)
    return run


def test_it_agrees_with_what_the_store_used_to_do() -> None:
    state = json.loads(OLD.read_text(encoding="utf-8"))["state"]
    run = _busy_run()
    chats = [*state["chats"].values(), *_plain(run.a.export())["chats"].values()]
    for chat in chats:
        times = sorted({e[0] for e in chat["context"]})
        for cutoff in [0.0, *times, times[-1] + 1 if times else 1.0]:
            want = copy.deepcopy(chat)
            _store_expire(want, cutoff)
            if isinstance(want.get("seen"), list):  # saved before ids were kept as hashes
                want["seen"] = _seen_of(want["seen"]).hex()
            if isinstance(want.get("sends"), list):  # saved before sends were packed
                want["sends"] = sends.export(sends.restore(want["sends"]))
            assert _plain(expire_chat_state(chat, cutoff)) == want


def test_old_context_goes_and_with_it_the_text_of_its_send() -> None:
    run = _busy_run()
    before = _plain(run.a.export_chat(ALICE))
    cutoff = run.t - 2 * HOUR  # the first reply and "thanks!" are older
    after = expire_chat_state(before, cutoff)
    assert [e[3] for e in after["context"]] == [
        "urgent!!! call me",
        "He will call you as soon as he can.",
    ]
    records = sends.records(sends.restore(after["sends"]))  # no text in them, before or after
    assert [r.message_hash for r in records] == [sends.id_hash("WA-1"), b""]  # echoes known
    assert after["system"] == "" and after["reply"] == ""  # idle: last prompt forgotten
    unchanged = {"context", "system"}
    assert {k: v for k, v in after.items() if k not in unchanged} == {
        k: v for k, v in before.items() if k not in unchanged
    }
    assert before == _plain(run.a.export_chat(ALICE))  # the input is not modified


def test_a_reply_under_way_keeps_its_prompt() -> None:
    run = _busy_run()
    group = expire_chat_state(_plain(run.a.export_chat(GROUP)), run.t + 1)
    assert group["phase"] == "generating" and group["system"]  # hygiene checks against it
    assert group["context"] == []


def test_a_live_assistant_expires_the_same_and_marks_the_chats_dirty() -> None:
    run = _busy_run()
    cutoff = run.t - 2 * HOUR
    want = {cid: expire_chat_state(run.a.export_chat(cid), cutoff) for cid in run.a.chats}
    run.a.take_dirty()
    changed = run.a.expire(cutoff)
    assert changed == {ALICE} == run.a.take_dirty()  # Bob's and the group's data is recent
    assert {cid: run.a.export_chat(cid) for cid in run.a.chats} == want
    assert run.a.expire(cutoff) == set()  # nothing left to forget


def test_after_expiry_the_echo_is_still_recognised_by_its_id() -> None:
    run = Run()
    run.msg("hello")
    run.reply_cycle("Hi! Gilad is away.")
    run.confirm("WA-1")
    run.a.expire(run.t + 1)
    run.owner("Hi! Gilad is away.", id="WA-1", dt=60)
    assert run.codes(ALICE)[-1] == Reason.ECHO


def test_after_expiry_an_owner_photo_is_the_owner_not_an_echo() -> None:
    """A blanked send text matches no text, not even the empty text of a photo."""
    run = Run()
    run.msg("hello")
    run.reply_cycle("Hi! Gilad is away.")  # never confirmed, never echoed (whatsmeow)
    run.a.expire(run.t + 1)
    run.owner("", media="image", dt=60)
    assert run.codes(ALICE)[-1] == Reason.OWNER_TAKEOVER
    assert run.a.chats[ALICE].cooldown_reason == "owner"


def test_an_expired_store_row_restores(run: Run) -> None:
    run.msg("hello")
    run.reply_cycle()
    state = _plain(run.a.export())
    state["chats"] = {cid: expire_chat_state(c, run.t + 1) for cid, c in state["chats"].items()}
    a = Assistant.restore(state, Policy(), PERSONA)
    assert a.chats[ALICE].context == [] and sends.count(a.chats[ALICE].sends) == 1
    effects = a.handle(Message(ALICE, ALICE, "m9", "hi again"), run.t + 60)
    assert [d.code for d in effects if isinstance(d, Decision)] == [Reason.COOLDOWN]
    assert OWNER not in a.chats
