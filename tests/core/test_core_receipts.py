"""Read receipts (rule 9): in a group one MarkRead per sender, since WhatsApp's group receipt
names the message's author; direct chats keep one MarkRead without a sender; states saved
before senders were kept still load."""

from __future__ import annotations

import json

from wapa.core import Assistant, MarkRead

from tests.support.core_run import ALICE, BOB, GROUP, OWNER, Run

CAROL = "carol@lid"


def test_a_group_marks_read_once_per_sender_naming_him(run: Run) -> None:
    run.msg("@Gilad dinner?", chat=GROUP, id="g1", mentions=(OWNER,))
    run.msg("@Gilad and me?", chat=GROUP, id="g2", sender=CAROL, mentions=(OWNER,))
    run.msg("@Gilad also", chat=GROUP, id="g3", mentions=(OWNER,))
    run.advance_until(MarkRead)
    assert run.effects(MarkRead) == [
        MarkRead(GROUP, ("g1", "g3"), BOB),
        MarkRead(GROUP, ("g2",), CAROL),
    ]


def test_a_direct_chat_marks_read_once_without_a_sender(run: Run) -> None:
    run.msg("hello", id="d1")
    run.msg("are you there?", id="d2")
    run.advance_until(MarkRead)
    assert run.effects(MarkRead) == [MarkRead(ALICE, ("d1", "d2"), "")]


def test_unread_senders_survive_a_restart_as_plain_json(run: Run) -> None:
    run.msg("@Gilad dinner?", chat=GROUP, id="g1", mentions=(OWNER,))
    state = json.loads(json.dumps(run.a.export(), allow_nan=False))
    assert state["chats"][GROUP]["unread"] == [["g1", BOB]]
    run.a = Assistant.restore(state, run.policy, run.persona)
    run.advance_until(MarkRead)
    assert run.effects(MarkRead) == [MarkRead(GROUP, ("g1",), BOB)]


def test_a_state_saved_with_bare_unread_ids_loads_with_unknown_senders(run: Run) -> None:
    run.msg("@Gilad dinner?", chat=GROUP, id="g1", mentions=(OWNER,))
    state = json.loads(json.dumps(run.a.export(), allow_nan=False))
    state["chats"][GROUP]["unread"] = ["g0", "g1"]  # the format before senders were kept
    run.a = Assistant.restore(state, run.policy, run.persona)
    run.advance_until(MarkRead)
    assert run.effects(MarkRead) == [MarkRead(GROUP, ("g0", "g1"), "")]


def test_a_direct_chat_saved_with_a_sender_marks_read_without_one(run: Run) -> None:
    """A direct chat's receipt names no sender: a sender in its saved unread ids (never
    written by the core) is dropped on restore, and its ids export as bare ids."""
    run.msg("hello", id="d1")
    state = json.loads(json.dumps(run.a.export(), allow_nan=False))
    assert state["chats"][ALICE]["unread"] == ["d1"]
    state["chats"][ALICE]["unread"] = [["d0", "someone"], "d1"]
    run.a = Assistant.restore(state, run.policy, run.persona)
    assert run.a.export()["chats"][ALICE]["unread"] == ["d0", "d1"]
    run.advance_until(MarkRead)
    assert run.effects(MarkRead) == [MarkRead(ALICE, ("d0", "d1"), "")]
