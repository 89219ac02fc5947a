"""Busy times from real iCalendar texts (adapters/calendar/expand.py): recurring events across
a DST change, EXDATE, all-day, cancelled, transparent, floating times, merging, titles."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wapa.adapters.calendar.expand import Busy, busy_times, merge
from wapa.adapters.calendar.scan import CalendarError

BERLIN = ZoneInfo("Europe/Berlin")
# Thursday 22 October 2026, 00:00 in Berlin; summer time ends on Sunday 25 October at 03:00.
NOW = datetime(2026, 10, 22, tzinfo=BERLIN).timestamp()

BERLIN_TZ = """BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE
"""

EVENTS = """BEGIN:VEVENT
UID:standup@example.com
DTSTAMP:20260901T080000Z
DTSTART;TZID=Europe/Berlin:20260907T090000
DTEND;TZID=Europe/Berlin:20260907T100000
RRULE:FREQ=WEEKLY;BYDAY=MO,FR
EXDATE;TZID=Europe/Berlin:20261030T090000
SUMMARY:Standup
DESCRIPTION:Dial-in 555 1234 PIN 9876
ATTENDEE;CN=Dana Levi:mailto:dana@example.com
ORGANIZER;CN=Gilad:mailto:gilad@example.com
BEGIN:VALARM
ACTION:DISPLAY
DESCRIPTION:Standup
TRIGGER:-PT10M
END:VALARM
END:VEVENT
BEGIN:VEVENT
UID:offsite@example.com
DTSTAMP:20260901T080000Z
DTSTART;VALUE=DATE:20261028
DTEND;VALUE=DATE:20261029
SUMMARY:Offsite
END:VEVENT
BEGIN:VEVENT
UID:lunch@example.com
DTSTAMP:20260901T080000Z
DTSTART:20261027T120000Z
DTEND:20261027T130000Z
STATUS:CANCELLED
SUMMARY:Lunch with Noa
END:VEVENT
BEGIN:VEVENT
UID:reminder@example.com
DTSTAMP:20260901T080000Z
DTSTART:20261027T140000Z
DTEND:20261027T150000Z
TRANSP:TRANSPARENT
SUMMARY:Pay rent
END:VEVENT
BEGIN:VEVENT
UID:dentist@example.com
DTSTAMP:20260901T080000Z
DTSTART:20261029T150000
DTEND:20261029T160000
SUMMARY:Dentist
END:VEVENT
BEGIN:VEVENT
UID:old@example.com
DTSTAMP:20200101T080000Z
DTSTART:20200101T100000Z
DTEND:20200101T110000Z
SUMMARY:Long ago
END:VEVENT
"""


def ics(body: str, tz: str = BERLIN_TZ) -> bytes:
    text = f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//wapa tests//EN\n{tz}{body}END:VCALENDAR\n"
    return text.replace("\n", "\r\n").encode()


def utc(b: Busy) -> tuple[str, str]:
    def fmt(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).strftime("%m-%d %H:%M")

    return fmt(b.start), fmt(b.end)


def test_a_week_in_berlin_across_the_dst_change() -> None:
    found = busy_times(ics(EVENTS), NOW, 10, BERLIN)
    assert [utc(b) for b in found.busy] == [
        ("10-23 07:00", "10-23 08:00"),  # Friday 09:00 summer time (UTC+2)
        ("10-26 08:00", "10-26 09:00"),  # Monday 09:00 winter time (UTC+1): still 09:00 local
        ("10-27 23:00", "10-28 23:00"),  # the all-day offsite: the whole local day
        ("10-29 14:00", "10-29 15:00"),  # the floating dentist: 15:00 in the owner's zone
    ]  # Friday 30 October is an EXDATE; the cancelled lunch and the transparent rent are free
    assert all(b.title == "" for b in found.busy)  # no titles unless allowed
    assert found.events == 5 and found.skipped == () and not found.truncated


def test_titles_only_when_allowed() -> None:
    found = busy_times(ics(EVENTS), NOW, 10, BERLIN, titles=True)
    assert [b.title for b in found.busy] == ["Standup", "Standup", "Offsite", "Dentist"]


def test_floating_times_follow_the_owner_zone() -> None:
    body = "BEGIN:VEVENT\nUID:f\nDTSTART:20261022T150000\nDTEND:20261022T160000\nEND:VEVENT\n"
    in_berlin = busy_times(ics(body, ""), NOW, 1, BERLIN).busy
    in_utc = busy_times(ics(body, ""), NOW, 1, ZoneInfo("UTC")).busy
    assert [utc(b) for b in in_berlin] == [("10-22 13:00", "10-22 14:00")]
    assert [utc(b) for b in in_utc] == [("10-22 15:00", "10-22 16:00")]


def test_the_window_clips_and_a_running_event_counts_from_now() -> None:
    body = (
        "BEGIN:VEVENT\nUID:a\nDTSTART:20261021T200000Z\nDTEND:20261022T020000Z\nEND:VEVENT\n"
        "BEGIN:VEVENT\nUID:b\nDTSTART:20261024T200000Z\nDTEND:20261025T020000Z\nEND:VEVENT\n"
    )
    found = busy_times(ics(body, ""), NOW, 3, BERLIN)  # until Sunday 00:00 Berlin
    assert [utc(b) for b in found.busy] == [
        ("10-21 22:00", "10-22 02:00"),  # began before now: busy from now
        ("10-24 20:00", "10-24 22:00"),  # goes past the window: cut at its end
    ]


def test_overlapping_and_touching_intervals_merge_with_their_titles() -> None:
    body = (
        "BEGIN:VEVENT\nUID:a\nDTSTART:20261022T080000Z\nDTEND:20261022T090000Z\nSUMMARY:A\nEND:VEVENT\n"
        "BEGIN:VEVENT\nUID:b\nDTSTART:20261022T083000Z\nDTEND:20261022T093000Z\nSUMMARY:B\nEND:VEVENT\n"
        "BEGIN:VEVENT\nUID:c\nDTSTART:20261022T093000Z\nDTEND:20261022T100000Z\nSUMMARY:A\nEND:VEVENT\n"
        "BEGIN:VEVENT\nUID:d\nDTSTART:20261022T120000Z\nDTEND:20261022T130000Z\nEND:VEVENT\n"
    )
    found = busy_times(ics(body, ""), NOW, 1, BERLIN, titles=True)
    assert [(utc(b), b.title) for b in found.busy] == [
        (("10-22 08:00", "10-22 10:00"), "A; B"),
        (("10-22 12:00", "10-22 13:00"), ""),
    ]
    assert found.occurrences == 4


def test_merge_keeps_order_and_bounds() -> None:
    assert merge([Busy(5, 6), Busy(1, 3), Busy(2, 4)]) == [Busy(1, 4), Busy(5, 6)]
    assert merge([]) == []


def test_at_most_max_intervals_the_earliest() -> None:
    body = "BEGIN:VEVENT\nUID:h\nDTSTART:20261022T000000Z\nDURATION:PT30M\nRRULE:FREQ=HOURLY\nEND:VEVENT\n"
    found = busy_times(ics(body, ""), NOW, 3, BERLIN, max_intervals=10)
    assert len(found.busy) == 10 and found.truncated
    assert utc(found.busy[0]) == ("10-22 00:00", "10-22 00:30")


def test_a_moved_and_a_cancelled_occurrence() -> None:
    body = (
        "BEGIN:VEVENT\nUID:s\nDTSTART:20261022T090000Z\nDTEND:20261022T100000Z\n"
        "RRULE:FREQ=DAILY;COUNT=3\nEND:VEVENT\n"
        "BEGIN:VEVENT\nUID:s\nRECURRENCE-ID:20261023T090000Z\n"
        "DTSTART:20261023T150000Z\nDTEND:20261023T160000Z\nEND:VEVENT\n"
        "BEGIN:VEVENT\nUID:s\nRECURRENCE-ID:20261024T090000Z\n"
        "DTSTART:20261024T090000Z\nDTEND:20261024T100000Z\nSTATUS:CANCELLED\nEND:VEVENT\n"
    )
    found = busy_times(ics(body, ""), NOW, 5, BERLIN)
    assert [utc(b) for b in found.busy] == [
        ("10-22 09:00", "10-22 10:00"),
        ("10-23 15:00", "10-23 16:00"),
    ]


def test_google_x_wr_timezone_is_honoured() -> None:
    """Google puts X-WR-TIMEZONE on the calendar and UTC times on events; recurring events
    must then recur in that zone (09:00 Berlin stays 09:00 across the change)."""
    text = (
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//Google Inc//Google Calendar 70.9054//EN\n"
        "X-WR-TIMEZONE:Europe/Berlin\n"
        "BEGIN:VEVENT\nUID:g\nDTSTART:20261023T070000Z\nDTEND:20261023T080000Z\n"
        "RRULE:FREQ=DAILY;COUNT=4\nEND:VEVENT\nEND:VCALENDAR\n"
    )
    found = busy_times(text.replace("\n", "\r\n").encode(), NOW, 5, ZoneInfo("UTC"))
    assert [utc(b)[0] for b in found.busy] == [
        "10-23 07:00",
        "10-24 07:00",
        "10-25 08:00",
        "10-26 08:00",
    ]


def test_a_bad_series_is_skipped_and_the_others_kept() -> None:
    body = (
        "BEGIN:VEVENT\nUID:bad\nDTSTART:2026XX22T100000Z\nEND:VEVENT\n"
        "BEGIN:VEVENT\nUID:rule\nDTSTART:20261022T100000Z\nRRULE:FREQ=SOMETIMES\nEND:VEVENT\n"
        "BEGIN:VEVENT\nUID:ok\nDTSTART:20261022T120000Z\nDTEND:20261022T130000Z\nEND:VEVENT\n"
    )
    found = busy_times(ics(body, ""), NOW, 1, BERLIN)
    assert [utc(b) for b in found.busy] == [("10-22 12:00", "10-22 13:00")]
    assert found.skipped == ("2 event series with bad dates or rules",)


def test_the_time_budget_ends_a_long_expansion() -> None:
    ticks = iter(range(0, 1000, 5))  # each look at the clock: 5 s later
    body = "BEGIN:VEVENT\nUID:h\nDTSTART:20261022T000000Z\nDURATION:PT30M\nRRULE:FREQ=HOURLY\nEND:VEVENT\n"
    with pytest.raises(CalendarError, match="took longer than 10 s"):
        busy_times(ics(body, ""), NOW, 3, BERLIN, monotonic=lambda: float(next(ticks)))


@given(st.lists(st.tuples(st.integers(0, 200), st.integers(1, 50)), max_size=40))
def test_merge_covers_the_same_time_with_disjoint_sorted_intervals(
    spans: list[tuple[int, int]],
) -> None:
    intervals = [Busy(float(a), float(a + n)) for a, n in spans]
    merged = merge(intervals)
    assert all(a.end < b.start for a, b in zip(merged, merged[1:], strict=False))
    assert all(b.end > b.start for b in merged)

    def covered(bs: list[Busy]) -> set[int]:
        return {t for b in bs for t in range(int(b.start), int(b.end))}

    assert covered(merged) == covered(intervals)
