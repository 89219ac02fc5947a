"""Rules 3 (owner takeover, echoes are not the owner) and 12 (owner commands)."""

from __future__ import annotations

from wapa.core import (
    Command,
    Decision,
    Generate,
    Generated,
    Notice,
    Reason,
    Send,
    SendFailed,
    Typing,
)

from tests.support.core_run import ALICE, BOB, GROUP, OWNER, Run

# ---------------------------------------------------------------- rule 3: owner takeover


def test_owner_message_cancels_a_pending_reply(run: Run) -> None:
    run.msg("hello")
    out = run.owner("hi Alice, I'm here", dt=60)
    assert Reason.OWNER_TAKEOVER in [e.code for e in out if isinstance(e, Decision)]
    run.advance(3600)
    assert run.effects(Generate) == [] and run.sends() == []


def test_owner_message_discards_an_in_flight_generation_and_stops_typing(run: Run) -> None:
    run.msg("hello")
    run.advance(120)
    rid = run.pending()[0].request_id
    out = run.owner("got it, calling you", dt=3)
    assert Typing(ALICE, False) in out
    late = run.feed(Generated(rid, "Gilad will answer soon."), dt=2)
    assert [e.code for e in late if isinstance(e, Decision)] == [Reason.UNKNOWN_REQUEST]
    run.advance(3600)
    assert run.sends() == []


def test_owner_message_during_typing_cancels_the_send(run: Run) -> None:
    run.msg("hello")
    run.advance(120)
    run.answer("x" * 160 + ".")  # ~20 s of typing
    out = run.owner("here!", dt=5)
    assert Typing(ALICE, False) in out
    run.advance(3600)
    assert run.sends() == []


def test_owner_message_starts_a_cooldown(run: Run) -> None:
    run.owner("hey Alice")
    run.msg("hi Gilad!", dt=60)
    run.msg("URGENT please call me!!!", dt=60)  # an owner's cooldown is never broken
    run.advance(4 * 3600)
    assert run.sends() == [] and run.effects(Generate) == []
    assert Reason.BREAKTHROUGH not in run.codes()
    run.advance(3600)
    run.msg("still there?")
    run.reply_cycle()
    assert len(run.sends()) == 1


def test_echo_from_this_device_before_confirmation_is_not_the_owner(run: Run) -> None:
    """Only a fault (or another transport) echoes: whatsmeow never does. Its device decides."""
    run.msg("hello")
    sent = run.reply_cycle()
    out = run.owner(sent.text, id="wa-77", own_device=True)
    assert [e.code for e in out if isinstance(e, Decision)] == [Reason.ECHO]
    run.confirm("wa-77")
    assert Reason.OWNER_TAKEOVER not in run.codes()


def test_echo_by_id_after_confirmation_is_not_the_owner(run: Run) -> None:
    run.msg("hello")
    run.reply_cycle()
    run.confirm("wa-77")
    # WhatsApp may hand the echo back with a different text rendering: the id decides
    out = run.owner("(edited rendering)", id="wa-77")
    assert [e.code for e in out if isinstance(e, Decision)] == [Reason.ECHO]


def test_owner_typing_the_reply_text_from_his_phone_is_the_owner(run: Run) -> None:
    """whatsmeow delivers no echo of our send; a from-me message with our reply's words from
    another device (the phone is device 0) is the owner taking over, whatever its text."""
    run.msg("hello")
    sent = run.reply_cycle()
    run.confirm("wa-77")
    out = run.owner(sent.text, id="phone-1", dt=5)
    assert Reason.OWNER_TAKEOVER in [e.code for e in out if isinstance(e, Decision)]
    assert Reason.ECHO not in run.codes()


def test_an_echo_keeps_the_breakthrough_available(run: Run) -> None:
    """Were the echo taken for the owner, his cooldown would block the urgent breakthrough."""
    run.msg("hello")
    sent = run.reply_cycle()
    run.owner(sent.text, dt=1, own_device=True)
    run.msg("urgent: please call me", dt=600)
    run.reply_cycle()
    assert len(run.sends()) == 2


def test_owner_repeating_the_reply_text_twice_is_the_owner_the_second_time(run: Run) -> None:
    run.msg("hello")
    sent = run.reply_cycle()
    run.owner(sent.text, own_device=True)  # the echo (a fault: whatsmeow sends none)
    out = run.owner(sent.text, dt=30)  # the owner typing the same words himself
    assert Reason.OWNER_TAKEOVER in [e.code for e in out if isinstance(e, Decision)]


# ---------------------------------------------------------------- rule 12: owner commands


def self_chat(run: Run, text: str) -> list[str]:
    out = run.msg(text, chat=OWNER, from_me=True)
    return [e.text for e in out if isinstance(e, Notice)]


def test_pause_stops_replies_and_cancels_pending(run: Run) -> None:
    run.msg("hello")
    notices = self_chat(run, "pause")
    assert notices and "Paused" in notices[0]
    run.msg("anyone?", chat=BOB, dt=10)
    run.advance(3600)
    assert run.effects(Generate) == []
    assert Reason.PAUSED in run.codes(ALICE) and Reason.PAUSED in run.codes(BOB)


def test_resume_answers_again(run: Run) -> None:
    self_chat(run, "pause")
    assert "Resumed" in self_chat(run, "/resume")[0]
    run.msg("hello")
    run.reply_cycle()
    assert len(run.sends()) == 1


def test_status_reports_counts(run: Run) -> None:
    run.msg("hello")
    (status,) = self_chat(run, "status")
    assert "active" in status and "1 reply pending" in status


def test_mute_by_name_with_duration_and_unmute(run: Run) -> None:
    run.msg("hello", sender_name="Alice")
    notices = self_chat(run, "mute alice 1h")
    assert notices[0].startswith("Muted Alice until")
    run.advance(600)
    assert run.effects(Generate) == []  # pending reply cancelled
    out = run.msg("hi?", dt=60)
    assert [e.code for e in out if isinstance(e, Decision)] == [Reason.MUTED]
    run.advance(600)
    assert run.effects(Generate) == []
    self_chat(run, f"unmute {ALICE}")
    run.msg("hello again", dt=10)
    run.reply_cycle()
    assert len(run.sends()) == 1


def test_mute_unknown_chat_says_so(run: Run) -> None:
    assert self_chat(run, "mute nobody")[0] == "No chat called 'nobody'."


def test_help_lists_commands(run: Run) -> None:
    assert "pause, resume, status" in self_chat(run, "help")[0]


def test_commands_as_events(run: Run) -> None:
    out = run.feed(Command("pause"))
    assert any(isinstance(e, Notice) for e in out)
    assert run.a.paused


def test_notes_to_self_are_not_commands(run: Run) -> None:
    out = run.msg("pause the washing machine at 5", chat=OWNER, from_me=True)
    assert [e.code for e in out if isinstance(e, Decision)] == [Reason.IGNORED]
    assert not any(isinstance(e, Notice) for e in out)
    assert not run.a.paused


def test_commands_only_from_the_owner(run: Run) -> None:
    out = run.msg("pause", chat=OWNER, from_me=False)  # someone else writing in that chat
    assert not run.a.paused and not any(isinstance(e, Notice) for e in out)


def test_echo_of_a_notice_is_not_a_command(run: Run) -> None:
    (notice,) = self_chat(run, "status")
    out = run.msg(notice, chat=OWNER, from_me=True)
    assert [e.code for e in out if isinstance(e, Decision)] == [Reason.ECHO]


def test_owner_writing_in_a_group_takes_over_there(run: Run) -> None:
    run.msg("@Gilad are you coming?", chat=GROUP)
    run.owner("yes, on my way", chat=GROUP, dt=20)
    run.advance(3600)
    assert run.sends() == []


def test_send_failure_gives_the_cooldown_back(run: Run) -> None:
    run.msg("hello")
    sent = run.reply_cycle()
    out = run.feed(SendFailed(sent.request_id, "not on WhatsApp"))
    assert [e.code for e in out if isinstance(e, Decision)] == [Reason.SEND_FAILED]
    run.msg("hello??", dt=60)
    run.reply_cycle()
    assert len(run.sends()) == 2
    assert isinstance(run.sends()[-1], Send)
