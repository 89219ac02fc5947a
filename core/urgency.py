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

KEYWORD_POINTS = 2
EMPHASIS_POINTS = 1
BURST_POINTS = 1


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
    and matched without IGNORECASE against the keywords' ASCII forms, and only when one of
    their first words occurs in it at all (a substring test in C); without one, no keyword can
    match. Other text goes through the IGNORECASE pattern itself.

    Exact because, for ASCII text, lowercasing keeps every position, every `\w` and `\s`,
    and each keyword character matches exactly the ASCII characters whose lowercase is its
    ASCII form (found by asking `re` itself, so its special cases, the long s or the Kelvin
    sign, are its own); a keyword with a character no ASCII character matches cannot match
    ASCII text and is left out of that path (the order of the others is kept, so the
    alternative chosen at each position is the same)."""

    __slots__ = ("pattern", "_ascii", "_probes")

    def __init__(self, keywords: Iterable[str]) -> None:
        pattern = keyword_pattern(keywords)
        if pattern is None:
            raise ValueError("no keywords")
        self.pattern = pattern
        alternatives: list[str] = []
        probes: set[str] = set()
        for word in _words(keywords):
            parts = [_ascii_form(part) for part in word.split()]
            if any(part is None for part in parts):
                continue
            ascii_parts = [p for p in parts if p is not None]
            alternatives.append(r"\s+".join(map(re.escape, ascii_parts)))
            probes.add(ascii_parts[0])
        self._ascii = (
            re.compile(rf"(?<!\w)(?:{'|'.join(alternatives)})(?!\w)") if alternatives else None
        )
        # a probe that contains another is implied by it
        self._probes = tuple(
            p for p in sorted(probes) if not any(q != p and q in p for q in probes)
        )

    def count(self, text: str) -> int:
        """How many distinct keywords (casefolded) `text` holds."""
        if text.isascii():
            if self._ascii is None:
                return 0
            low = text.lower()
            for probe in self._probes:
                if probe in low:
                    return len(set(self._ascii.findall(low)))
            return 0
        return len({m.casefold() for m in self.pattern.findall(text)})


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


@lru_cache(maxsize=4096)
def _ascii_char(c: str) -> str | None:
    """The one lowercase ASCII character that `c` matches with IGNORECASE, or None."""
    found = [
        a
        for a in map(chr, range(128))
        if a == a.lower() and re.fullmatch(re.escape(c), a, re.IGNORECASE)
    ]
    return found[0] if len(found) == 1 else None


def _ascii_form(part: str) -> str | None:
    chars = [_ascii_char(c) for c in part]
    if any(c is None for c in chars):
        return None
    return "".join(c for c in chars if c is not None)


def emphasised(text: str) -> bool:
    if "!!!" in text or "‼" in text:
        return True
    if text == text.lower():  # no capital at all: the common case, decided in C
        return False
    upper = sum(map(str.isupper, text))
    if upper < 8:
        return False
    return upper >= 0.7 * (upper + sum(map(str.islower, text)))


SCAN_CHARS = 4000  # a 1 MB message is judged by its first few thousand characters


def score(text: str, pattern: Keywords | re.Pattern[str] | None, burst: bool) -> int:
    """The urgency score of `text` (module docstring). `pattern`: `keywords(...)`, or a
    `keyword_pattern(...)` (the same score, slower)."""
    text = text[:SCAN_CHARS]
    points = 0
    if pattern is not None and text:
        if isinstance(pattern, Keywords):
            points += KEYWORD_POINTS * pattern.count(text)
        else:
            points += KEYWORD_POINTS * len({m.casefold() for m in pattern.findall(text)})
    if text and emphasised(text):
        points += EMPHASIS_POINTS
    if burst:
        points += BURST_POINTS
    return points
