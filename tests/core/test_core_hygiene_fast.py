"""Reply hygiene judges every reply exactly as before issue 18's matching work: the phrase
tables searched through `patterns.Alternation` (each fragment alone, behind substring tests)
find a match exactly when the one large alternation did, for text hypothesis builds from the
tables' own words, the corpus, names, the private tokens, markdown, quotes, brackets, invisible
and odd Unicode characters. What `clean_reply` returns as a whole is pinned on a seeded sample
of such replies in test_core_hygiene_pin.py."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st
from wapa.core import phrases
from wapa.core.hygiene import _names, normalise
from wapa.core.patterns import Alternation, required_text

from tests.core.test_core_hygiene_pin import (
    CORPUS_TEXTS,
    ODD_CHARS,
    SEPARATORS,
    TABLE_WORDS,
    TABLES,
    TOKENS,
)
from tests.core.test_core_hygiene_pin import NAMES as NAME_WORDS

# the same pools as the pinned sample: the tables' own words (so that fragments do match), the
# corpus, names, private tokens, and characters where normalising or case has special cases
PIECES = st.one_of(
    st.sampled_from(TABLE_WORDS),
    st.sampled_from(CORPUS_TEXTS),
    st.sampled_from(NAME_WORDS),
    st.sampled_from(TOKENS),
    st.sampled_from(ODD_CHARS),
    st.text(max_size=8),
)


@st.composite
def texts(draw: st.DrawFn, max_pieces: int = 14) -> str:
    pieces = draw(st.lists(PIECES, max_size=max_pieces))
    return "".join(p + draw(st.sampled_from(SEPARATORS)) for p in pieces)


def plain(table: dict[str, tuple[str, ...]], owner: str, me: str) -> re.Pattern[str]:
    """The category as it was compiled before: one alternation of every fragment."""
    fragments = [
        f.replace("{owner}", owner).replace("{me}", me)
        for lang in phrases.LANGUAGES
        for f in table.get(lang, ())
    ]
    return re.compile("|".join(f"(?:{f})" for f in fragments))


def fast(table: dict[str, tuple[str, ...]], owner: str, me: str) -> Alternation:
    return Alternation(
        f.replace("{owner}", owner).replace("{me}", me)
        for lang in phrases.LANGUAGES
        for f in table.get(lang, ())
    )


NAMES = [(_names("Gilad"), _names("Dana")), (_names(""), _names("J.R. (Bob) Ünal"))]
PAIRS = [(plain(t, o, m), fast(t, o, m)) for t in TABLES for o, m in NAMES]


@settings(max_examples=500, deadline=None)
@given(texts().map(lambda t: normalise(t)) | st.text(max_size=80))
@example("gilad will meet you tomorrow at 10.")
@example("as an ai language model, i can't")
@example("אני רק בוט")
def test_the_tables_find_a_match_exactly_when_the_alternation_did(text: str) -> None:
    for old, new in PAIRS:
        assert new.search(text) == (old.search(text) is not None), (old.pattern[:60], text)


def test_every_fragment_has_strings_its_matches_hold() -> None:
    """Not needed for exactness (a fragment without them is always searched), but for speed."""
    for table in TABLES:
        for fs in table.values():
            for f in fs:
                need = required_text(f.replace("{owner}", "(?:gilad)").replace("{me}", "dana"))
                assert need, f


def test_required_text_is_held_by_every_match() -> None:
    for pattern, matching in [
        (r"\b(?:confirmed|books?)\s+(?:now\s+)?(?:at|on)\b", ["confirmed  at", "book on"]),
        (r"(?:ab|c)+x[yz]", ["ccabxy", "cxz"]),
        (r"a(?i:bc)d|zz", ["aBCd", "zz"]),
        (r"q{0,2}r", ["r", "qqr"]),
    ]:
        need = required_text(pattern)
        assert need is not None
        for text in matching:
            assert re.search(pattern, text)
            assert any(n in text for n in need), (pattern, text, need)
    assert required_text("(?i)abc") is None  # case-insensitive: no letter is required
    assert required_text(r"\w+") is None
    assert required_text(r"(?<!\w)@gilad(?!\w)", re.IGNORECASE) == {"@"}
    assert required_text(r"(?i)x-(?-i:Ab)") == {"Ab"}
    assert required_text(r"a1-2b", re.IGNORECASE) == {"1-2"}


def test_ascii_characters_other_than_letters_match_only_themselves_ignoring_case() -> None:
    """What `required_text` assumes where case is ignored: asked of `re` for every code point."""
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    for c in map(chr, range(128)):
        if not c.isalpha():
            assert re.compile(re.escape(c), re.IGNORECASE).findall(every) == [c], repr(c)


ALIASES = [r"(?<!\w)@gilad(?!\w)", r"\bboss\b", r"g\.?b\.?", r"(?:hey|hi)\s+g-man", r"[#@]team"]


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("@#.-_ gilabosthemyGILABOSK\u212a\u0130ı\n")), max_size=40
    )
)
@example("hi @GILAD")
@example("@gilad_")
@example("Boss!")
def test_aliases_ignoring_case_match_as_the_joined_pattern(text: str) -> None:
    for n in range(1, len(ALIASES) + 1):
        joined = re.compile("|".join(f"(?:{a})" for a in ALIASES[:n]), re.IGNORECASE)
        assert Alternation(ALIASES[:n], re.IGNORECASE).search(text) == bool(joined.search(text))


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab '\"\n.,!?;:)\t\u00a0")), max_size=30))
@example("'a' b")
@example(" 'a'")
@example("x'a' 'b'.")
def test_quotes_are_found_where_they_were(text: str) -> None:
    from wapa.core.hygiene import _QUOTED

    old = re.compile(r"""(?:(?<=\s)|^)['"](.+?)['"](?=[\s.,!?;:)]|$)""")
    assert [m.span(1) for m in _QUOTED.finditer(text)] == [m.span(1) for m in old.finditer(text)]
