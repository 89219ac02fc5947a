"""Rule 6, media text: a voice note's transcript or an image's description arrives after its
message, fills its context entry, and an urgent transcript makes a pending reply urgent."""

from __future__ import annotations

from wapa.core import Assistant, Message, Persona, Policy
from wapa.core.events import Decision, Generate, MediaText, Reason

T0 = 1_741_600_000.0
ALICE = "alice@s.whatsapp.net"


def make() -> Assistant:
    return Assistant(Policy(), Persona(owner_id="owner", owner_name="Gilad"), seed=1)


def codes(effects: list) -> list[str]:
    return [e.code for e in effects if isinstance(e, Decision)]


def test_a_transcript_fills_the_voice_notes_context_entry() -> None:
    a = make()
    a.handle(Message(ALICE, ALICE, "v1", media="voice", sender_name="Alice"), T0)
    out = a.handle(MediaText(ALICE, "v1", "Are we still on for lunch tomorrow?"), T0 + 2)
    assert codes(out) == [Reason.MEDIA_TEXT]
    assert a.chats[ALICE].context[-1].text == (
        "[voice message] Are we still on for lunch tomorrow?"
    )
    assert a.next_deadline() == T0 + Policy().response_delay  # not urgent: unchanged
    effects = a.on_timer(T0 + Policy().response_delay)
    prompt = next(e for e in effects if isinstance(e, Generate)).messages
    assert "lunch tomorrow" in prompt[-1].content


def test_an_urgent_transcript_gives_the_urgent_delay() -> None:
    a = make()
    a.handle(Message(ALICE, ALICE, "v1", media="voice"), T0)
    out = a.handle(MediaText(ALICE, "v1", "Call me, it's urgent"), T0 + 3)
    assert codes(out) == [Reason.ESCALATED, Reason.URGENT]  # the owner is told too (rule 14)
    assert a.next_deadline() == T0 + Policy().urgent_delay  # counted from the message


def test_a_late_urgent_transcript_makes_the_reply_due_at_once() -> None:
    a = make()
    a.handle(Message(ALICE, ALICE, "v1", media="voice"), T0)
    a.handle(MediaText(ALICE, "v1", "urgent!!! call me now"), T0 + 60)
    assert a.next_deadline() == T0 + 60


def test_a_description_and_the_caption_both_stay() -> None:
    a = make()
    a.handle(Message(ALICE, ALICE, "p1", text="what do I do?", media="image"), T0)
    a.handle(MediaText(ALICE, "p1", "a parking ticket", "description"), T0 + 2)
    assert a.chats[ALICE].context[-1].text == "[photo: a parking ticket] what do I do?"


def test_media_text_during_generation_does_not_restart_the_reply() -> None:
    a = make()
    a.handle(Message(ALICE, ALICE, "v1", media="voice"), T0)
    effects = a.on_timer(T0 + Policy().response_delay)
    assert any(isinstance(e, Generate) for e in effects)
    out = a.handle(MediaText(ALICE, "v1", "it is urgent"), T0 + 121)
    # the context has it, the reply goes on; the owner is told (rule 14)
    assert codes(out) == [Reason.ESCALATED, Reason.MEDIA_TEXT]
    assert a.chats[ALICE].phase == "generating"


def test_media_text_for_an_unknown_message_is_ignored_and_survives_export() -> None:
    a = make()
    assert codes(a.handle(MediaText(ALICE, "nope", "hello"), T0)) == [Reason.IGNORED]
    a.handle(Message(ALICE, ALICE, "v1", media="voice"), T0 + 1)
    assert codes(a.handle(MediaText(ALICE, "v1", "   "), T0 + 2)) == [Reason.IGNORED]
    a.handle(MediaText(ALICE, "v1", "see you at eight"), T0 + 3)
    b = Assistant.restore(a.export(), Policy(), Persona(owner_id="owner", owner_name="Gilad"))
    assert b.chats[ALICE].context[-1].text == "[voice message] see you at eight"
