"""Hostile and broken calendar files (adapters/calendar/scan.py): each refused with a short
reason and its line, in bounded time and memory; nothing of the file in the error."""

from __future__ import annotations

import time
import tracemalloc
from datetime import date

import pytest
from wapa.adapters.calendar.expand import busy_times
from wapa.adapters.calendar.scan import (
    MAX_BYTES,
    MAX_EVENTS,
    MAX_PER_UID,
    CalendarError,
    rule_steps,
    scan,
)

from tests.adapters.test_calendar_expand import BERLIN, NOW

HEAD = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
TAIL = b"END:VCALENDAR\r\n"
FIRST, LAST = date(2026, 10, 22), date(2026, 10, 25)


def event(uid: str, start: str = "20261022T100000Z", extra: str = "") -> bytes:
    return (
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTART:{start}\r\nDURATION:PT1H\r\n{extra}END:VEVENT\r\n"
    ).encode()


def refused(data: bytes) -> str:
    with pytest.raises(CalendarError) as info:
        scan(data, FIRST, LAST)
    return str(info.value)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"<!DOCTYPE html><html><body>Sign in</body></html>", "not an iCalendar file"),
        (b'{"error": "not found"}', "not an iCalendar file"),
        (b"", "empty: not an iCalendar file"),
        (b"BEGIN:VCALENDAR\r\n\xff\xfe\x00\x01", "line 2: not UTF-8 text"),
        (HEAD + b"X-A:\x00\x01\x02\r\n" + TAIL, "line 3: control characters"),
        (HEAD + b"Dinner with Noa at 8\r\n" + TAIL, "line 3: not a content line"),
        (
            HEAD + b"BEGIN:VEVENT\r\nUID:x\r\n",
            "ends inside BEGIN:VEVENT (line 3): the file is cut short",
        ),
        (
            HEAD + b"BEGIN:VEVENT\r\nEND:VTODO\r\n" + TAIL,
            "line 4: END:VTODO does not close BEGIN:VEVENT (line 3)",
        ),
        (HEAD + TAIL + HEAD + TAIL, "line 4: a second VCALENDAR"),
        (b"BEGIN:VEVENT\r\nEND:VEVENT\r\n", "not an iCalendar file"),
        (HEAD + b"BEGIN:\r\n" + TAIL, "line 3: BEGIN without a component name"),
    ],
)
def test_refused_with_a_reason(data: bytes, reason: str) -> None:
    assert reason in refused(data)


def test_errors_never_quote_the_file() -> None:
    assert "Noa" not in refused(HEAD + b"Dinner with Noa at 8\r\n" + TAIL)


def test_too_big() -> None:
    assert refused(b"x" * (MAX_BYTES + 1)).startswith("too big")


def test_deep_nesting_is_refused_at_once() -> None:
    deep = HEAD + b"BEGIN:X\r\n" * 200_000 + b"END:X\r\n" * 200_000 + TAIL
    began = time.process_time()  # CPU time: a hang guard, not a speed test (a loaded machine)
    assert "line 10: components nested more than 8 deep" in refused(deep)
    assert time.process_time() - began < 5


def test_a_kept_property_too_long_is_refused_a_dropped_one_is_not_read() -> None:
    exdates = ",".join(["20201010T000000Z"] * 10_000)
    assert "line 4: a property longer than" in refused(
        HEAD + f"BEGIN:VEVENT\r\nEXDATE:{exdates}\r\nEND:VEVENT\r\n".encode() + TAIL
    )
    attachment = b"ATTACH;ENCODING=BASE64;VALUE=BINARY:" + b"\r\n " + b"QUJD" * 1_000_000
    body = HEAD + event("a", extra=attachment.decode() + "\r\n") + TAIL
    tracemalloc.start()
    try:
        out = scan(body, FIRST, LAST)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "ATTACH" not in out.text and out.events == 1
    assert peak < 4 * len(body)  # the bytes, their text, the split lines: no joined copy


def test_too_many_events_and_too_many_with_one_uid() -> None:
    many = HEAD + b"".join(event(f"e{i}") for i in range(MAX_EVENTS + 1)) + TAIL
    assert f"more than {MAX_EVENTS} events" in refused(many)
    same = HEAD + event("same") * (MAX_PER_UID + 1) + TAIL
    assert f"more than {MAX_PER_UID} events share one UID" in refused(same)


def test_only_what_busy_times_need_reaches_the_parser() -> None:
    body = HEAD + event(
        "a",
        extra=(
            "SUMMARY:Board meeting\r\nDESCRIPTION:salaries\r\n"
            "ATTENDEE;CN=Dana:mailto:dana@example.com\r\nLOCATION:Room 4\r\n"
            "BEGIN:VALARM\r\nTRIGGER:-PT5M\r\nACTION:DISPLAY\r\nEND:VALARM\r\n"
        ),
    )
    body += b"BEGIN:VTODO\r\nUID:t\r\nSUMMARY:todo\r\nEND:VTODO\r\n" + TAIL
    text = scan(body, FIRST, LAST).text
    for gone in ("Board", "salaries", "Dana", "Room", "VALARM", "VTODO"):
        assert gone not in text
    assert "SUMMARY:Board meeting" in scan(body, FIRST, LAST, titles=True).text


def test_events_far_from_the_window_are_dropped_before_parsing() -> None:
    body = (
        HEAD
        + event("old", "20200101T100000Z")
        + event("later", "20270101T100000Z")
        + event("soon", "20261023T100000Z")
        + event("ended", "20200101T100000Z", "RRULE:FREQ=DAILY;UNTIL=20200301T000000Z\r\n")
        + event("weekly", "20200101T100000Z", "RRULE:FREQ=WEEKLY\r\n")
        + TAIL
    )
    out = scan(body, FIRST, LAST)
    assert (out.events, out.dropped) == (2, 3)
    long = event("long", "20261001T100000Z").replace(b"PT1H", b"P4W")  # until 29 October
    assert scan(HEAD + long + TAIL, FIRST, LAST).events == 1
    assert "UID:soon" in out.text and "UID:weekly" in out.text


def test_a_rule_too_costly_to_walk_is_skipped_with_its_line() -> None:
    body = (
        HEAD
        + event("s", "19700101T000000Z", "RRULE:FREQ=SECONDLY\r\n")
        + event("ok", "20261022T120000Z")
        + TAIL
    )
    began = time.process_time()  # CPU time: a hang guard, not a speed test (a loaded machine)
    found = busy_times(body, NOW, 3, BERLIN)
    assert time.process_time() - began < 5
    assert len(found.busy) == 1
    assert found.skipped == ("line 3: a recurring event whose rule takes 1.79e+09 steps to expand",)


def test_old_yearly_events_are_walked_old_daily_ones_too_costly() -> None:
    """A birthday since year 1 (contacts calendars write unknown years so) costs ~0.2 s to
    walk; a daily rule since year 1 ten times that: skipped."""
    body = (
        HEAD
        + event("birthday", "00010123T000000Z", "RRULE:FREQ=YEARLY\r\n")
        + event("daily", "00010101T000000Z", "RRULE:FREQ=DAILY\r\n")
        + TAIL
    )
    out = scan(body, FIRST, LAST)
    assert out.events == 1 and "UID:birthday" in out.text
    assert out.skipped == ("line 9: a recurring event whose rule takes 7.4e+05 steps to expand",)


def test_an_event_without_dtstart_is_skipped_not_the_calendar() -> None:
    body = HEAD + b"BEGIN:VEVENT\r\nUID:x\r\nDTEND:20261022T110000Z\r\nEND:VEVENT\r\n"
    found = busy_times(body + event("ok") + TAIL, NOW, 3, BERLIN)
    assert len(found.busy) == 1 and found.skipped == ("line 3: an event without DTSTART",)


def test_rule_steps() -> None:
    start, end = date(2026, 1, 1), date(2026, 1, 2)
    assert rule_steps({"FREQ": "MINUTELY"}, start, end) == 2 * 1440
    assert rule_steps({"FREQ": "MINUTELY", "INTERVAL": "10"}, start, end) == 2 * 144
    assert rule_steps({"FREQ": "YEARLY", "BYHOUR": "1,2", "BYMINUTE": "0,30"}, start, end) == 1
    assert rule_steps({"FREQ": "DAILY", "INTERVAL": "2"}, start, end) == 1
    assert rule_steps({"FREQ": "SECONDLY", "COUNT": "5"}, start, end) == 5
    assert rule_steps({"FREQ": "SECONDLY", "COUNT": "5", "BYMONTH": "2"}, start, end) == 2 * 86400
