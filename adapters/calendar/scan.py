"""A first pass over an iCalendar file: bounds, structure, and only what busy times need.

A calendar feed is text somebody else serves (a provider, a proxy, a login page); a private
calendar exported over years holds thousands of events, with descriptions, attendees,
attachments and alarms. `scan` reads the raw bytes once, line by line, before any parser sees
them, and returns a much smaller iCalendar text for `icalendar` (adapters/calendar/expand.py):

- refused with `CalendarError("line N: ...")`: more than `MAX_BYTES`; not UTF-8; control
  characters (a binary file); a first line that is not `BEGIN:VCALENDAR` (an HTML login page,
  a JSON error); a line that is not `NAME[;PARAMS]:VALUE`; components nested deeper than
  `MAX_DEPTH`; an `END` that does not close the open `BEGIN`; a second VCALENDAR; a file that
  ends inside a component (cut short); a kept property longer than `MAX_LINE_CHARS`; more than
  `MAX_EVENTS` events left to expand, or more than `MAX_PER_UID` sharing one UID (the
  expansion of one series costs the square of its parts). Nothing of the file's content is quoted in an error.
- kept: the calendar's VERSION, PRODID, CALSCALE, METHOD and X-WR-TIMEZONE; every VTIMEZONE
  whole; of each VEVENT only UID, DTSTART, DTEND, DURATION, RRULE, RDATE, EXDATE,
  RECURRENCE-ID, SEQUENCE, STATUS, TRANSP (and SUMMARY when titles are allowed). Descriptions,
  attendees, organizers, locations, alarms, attachments, to-dos and journals never reach the
  parser, so they can neither reach a log nor cost memory.
- dropped by date (the text of DTSTART/DTEND/UNTIL, with a day of margin for time zones): a
  single event that ends before the window or starts after it, a recurring one whose UNTIL is
  before the window.
- skipped (with its line, for the log): a recurring event whose rule would cost more than
  `MAX_RULE_STEPS` steps to expand from its DTSTART to the end of the window (FREQ=SECONDLY
  since 1970 is 1.7 billion steps: the expansion would never end). dateutil walks a rule from
  its start, so the cost is the span divided by the rule's step, times its BYHOUR, BYMINUTE
  and BYSECOND lists.

Memory: the decoded text and the kept lines; a dropped line (a 3 MB base64 attachment) is
never joined from its folded pieces. Time: one pass, linear in the size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_EVENTS",
    "MAX_LINE_CHARS",
    "MAX_PER_UID",
    "MAX_RULE_STEPS",
    "CalendarError",
    "Scanned",
    "scan",
]

MAX_BYTES = 5 * 1024 * 1024  # a calendar feed larger than this is refused
MAX_DEPTH = 8  # VCALENDAR > VEVENT > VALARM is 3; VTIMEZONE > STANDARD is 3
MAX_EVENTS = 10_000  # events left to expand after the date filter
MAX_LINE_CHARS = 100_000  # a kept property, unfolded (an EXDATE list of ~6,000 dates)
MAX_PER_UID = 500  # events sharing one UID (a recurring event and its moved occurrences)
MAX_RULE_STEPS = 400_000  # dateutil steps to expand one recurring event to the window's end

_EVENT_PROPERTIES = frozenset(
    {
        "UID",
        "DTSTART",
        "DTEND",
        "DURATION",
        "RRULE",
        "RDATE",
        "EXDATE",
        "RECURRENCE-ID",
        "SEQUENCE",
        "STATUS",
        "TRANSP",
    }
)
_CALENDAR_PROPERTIES = frozenset({"VERSION", "PRODID", "CALSCALE", "METHOD", "X-WR-TIMEZONE"})
_NAME = re.compile(r"[A-Za-z0-9-]+(?=[;:])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_DATE = re.compile(r":(\d{4})(\d{2})(\d{2})")
# The time one dateutil step covers, in cost: a DAILY step is a day, a longer period costs less
# per day (measured from year 1 to 2026: DAILY 3.8 us a day, WEEKLY 0.8, MONTHLY 0.26,
# YEARLY 0.16, and 0.5 with BYMONTH and BYMONTHDAY lists), so it counts as 4 or 8 days.
_FREQ_SECONDS = {
    "SECONDLY": 1,
    "MINUTELY": 60,
    "HOURLY": 3600,
    "DAILY": 86400,
    "WEEKLY": 4 * 86400,
    "MONTHLY": 8 * 86400,
    "YEARLY": 8 * 86400,
}
_MARGIN = timedelta(days=1)  # time zones: a date in the text is at most a day off the window


class CalendarError(ValueError):
    """The calendar could not be used; `str()` is a short reason that quotes nothing of the
    file (no titles, no attendees) and no URL."""


@dataclass(frozen=True, slots=True)
class Scanned:
    """What `scan` keeps: the smaller iCalendar text and what it left out."""

    text: str
    events: int  # VEVENTs kept for expansion
    series: int  # their distinct UIDs (a recurring event and its moved occurrences are one)
    dropped: int  # VEVENTs outside the window
    skipped: tuple[str, ...]  # "line N: why", events too costly to expand


@dataclass
class _Event:
    line: int
    lines: list[str]
    props: dict[str, str]  # the first value of each property the filter reads


def scan(data: bytes, first: date, last: date, *, titles: bool = False) -> Scanned:
    """Check `data` and keep what the busy times between the local dates `first` and `last`
    need (SUMMARY only with `titles`). Raises `CalendarError`."""
    if len(data) > MAX_BYTES:
        raise CalendarError(f"too big: {len(data)} bytes, at most {MAX_BYTES}")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CalendarError(f"line {line}: not UTF-8 text: not an iCalendar file") from None
    bad = _CONTROL.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        raise CalendarError(f"line {line}: control characters: not an iCalendar file") from None
    return _Scanner(first - _MARGIN, last + _MARGIN, titles).run(text)


class _Scanner:
    def __init__(self, first: date, last: date, titles: bool) -> None:
        self.first, self.last = first, last
        self.event_names = _EVENT_PROPERTIES | {"SUMMARY"} if titles else _EVENT_PROPERTIES
        self.out: list[str] = []
        self.stack: list[tuple[str, int]] = []  # (component, line of its BEGIN)
        self.event: _Event | None = None
        self.events = self.dropped = 0
        self.skipped: list[str] = []
        self.calendars = 0
        self.uids: dict[str, int] = {}

    def run(self, text: str) -> Scanned:
        parts: list[str] | None = None  # the kept logical line being unfolded
        size = 0
        start = 0  # its physical line number
        seen_any = False
        for number, raw in enumerate(text.split("\n"), 1):
            line = raw[:-1] if raw.endswith("\r") else raw
            if line[:1] in (" ", "\t"):  # a folded continuation
                if not seen_any:
                    raise CalendarError(f"line {number}: not an iCalendar file")
                if parts is not None:
                    size += len(line) - 1
                    if size > MAX_LINE_CHARS:
                        raise CalendarError(
                            f"line {start}: a property longer than {MAX_LINE_CHARS} characters"
                        )
                    parts.append(line[1:])
                continue
            if parts is not None:
                self.logical("".join(parts), start)
                parts = None
            if not line.strip():
                continue
            if not seen_any:
                if line.strip().upper() != "BEGIN:VCALENDAR":
                    raise CalendarError(
                        "not an iCalendar file (it does not begin with BEGIN:VCALENDAR)"
                    )
                seen_any = True
            if self.keeps(line, number):
                parts, size, start = [line], len(line), number
                if size > MAX_LINE_CHARS:
                    raise CalendarError(
                        f"line {start}: a property longer than {MAX_LINE_CHARS} characters"
                    )
        if parts is not None:
            self.logical("".join(parts), start)
        if not seen_any:
            raise CalendarError("empty: not an iCalendar file")
        if self.stack:
            name, opened = self.stack[-1]
            raise CalendarError(f"ends inside BEGIN:{name} (line {opened}): the file is cut short")
        return Scanned(
            "\r\n".join(self.out) + "\r\n",
            self.events,
            len(self.uids),
            self.dropped,
            tuple(self.skipped),
        )

    def keeps(self, line: str, number: int) -> bool:
        """Handle a line's structure (BEGIN/END); True when its (unfolded) text is kept."""
        m = _NAME.match(line)
        if m is None:
            raise CalendarError(f"line {number}: not a content line (NAME:value expected)")
        name = m.group().upper()
        if name in ("BEGIN", "END"):
            value = line[m.end() + 1 :].strip().upper()
            if not re.fullmatch(r"[A-Z0-9-]+", value):
                raise CalendarError(f"line {number}: {name} without a component name")
            if name == "BEGIN":
                self.begin(value, number)
            else:
                self.end(value, number)
            return False
        depth = len(self.stack)
        if depth == 0:
            raise CalendarError(f"line {number}: a property outside VCALENDAR")
        top = self.stack[1][0] if depth > 1 else ""
        if depth == 1:
            return name in _CALENDAR_PROPERTIES
        if top == "VTIMEZONE":
            return True
        if top == "VEVENT" and depth == 2:
            return name in self.event_names
        return False

    def begin(self, name: str, number: int) -> None:
        depth = len(self.stack)
        if depth >= MAX_DEPTH:
            raise CalendarError(f"line {number}: components nested more than {MAX_DEPTH} deep")
        if depth == 0:
            if name != "VCALENDAR":
                raise CalendarError(f"line {number}: BEGIN:{name} outside VCALENDAR")
            self.calendars += 1
            if self.calendars > 1:
                raise CalendarError(f"line {number}: a second VCALENDAR in one file")
            self.out.append("BEGIN:VCALENDAR")
        elif depth == 1 and name == "VEVENT":
            self.event = _Event(number, ["BEGIN:VEVENT"], {})
        elif (depth == 1 and name == "VTIMEZONE") or (
            depth > 1 and self.stack[1][0] == "VTIMEZONE"
        ):
            self.out.append(f"BEGIN:{name}")
        self.stack.append((name, number))

    def end(self, name: str, number: int) -> None:
        if not self.stack:
            raise CalendarError(f"line {number}: END:{name} without a BEGIN")
        open_name, open_line = self.stack[-1]
        if name != open_name:
            raise CalendarError(
                f"line {number}: END:{name} does not close BEGIN:{open_name} (line {open_line})"
            )
        self.stack.pop()
        depth = len(self.stack)
        if depth == 0:
            self.out.append("END:VCALENDAR")
        elif depth == 1 and name == "VEVENT" and self.event is not None:
            self.finish_event(self.event)
            self.event = None
        elif (depth == 1 and name == "VTIMEZONE") or (
            depth > 1 and self.stack[1][0] == "VTIMEZONE"
        ):
            self.out.append(f"END:{name}")

    def logical(self, line: str, number: int) -> None:
        """A kept property, unfolded."""
        if ":" not in line:
            raise CalendarError(f"line {number}: not a content line (NAME:value expected)")
        if self.event is None:
            self.out.append(line)
            return
        m = _NAME.match(line)
        name = m.group().upper() if m is not None else ""
        self.event.props.setdefault(name, line)
        self.event.lines.append(line)

    def finish_event(self, event: _Event) -> None:
        keep, why = self.wanted(event.props)
        if why:
            self.skipped.append(f"line {event.line}: {why}")
            return
        if not keep:
            self.dropped += 1
            return
        self.events += 1
        uid = event.props.get("UID", "")
        key = uid.split(":", 1)[1].strip() if ":" in uid else f"\x00{self.events}"
        self.uids[key] = self.uids.get(key, 0) + 1
        if self.uids[key] > MAX_PER_UID:
            raise CalendarError(f"line {event.line}: more than {MAX_PER_UID} events share one UID")
        if self.events > MAX_EVENTS:
            raise CalendarError(
                f"more than {MAX_EVENTS} events to expand (recurring, or near the next days)"
            )
        self.out.extend(event.lines)
        self.out.append("END:VEVENT")

    def wanted(self, props: dict[str, str]) -> tuple[bool, str]:
        """(keep, why skipped): whether the event can touch the window, and whether its rule is
        too costly to expand."""
        if "DTSTART" not in props:  # recurring-ical-events would fail the whole calendar
            return False, "an event without DTSTART"
        start = _date(props.get("DTSTART", ""))
        if "RRULE" in props or "RDATE" in props:
            rule = props.get("RRULE", "")
            if not rule:
                return True, ""
            parts = _rule_parts(rule)
            until = _date(":" + parts.get("UNTIL", "")) if "UNTIL" in parts else None
            if until is not None and until < self.first:
                return False, ""
            if start is None:
                return True, ""
            steps = rule_steps(parts, start, min(self.last, until) if until else self.last)
            if steps > MAX_RULE_STEPS:
                return False, f"a recurring event whose rule takes {steps:.3g} steps to expand"
            return True, ""
        if "RECURRENCE-ID" in props or start is None:
            return True, ""
        if start > self.last:
            return False, ""
        end = _date(props.get("DTEND", "")) if "DTEND" in props else None
        if end is None and "DURATION" in props:
            length = _duration(props["DURATION"])
            end = start + length if length is not None else None
        elif end is None:
            end = start
        return not (end is not None and end < self.first), ""


def _date(line: str) -> date | None:
    """The date at the start of a property's value (`DTSTART;TZID=...:20261201T100000`)."""
    m = _DATE.search(line)
    if m is None:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


_DURATION = re.compile(
    r":\s*\+?P(?:(\d{1,9})W)?(?:(\d{1,9})D)?(?:T(?:(\d{1,9})H)?(?:(\d{1,9})M)?(?:(\d{1,9})S)?)?\s*$",
    re.I,
)


def _duration(line: str) -> timedelta | None:
    """A DURATION's length, rounded up to whole days (None when it cannot be read)."""
    m = _DURATION.search(line)
    if m is None:
        return None
    w, d, h, mi, sec = (int(x) if x else 0 for x in m.groups())
    if w > 10_000 or d > 100_000:
        return None
    seconds = ((w * 7 + d) * 24 + h) * 3600 + mi * 60 + sec
    return timedelta(days=-(-seconds // 86400))


def _rule_parts(line: str) -> dict[str, str]:
    value = line.split(":", 1)[1] if ":" in line else ""
    parts: dict[str, str] = {}
    for item in value.split(";"):
        key, _, val = item.partition("=")
        parts.setdefault(key.strip().upper(), val.strip().upper())
    return parts


def rule_steps(parts: dict[str, str], start: date, end: date) -> float:
    """About how many steps dateutil takes to walk a rule from `start` to `end`: the span over
    the rule's step (`_FREQ_SECONDS`: longer periods count as a few days each), times the
    times of day BYHOUR, BYMINUTE and BYSECOND multiply each step into; a plain rule with a
    COUNT stops after COUNT steps (a rule with BY parts may step long between occurrences)."""
    step = _FREQ_SECONDS.get(parts.get("FREQ", ""), 86400)
    try:
        interval = max(1, int(parts.get("INTERVAL", "1")))
    except ValueError:
        interval = 1
    if step <= 86400:  # longer periods look at every day of each period, whatever the interval
        step *= interval
    span = max(0.0, (end - start).total_seconds() + 86400)
    times = 1
    for key in ("BYHOUR", "BYMINUTE", "BYSECOND"):
        if parts.get(key):
            times *= len(parts[key].split(","))
    steps = span / step * times
    if parts.get("COUNT", "").isdigit() and not any(k.startswith("BY") for k in parts):
        steps = min(steps, float(parts["COUNT"]))  # every step is an occurrence: COUNT ends it
    return steps
