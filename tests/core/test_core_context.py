"""Rules 10 (context: count, age, roles, budget) and 11 (reply hygiene)."""

from __future__ import annotations

import pytest
from wapa.core import ChatMessage, Decision, Generate, GenerationFailed, Reason, Send
from wapa.core.context import prompt_tokens
from wapa.core.hygiene import clean_reply

from tests.support.core_run import ALICE, GROUP, MakeRun, Run

# ---------------------------------------------------------------- rule 10: context


def _prompt(run: Run) -> tuple[ChatMessage, ...]:
    run.advance(3600)
    return run.effects(Generate)[-1].messages


def test_context_keeps_the_last_max_context_messages(run: Run) -> None:
    for i in range(15):
        run.msg(f"message {i}", dt=1)
    turns = _prompt(run)[1:]
    assert [m.content for m in turns] == [f"message {i}" for i in range(5, 15)]


def test_context_forgets_messages_older_than_context_ttl(run: Run) -> None:
    run.msg("old news")
    run.reply_cycle("Noted.")
    run.msg("fresh news", dt=25 * 3600)
    turns = _prompt(run)[1:]
    assert [m.content for m in turns] == ["fresh news"]


def test_roles_contact_assistant_owner(run: Run) -> None:
    run.msg("hi, is Gilad around?", sender_name="Alice")
    run.reply_cycle("He's busy right now, I'll tell him you wrote.")
    run.owner("Alice, call you at 6", dt=60)
    run.msg("ok thanks", dt=6 * 3600)
    messages = _prompt(run)
    assert [(m.role, m.content) for m in messages[1:]] == [
        ("user", '[Chat with "Alice"]'),  # the name is user content, quoted
        ("user", "hi, is Gilad around?"),
        ("assistant", "He's busy right now, I'll tell him you wrote."),
        ("assistant", "[Gilad wrote] Alice, call you at 6"),
        ("user", "ok thanks"),
    ]
    assert messages[0].role == "system" and "Alice" not in messages[0].content


def test_group_contacts_are_named(run: Run) -> None:
    run.msg("@Gilad hi", chat=GROUP, sender_name="Bob")
    turns = _prompt(run)[1:]
    assert [(m.role, m.content) for m in turns] == [("user", "Bob: @Gilad hi")]


def test_each_message_appears_once(run: Run) -> None:
    run.msg("the blue bicycle")
    run.msg("is in the garage", dt=5)
    messages = _prompt(run)
    joined = "\n".join(m.content for m in messages)
    assert joined.count("the blue bicycle") == 1 and joined.count("is in the garage") == 1
    assert joined.count("personal assistant of Gilad") == 1


def test_prompt_stays_within_the_token_budget(make_run: MakeRun) -> None:
    r = make_run({"prompt_token_budget": 400, "max_message_chars": 5000})
    for i in range(10):
        r.msg(f"{i} " + "word " * 200, dt=1)
    messages = _prompt(r)
    assert prompt_tokens(messages) <= 400
    assert messages[-1].content.startswith("9 ")  # the newest survives


def test_a_one_megabyte_message_is_cut(run: Run) -> None:
    run.msg("a" * 1_000_000)
    last = _prompt(run)[-1].content
    assert last == "a" * 1000 + " [...]"


# ---------------------------------------------------------------- rule 11: hygiene

SYSTEM = "You are Dana, the personal assistant of Gilad, answering Gilad's WhatsApp messages."


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("As an AI language model, I can't call. Gilad is busy.", "Gilad is busy."),
        ("I'm an AI assistant. Gilad will reply later.", "Gilad will reply later."),
        ('Assistant: "hi there"', "Hi there"),
        (
            "Gilad is out. I'll make sure he sees this.",
            "Gilad is out. I'll make sure he sees this.",
        ),
        ("Sure. He will meet you at 5. I'll tell him.", "Sure. I'll tell him."),
    ],
)
def test_clean_reply_fixes(raw: str, clean: str) -> None:
    assert clean_reply(raw, SYSTEM, 600) == (clean, "")


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "empty"),
        ("  ...  ", "empty"),
        ("[Your reply here]", "placeholder"),
        ("N/A", "placeholder"),
        (
            "You are Dana, the personal assistant of Gilad, answering Gilad's WhatsApp",
            "echoes the system prompt",
        ),
        ("I promise he'll be there. It's a deal!", "commits the owner"),
    ],
)
def test_clean_reply_refuses(raw: str, why: str) -> None:
    assert clean_reply(raw, SYSTEM, 600) == ("", why)


def test_clean_reply_caps_the_length() -> None:
    text, why = clean_reply("This is fine. " * 200, SYSTEM, 600)
    assert not why and len(text) <= 600 and text.endswith(".")


def test_a_refused_reply_sends_nothing_by_default(run: Run) -> None:
    run.msg("hello")
    run.advance(120)
    run.answer("[insert reply]")
    run.advance(3600)
    assert run.sends() == []
    assert Reason.REJECTED in run.codes(ALICE) and Reason.GENERATION_FAILED in run.codes(ALICE)
    assert run.a.next_deadline() is None


def test_a_model_failure_sends_nothing_by_default(run: Run) -> None:
    run.msg("hello")
    run.advance(120)
    run.fail("capacity")
    run.advance(3600)
    assert run.sends() == []
    failed = [d for d in run.effects(Decision) if d.code == Reason.GENERATION_FAILED]
    assert failed and "capacity" in failed[0].detail


@pytest.mark.parametrize("failure", ["error", "refused"])
def test_holding_message_on_failure(make_run: MakeRun, failure: str) -> None:
    holding = "Gilad can't answer right now; he'll get back to you."
    r = make_run({"holding_message": holding})
    r.msg("hello")
    r.advance(120)
    if failure == "error":
        r.feed(GenerationFailed(r.pending()[0].request_id, "timeout"))
    else:
        r.answer("As an AI, I cannot.")
    r.advance(60)
    assert [s.text for s in r.sends()] == [holding]
    assert Reason.HOLDING in r.codes(ALICE)


def test_the_sent_text_is_the_cleaned_text(run: Run) -> None:
    run.msg("hello")
    sent = run.reply_cycle("As an AI, I can't say. gilad is in a meeting.")
    assert isinstance(sent, Send) and sent.text == "Gilad is in a meeting."


def test_generation_timeout_gives_up(run: Run) -> None:
    run.msg("hello")
    run.advance(120 + 180)
    assert Reason.GENERATION_TIMEOUT in run.codes(ALICE)
    assert run.a.next_deadline() is None
