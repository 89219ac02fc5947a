"""Rule 4, the urgency score: keywords on word boundaries, bursts, emphasis.

score = 2 per distinct keyword found (whole words or phrases: "network" does not match
"work", "know" does not match "now") + 1 for emphasis ("!!!" or a shouted message)
+ 1 for a burst (`burst_count` messages within `burst_window`). Urgent when
score >= `urgent_threshold` (default 2: one keyword, or emphasis plus a burst).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

KEYWORD_POINTS = 2
EMPHASIS_POINTS = 1
BURST_POINTS = 1


def keyword_pattern(keywords: Iterable[str]) -> re.Pattern[str] | None:
    words = sorted({k.strip().casefold() for k in keywords if k.strip()}, key=len, reverse=True)
    if not words:
        return None
    alternatives = "|".join(r"\s+".join(map(re.escape, w.split())) for w in words)
    # \w is Unicode-aware: the boundaries work for Hebrew, accented Latin, Cyrillic alike.
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


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


def score(text: str, pattern: re.Pattern[str] | None, burst: bool) -> int:
    text = text[:SCAN_CHARS]
    points = 0
    if pattern is not None and text:
        points += KEYWORD_POINTS * len({m.casefold() for m in pattern.findall(text)})
    if text and emphasised(text):
        points += EMPHASIS_POINTS
    if burst:
        points += BURST_POINTS
    return points
