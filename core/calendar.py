"""Rule 16, calendar availability: the owner's free/busy times in the prompt, never a promise.

The driver feeds `CalendarUpdate` events (the runner from an ICS feed, the simulator from the
scenario's `calendar:`). An update without error replaces the known busy times; an update
with an error keeps the last good ones (a feed that is down for an hour must not make the
owner look free), and `status` names the error and the age of the last good update.

- The system prompt gets free/busy for the next `calendar_days` [3] days (today first) in the
  owner's time zone (`Policy.local_zone()`), inside a `[You may share: ...]` bracket that
  reply hygiene (core/hygiene.py) treats as sayable, and the instruction that the assistant
  may say the owner looks free or busy but never commits him: he confirms himself (rule 11
  refuses commitments anyway). Times are the owner's own data, not a contact's.
- Event titles come from other people's invitations too, so they never reach the system
  prompt: with `calendar_details: titles` they go into the opening user turn, each through
  `context.safe_label` (the hostile-name rules), at most `TITLES_SHOWN`.
- Unknown is not free: a day the last good update did not cover to its end (it keeps
  `calendar_days` + 1 days from its time) is left out, and with no day left the calendar leaves the prompt.
- Bounded: at most `KEPT` intervals, only those that end after now and start within the
  shown days (+1); invalid intervals (end <= start, not finite) are skipped and counted.
- A profile with `calendar: false` gets no calendar in its chats' prompts (core/profiles.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from wapa.core.events import BusyInterval, CalendarUpdate

DAY = 86400.0
KEPT = 200
TITLES_SHOWN = 8
TITLE_CHARS = 80
MARK = "[You may share: "


@dataclass
class Calendar:
    """The owner's known busy times and the state of the last update (see the module
    docstring)."""

    busy: list[list[Any]] = field(default_factory=list)  # [start, end, title], by start
    good_at: float | None = None  # the last good update
    error: str = ""  # the last update's error ("" when it was good)
    error_at: float = 0.0

    def apply(self, update: CalendarUpdate, now: float, days: int, titles: bool) -> str:
        """Take an update; returns the decision's sentence."""
        error = update.error if isinstance(update.error, str) else "bad error"
        if error:
            self.error, self.error_at = " ".join(error.split())[:120], now
            if self.good_at is None:
                return f"calendar update failed ({self.error}); no busy times known yet"
            return (
                f"calendar update failed ({self.error}); keeping the busy times of "
                f"{_age(now - self.good_at)} ago"
            )
        kept, bad = [], 0
        horizon = now + (days + 1) * DAY
        for b in update.busy if isinstance(update.busy, tuple | list) else ():
            if not _valid(b):
                bad += 1
                continue
            if b.end <= now or b.start >= horizon:
                continue
            title = b.title if titles and isinstance(b.title, str) else ""
            kept.append([float(b.start), float(b.end), title[:TITLE_CHARS]])
        kept.sort(key=lambda x: (x[0], x[1]))
        self.busy, self.good_at, self.error = kept[:KEPT], now, ""
        skipped = f" ({bad} invalid skipped)" if bad else ""
        return f"calendar updated: {len(self.busy)} busy times ahead{skipped}"

    def status(self, now: float) -> str:
        if self.good_at is None and not self.error:
            return ""
        ahead = sum(1 for b in self.busy if b[1] > now)
        if self.error:
            good = (
                f"using the one of {_age(now - self.good_at)} ago"
                if self.good_at is not None
                else "no busy times known"
            )
            return (
                f" Calendar: the last update failed ({self.error}, "
                f"{_age(now - self.error_at)} ago); {good}."
            )
        good_at = self.good_at if self.good_at is not None else now
        return f" Calendar: {ahead} busy times ahead, updated {_age(now - good_at)} ago."

    def prompt_text(self, now: float, zone: ZoneInfo, days: int, owner: str) -> str:
        """For the system prompt: free/busy per day, no titles ("" with no calendar)."""
        if self.good_at is None:
            return ""
        local_now = datetime.fromtimestamp(now, zone)
        parts = []
        for label, spans in self._days(now, zone, days):
            if spans is None:
                continue
            if not spans:
                parts.append(f"{label}: free")
            elif spans == [("00:00", "24:00")]:
                parts.append(f"{label}: busy all day")
            else:
                busy = ", ".join(f"{a}-{b}" for a, b in spans)
                parts.append(f"{label}: busy {busy}, free otherwise")
        if not parts:  # the last good update is too old to say anything
            return ""
        return (
            f"{MARK}{owner}'s calendar, times in {zone.key}, now "
            f"{local_now.strftime('%a %d %b %H:%M')}. {'; '.join(parts)}. "
            f"You may say whether {owner} looks free or busy at a time, but never commit "
            f"{owner} to anything: say that {owner} will confirm himself.]"
        )

    def titles_line(self, now: float, zone: ZoneInfo, days: int) -> str:
        """For the opening user turn: the titles of the next events, quoted and bounded."""
        from wapa.core.context import safe_label  # context imports this module

        end = _day_start(now, zone, days)
        shown = []
        for start, stop, title in self.busy:
            label = safe_label(title, 6, 48) if title else ""
            if not label or stop <= now or start >= end:
                continue
            at = datetime.fromtimestamp(start, zone).strftime("%a %H:%M")
            shown.append(f'{at} "{label}"')
            if len(shown) == TITLES_SHOWN:
                break
        if not shown:
            return ""
        return "[Calendar entries, titles as their organisers wrote them: " + "; ".join(shown) + "]"

    def _days(
        self, now: float, zone: ZoneInfo, days: int
    ) -> list[tuple[str, list[tuple[str, str]] | None]]:
        """Each shown day's label and busy spans (local HH:MM); None for a day the last good
        update did not cover (it kept `days` + 1 days): unknown is not free."""
        covered = (self.good_at or 0.0) + (days + 1) * DAY
        out: list[tuple[str, list[tuple[str, str]] | None]] = []
        today = datetime.fromtimestamp(now, zone).date()
        for i in range(days):
            day = today + timedelta(days=i)
            lo = _day_start(now, zone, i)
            hi = _day_start(now, zone, i + 1)
            name = day.strftime("%a %d %b")
            label = f"today ({name})" if i == 0 else f"tomorrow ({name})" if i == 1 else name
            if hi > covered:
                out.append((label, None))
                continue
            spans: list[list[float]] = []
            for start, stop, _ in self.busy:
                a, b = max(start, lo), min(stop, hi)
                if b <= a:
                    continue
                if spans and a <= spans[-1][1]:
                    spans[-1][1] = max(spans[-1][1], b)
                else:
                    spans.append([a, b])
            out.append((label, [(_hm(a, zone), _hm(b, zone, hi)) for a, b in spans]))
        return out

    def export(self) -> dict[str, Any]:
        return {
            "busy": [list(b) for b in self.busy],
            "good_at": self.good_at,
            "error": self.error,
            "error_at": self.error_at,
        }

    @classmethod
    def restore(cls, data: dict[str, Any] | None) -> Calendar:
        if not data:
            return cls()
        good = data.get("good_at")
        return cls(
            [[float(a), float(b), str(t)] for a, b, t in data.get("busy", ())],
            float(good) if good is not None else None,
            str(data.get("error", "")),
            float(data.get("error_at", 0.0)),
        )


def _valid(b: object) -> bool:
    return (
        isinstance(b, BusyInterval)
        and all(
            isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
            for x in (b.start, b.end)
        )
        and b.end > b.start
    )


def _day_start(now: float, zone: ZoneInfo, offset: int) -> float:
    day = datetime.fromtimestamp(now, zone).date() + timedelta(days=offset)
    return datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()


def _hm(t: float, zone: ZoneInfo, day_end: float | None = None) -> str:
    if day_end is not None and t >= day_end:
        return "24:00"
    return datetime.fromtimestamp(t, zone).strftime("%H:%M")


def _age(seconds: float) -> str:
    """90 min, 2 h 30 min, 3 days."""
    minutes = int(max(0.0, seconds) // 60)
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 2 * 24 * 60:
        hours, rest = divmod(minutes, 60)
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    return f"{minutes // (24 * 60)} days"
