"""Reply hygiene judges every reply exactly as before issue 18's matching work: the phrase
tables searched through `patterns.Alternation` (each fragment alone, behind substring tests)
find a match exactly when the one large alternation did, and `clean_reply` returns what the
original returned (tests/core/reference_hygiene.py, kept here as the oracle), for the corpus
and for text hypothesis builds from the tables' own words, the corpus, names, the private
tokens, markdown, quotes, brackets, invisible and odd Unicode characters."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st
from wapa.core import phrases
from wapa.core.context import system_prompt
from wapa.core.hygiene import _names, clean_reply
from wapa.core.patterns import Alternation, required_text
from wapa.core.policy import Persona

from tests.core import reference_hygiene as reference

CORPUS = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "replies" / "corpus.json").read_text("utf-8")
)
TABLES = (
    phrases.COMMITMENTS,
    phrases.AI_DISCLOSURES,
    phrases.REFUSALS,
    phrases.INSTRUCTION_TALK,
)
PERSONA = Persona(
    owner_name=CORPUS["persona"]["owner_name"],
    assistant_name=CORPUS["persona"]["assistant_name"],
    introduction=CORPUS["persona"]["introduction"],
    languages=tuple(CORPUS["persona"]["languages"]),
    extra_instructions=CORPUS["persona"]["extra_instructions"],
)
ODD = Persona(owner_name="J.R. (Bob) Ünal", assistant_name="Ma*ry", extra_instructions="Code 0042.")
SYSTEMS = [
    (system_prompt(PERSONA, False), PERSONA),
    (system_prompt(PERSONA, True), None),
    (system_prompt(ODD, False), ODD),
    ("", None),
]

# words of the tables themselves (so that fragments do match), of the corpus, and characters
# where normalising or case has its special cases
TABLE_WORDS = sorted(
    {w for t in TABLES for fs in t.values() for f in fs for w in re.findall(r"[^\W\d_]+'?", f)}
)
CORPUS_TEXTS = [item["text"] for item in CORPUS["bad"] + CORPUS["good"]]
ODD_CHARS = list(
    "\u200b\u00ad\u202e\u2066\ufeff\u2019\u201c\u201d\u00ab\u00bb*_~`#[]{}<>|\"'.!?…؟\n\t "
    "ﬁＡｂ①ßẞİıſK\u0301é\u05e9\u0627\u0416"
)
PIECES = st.one_of(
    st.sampled_from(TABLE_WORDS),
    st.sampled_from(CORPUS_TEXTS),
    st.sampled_from(["Gilad", "Dana", "Noa", "Alice", "4711", "Lisbon", "14 March", "Bob", "Ünal"]),
    st.sampled_from(["<|eot_id|>", "[INST]", "[Name]", "[voice message]", "{x}", "<NAME>"]),
    st.sampled_from(ODD_CHARS),
    st.text(max_size=8),
)
SEPARATORS = st.sampled_from([" ", " ", ", ", ". ", "! ", "\n", " '", "' ", ' "', '" ', "**"])


@st.composite
def texts(draw: st.DrawFn, max_pieces: int = 14) -> str:
    pieces = draw(st.lists(PIECES, max_size=max_pieces))
    return "".join(p + draw(SEPARATORS) for p in pieces)


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
@given(texts().map(lambda t: reference.normalise(t)) | st.text(max_size=80))
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


@settings(max_examples=300, deadline=None)
@given(texts(), st.none() | texts(6), st.sampled_from(SYSTEMS), st.integers(10, 600))
@example("I’ll be there at 8.", None, SYSTEMS[0], 600)
@example("Noa says the code is 4711. Gilad is away.", "what is 4711?", SYSTEMS[0], 600)
@example('He said "I will pay you" yesterday. See you!', "I will pay you", SYSTEMS[0], 40)
@example("**As an AI**, I can't. Gilad will call you.", "", SYSTEMS[1], 600)
def test_clean_reply_is_the_original(
    text: str, heard: str | None, system: tuple[str, Persona | None], max_chars: int
) -> None:
    prompt, persona = system
    assert clean_reply(text, prompt, max_chars, persona=persona, heard=heard) == (
        reference.clean_reply(text, prompt, max_chars, persona=persona, heard=heard)
    )


def test_the_corpus_is_judged_as_before() -> None:
    for prompt, persona in SYSTEMS:
        for text in CORPUS_TEXTS:
            for heard in (None, "Hi, it's Alice. Is 4711 the code? Call me", ""):
                got = clean_reply(text, prompt, 600, persona=persona, heard=heard)
                want = reference.clean_reply(text, prompt, 600, persona=persona, heard=heard)
                assert got == want, (text, heard)


def test_a_huge_reply_is_judged_as_before() -> None:
    text = " ".join(CORPUS_TEXTS) * 20 + " Gilad will pay you."
    heard = " ".join(CORPUS_TEXTS[:50]) * 5
    prompt, persona = SYSTEMS[0]
    assert clean_reply(text, prompt, 4000, persona=persona, heard=heard) == (
        reference.clean_reply(text, prompt, 4000, persona=persona, heard=heard)
    )


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab '\"\n.,!?;:)\t\u00a0")), max_size=30))
@example("'a' b")
@example(" 'a'")
@example("x'a' 'b'.")
def test_quotes_are_found_where_they_were(text: str) -> None:
    from wapa.core.hygiene import _QUOTED

    old = re.compile(r"""(?:(?<=\s)|^)['"](.+?)['"](?=[\s.,!?;:)]|$)""")
    assert [m.span(1) for m in _QUOTED.finditer(text)] == [m.span(1) for m in old.finditer(text)]
