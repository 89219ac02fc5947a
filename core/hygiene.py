"""Rule 11, reply hygiene: what the model wrote is cleaned, or refused, before a contact sees it.

`clean_reply` returns (text, "") when the reply may be sent, or ("", reason) when nothing
should be. It is deterministic, stdlib-only and always on. How it judges:

1. **Normalise before judging.** Each check reads a copy of the text in Unicode NFKC, with
   straight quotes and apostrophes, without zero-width and bidi characters, soft hyphens or
   markdown emphasis (`*`, `_`, `~`, backticks), on single spaces, case-folded. What is sent
   is the model's own wording (minus dropped sentences), never the normalised copy.
2. **Refused whole**: empty text, a placeholder reply, a template slot anywhere (`[Name]`,
   `{name}`, `<NAME>`; the context's media labels such as `[voice message]` are fine),
   chat-template tokens (`<|eot_id|>`, `[INST]`, `<<SYS>>`), and an echo of the system
   prompt: three or more word 3-grams shared with it (after normalisation, so markdown or a
   zero-width space does not hide it), not counting the phrases the prompt asks the model to
   say ("you will pass the message on...", the persona's introduction).
3. **Dropped sentence by sentence**, in every language of `core.phrases` (English, German,
   Spanish, French, Portuguese, Italian, Dutch, Hebrew, Arabic, Russian) whatever the
   persona declares: commitments on the owner's behalf (by pronoun or by the owner's name;
   first person, passive "it's confirmed", "deal", "count him in", "see you at 8", money,
   attendance), AI disclosures anywhere, refusals, talk about its instructions, and leaks:
   a sentence that names a distinctive token of the system prompt (a number of two or more
   digits, an e-mail address or a capitalised word that the prompt's own template does not
   use and that is not the owner's or the assistant's name, e.g. the door code or the
   wife's name in the owner's private instructions) that the contact did not write himself.
   Text inside quotes is the contact's own words being repeated and is not judged as a
   commitment or disclosure (when `heard` is given, only quotes of what the contact wrote).
   If a sentence was dropped and fewer than three words are left ("Hi Alice!"), nothing is
   sent.
4. **Sayable by design**: what the prompt puts in `[You may share: ...]` brackets (a
   profile's whereabouts, the calendar's free/busy times) may be repeated: it is neither an
   echo of the prompt nor a leak of its tokens.

What still gets through is listed in docs/model.md ("Reply safety").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from typing import NamedTuple

from wapa.core import phrases
from wapa.core.context import MEDIA_LABELS, PASS_ON, system_prompt
from wapa.core.patterns import Alternation
from wapa.core.policy import Persona

EMPTY = "empty"
NOT_TEXT = "not text"
PLACEHOLDER = "placeholder"
TEMPLATE = "chat-template tokens"
ECHO = "echoes the system prompt"
COMMITS = "commits the owner"
AI = "discloses being an AI"
REFUSAL = "a refusal"
INSTRUCTIONS = "talks about its instructions"
LEAK = "leaks private instructions"

_INVISIBLE: dict[int, str | None] = dict.fromkeys(
    map(
        ord,
        "\u00ad\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060"
        "\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff\u061c",
    ),
    None,
)
_QUOTES = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
        "\u05f3": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"',
        "\u00ab": '"', "\u00bb": '"', "\u05f4": '"', "\u2033": '"',
    }
)  # fmt: skip
_FOLD = {**_INVISIBLE, **_QUOTES}  # both at once (no character is in both)
_MARKDOWN = re.compile(r"[*_~`]+|^#+\s*", re.MULTILINE)


def normalise(text: str) -> str:
    """The copy every check reads: NFKC, straight quotes, no invisible characters or
    markdown emphasis, single spaces, case-folded."""
    if not text.isascii():  # (ASCII text is NFKC already, with no such character to fold)
        text = unicodedata.normalize("NFKC", text).translate(_FOLD)
    if "*" in text or "_" in text or "~" in text or "`" in text or "#" in text:
        text = _MARKDOWN.sub("", text)  # (nothing to remove without one of its characters)
    return " ".join(text.split()).casefold()


_ROLE_PREFIX = re.compile(r"^\s*(?:assistant|ai|bot|reply|response)\s*:\s*", re.IGNORECASE)
_PLACEHOLDER = re.compile(
    r"^\s*(?:\.{2,}|…|n/?a|none|null|undefined|todo|tbd|lorem ipsum.*|sorry,? i (?:could not|"
    r"couldn't|can ?not|am unable to) (?:generate|produce|create)[^.]*\.?)\s*$",
    re.IGNORECASE,
)
_SLOT = re.compile(r"\[[^\[\]\n]{1,40}\]|\{[^{}\n]{1,40}\}|<[^\s<>|/\d][^<>\n]{0,38}>")
_ALLOWED_SLOTS = frozenset(label.casefold() for label in MEDIA_LABELS.values())
_TEMPLATE = re.compile(
    r"<\|[^|>\n]{0,40}\|>|\[/?inst\]|<</?sys>>|</?s>|<(?:start|end)_of_turn>|<\|?im_(?:start|end)",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"[^.!?…؟\n]+(?:[.!?…؟]+|\n|$)")
# a quote at the start or after a space: `(?:(?<=\s)|^)['"]...`, with the quote first so that
# `re` looks for the quote characters alone (its prefix scan) before it checks what is before
_QUOTED = re.compile(r"""['"](?:(?<=\s['"])|(?<=^['"]))(.+?)['"](?=[\s.,!?;:)]|$)""")
_WORD = re.compile(r"\w+")
_IDENTITY = re.compile(r"You are (.+?), the personal assistant of (.+?), answering")
_NUMBER = re.compile(r"\d[\d:.,/-]*\d")
# What the prompt lets the model say (core.context: a profile's whereabouts, the calendar's
# free/busy times): neither an echo of the prompt nor a leak when repeated.
_SHAREABLE = re.compile(r"\[You may share: ([^\]]*)\]")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
_CAPITALISED = re.compile(r"\b[^\W\d_][\w'-]+")


# Capitalised but common: never a distinctive token of the prompt on their own.
_CALENDAR = frozenset(
    [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ]
)


class Guard(NamedTuple):
    """What one system prompt (and persona) makes of the checks: built once, cached."""

    drop: tuple[tuple[str, Alternation], ...]  # (reason, its phrases) per category
    shingles: frozenset[tuple[str, ...]]  # word 3-grams of the prompt, sayable ones removed
    private: frozenset[str]  # distinctive tokens of the prompt, case-folded


def _names(name: str) -> str:
    """`{owner}` / `{me}`: the full name and its first word, escaped; never-matching if none."""
    folded = normalise(name)
    if not folded or folded in ("the owner", "the assistant"):
        return r"(?!x)x"
    alts = {re.escape(folded), re.escape(folded.split()[0])}
    return "(?:" + "|".join(sorted(alts, key=len, reverse=True)) + ")"


_TABLES = {
    COMMITS: phrases.COMMITMENTS,
    AI: phrases.AI_DISCLOSURES,
    REFUSAL: phrases.REFUSALS,
    INSTRUCTIONS: phrases.INSTRUCTION_TALK,
}


@lru_cache(maxsize=64)
def _compile(reason: str, owner: str, me: str) -> Alternation:
    """One category's fragments for these names: shared by every prompt with the same names."""
    return Alternation(
        f.replace("{owner}", owner).replace("{me}", me)  # fragments are written folded
        for lang in phrases.LANGUAGES
        for f in _TABLES[reason].get(lang, ())
    )


def _shingles(words: list[str]) -> set[tuple[str, ...]]:
    return set(zip(words, words[1:], words[2:], strict=False))  # every run of three words


def _words(text: str) -> list[str]:
    return _WORD.findall(normalise(text))


@lru_cache(maxsize=8)
def _template_words() -> frozenset[str]:
    """Capitalised words of the prompt's own template: not distinctive, never a leak."""
    probe = Persona(owner_name="Owner", assistant_name="Assistant", languages=("English",))
    text = " ".join(system_prompt(probe, group, 12) for group in (False, True))
    return frozenset(w.casefold() for w in re.findall(r"[A-Za-z][\w'-]+", text))


def _private_tokens(system: str, names: Iterable[str]) -> frozenset[str]:
    # (a prompt stored before names left the system message may still name the contact)
    text = re.sub(r"\(usually [^)]*\)|You are writing to [^.]*\.|\"[^\"]*\"", " ", system)
    text = re.sub(r"\d+ participants", " ", text)
    text = _SHAREABLE.sub(" ", text)
    skip = _template_words() | _CALENDAR | {w for n in names for w in _words(n)}
    tokens = {m.group(0).casefold() for m in _NUMBER.finditer(text)}
    tokens |= {m.group(0).casefold() for m in _EMAIL.finditer(text)}
    for m in _CAPITALISED.finditer(text):
        word, before = m.group(0), text[: m.start()].rstrip()
        if not word[0].isupper() or not before or before[-1] in '.!?:"(':
            continue  # lower case, or a sentence's first word
        folded = word.casefold()
        if folded not in skip and folded.split("'")[0] not in skip:
            tokens.add(folded.split("'")[0])
    tokens |= {m.group(0) for m in re.finditer(r"\b\d{2,}\b", text)}
    return frozenset(t for t in tokens if len(t) >= 2)


@lru_cache(maxsize=256)
def guard(system: str, owner_name: str = "", assistant_name: str = "", intro: str = "") -> Guard:
    """The checks for one system prompt: names from the persona, or read from the prompt."""
    m = _IDENTITY.search(system)
    owner = owner_name or (m.group(2) if m else "")
    me = assistant_name or (m.group(1) if m else "")
    o, a = _names(owner), _names(me)
    drop = tuple((reason, _compile(reason, o, a)) for reason in _TABLES)
    if not intro and m:  # the persona's introduction follows the prompt's first sentence
        intro = system[m.end() :].partition(". ")[2].partition("Write one short")[0]
    sayable = _shingles(_words(PASS_ON.format(owner=owner or "the owner")))
    sayable |= _shingles(_words(intro))
    for shared in _SHAREABLE.findall(system):  # the profile's whereabouts, the free/busy times
        sayable |= _shingles(_words(shared))
    shingles = frozenset(_shingles(_words(system)) - sayable)
    # Only a prompt core.context built separates its template from the persona's own text.
    private = _private_tokens(system, (owner, me)) if m else frozenset()
    return Guard(drop, shingles, private)


def echoes_system_prompt(reply: str, system: str) -> bool:
    """True when the reply shares three or more word 3-grams with the system prompt (not
    counting the phrases the prompt asks the model to say), however it is formatted."""
    if not system:
        return False
    shared = _shingles(_words(reply)) & guard(system).shingles
    return len(shared) >= 3


def _sentences(text: str) -> list[str]:
    return [s for s in (m.group(0).strip() for m in _SENTENCE.finditer(text)) if s]


def _unquoted(judged: str, heard: str | None) -> str:
    """The sentence without the quotes of the contact's own words (all quotes when `heard`
    is not known)."""

    def keep(m: re.Match[str]) -> str:
        if heard is None or m.group(1) in heard:
            return " "
        return m.group(0)

    return _QUOTED.sub(keep, judged)


def _has_slot(judged: str) -> bool:
    for m in _SLOT.finditer(judged):
        slot = m.group(0)
        if slot.casefold() in _ALLOWED_SLOTS or not any(c.isalpha() for c in slot):
            continue
        return True
    return False


class _Heard:
    """What the contact wrote (normalised), and its words and numbers, read once per reply
    and only if a sentence names a private token (`None`: not known)."""

    __slots__ = ("text", "_words")

    def __init__(self, text: str | None) -> None:
        self.text = text
        self._words: set[str] | None = None

    def words(self) -> set[str]:
        if self._words is None:
            heard = self.text
            self._words = (
                set(_WORD.findall(heard)) | set(_NUMBER.findall(heard)) if heard else set()
            )
        return self._words


def verdict(sentence: str, g: Guard, heard: str | None | _Heard = None) -> str:
    """Why one sentence may not be sent ("" if it may)."""
    if not isinstance(heard, _Heard):
        heard = _Heard(heard)
    judged = normalise(sentence)
    free = _unquoted(judged, heard.text)
    in_judged = set(judged)  # what the four categories' searches start from
    in_free = in_judged if free == judged else set(free)
    for reason, pattern in g.drop:
        text, chars = (free, in_free) if reason in (COMMITS, AI, REFUSAL) else (judged, in_judged)
        if pattern.search(text, chars):
            return reason
    if g.private:
        named = g.private.intersection(_WORD.findall(judged))
        named |= g.private.intersection(_NUMBER.findall(judged))
        if named and named - heard.words():
            return LEAK
    return ""


def clean_reply(
    text: str,
    system: str,
    max_chars: int,
    *,
    persona: Persona | None = None,
    heard: str | None = None,
) -> tuple[str, str]:
    """The reply to send and "", or "" and why nothing is sent.

    `system` is the system prompt the reply answers; `persona`, when given, names the owner
    and the assistant (otherwise they are read from the prompt) and its introduction may be
    repeated; `heard` is what the contact wrote in the context: numbers and names he wrote
    himself are not leaks, and only quotes of his words are exempt from the checks.
    """
    if not isinstance(text, str):
        return "", NOT_TEXT
    text = text.replace("\x00", "").strip().strip('"').strip()
    text = _ROLE_PREFIX.sub("", text, count=1).strip().strip('"').strip()
    judged = normalise(text)
    if not text or not any(c.isalnum() for c in judged):
        return "", EMPTY
    if _TEMPLATE.search(judged):
        return "", TEMPLATE
    heard_folded = normalise(heard) if heard is not None else None
    heard_read = _Heard(heard_folded)
    if _PLACEHOLDER.match(judged) or _has_slot(_unquoted(judged, heard_folded)):
        return "", PLACEHOLDER  # (a quote of what the contact wrote may hold brackets)
    g = (
        guard(system, persona.owner_name, persona.assistant_name, persona.introduction)
        if persona is not None
        else guard(system)
    )
    if system and len(_shingles(_WORD.findall(judged)) & g.shingles) >= 3:
        return "", ECHO
    sentences = _sentences(text)
    kept: list[str] = []
    first_reason = ""
    for s in sentences:
        why = verdict(s, g, heard_read)
        if why:
            first_reason = first_reason or why
        else:
            kept.append(s)
    if first_reason:
        if sum(len(_WORD.findall(normalise(s))) for s in kept) < 3:
            return "", first_reason
        text = " ".join(kept)
    if text[:1].islower():
        text = text[:1].upper() + text[1:]
    if len(text) > max_chars:
        cut = text[:max_chars]
        end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
        text = cut[: end + 1] if end >= max_chars // 3 else cut.rstrip() + "…"
    return text, ""
