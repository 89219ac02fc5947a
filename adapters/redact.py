"""Redaction for shareable recordings: text and ids become stable placeholders that keep
everything the rules look at, so a redacted recording replays to the same decisions.

Kept: lengths (character for character), whitespace and punctuation ("!!!"), letter case
(shouting), urgency keywords and alias matches of the recording's policy, @mentions (the
mentioned name or number is mapped like every other occurrence of it), owner commands in the
owner's own chat (pause, mute NAME 2h...), message and request ids, the group flag, quotes.
Replaced: every other run of letters and digits by pseudo-random letters and digits keyed by a
per-recording random salt (never stored): the same word gives the same placeholder within a
recording (case-insensitively, so "@Dana" still matches the owner's redacted name), a
different one in another recording. Phone numbers in ids (`4915112345678@s.whatsapp.net`)
map to the same digits as in text (`@4915112345678`); servers (`g.us`) are kept.

A model reply is stored as what the core would send (after core.hygiene), or as "" when the
core would refuse it: a refusal's decision does not depend on words that are being hidden.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from typing import Any

from wapa.core import urgency
from wapa.core.hygiene import clean_reply
from wapa.core.policy import Persona, Policy, PolicyError, parse_duration

_WORD = re.compile(r"[^\W_]+")
_JID = re.compile(r"[\w.+-]+@(?:s\.whatsapp\.net|g\.us|lid|c\.us|broadcast|import)\b")
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_UNCASED = "אבגדהוזחטיכלמנסעפצקרשת"  # letters without case, for scripts without case
_COMMANDS = ("pause", "resume", "status", "help", "mute", "unmute")
_COMMAND = re.compile(r"(\s*[/!]*)(\S+)(.*)$", re.DOTALL)
_TRAILING = re.compile(r"(.*\S\s+)(\S+)(\s*)$", re.DOTALL)  # "NAME WORDS" + last word
_KEPT_IDS = {"status@broadcast", ""}
_CACHE_MAX = 200_000


class Redactor:
    """Maps text and ids to placeholders for one recording. Not thread-safe; cheap per call."""

    def __init__(self, policy: Policy, persona: Persona, salt: bytes | None = None) -> None:
        self.policy = policy
        self.persona = persona
        self._salt = salt if salt is not None else secrets.token_bytes(32)
        self._keywords = urgency.keyword_pattern(policy.urgent_keywords)
        aliases = [f"(?:{a})" for a in policy.aliases]
        self._aliases = re.compile("|".join(aliases), re.IGNORECASE) if aliases else None
        self._words: dict[str, int] = {}  # casefolded word -> attempt that avoids a keyword
        self._id_map: dict[str, str] = {}  # original id -> its placeholder
        self._ids_taken: set[str] = set()
        # request id -> (original system prompt, what the contact side wrote), for judging replies
        self._systems: dict[str, tuple[str, str]] = {}

    # ------------------------------------------------------------------ building blocks

    def _forbidden(self, word: str) -> bool:
        if word.casefold() in _COMMANDS:
            return True
        if self._keywords is not None and self._keywords.search(word):
            return True
        return self._aliases is not None and self._aliases.search(word) is not None

    def word(self, word: str) -> str:
        """A run of letters and digits -> a placeholder of the same length and shape."""
        key = word.casefold()
        attempt = self._words.get(key, 0)
        out = self._render(word, key, attempt)
        while self._forbidden(out) and attempt < 16:  # never invent a keyword or a command
            attempt += 1
            out = self._render(word, key, attempt)
        if len(self._words) >= _CACHE_MAX:
            self._words.clear()
        self._words[key] = attempt
        return out

    def _render(self, word: str, key: str, attempt: int) -> str:
        data = self._salt + bytes([attempt]) + key.encode("utf-8", "surrogatepass")
        raw = hashlib.shake_256(data).digest(len(word))
        out = []
        for c, b in zip(word, raw, strict=True):
            if c.isdigit() or (c.isalnum() and not c.isalpha()):
                out.append(str(b % 10))
            elif c.isupper():
                out.append(_LOWER[b % 26].upper())
            elif c.lower() != c.upper():
                out.append(_LOWER[b % 26])
            else:
                out.append(_UNCASED[b % len(_UNCASED)])
        return "".join(out)

    def _plain(self, text: str) -> str:
        return _WORD.sub(lambda m: self.word(m.group(0)), text)

    def _kept_spans(self, text: str) -> list[tuple[int, int, str]]:
        spans: list[tuple[int, int, str]] = []
        for pattern in (self._keywords, self._aliases):
            if pattern is not None:
                spans += [(m.start(), m.end(), m.group(0)) for m in pattern.finditer(text)]
        spans += [(m.start(), m.end(), self.id(m.group(0))) for m in _JID.finditer(text)]
        spans.sort()
        kept: list[tuple[int, int, str]] = []
        for span in spans:
            if not kept or span[0] >= kept[-1][1]:
                kept.append(span)
        return kept

    # ------------------------------------------------------------------ public mapping

    def text(self, text: str) -> str:
        if not isinstance(text, str) or not text:
            return text
        out, pos = [], 0
        for start, end, replacement in self._kept_spans(text):
            out.append(self._plain(text[pos:start]))
            out.append(replacement)
            pos = end
        out.append(self._plain(text[pos:]))
        return "".join(out)

    def id(self, value: str) -> str:
        """Same id, same placeholder; different ids, different placeholders (a short id can
        collide after shape-keeping redaction, so a clash gets a `~N` suffix)."""
        if not isinstance(value, str) or value in _KEPT_IDS:
            return value
        known = self._id_map.get(value)
        if known is not None:
            return known
        user, at, server = value.rpartition("@")
        if not at:
            user, server = value, ""
        base = self._plain(user)
        out, n = base + at + server, 1
        while out in self._ids_taken:
            n += 1
            out = f"{base}~{n}{at}{server}"
        self._id_map[value] = out
        self._ids_taken.add(out)
        return out

    def ids(self, values: Iterable[str]) -> list[str]:
        return [self.id(v) for v in values]

    def command_text(self, text: str) -> str:
        """An owner's note to self: the command word and a trailing duration stay readable,
        so `pause` or `mute Alice 2h` still work after redaction (Alice is mapped as usual)."""
        m = _COMMAND.match(text)
        if not m or m.group(2).casefold() not in _COMMANDS:
            return self.text(text)
        prefix, head, rest = m.groups()
        return (
            prefix + head + (self.mute_arg(rest) if head.casefold() == "mute" else self.text(rest))
        )

    def mute_arg(self, arg: str) -> str:
        m = _TRAILING.match(arg)
        if m:
            try:
                parse_duration(m.group(2), "mute")
                return self.text(m.group(1)) + m.group(2) + m.group(3)
            except PolicyError:
                pass
        return self.text(arg)

    def policy_mapping(self) -> dict[str, Any]:
        data = self.policy.to_mapping()
        data["allow"] = self.ids(data["allow"])
        data["deny"] = self.ids(data["deny"])
        return data

    def persona_mapping(self) -> dict[str, Any]:
        p = self.persona
        return {
            "owner_id": self.id(p.owner_id),
            "owner_name": self.text(p.owner_name),
            "assistant_name": self.text(p.assistant_name),
            "introduction": self.text(p.introduction),
            "languages": list(p.languages),
            "extra_instructions": self.text(p.extra_instructions),
        }

    def item(self, data: dict[str, Any]) -> dict[str, Any]:
        """A codec dict (adapters.codec.encode) -> its redacted copy."""
        d = dict(data)
        kind = d.get("type")
        for key in ("chat", "sender", "quoted_sender"):
            if key in d:
                d[key] = self.id(d[key])
        if "mentions" in d and isinstance(d["mentions"], list):
            d["mentions"] = self.ids(d["mentions"])
        for key in ("sender_name", "group_title"):
            if key in d:
                d[key] = self.text(d[key])
        if kind == "Message":
            own_chat = data.get("chat") == self.persona.owner_id and data.get("from_me")
            d["text"] = self.command_text(d["text"]) if own_chat else self.text(d.get("text", ""))
        elif kind == "Command":
            d["arg"] = self.mute_arg(d.get("arg", ""))
        elif kind == "Generate":
            msgs = d.get("messages") or []
            if msgs and isinstance(msgs[0], dict) and len(self._systems) < 10_000:
                heard = "\n".join(  # what the contact side wrote, as the core's `heard`
                    str(m.get("content", ""))
                    for m in msgs[1:]
                    if isinstance(m, dict) and m.get("role") == "user"
                )
                self._systems[str(d.get("request_id"))] = (str(msgs[0].get("content", "")), heard)
            d["messages"] = [{**m, "content": self.text(m.get("content", ""))} for m in msgs]
        elif kind == "Generated":
            system, heard = self._systems.pop(str(d.get("request_id")), ("", ""))
            cleaned, why = clean_reply(  # judged as the core judges it (core/machine.py)
                d.get("text", ""),
                system,
                self.policy.max_reply_chars,
                persona=self.persona,
                heard=heard,
            )
            d["text"] = "" if why else self.text(cleaned)
        elif kind == "GenerationFailed":
            self._systems.pop(str(d.get("request_id")), None)
            d["detail"] = self.text(d.get("detail", ""))
        elif kind in ("Send", "Notice", "MediaText"):  # MediaText: a transcript, a description
            d["text"] = self.text(d.get("text", ""))
        elif kind == "SendFailed":
            d["detail"] = self.text(d.get("detail", ""))
        return d
