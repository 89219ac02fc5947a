"""The core hands hygiene what the contact wrote: quotes of his own words are his, not ours."""

from __future__ import annotations

from wapa.core import Decision, Reason

from tests.support.core_run import Run


def test_a_quoted_promise_the_contact_never_wrote_is_still_judged(run: Run) -> None:
    run.msg("are you coming tonight?")
    run.advance(120)
    run.answer('Gilad said "I will be there at 8" and will confirm himself.')
    run.advance(60)
    sent = [s.text for s in run.sends()]
    assert all("I will be there" not in text for text in sent)
    refused = [d for d in run.effects(Decision) if d.code == Reason.REJECTED]
    assert sent or refused  # dropped from the reply, or the reply refused


def test_quoting_the_contact_back_is_allowed(run: Run) -> None:
    run.msg('my note says "I will be there at 8", is that right?')
    run.advance(120)
    run.answer('You wrote "I will be there at 8"; Gilad will answer you personally.')
    run.advance(60)
    assert any("I will be there at 8" in s.text for s in run.sends())
