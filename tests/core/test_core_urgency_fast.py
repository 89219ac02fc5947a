"""`urgency.Keywords` (lowercase once, no IGNORECASE, a test of the text's words first) scores every
text exactly as the original scorer did: the original is kept here as the reference, and
hypothesis looks for a text or a keyword list where the two differ (case, the long s, the
Kelvin sign, dotted and dotless i, German sharp s, Hebrew, whitespace runs, word boundaries)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from hypothesis import example, given, settings
from hypothesis import strategies as st
from wapa.core.policy import Policy
from wapa.core.urgency import _WORD_BYTES, SCAN_CHARS, _ascii_char, emphasised, keywords, score


def reference_pattern(words: Iterable[str]) -> re.Pattern[str] | None:
    """The scorer's pattern as it was before `Keywords` (issue 18)."""
    kept = sorted({k.strip().casefold() for k in words if k.strip()}, key=len, reverse=True)
    if not kept:
        return None
    alternatives = "|".join(r"\s+".join(map(re.escape, w.split())) for w in kept)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def reference_score(text: str, pattern: re.Pattern[str] | None, burst: bool) -> int:
    """The scorer as it was before `Keywords`: an IGNORECASE findall on every call."""
    text = text[:SCAN_CHARS]
    points = 0
    if pattern is not None and text:
        points += 2 * len({m.casefold() for m in pattern.findall(text)})
    if text and emphasised(text):
        points += 1
    if burst:
        points += 1
    return points


DEFAULT = list(Policy().urgent_keywords)
# the characters where case-insensitive matching has its special cases, and plenty of ASCII
TRICKY = "sSſkKKiIıİßẞµμσςΣ \t\n\u00a0.!-'_0123456789דחוףéÉ’“🚨‼\u2003\u200b\u0301"
ALPHABET = st.sampled_from(
    [*TRICKY, *"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", *(w + " " for w in DEFAULT)]
)
texts = st.lists(ALPHABET, max_size=40).map("".join) | st.text(max_size=60)
word_lists = st.lists(
    st.text(alphabet=st.sampled_from([*TRICKY, *"aeiknorstuvwxyzAEK "]), min_size=1, max_size=8),
    min_size=1,
    max_size=6,
)


@settings(max_examples=400)
@given(texts, st.booleans())
@example("URGENT call   ME now", False)
@example("ſofort and Kelvin: hospital", False)
@example("İmmediately, not ımmediately", True)
@example("xcall me asap", False)
def test_default_keywords_score_as_before(text: str, burst: bool) -> None:
    fast = keywords(DEFAULT)
    assert score(text, fast, burst) == reference_score(text, reference_pattern(DEFAULT), burst)


@settings(max_examples=300)
@given(word_lists, texts)
@example(["ı"], "I i ı İ")
@example(["ſ", "k"], "s S K k")
@example(["call me", "me now"], "xcall me now")
@example(["right", "right now"], "right\x1cnow, right_now")
@example(["a.s.a.p", "call me"], "call_me a.s.a.p.")
@example(["9-1-1", "k"], "dial 9-1-1 K")
@example(["🚨", "call me"], "🚨 call\u00a0me’")
@example(["‼", "now"], "now‼ 🚨")
@example(["דחוף", "call me"], "call\u2003me 🚨 ok")
@example(["sofort"], "ſofort 🚨")
def test_any_keywords_score_as_before(words: list[str], text: str) -> None:
    fast = keywords(words)
    assert score(text, fast, False) == reference_score(text, reference_pattern(words), False)


def test_a_text_beyond_the_scan_is_cut_the_same_way() -> None:
    text = "x" * (SCAN_CHARS - 3) + " urgent"
    fast = keywords(DEFAULT)
    assert score(text, fast, False) == reference_score(text, reference_pattern(DEFAULT), False) == 0


def test_the_word_table_splits_ascii_as_the_boundaries_see_it() -> None:
    for c in map(chr, range(128)):
        word = re.fullmatch(r"\w", c) is not None
        assert _WORD_BYTES[ord(c)] == (ord(c) if word else ord(" ")), repr(c)


@settings(max_examples=200)
@given(
    word_lists, st.text(alphabet=st.sampled_from([*TRICKY, *"acelmnorw\x1c\x1f\x0b"]), max_size=50)
)
def test_phrases_and_their_first_words_score_as_before(words: list[str], text: str) -> None:
    words = [*words, "call me", "call", "right now", "me"]
    fast = keywords(words)
    assert score(text, fast, False) == reference_score(text, reference_pattern(words), False)


def _ascii_char_by_fullmatch(c: str) -> str | None:
    """`_ascii_char` as first written: one IGNORECASE match per ASCII character."""
    found = [
        a
        for a in map(chr, range(128))
        if a == a.lower() and re.fullmatch(re.escape(c), a, re.IGNORECASE)
    ]
    return found[0] if len(found) == 1 else None


@settings(max_examples=300, deadline=None)
@given(st.characters())
# the characters beyond ASCII that IGNORECASE matches to an ASCII letter, and their neighbours
@example("\u017f")  # long s: s
@example("\u212a")  # Kelvin sign: k
@example("\u0130")  # I with dot above
@example("\u0131")  # dotless i
@example("K")
@example("_")
def test_the_ascii_form_of_a_character_is_what_re_matches(c: str) -> None:
    assert _ascii_char.__wrapped__(c) == _ascii_char_by_fullmatch(c)
