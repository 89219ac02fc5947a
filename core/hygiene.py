"""Rule 11, reply hygiene: what the model wrote is cleaned, or refused, before a contact sees it.

`clean_reply` returns (text, "") when the reply may be sent, or ("", reason) when nothing
should be: empty, a placeholder, an echo of the system prompt, or nothing left after dropping
sentences that commit the owner to something.
"""

from __future__ import annotations

import re

_AI_OPENER = re.compile(
    r"^\s*(?:as an? (?:ai|artificial intelligence|language model|ai language model|"
    r"virtual assistant|assistant)\b[^.!?\n]*[.!?,:;]?|"
    r"i(?:'m| am) (?:just )?an? (?:ai|language model|ai language model)\b[^.!?\n]*[.!?]?)\s*",
    re.IGNORECASE,
)
_ROLE_PREFIX = re.compile(r"^\s*(?:assistant|ai|bot|reply|response)\s*:\s*", re.IGNORECASE)
_PLACEHOLDER = re.compile(
    r"^\s*(?:\.{2,}|…|n/?a|none|null|undefined|todo|\[[^\]]*\]|<[^>]*>|\{[^}]*\}|"
    r"sorry,? i (?:could not|couldn't|can ?not|am unable to) (?:generate|produce|create)[^.]*\.?)\s*$",
    re.IGNORECASE,
)
_COMMITMENT = re.compile(
    r"\b(?:i|we|he|she|they)\s*(?:'ll|will|shall)\s+(?:definitely\s+|surely\s+)?"
    r"(?:be there|meet|pay|transfer|send (?:you )?(?:the )?money|sign|come|attend|join you)\b|"
    r"\b(?:i|we|he|she)\s+promise\b|\b(?:it's|it is|that's|that is)\s+(?:a deal|confirmed|booked)\b|"
    r"\bsee you (?:at|on|tomorrow|tonight|then)\b|\b(?:i've|i have|we've|we have)\s+"
    r"(?:booked|confirmed|scheduled|accepted|agreed)\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|\n|$)")


def _sentences(text: str) -> list[str]:
    return [s for s in (m.group(0).strip() for m in _SENTENCE.finditer(text)) if s]


def echoes_system_prompt(reply: str, system: str, window: int = 48) -> bool:
    """True when the reply repeats any `window`-character stretch of the system prompt."""
    folded_reply = " ".join(reply.casefold().split())
    folded_system = " ".join(system.casefold().split())
    if len(folded_reply) < window:
        return bool(folded_reply) and len(folded_reply) > 24 and folded_reply in folded_system
    step = window // 2
    return any(
        folded_system[i : i + window] in folded_reply
        for i in range(0, max(1, len(folded_system) - window + 1), step)
    )


def clean_reply(text: str, system: str, max_chars: int) -> tuple[str, str]:
    if not isinstance(text, str):
        return "", "not text"
    text = text.replace("\x00", "").strip().strip('"').strip()
    text = _ROLE_PREFIX.sub("", text, count=1).strip().strip('"').strip()
    while True:
        stripped = _AI_OPENER.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    text = text.strip()
    if not text or not any(c.isalnum() for c in text):
        return "", "empty"
    if _PLACEHOLDER.match(text):
        return "", "placeholder"
    if system and echoes_system_prompt(text, system):
        return "", "echoes the system prompt"
    sentences = _sentences(text)
    kept = [s for s in sentences if not _COMMITMENT.search(s)]
    if len(kept) != len(sentences):
        if not kept:
            return "", "commits the owner"
        text = " ".join(kept)
    if text[:1].islower():
        text = text[:1].upper() + text[1:]
    if len(text) > max_chars:
        cut = text[:max_chars]
        end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
        text = cut[: end + 1] if end >= max_chars // 3 else cut.rstrip() + "…"
    return text, ""
