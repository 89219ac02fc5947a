"""The calendar refresh task (app/calendar.py) with an injected clock: a good load delivers a
CalendarUpdate with busy intervals, a failed one an error; the URL's token and the events'
titles and attendees never reach a log line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import respx
from wapa.adapters.logs import setup_logging
from wapa.calendar import CalendarRefresher
from wapa.config import load_settings
from wapa.core import Policy
from wapa.core.events import BusyInterval, CalendarUpdate

from tests.adapters.test_calendar_expand import EVENTS, NOW, ics
from tests.support.runner import ManualClock, settle, until

TOKEN = "private-3f9a1c0d2b7e4f65a8c9d0e1f2a3b4c5"
URL = f"https://calendar.google.com/calendar/ical/gilad%40example.com/{TOKEN}/basic.ics"
BERLIN_POLICY = Policy.from_mapping({"digest_tz": "Europe/Berlin", "calendar_days": 10})


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Every log line as `wapa run` writes it (JSON, redacted, libraries at WARNING)."""
    stream = io.StringIO()
    setup_logging("DEBUG", stream=stream)
    yield stream
    logging.getLogger().handlers.clear()


async def jump(clock: ManualClock, seconds: float) -> None:
    """Move the clock at once; whatever sleeps until then wakes (`sleep(0)` wakes the due)."""
    clock.t += seconds
    await clock.sleep(0)


def hours(update: CalendarUpdate) -> list[tuple[str, str, str]]:
    def fmt(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).strftime("%m-%d %H:%M")

    return [(fmt(b.start), fmt(b.end), b.title) for b in update.busy]


def refresher(
    source: str, delivered: list[CalendarUpdate], policy: Policy = BERLIN_POLICY, **kw: object
) -> CalendarRefresher:
    clock = ManualClock(NOW)
    return CalendarRefresher(
        source,
        delivered.append,
        policy,
        clock=clock,
        sleep=clock.sleep,
        **kw,  # type: ignore[arg-type]
    )


async def test_a_good_file_delivers_busy_intervals(tmp_path: Path, log_lines: io.StringIO) -> None:
    path = tmp_path / "cal.ics"
    path.write_bytes(ics(EVENTS))
    delivered: list[CalendarUpdate] = []
    update = await refresher(str(path), delivered).refresh()
    assert delivered == [update] and update.error == ""
    assert all(isinstance(b, BusyInterval) for b in update.busy)
    assert hours(update) == [
        ("10-23 07:00", "10-23 08:00", ""),
        ("10-26 08:00", "10-26 09:00", ""),
        ("10-27 23:00", "10-28 23:00", ""),  # the all-day event, a Berlin day
        ("10-29 14:00", "10-29 15:00", ""),  # floating 15:00, in Berlin
    ]
    (line,) = [json.loads(x) for x in log_lines.getvalue().splitlines() if "calendar_" in x]
    assert line["event"] == "calendar_updated" and line["intervals"] == 4
    assert line["events"] == 5 and line["source"] == str(path)
    for private in ("Standup", "Dentist", "Offsite", "dana@example.com", "Dana Levi", "555 1234"):
        assert private not in log_lines.getvalue()


async def test_titles_only_when_the_policy_allows(tmp_path: Path) -> None:
    path = tmp_path / "cal.ics"
    path.write_bytes(ics(EVENTS))
    titles = replace(BERLIN_POLICY, calendar_details="titles")
    update = await refresher(str(path), [], titles).refresh()
    assert [b.title for b in update.busy] == ["Standup", "Standup", "Offsite", "Dentist"]


@respx.mock
async def test_a_failed_fetch_delivers_an_error_and_never_logs_the_token(
    log_lines: io.StringIO,
) -> None:
    delivered: list[CalendarUpdate] = []
    r = refresher(URL, delivered)
    respx.get(URL).respond(404)
    await r.refresh()
    respx.get(URL).mock(side_effect=httpx.ReadTimeout("timed out"))
    await r.refresh()
    respx.get(URL).respond(200, content=b"<html>Sign in to Google</html>")
    await r.refresh()
    assert delivered == [
        CalendarUpdate((), error="HTTP 404"),
        CalendarUpdate((), error="timeout after 20 s"),
        CalendarUpdate((), error="not an iCalendar file (it does not begin with BEGIN:VCALENDAR)"),
    ]
    text = log_lines.getvalue()
    lines = [json.loads(x) for x in text.splitlines()]
    failed = [x for x in lines if x["event"] == "calendar_failed"]
    assert [x["error"] for x in failed] == [u.error for u in delivered]
    assert {x["source"] for x in failed} == {"https://calendar.google.com/…"}
    assert TOKEN not in text and "gilad%40example.com" not in text
    assert r.failures == 3 and r.updates == 0


@respx.mock
async def test_a_good_url_then_a_broken_body() -> None:
    delivered: list[CalendarUpdate] = []
    r = refresher(URL, delivered)
    respx.get(URL).respond(200, content=ics(EVENTS), headers={"Content-Type": "text/calendar"})
    assert len((await r.refresh()).busy) == 4
    respx.get(URL).respond(200, content=ics(EVENTS)[:500])  # cut short
    bad = await r.refresh()
    assert bad.busy == () and bad.error.startswith("ends inside BEGIN:")


async def test_the_loop_refreshes_on_its_schedule_without_real_sleeps(tmp_path: Path) -> None:
    """First load at once; then every refresh period on the injected clock; a broken file in
    between is an error update, and the next good one replaces it."""
    path = tmp_path / "cal.ics"
    path.write_bytes(ics(EVENTS))
    clock = ManualClock(NOW)
    delivered: list[CalendarUpdate] = []
    r = CalendarRefresher(
        str(path), delivered.append, BERLIN_POLICY, refresh=900, clock=clock, sleep=clock.sleep
    )
    task = asyncio.create_task(r.run())
    try:
        await until(lambda: len(delivered) == 1)  # the first load needs no time to pass
        assert len(delivered[0].busy) == 4
        path.write_bytes(b"\x00\x01binary")
        await jump(clock, 899)
        await settle()
        assert len(delivered) == 1  # not before the period
        await jump(clock, 1)
        await until(lambda: len(delivered) == 2)
        assert delivered[1] == CalendarUpdate(
            (), error="line 1: control characters: not an iCalendar file"
        )
        path.write_bytes(ics(EVENTS))
        await jump(clock, 900)
        await until(lambda: len(delivered) == 3)
        assert delivered[2].error == "" and len(delivered[2].busy) == 4
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_missing_file_is_an_error_update(tmp_path: Path) -> None:
    delivered: list[CalendarUpdate] = []
    r = refresher(str(tmp_path / "missing.ics"), delivered)
    update = await r.refresh()
    assert update.error.startswith("cannot read ") and "No such file" in update.error


def test_settings_reach_the_refresher() -> None:
    s = load_settings(
        {"WAPA_CALENDAR_ICS": URL, "WAPA_CALENDAR_REFRESH": "5m", "WAPA_CALENDAR_TIMEOUT": "7s"}
    )
    assert (s.calendar_ics, s.calendar_refresh, s.calendar_timeout) == (URL, 300.0, 7.0)
    assert TOKEN not in repr(s)  # a traceback or a debug print of the settings keeps it
