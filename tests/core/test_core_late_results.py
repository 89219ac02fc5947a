"""Late results and driver-extended notices: the trace still names the chat, and the echo of
a notice the driver lengthened is still recognised as ours."""

from __future__ import annotations

from wapa.core import Decision, Generate, Generated, Notice, Reason

from tests.support.core_run import ALICE, OWNER, Run


def test_a_late_model_answer_after_the_owner_wrote_is_traced_in_its_chat(run: Run) -> None:
    run.msg("are you free?")
    gen = run.advance_until(Generate)
    run.owner("I'll call you", dt=5)
    effects = run.feed(Generated(gen.request_id, "Hi! He is busy."), dt=10)
    late = [d for d in effects if isinstance(d, Decision) and d.code == Reason.UNKNOWN_REQUEST]
    assert late and late[0].chat == ALICE
    assert run.sends() == []


def test_a_reply_ready_trace_says_when_it_will_be_sent(run: Run) -> None:
    run.msg("hello")
    run.reply_cycle("Hi! Gilad is away; I'll tell him you wrote.")
    codes = run.codes(ALICE)
    assert codes.index(Reason.REPLY_READY) == codes.index(Reason.SENT) - 1


def test_the_echo_of_a_status_notice_with_a_driver_line_is_not_a_note(run: Run) -> None:
    effects = run.owner("status", chat=OWNER)
    notice = next(e for e in effects if isinstance(e, Notice))
    run.owner(notice.text + "\nModel budget left today: 9000 neurons.", chat=OWNER, dt=1)
    assert run.codes(OWNER)[-1] == Reason.ECHO
    # ...and a second arrival of the same text (the owner pasting it) is no longer an echo
    run.owner(notice.text + "\nModel budget left today: 9000 neurons.", chat=OWNER, dt=1)
    assert run.codes(OWNER)[-1] == Reason.IGNORED


def test_a_backlog_message_written_long_ago_is_context_only(run: Run) -> None:
    run.msg("are you there?", sent_at=run.t - 2 * 3600)
    assert run.codes(ALICE)[-1] == Reason.STALE
    run.advance(3600)
    assert run.effects(Generate) == []
    run.msg("hello again", sent_at=run.t - 30)  # written just now: answered, with the backlog
    gen = run.advance_until(Generate)
    assert [m.content for m in gen.messages[1:]] == ["are you there?", "hello again"]


def test_mute_a_chat_whose_name_ends_in_a_number(run: Run) -> None:
    run.msg("hi", chat="team5@g.us", group_title="Team 5", mentions=(OWNER,))
    run.owner("mute Team 5", chat=OWNER, dt=1)
    assert run.a.chats["team5@g.us"].muted_until >= 1e17  # until further notice, not 5 s
    run.owner("mute Team 5 2h", chat=OWNER, dt=1)
    assert run.a.chats["team5@g.us"].muted_until == run.t + 7200
