"""Recognising the header of a WhatsApp "Export chat" line, in any of its locale formats.

A message starts with a date and a time, then `] ` (iOS, bracketed), ` - ` (Android) or `: `:

    23/06/2018, 01:55 - Name: text            6/23/18, 1:55 PM - Name: text
    [23.06.18, 01:55:12] Name: text           ‎[6/23/18, 1:55:12 PM] Name: text
    13.6.2018 klo 21.25.15 - Name: text       23/06/2018 à 01:55 - Name: text
    2018-06-23, 01:55 - Name: text            23/6/18 1:55 p. m. - Name: text

The first header line of a file fixes its `LineFormat`; later lines count as headers only when
they have the same shape, so a message that quotes a date is not mistaken for a new message.
Whether dates are day-first or month-first is decided from the whole file (`date_order`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

# Invisible marks exports put around lines and names: LRM/RLM, BOM, embeddings and isolates.
INVISIBLE = "\u200e\u200f\ufeff\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_SPACES = "\u202f\u00a0\u2009"  # narrow no-break space (iOS, before AM/PM), no-break, thin

HEADER = re.compile(
    rf"^[{INVISIBLE}]*(?P<open>\[)?"
    r"(?P<date>(?P<a>\d{1,4})(?P<dsep>[./-])(?P<b>\d{1,2})(?P=dsep)(?P<c>\d{2,4}))\.?"
    rf"(?P<mid>,?[\s{_SPACES}]+(?:(?P<word>klo|à|a las|às|um|at)[\s{_SPACES}]+)?|,)"
    r"(?P<time>(?P<h>\d{1,2})(?P<tsep>[:.])(?P<m>\d{2})(?:(?P=tsep)(?P<s>\d{2}))?)"
    rf"(?:[\s{_SPACES}]*(?P<ampm>[AaPp]\.?[\s{_SPACES}]?[Mm]\.?))?"
    rf"(?(open)\][\s{_SPACES}]?|(?P<dash>[\s{_SPACES}]+[-–][\s{_SPACES}]+|:[\s{_SPACES}]))"
    r"(?P<rest>.*)$",
    re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class LineFormat:
    """The shape of a file's header lines (everything but the date order)."""

    bracketed: bool
    date_sep: str
    word: str  # "klo", "à", ... or ""
    comma: bool
    time_sep: str
    seconds: bool
    twelve_hour: bool
    year_first: bool
    year_digits: int
    colon: bool  # "date, time: Name: text" (some old Android exports) instead of " - "

    @classmethod
    def of(cls, m: re.Match[str]) -> LineFormat:
        return cls(
            bracketed=m.group("open") is not None,
            date_sep=m.group("dsep"),
            word=(m.group("word") or "").casefold(),
            comma="," in m.group("mid"),
            time_sep=m.group("tsep"),
            seconds=m.group("s") is not None,
            twelve_hour=m.group("ampm") is not None,
            year_first=len(m.group("a")) == 4,
            year_digits=len(m.group("a")) if len(m.group("a")) == 4 else len(m.group("c")),
            colon=(m.group("dash") or "").startswith(":"),
        )

    def matches(self, m: re.Match[str]) -> bool:
        return LineFormat.of(m) == self

    def describe(self, day_first: bool) -> str:
        """A readable pattern, e.g. `[DD.MM.YY, HH:MM:SS]` or `M/D/YY, h:MM AM -`."""
        y = "YYYY" if self.year_digits == 4 else "YY"
        parts = ["DD", "MM"] if day_first else ["MM", "DD"]
        date = self.date_sep.join([y, "MM", "DD"] if self.year_first else [*parts, y])
        hour = "h" if self.twelve_hour else "HH"
        time = self.time_sep.join([hour, "MM", "SS"] if self.seconds else [hour, "MM"])
        if self.twelve_hour:
            time += " AM"
        mid = ("," if self.comma else "") + " " + (f"{self.word} " if self.word else "")
        stamp = f"{date}{mid}{time}"
        return f"[{stamp}]" if self.bracketed else f"{stamp}:" if self.colon else f"{stamp} -"


class DateError(ValueError):
    """A header's date or time does not exist."""


def date_order(matches: list[re.Match[str]]) -> tuple[bool, str]:
    """(day_first, why) from every header of a file: a first field above 12 settles day-first,
    a second above 12 month-first; with neither, 12-hour "/" dates are taken as month-first
    (US style) and everything else as day-first."""
    day_first_seen = month_first_seen = None
    for m in matches:
        if len(m.group("a")) == 4:
            return True, "year first"
        if day_first_seen is None and int(m.group("a")) > 12:
            day_first_seen = m
        if month_first_seen is None and int(m.group("b")) > 12:
            month_first_seen = m
    if day_first_seen is not None and month_first_seen is not None:
        raise DateError(
            f"dates disagree: {day_first_seen.group('date')!r} is day-first but "
            f"{month_first_seen.group('date')!r} is month-first"
        )
    if day_first_seen is not None:
        return True, f"day first ({day_first_seen.group('date')})"
    if month_first_seen is not None:
        return False, f"month first ({month_first_seen.group('date')})"
    first = matches[0]
    us = first.group("dsep") == "/" and first.group("ampm") is not None
    return not us, "ambiguous dates: " + ("12-hour '/' taken as month first" if us else "day first")


def timestamp(m: re.Match[str], day_first: bool) -> datetime:
    """The header's local (naive) date and time."""
    a, b, c = int(m.group("a")), int(m.group("b")), int(m.group("c"))
    if len(m.group("a")) == 4:
        year, month, day = a, b, c
    else:
        year = c + 2000 if len(m.group("c")) <= 2 else c
        day, month = (a, b) if day_first else (b, a)
    hour, minute, second = int(m.group("h")), int(m.group("m")), int(m.group("s") or 0)
    ampm = m.group("ampm")
    if ampm is not None:
        if not 1 <= hour <= 12:
            raise DateError(f"hour {hour} with {ampm.strip()!r}")
        pm = ampm.strip()[0] in "pP"
        hour = hour % 12 + (12 if pm else 0)
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise DateError(f"{m.group('date')} {m.group('time')}: {exc}") from exc
