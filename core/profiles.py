"""Profiles: how the assistant speaks and times its replies in one kind of chat (rule 13).

A profile (`Policy.profiles`, by name) holds the owner's own words for a kind of chat:

- `tone`: how to write ("warm and informal", "brief and formal");
- `language`: the language to answer in ("" = the contact's);
- `whereabouts`: what may be said of where the owner is ("at the office until 6",
  "" = nothing: the assistant says he is busy);
- `delay` and `cooldown`: override rules 1 and 2 (`response_delay`, `cooldown`) in its chats;
- `answer`: false means no replies at all in its chats (the decision `profile_silent` says
  so; escalation and the digest still see the messages);
- `calendar`: whether its chats' prompts get the owner's free/busy times (default true).

Which profile a chat has: the owner's switch (`profile CHAT NAME`, kept in the chat's state)
first, then the first of `Policy.profile_rules` that matches (`chat: ID`, `sender: ID`, or
`name: REGEX` on the contact's name or the group's title, searched case-insensitively and
checked by `core.patterns.backtracking_risk` like the aliases), then `default_profile`
(empty: no profile, the global settings). "Unknown numbers get one polite message per week"
is a profile `{cooldown: 7d}` as the `default_profile`, with rules for the known contacts.

A profile's words are the owner's configuration, so they go into the system prompt; nothing a
contact writes does (core/context.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from wapa.core.patterns import backtracking_risk
from wapa.core.records import Record

MAX_WORDS_CHARS = 300  # tone, language and whereabouts each: a sentence, not an essay
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_PROFILE_KEYS = ("tone", "language", "whereabouts", "delay", "cooldown", "answer", "calendar")
_RULE_KINDS = ("chat", "sender", "name")


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Profile(Record):
    """One profile; `delay`/`cooldown` None means the policy's own."""

    name: str
    tone: str = ""
    language: str = ""
    whereabouts: str = ""
    delay: float | None = None
    cooldown: float | None = None
    answer: bool = True
    calendar: bool = True

    def to_mapping(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in _PROFILE_KEYS:
            value = getattr(self, key)
            if value not in ("", None) and not (key in ("answer", "calendar") and value):
                out[key] = value
        return out


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ProfileRule(Record):
    """`kind` chat | sender | name; `value` an id, or a regex for names; `profile` a name."""

    kind: str
    value: str
    profile: str

    def to_mapping(self) -> dict[str, str]:
        return {self.kind: self.value, "profile": self.profile}


def _error(message: str) -> Exception:
    from wapa.core.policy import PolicyError  # policy imports this module

    return PolicyError(message)


def parse_profiles(value: Any) -> tuple[Profile, ...]:
    """`{name: {tone, language, whereabouts, delay, cooldown, answer, calendar}}` -> profiles."""
    from wapa.core.policy import parse_duration

    if isinstance(value, tuple) and all(isinstance(p, Profile) for p in value):
        return value
    if not isinstance(value, Mapping):
        raise _error("profiles: expected a mapping of name -> {tone, language, whereabouts, ...}")
    out = []
    for name, raw in value.items():
        where = f"profiles.{name}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise _error(f"profiles: a name is letters, digits, - or _, got {name!r}")
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise _error(f"{where}: expected a mapping of settings")
        fields: dict[str, Any] = {}
        for key, v in raw.items():
            if key not in _PROFILE_KEYS:
                raise _error(f"{where}.{key}: unknown key (use {', '.join(_PROFILE_KEYS)})")
            if key in ("delay", "cooldown"):
                fields[key] = parse_duration(v, f"{where}.{key}")
            elif key in ("answer", "calendar"):
                if not isinstance(v, bool):
                    raise _error(f"{where}.{key}: expected true or false, got {v!r}")
                fields[key] = v
            else:
                if not isinstance(v, str):
                    raise _error(f"{where}.{key}: expected text, got {v!r}")
                text = " ".join(v.split())
                if len(text) > MAX_WORDS_CHARS:
                    raise _error(f"{where}.{key}: at most {MAX_WORDS_CHARS} characters")
                fields[key] = text
        out.append(Profile(name, **fields))
    return tuple(out)


def parse_rules(value: Any, profiles: tuple[Profile, ...]) -> tuple[ProfileRule, ...]:
    """`[{chat|sender|name: ..., profile: NAME}, ...]` -> rules, checked against `profiles`."""
    if isinstance(value, tuple) and all(isinstance(r, ProfileRule) for r in value):
        rules = value
    else:
        if not isinstance(value, list | tuple):
            raise _error("profile_rules: expected a list like [{chat: ID, profile: NAME}]")
        parsed = []
        for i, raw in enumerate(value):
            where = f"profile_rules[{i}]"
            if not isinstance(raw, Mapping):
                raise _error(f"{where}: expected {{chat|sender|name: ..., profile: NAME}}")
            kinds = [k for k in raw if k in _RULE_KINDS]
            unknown = [k for k in raw if k not in (*_RULE_KINDS, "profile")]
            if unknown or len(kinds) != 1 or "profile" not in raw:
                raise _error(f"{where}: expected exactly one of chat, sender, name, and profile")
            kind = kinds[0]
            match, profile = raw[kind], raw["profile"]
            if not isinstance(match, str) or not match or not isinstance(profile, str):
                raise _error(f"{where}: {kind} and profile must be non-empty text")
            parsed.append(ProfileRule(kind, match, profile))
        rules = tuple(parsed)
    names = {p.name for p in profiles}
    for i, rule in enumerate(rules):
        if rule.profile not in names:
            raise _error(f"profile_rules[{i}].profile: no profile called {rule.profile!r}")
        if rule.kind == "name":
            try:
                re.compile(rule.value)
            except re.error as exc:
                raise _error(f"profile_rules[{i}].name: bad pattern {rule.value!r}: {exc}") from exc
            risk = backtracking_risk(rule.value)
            if risk:
                raise _error(f"profile_rules[{i}].name: pattern {rule.value!r} refused: {risk}")
    return rules


@lru_cache(maxsize=256)
def _pattern(value: str) -> re.Pattern[str]:
    return re.compile(value, re.IGNORECASE)


def choose(
    profiles: tuple[Profile, ...],
    rules: tuple[ProfileRule, ...],
    default: str,
    *,
    chosen: str = "",
    chat: str = "",
    sender: str = "",
    name: str = "",
) -> Profile | None:
    """The chat's profile: the owner's `chosen` one, the first matching rule, the default."""
    by_name = {p.name: p for p in profiles}
    if chosen in by_name:
        return by_name[chosen]
    for rule in rules:
        if rule.kind == "chat" and rule.value == chat:
            return by_name[rule.profile]
        if rule.kind == "sender" and sender and rule.value == sender:
            return by_name[rule.profile]
        if rule.kind == "name" and name and _pattern(rule.value).search(name[:200]):
            return by_name[rule.profile]
    return by_name.get(default)
