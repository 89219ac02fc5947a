"""Rule 4, the urgency score: keywords on word boundaries, bursts, emphasis.

score = 2 per distinct keyword found (whole words or phrases: "network" does not match
"work", "know" does not match "now") + 1 for emphasis ("!!!" or a shouted message)
+ 1 for a burst (`burst_count` messages within `burst_window`). Urgent when
score >= `urgent_threshold` (default 2: one keyword, or emphasis plus a burst).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Final

KEYWORD_POINTS: Final = 2  # (Final: compiled, read in place; core/machine.py)
EMPHASIS_POINTS: Final = 1
BURST_POINTS: Final = 1


def keyword_pattern(keywords: Iterable[str]) -> re.Pattern[str] | None:
    """One IGNORECASE pattern for every keyword, on word boundaries (longest first)."""
    words = _words(keywords)
    if not words:
        return None
    alternatives = "|".join(r"\s+".join(map(re.escape, w.split())) for w in words)
    # \w is Unicode-aware: the boundaries work for Hebrew, accented Latin, Cyrillic alike.
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


class Keywords:
    r"""The urgent keywords, matched as `keyword_pattern` matches them (the same matches, so the
    same scores bit for bit: tests/core/test_core_urgency_fast.py checks it against the plain
    pattern), but cheaply for ASCII text, most of what arrives: the text is lowercased once
    and matched without IGNORECASE against the keywords' ASCII forms, and only when a cheap
    test says a keyword may occur; when none may, no keyword can match. Other text goes
    through the IGNORECASE pattern itself (after the same test when it can be made, below).

    Exact because, for ASCII text, lowercasing keeps every position, every `\w` and `\s`,
    and each keyword character matches exactly the ASCII characters whose lowercase is its
    ASCII form (found by asking `re` itself, so its special cases, the long s or the Kelvin
    sign, are its own); a keyword with a character no ASCII character matches cannot match
    ASCII text and is left out of that path (the order of the others is kept, so the
    alternative chosen at each position is the same).

    The cheap test is necessary for a keyword to match. A keyword matches on word
    boundaries, so its first word, when it is all word characters, is then one of the
    text's words (its runs of `\w`, split in C); otherwise (a keyword such as "a.s.a.p")
    that word occurs in the text (a substring test). When the words found only start
    phrases ("call" of "call me"), a phrase's second word must be one of the text's words too
    (when it is all word characters), and its words must follow one another (`call\s+me`
    without the boundaries: a search for a literal start, cheaper than the boundaries'
    lookbehind at every position). Whatever passes goes to the full pattern.

    Other text takes the first-word test too when its only characters beyond ASCII are not
    word characters (an emoji, a curly apostrophe, a no-break space: much of what phones
    send), each made a "?" in an ASCII copy: no keyword character matches them unless the
    keyword has no ASCII form, and such keywords are all known to need a letter beyond
    ASCII (when one does not, such as an emoji keyword, this test is not made). So only the
    ASCII keywords can match there, their words being ASCII words of the copy. When the
    test passes, the text goes to the IGNORECASE pattern (white space beyond ASCII may sit
    between a phrase's words, so the phrase test is not made)."""

    __slots__ = (
        "pattern",
        "_ascii",
        "_firsts",
        "_confirms",
        "_seconds",
        "_probes",
        "_letters_beyond_ascii",
    )

    def __init__(self, keywords: Iterable[str]) -> None:
        pattern = keyword_pattern(keywords)
        if pattern is None:
            raise ValueError("no keywords")
        self.pattern = pattern
        alternatives: list[str] = []
        phrases: dict[str, list[list[str]]] = {}  # first word -> the ASCII keywords' words
        self._letters_beyond_ascii = True  # every other keyword needs a non-ASCII letter
        for word in _words(keywords):
            parts = [_ascii_form(part) for part in word.split()]
            if any(part is None for part in parts):
                if _NON_ASCII_WORD.search(word) is None:  # such as an emoji
                    self._letters_beyond_ascii = False
                continue
            ascii_parts = [p for p in parts if p is not None]
            alternatives.append(r"\s+".join(map(re.escape, ascii_parts)))
            phrases.setdefault(ascii_parts[0], []).append(ascii_parts)
        self._ascii = (
            re.compile(rf"(?<!\w)(?:{'|'.join(alternatives)})(?!\w)") if alternatives else None
        )
        words = {first for first in phrases if _all_word_characters(first.encode())}
        self._firsts = frozenset(first.encode() for first in words)
        # first words with other characters
        self._probes = tuple(p.encode() for p in sorted(set(phrases) - words))
        # first words that only start phrases -> the phrases' words in a row, and the
        # phrases' second words (when all are word characters: they are words of the text)
        self._confirms: dict[bytes, re.Pattern[str]] = {}
        self._seconds: dict[bytes, frozenset[bytes]] = {}
        for first, ws in phrases.items():
            if first in words and all(len(w) > 1 for w in ws):
                key = first.encode()
                self._confirms[key] = re.compile(
                    "|".join(r"\s+".join(map(re.escape, w)) for w in ws)
                )
                seconds = {w[1].encode() for w in ws}
                if all(map(_all_word_characters, seconds)):
                    self._seconds[key] = frozenset(seconds)

    def count(self, text: str, low: str | None = None) -> int:
        """How many distinct keywords (casefolded) `text` holds; `low`: `text.lower()`, when
        the caller has it already."""
        if text.isascii():
            if self._ascii is None:
                return 0
            if low is None:
                low = text.lower()
            folded = low.encode()
            words = folded.translate(_WORD_BYTES).split()
            if not self._firsts.isdisjoint(words):
                for first in self._firsts.intersection(words):
                    confirm = self._confirms.get(first)
                    if confirm is None:
                        return len(set(self._ascii.findall(low)))
                    second = self._seconds.get(first)
                    if (second is None or not second.isdisjoint(words)) and confirm.search(low):
                        return len(set(self._ascii.findall(low)))
            if self._probes and any(probe in folded for probe in self._probes):
                return len(set(self._ascii.findall(low)))
            return 0
        if self._letters_beyond_ascii and _NON_ASCII_WORD.search(text) is None:
            folded = text.encode("ascii", "replace").lower()  # each other character a "?"
            words = folded.translate(_WORD_BYTES).split()
            if self._firsts.isdisjoint(words) and not any(p in folded for p in self._probes):
                return 0
        return len({m.casefold() for m in self.pattern.findall(text)})


_NON_ASCII_WORD: Final = re.compile(r"[^\W\x00-\x7f]")  # a letter or digit beyond ASCII

# ASCII bytes with the word characters of `re` (\w: letters, digits, "_") kept and every other
# one made a space, so that `split()` gives a text's words as the boundaries see them.
_WORD_BYTES: Final = bytes(
    c if chr(c).isalnum() or chr(c) == "_" else 32 for c in range(128)
) + bytes([32] * 128)


def _all_word_characters(word: bytes) -> bool:
    """`word` (ASCII) is all word characters: one of a text's words if it occurs as one."""
    return word.translate(_WORD_BYTES) == word


def keywords(words: Iterable[str]) -> Keywords | None:
    """`Keywords` for `words`, or None when there are none. Built once per list of words: a
    `Keywords` is never changed after it is made, so assistants with the same words share it
    (most use the defaults; building one compiles two large patterns)."""
    return _keywords(tuple(words))


@lru_cache(maxsize=32)
def _keywords(words: tuple[str, ...]) -> Keywords | None:
    return Keywords(words) if _words(words) else None


def _words(keywords: Iterable[str]) -> list[str]:
    """The keywords as `keyword_pattern` orders them: casefolded, longest first."""
    return sorted({k.strip().casefold() for k in keywords if k.strip()}, key=len, reverse=True)


# every ASCII character that is its own lowercase, in code point order
_LOWER_ASCII = "".join(a for a in map(chr, range(128)) if a == a.lower())


@lru_cache(maxsize=4096)
def _ascii_char(c: str) -> str | None:
    """The one lowercase ASCII character that the one character `c` matches with IGNORECASE,
    or None. Asked of `re` in one search over them all (a pattern of one literal matches one
    character at a time), not one match per ASCII character."""
    found = re.compile(re.escape(c), re.IGNORECASE).findall(_LOWER_ASCII)
    return found[0] if len(found) == 1 else None


def _ascii_form(part: str) -> str | None:
    chars = [_ascii_char(c) for c in part]
    if any(c is None for c in chars):
        return None
    return "".join(c for c in chars if c is not None)


def emphasised(text: str, low: str | None = None) -> bool:
    """True for "!!!" (or "‼") or a shouted message; `low`: `text.lower()`, if known."""
    if "!!!" in text or "‼" in text:
        return True
    if text == (text.lower() if low is None else low):  # no capital at all: decided in C
        return False
    upper = sum(map(str.isupper, text))
    if upper < 8:
        return False
    return upper >= 0.7 * (upper + sum(map(str.islower, text)))


SCAN_CHARS: Final = 4000  # a 1 MB message is judged by its first few thousand characters


def score(text: str, pattern: Keywords | re.Pattern[str] | None, burst: bool) -> int:
    """The urgency score of `text` (module docstring). `pattern`: `keywords(...)`, or a
    `keyword_pattern(...)` (the same score, slower)."""
    text = text[:SCAN_CHARS]
    if not text:
        return BURST_POINTS if burst else 0
    low = text.lower()  # read by both tests below
    points = 0
    if isinstance(pattern, Keywords):
        points += KEYWORD_POINTS * pattern.count(text, low)
    elif pattern is not None:
        points += KEYWORD_POINTS * len({m.casefold() for m in pattern.findall(text)})
    if emphasised(text, low):
        points += EMPHASIS_POINTS
    if burst:
        points += BURST_POINTS
    return points
