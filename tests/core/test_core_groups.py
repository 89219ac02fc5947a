"""Rule 5: groups get a reply only when the owner is addressed."""

from __future__ import annotations

import re

import pytest
from wapa.core import Decision, Generate, Reason, Send

from tests.support.core_run import GROUP, OWNER, MakeRun, Run


def _group_codes(run: Run, text: str, **kw: object) -> list[str]:
    out = run.msg(text, chat=GROUP, group_title="Family", participants=5, **kw)  # type: ignore[arg-type]
    return [e.code for e in out if isinstance(e, Decision)]


def test_unaddressed_group_message_gets_nothing(run: Run) -> None:
    assert _group_codes(run, "dinner at 8?") == [Reason.GROUP_NOT_ADDRESSED]
    run.advance(3600)
    assert run.effects(Generate) == []


def test_urgency_alone_never_speaks_in_a_group(run: Run) -> None:
    assert _group_codes(run, "URGENT!!! emergency, call me") == [Reason.GROUP_NOT_ADDRESSED]
    run.advance(3600)
    assert run.effects(Generate) == []


def test_mention_of_the_owner_addresses_him(run: Run) -> None:
    assert _group_codes(run, "@4917 are you coming?", mentions=(OWNER,)) == [Reason.SCHEDULED]


def test_quote_of_the_owner_addresses_him(run: Run) -> None:
    assert _group_codes(run, "yes!", quoted_id="X1", quoted_sender=OWNER) == [Reason.SCHEDULED]


def test_quote_of_the_assistant_addresses_him(run: Run) -> None:
    _group_codes(run, "@Gilad hi")
    sent = run.reply_cycle()
    run.confirm("wa-9")
    run.advance(6 * 3600)
    assert _group_codes(run, "thanks", quoted_id="wa-9") == [Reason.SCHEDULED]
    assert sent.quote_id


def test_quote_of_someone_else_does_not(run: Run) -> None:
    codes = _group_codes(run, "lol", quoted_id="zz", quoted_sender="carol@s.whatsapp.net")
    assert codes == [Reason.GROUP_NOT_ADDRESSED]


def test_owner_name_and_alias_address_him(make_run: MakeRun) -> None:
    r = make_run({"aliases": [r"\bgili\b"]})
    assert _group_codes(r, "@Gilad dinner?") == [Reason.SCHEDULED]
    r2 = make_run({"aliases": [r"\bgili\b"]})
    assert _group_codes(r2, "Gili, you there?") == [Reason.SCHEDULED]
    r3 = make_run({"aliases": [r"\bgili\b"]})
    assert _group_codes(r3, "Gilad's car is outside") == [Reason.GROUP_NOT_ADDRESSED]


@pytest.mark.parametrize(
    ("text", "addressed"),
    [
        ("@Gilad dinner?", True),  # at the start
        ("dinner, @gilad?", True),  # case ignored
        ("(@GILAD)", True),  # after a non-word character
        ("mail x@Gilad", False),  # after a word character: an address, not a mention
        ("_@Gilad", False),  # "_" is a word character
        ("é@Gilad", False),  # and so is a letter beyond ASCII
        ("@Giladx", False),  # another name
        ("@ Gilad", False),
    ],
)
def test_an_at_mention_of_the_owner_name_addresses_him(
    run: Run, text: str, addressed: bool
) -> None:
    r"""The name after "@", not after a word character, not followed by one (`_compile` writes
    the "@" first for speed: the same matches as `(?<!\w)@Gilad(?!\w)`)."""
    want = Reason.SCHEDULED if addressed else Reason.GROUP_NOT_ADDRESSED
    assert _group_codes(run, text) == [want]
    plain = re.compile(r"(?<!\w)@Gilad(?!\w)", re.IGNORECASE)
    assert (plain.search(text) is not None) is addressed


def test_group_reply_never(make_run: MakeRun) -> None:
    r = make_run({"group_reply": "never"})
    assert _group_codes(r, "@Gilad hi", mentions=(OWNER,)) == [Reason.GROUP_NEVER]
    r.advance(3600)
    assert r.effects(Generate) == []


def test_group_reply_quotes_the_addressing_message(run: Run) -> None:
    run.msg("dinner?", chat=GROUP, id="g1")
    run.msg("@Gilad what do you think?", chat=GROUP, id="g2")
    run.msg("anyone?", chat=GROUP, id="g3")
    sent = run.reply_cycle()
    assert isinstance(sent, Send) and sent.chat == GROUP and sent.quote_id == "g2"


def test_no_quote_when_disabled(make_run: MakeRun) -> None:
    r = make_run({"quote_in_groups": False})
    r.msg("@Gilad hi", chat=GROUP, id="g1")
    assert r.reply_cycle().quote_id == ""


def test_group_prompt_names_speakers_and_shapes_tone(run: Run) -> None:
    run.msg("hi all", chat=GROUP, sender_name="Bob", group_title="Family", participants=40)
    run.msg("@Gilad ping", chat=GROUP, sender_name="Bob", group_title="Family", participants=40)
    run.advance(3600)
    (gen,) = run.effects(Generate)
    system = gen.messages[0].content
    assert "Family" not in system and "very brief" in system  # the title is user content
    assert [m.content for m in gen.messages[1:]] == [
        '[Group "Family" with 40 participants]',
        "Bob: hi all",
        "Bob: @Gilad ping",
    ]
