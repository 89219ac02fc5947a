"""Busy intervals from an iCalendar file: parse (icalendar), expand (recurring-ical-events),
place in time, filter, merge, bound.

`busy_times(data, now, days, tz)` is the whole job, synchronous and CPU-bound: the runner calls
it in a worker thread (app/calendar.py). Steps:

1. `scan` (adapters/calendar/scan.py) refuses hostile or broken files with a line number and
   keeps only what busy times need (no descriptions, attendees or alarms; titles only with
   `titles=True`), dropping single events far from the window.
2. `icalendar.Calendar.from_ical` parses the rest; `recurring_ical_events.of` expands each
   series (RRULE, RDATE, EXDATE, moved or cancelled occurrences by RECURRENCE-ID, Google's
   X-WR-TIMEZONE) over [now, now + days]. A series that fails (a bad date, a bad rule) is
   skipped and counted, the others are kept. The expansion stops with an error after
   `budget_s` seconds (checked between series; `scan` already refused rules too costly to
   walk) or beyond `MAX_OCCURRENCES`.
3. Time: a time with TZID or UTC is that instant; a floating time (no zone) is the owner's
   local time in `tz`; an all-day event (a DATE) is busy from local midnight to local midnight
   of its end date (the whole day for a one-day event), in `tz`.
4. An occurrence with TRANSP:TRANSPARENT (shown as free) or STATUS:CANCELLED is not busy.
5. Intervals are clipped to the window, sorted, overlapping or touching ones merged (their
   titles joined), and at most `max_intervals` kept (the earliest; `truncated` says so).

icalendar's own error messages quote the offending line (a title, an attendee): they never
leave this module; a parse failure is reported by its kind only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
from wapa.adapters.calendar.scan import CalendarError, scan

__all__ = ["MAX_INTERVALS", "MAX_OCCURRENCES", "Busy", "Expansion", "busy_times"]

MAX_INTERVALS = 500  # busy intervals handed to the core, earliest first
MAX_OCCURRENCES = 5_000  # occurrences expanded before merging
MAX_TITLE_CHARS = 120  # one event's title; merged titles are bounded by the same * 3
BUDGET_SECONDS = 10.0  # the whole expansion


@dataclass(frozen=True, slots=True)
class Busy:
    """One busy interval, epoch seconds, end > start; `title` only when titles are allowed."""

    start: float
    end: float
    title: str = ""


@dataclass(frozen=True, slots=True)
class Expansion:
    """What `busy_times` found."""

    busy: tuple[Busy, ...]
    events: int  # events (series) expanded
    occurrences: int  # busy occurrences found in the window, before merging
    skipped: tuple[str, ...]  # "line N: why" or "N series: why" (no content)
    truncated: bool  # more than max_intervals: the latest were left out


def busy_times(
    data: bytes,
    now: float,
    days: float,
    tz: ZoneInfo,
    *,
    titles: bool = False,
    max_intervals: int = MAX_INTERVALS,
    budget_s: float = BUDGET_SECONDS,
    monotonic: Callable[[], float] = time.monotonic,
) -> Expansion:
    """The owner's busy intervals in [now, now + days * 86400]. Raises `CalendarError`."""
    began = monotonic()
    window_end = now + days * 86400.0
    start_dt = datetime.fromtimestamp(now, tz)
    end_dt = datetime.fromtimestamp(window_end, tz)
    scanned = scan(data, start_dt.date(), end_dt.date(), titles=titles)
    try:
        calendar = icalendar.Calendar.from_ical(scanned.text)
        query = recurring_ical_events.of(calendar, skip_bad_series=True)
    except Exception as exc:  # its message quotes the file: only the kind leaves
        raise CalendarError(f"not a valid iCalendar file ({type(exc).__name__})") from None
    skipped = list(scanned.skipped)
    failed = max(0, scanned.series - len(query.series))  # dropped by skip_bad_series
    found: list[Busy] = []
    for series in query.series:
        if monotonic() - began > budget_s:
            raise CalendarError(f"expanding the events took longer than {budget_s:g} s")
        try:
            for occurrence in series.between(start_dt, end_dt):
                if monotonic() - began > budget_s:
                    raise CalendarError(f"expanding the events took longer than {budget_s:g} s")
                busy = _busy(occurrence, tz, titles)
                if busy is None:
                    continue
                start, end = max(busy.start, now), min(busy.end, window_end)
                if end > start:
                    found.append(Busy(start, end, busy.title))
                if len(found) > MAX_OCCURRENCES:
                    raise CalendarError(f"more than {MAX_OCCURRENCES} events in the next days")
        except CalendarError:
            raise
        except Exception:  # a bad date or rule in this series only
            failed += 1
    if failed:
        skipped.append(f"{failed} event series with bad dates or rules")
    merged = merge(found)
    return Expansion(
        tuple(merged[:max_intervals]),
        len(query.series),
        len(found),
        tuple(skipped),
        len(merged) > max_intervals,
    )


def _busy(occurrence: object, tz: ZoneInfo, titles: bool) -> Busy | None:
    """An occurrence as a busy interval, or None when it is free (transparent, cancelled)."""
    component = occurrence.as_component(False)  # type: ignore[attr-defined]
    if str(component.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
        return None
    if str(component.get("STATUS", "")).upper() == "CANCELLED":
        return None
    start = _epoch(occurrence.start, tz)  # type: ignore[attr-defined]
    end = _epoch(occurrence.end, tz)  # type: ignore[attr-defined]
    if end <= start:
        return None
    title = _clean(str(component.get("SUMMARY", ""))) if titles else ""
    return Busy(start, end, title)


def _epoch(t: date, tz: ZoneInfo) -> float:
    """Epoch seconds: aware times as they are, floating times and dates in `tz`."""
    if isinstance(t, datetime):
        return (t if t.tzinfo is not None else t.replace(tzinfo=tz)).timestamp()
    return datetime(t.year, t.month, t.day, tzinfo=tz).timestamp()


def _clean(title: str) -> str:
    """One line, printable, bounded."""
    text = " ".join("".join(c if c.isprintable() else " " for c in title).split())
    return text[:MAX_TITLE_CHARS]


def merge(intervals: list[Busy]) -> list[Busy]:
    """Sorted, with overlapping or touching intervals merged (distinct titles joined by "; ")."""
    out: list[Busy] = []
    names: list[str] = []
    for b in sorted(intervals, key=lambda b: (b.start, b.end)):
        if out and b.start <= out[-1].end:
            last = out[-1]
            if b.title and b.title not in names:
                names.append(b.title)
            title = "; ".join(names)[: MAX_TITLE_CHARS * 3]
            out[-1] = Busy(last.start, max(last.end, b.end), title)
        else:
            names = [b.title] if b.title else []
            out.append(b)
    return out
