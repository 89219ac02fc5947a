"""Settings: every number the rules use, validated once, with errors that name the field.

`Policy` is what the assistant does (timing, caps, gating); `Persona` is who it speaks as.
Both are frozen; build them with `Policy.from_mapping({...})` to get validation and
duration parsing ("500ms", "90s", "2m", "5h", "1d" or plain seconds).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wapa.core.patterns import backtracking_risk
from wapa.core.profiles import Profile, ProfileRule, parse_profiles, parse_rules
from wapa.core.records import Record


class PolicyError(ValueError):
    """A setting is wrong. The message starts with the field's name."""


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_COMPOUND = re.compile(r"^\s*(?:\d+(?:\.\d+)?(?:ms|s|m|h|d)){2,}\s*$")  # 1h30m, 1d2h
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(value: Any, name: str = "duration") -> float:
    """Seconds from `90`, `"90s"`, `"2m"`, `"5h"`, `"1d"`, `"500ms"`, and compounds such as
    `"1h30m"`. Negative is refused. The one duration parser: settings, scenario files and
    owner commands all use it."""
    if isinstance(value, bool):
        raise PolicyError(f"{name}: expected a duration like 90s, 2m, 5h, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            seconds = float(m.group(1)) * _UNITS[m.group(2)]
        elif _COMPOUND.match(value):
            seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(value))
        else:
            raise PolicyError(
                f"{name}: expected a duration like 500ms, 90s, 2m, 5h, 1d, 1h30m or seconds, "
                f"got {value!r}"
            )
    else:
        raise PolicyError(f"{name}: expected a duration like 90s, 2m, 5h, got {value!r}")
    if seconds != seconds or seconds < 0 or seconds == float("inf"):
        raise PolicyError(f"{name}: must be a finite duration >= 0, got {value!r}")
    return seconds


_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class QuietHours(Record):
    """Replies due between `start` and `end` (local time in `tz`) wait for `end`, unless urgent.
    A window may cross midnight (22:00 to 07:00)."""

    start: str = "22:00"
    end: str = "07:00"
    tz: str = "UTC"

    def minutes(self) -> tuple[int, int]:
        return _hhmm(self.start, "quiet_hours.start"), _hhmm(self.end, "quiet_hours.end")

    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise PolicyError(
                f"quiet_hours.tz: unknown time zone {self.tz!r} (use an IANA name like Europe/Berlin)"
            ) from exc


def _hhmm(value: str, name: str) -> int:
    m = _HHMM.match(str(value))
    if not m:
        raise PolicyError(f"{name}: expected a time HH:MM (24 h), got {value!r}")
    return int(m.group(1)) * 60 + int(m.group(2))


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Caps(Record):
    """Upper bounds on replies: per chat per rolling day, global per rolling hour and day.
    0 means no cap."""

    per_chat_per_day: int = 20
    per_hour: int = 30
    per_day: int = 200


DEFAULT_URGENT_KEYWORDS: tuple[str, ...] = (
    # English
    "urgent",
    "urgently",
    "emergency",
    "asap",
    "immediately",
    "right now",
    "hospital",
    "accident",
    "call me",
    # Hebrew
    "דחוף",
    "חירום",
    "מיד",
    # Spanish / Portuguese
    "urgente",
    "emergencia",
    "emergência",
    # German
    "dringend",
    "notfall",
    "sofort",
    # French
    "urgence",
    "tout de suite",
)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Policy(Record):
    """Every number the rules use. Durations are seconds. Defaults are DESIGN.md's."""

    response_delay: float = 120.0  # rule 1: reply this long after the latest unanswered message
    max_wait: float = 600.0  # rule 1: ...but never later than this after the first one
    cooldown: float = 5 * 3600.0  # rule 2/3: quiet after a reply or after the owner wrote
    urgent_delay: float = 15.0  # rule 4: delay for urgent messages
    urgent_threshold: int = 2  # rule 4: score at which a message is urgent
    urgent_keywords: tuple[str, ...] = DEFAULT_URGENT_KEYWORDS  # rule 4: each match scores 2
    burst_count: int = 3  # rule 4: this many messages...
    burst_window: float = 60.0  # ...within this window score 1
    group_reply: str = "mention"  # rule 5: "mention" (only when addressed) or "never"
    quote_in_groups: bool = True  # rule 5: a group reply quotes the message that addressed us
    aliases: tuple[str, ...] = ()  # rule 5: extra regexes that address the owner in a group
    allow: tuple[str, ...] = ()  # rule 6: when set, only these chats/senders get replies
    deny: tuple[str, ...] = ()  # rule 6: never reply to these chats/senders
    remembered_ids: int = 64  # rule 6: per chat, for dropping redelivered messages
    quiet_hours: QuietHours | None = None  # rule 7: off by default
    caps: Caps = field(default_factory=Caps)  # rule 8
    typing_chars_per_second: float = 8.0  # rule 9: human typing speed
    typing_min: float = 2.0  # rule 9: bounds of the typing time
    typing_max: float = 25.0
    typing_jitter: float = 0.2  # rule 9: +-20 % seeded jitter
    generation_timeout: float = 180.0  # a generation with no answer after this is abandoned
    max_context: int = 10  # rule 10: messages of context
    context_ttl: float = 24 * 3600.0  # rule 10: ...younger than this
    max_message_chars: int = 1000  # rule 10: a longer message is cut in the prompt
    prompt_token_budget: int = 1500  # rule 10: the whole prompt stays within this estimate
    max_reply_chars: int = 600  # rule 11
    holding_message: str = ""  # rule 11: sent when the model fails; empty means send nothing
    stale_after: float = 3600.0  # restart: a deadline missed by more than this is dropped
    escalate: bool = True  # rule 14: tell the owner of an urgent contact message at once
    escalate_per_day: int = 10  # rule 14: at most this many escalations per rolling day
    escalate_in_quiet_hours: bool = False  # rule 14: else held until quiet hours end
    digest_at: str | None = None  # rule 15: "HH:MM" local time of the daily digest; None: off
    digest_tz: str = ""  # rule 15: its time zone; "": quiet_hours' tz, else UTC
    digest_detail: str = "text"  # rule 15: "text" (excerpts) or "names" (never message text)
    digest_max_chars: int = 1500  # rule 15: a longer digest ends "... and N more chats"
    calendar_details: str = "busy"  # rule 16: "busy" (free/busy only) or "titles"
    calendar_days: int = 3  # rule 16: days of free/busy in the prompt
    profiles: tuple[Profile, ...] = ()  # rule 13: core/profiles.py
    profile_rules: tuple[ProfileRule, ...] = ()  # rule 13: which chats get which profile
    default_profile: str = ""  # rule 13: the profile of every other chat; "": none

    _DURATIONS = (
        "response_delay",
        "max_wait",
        "cooldown",
        "urgent_delay",
        "burst_window",
        "typing_min",
        "typing_max",
        "generation_timeout",
        "context_ttl",
        "stale_after",
    )
    _INTS = (
        "urgent_threshold",
        "burst_count",
        "remembered_ids",
        "max_context",
        "max_message_chars",
        "prompt_token_budget",
        "max_reply_chars",
    )

    def __post_init__(self) -> None:
        for name in self._DURATIONS:
            object.__setattr__(self, name, parse_duration(getattr(self, name), name))
        for name in self._INTS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PolicyError(f"{name}: expected a whole number >= 1, got {value!r}")
        if self.group_reply not in ("mention", "never"):
            raise PolicyError(
                f"group_reply: expected 'mention' or 'never', got {self.group_reply!r}"
            )
        if self.max_wait < self.response_delay:
            raise PolicyError(
                f"max_wait: must be >= response_delay ({self.response_delay:g}s), got {self.max_wait:g}s"
            )
        if self.typing_max < self.typing_min:
            raise PolicyError("typing_max: must be >= typing_min")
        if not 0 <= self.typing_jitter < 1:
            raise PolicyError(f"typing_jitter: expected 0 <= x < 1, got {self.typing_jitter!r}")
        if not self.typing_chars_per_second > 0:
            raise PolicyError("typing_chars_per_second: must be > 0")
        for name in ("urgent_keywords", "aliases", "allow", "deny"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) and v for v in value):
                raise PolicyError(f"{name}: expected a list of non-empty strings, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        for pattern in self.aliases:
            try:  # as the core uses it: one group of an alternation, case ignored
                re.compile(f"(?:{pattern})", re.IGNORECASE)
            except re.error as exc:
                raise PolicyError(f"aliases: bad pattern {pattern!r}: {exc}") from exc
            risk = backtracking_risk(pattern)  # refused at start: it could stall the core
            if risk:
                raise PolicyError(
                    f"aliases: pattern {pattern!r} refused: {risk}; write it without that "
                    r"shape, e.g. \bboss\b, or make the group atomic: (?>...)+"
                )
        try:  # the core joins them into one pattern: names must not clash
            re.compile("|".join(f"(?:{a})" for a in self.aliases), re.IGNORECASE)
        except re.error as exc:
            raise PolicyError(f"aliases: the patterns do not combine: {exc}") from exc
        if self.quiet_hours is not None:
            self.quiet_hours.minutes()
            self.quiet_hours.zone()
        for name in ("escalate", "escalate_in_quiet_hours"):
            if not isinstance(getattr(self, name), bool):
                raise PolicyError(f"{name}: expected true or false, got {getattr(self, name)!r}")
        for name, low, high in (
            ("escalate_per_day", 0, 1000),
            ("calendar_days", 1, 14),
            ("digest_max_chars", 200, 60_000),  # room for its head line; one WhatsApp message
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise PolicyError(f"{name}: expected a whole number {low}..{high}, got {value!r}")
        if self.digest_at in ("", None):
            object.__setattr__(self, "digest_at", None)
        else:
            _hhmm(str(self.digest_at), "digest_at")
        if not isinstance(self.digest_tz, str):
            raise PolicyError(f"digest_tz: expected a time zone name, got {self.digest_tz!r}")
        self.local_zone()
        if self.digest_detail not in ("text", "names"):
            raise PolicyError(
                f"digest_detail: expected 'text' or 'names', got {self.digest_detail!r}"
            )
        if self.calendar_details not in ("busy", "titles"):
            raise PolicyError(
                f"calendar_details: expected 'busy' or 'titles', got {self.calendar_details!r}"
            )
        object.__setattr__(self, "profiles", parse_profiles(self.profiles))
        object.__setattr__(self, "profile_rules", parse_rules(self.profile_rules, self.profiles))
        if self.default_profile and self.default_profile not in {p.name for p in self.profiles}:
            raise PolicyError(f"default_profile: no profile called {self.default_profile!r}")
        for cap in fields(Caps):
            v = getattr(self.caps, cap.name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise PolicyError(f"caps.{cap.name}: expected a whole number >= 0, got {v!r}")

    def local_zone(self) -> ZoneInfo:
        """The owner's time zone (digest, calendar): `digest_tz`, else the quiet hours' zone,
        else UTC."""
        name = self.digest_tz or (self.quiet_hours.tz if self.quiet_hours else "UTC")
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise PolicyError(
                f"digest_tz: unknown time zone {name!r} (use an IANA name like Europe/Berlin)"
            ) from exc

    def profile(self, name: str) -> Profile | None:
        return next((p for p in self.profiles if p.name == name), None)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], base: Policy | None = None) -> Policy:
        """Build from plain data (YAML, env, CLI) over `base` (default: the defaults). Unknown
        keys are refused by name. One Policy is built and validated (`replace` of a default
        Policy would validate the defaults first, then the result)."""
        if not isinstance(data, Mapping):
            raise PolicyError(f"policy: expected a mapping of settings, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        changes: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise PolicyError(
                    f"{key}: unknown policy setting (known: {', '.join(sorted(known))})"
                )
            if key == "quiet_hours":
                value = _quiet_hours(value)
            elif key == "caps":
                value = _caps(value, base.caps if base is not None else Caps())
            elif key in ("urgent_keywords", "aliases", "allow", "deny") and isinstance(value, list):
                value = tuple(value)
            changes[key] = value
        return cls(**changes) if base is None else replace(base, **changes)

    def to_mapping(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "profiles":
                v = {p.name: p.to_mapping() for p in self.profiles}
            elif f.name == "profile_rules":
                v = [r.to_mapping() for r in self.profile_rules]
            elif isinstance(v, QuietHours):
                v = {"start": v.start, "end": v.end, "tz": v.tz}
            elif isinstance(v, Caps):
                v = {c.name: getattr(v, c.name) for c in fields(Caps)}
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out


def _quiet_hours(value: Any) -> QuietHours | None:
    if value in (None, False, "off"):
        return None
    if not isinstance(value, Mapping):
        raise PolicyError("quiet_hours: expected {start: 'HH:MM', end: 'HH:MM', tz: 'Area/City'}")
    unknown = set(value) - {"start", "end", "tz"}
    if unknown:
        raise PolicyError(f"quiet_hours.{sorted(unknown)[0]}: unknown key (use start, end, tz)")
    return QuietHours(**{k: str(v) for k, v in value.items()})


def _caps(value: Any, base: Caps) -> Caps:
    if not isinstance(value, Mapping):
        raise PolicyError("caps: expected {per_chat_per_day: N, per_hour: N, per_day: N}")
    names = {f.name for f in fields(Caps)}
    for key in value:
        if key not in names:
            raise PolicyError(f"caps.{key}: unknown key (use {', '.join(sorted(names))})")
    return replace(base, **dict(value))


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Persona(Record):
    """Who the assistant speaks for and how it introduces itself."""

    owner_id: str = "owner"  # the owner's own chat/user id (WhatsApp: his phone-number JID)
    owner_name: str = "the owner"
    assistant_name: str = "the assistant"
    introduction: str = ""  # e.g. "I'm Dana, Gilad's assistant."
    languages: tuple[str, ...] = ()  # hints, e.g. ("English", "Hebrew")
    extra_instructions: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.owner_id, str) or not self.owner_id:
            raise PolicyError("owner_id: must be a non-empty string")
        if not isinstance(self.owner_name, str) or not self.owner_name.strip():
            raise PolicyError("owner_name: must be a non-empty string")
        object.__setattr__(self, "languages", tuple(self.languages))
