"""The calendar refresh task: the owner's busy times from `WAPA_CALENDAR_ICS`, fed to the core.

Started by the runner once it is running (`calendar_task`), so a slow or dead calendar never
delays the start or an answer: the first fetch begins at once, in the background. Then, every
`WAPA_CALENDAR_REFRESH` (15 min):

1. load the bytes: a file (read in a worker thread) or an https URL (httpx; at most 5 MiB,
   streamed; `WAPA_CALENDAR_TIMEOUT` for the whole exchange; redirects checked);
2. in a worker thread (`asyncio.to_thread`: the event loop never parses), scan, parse and expand
   them into busy intervals for [now, now + `calendar_days`] (adapters/calendar/expand.py),
   floating times and all-day events in the owner's time zone (`Policy.local_zone()`), titles
   only with `calendar_details: titles`;
3. put one `CalendarUpdate` in the runner's queue: `busy=...` after a good load, or
   `error="<short reason>"` after a failed one. The core keeps the last good busy times on an
   error and shows the error in `status` (core/calendar.py): the runner only reports.

Logs: `calendar_updated` (intervals, events, how long) or `calendar_failed` (the reason), with
the source redacted (a URL's scheme and host: calendar URLs carry a private token in the path
or query). Event titles and attendees never reach a log: the scan drops attendees before
parsing, and titles travel only inside the event, to the core.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx
from wapa.adapters.calendar.expand import Expansion, busy_times
from wapa.adapters.calendar.scan import CalendarError
from wapa.adapters.calendar.source import fetch, is_url, read_file, redact
from wapa.adapters.logs import log_event
from wapa.core import Policy
from wapa.core.events import BusyInterval, CalendarUpdate

if TYPE_CHECKING:
    from wapa.runner import Runner

__all__ = ["CalendarRefresher", "calendar_task"]

log = logging.getLogger("wapa.calendar")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
Deliver = Callable[[CalendarUpdate], None]
_ERROR_CHARS = 120


class CalendarRefresher:
    """Loads the calendar every `refresh` seconds and delivers a `CalendarUpdate` each time."""

    def __init__(
        self,
        source: str,
        deliver: Deliver,
        policy: Policy,
        *,
        refresh: float = 900.0,
        timeout: float = 20.0,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.source, self.deliver, self.policy = source, deliver, policy
        self.refresh_s, self.timeout = refresh, timeout
        self.clock, self.sleep = clock, sleep
        self._transport = transport  # tests: respx or a MockTransport at the transport
        self.where = redact(source)
        self.updates = 0  # good loads
        self.failures = 0

    async def run(self) -> None:
        """Refresh now, then every `refresh` seconds, until cancelled. Never raises otherwise."""
        async with httpx.AsyncClient(transport=self._transport) as client:
            while True:
                await self.refresh(client)
                await self.sleep(self.refresh_s)

    async def refresh(self, client: httpx.AsyncClient | None = None) -> CalendarUpdate:
        """Load, expand and deliver once; returns the update delivered."""
        began = time.perf_counter()
        now = self.clock()
        try:
            update, expansion = await self._load(client, now)
        except CalendarError as exc:
            update = CalendarUpdate((), error=_short(str(exc), self.source))
            self.failures += 1
            log_event(
                log, logging.WARNING, "calendar_failed", source=self.where, error=update.error
            )
        except Exception as exc:  # a bug or a library surprise: reported, never the task's end
            update = CalendarUpdate((), error=f"unexpected error ({type(exc).__name__})")
            self.failures += 1
            log_event(log, logging.ERROR, "calendar_failed", source=self.where, error=update.error)
        else:
            self.updates += 1
            log_event(
                log,
                logging.INFO,
                "calendar_updated",
                source=self.where,
                intervals=len(update.busy),
                events=expansion.events,
                occurrences=expansion.occurrences,
                skipped=list(expansion.skipped)[:5],
                truncated=expansion.truncated,
                seconds=round(time.perf_counter() - began, 3),
            )
        self.deliver(update)
        return update

    async def _load(
        self, client: httpx.AsyncClient | None, now: float
    ) -> tuple[CalendarUpdate, Expansion]:
        if is_url(self.source):
            if client is None:
                async with httpx.AsyncClient(transport=self._transport) as own:
                    data = await fetch(own, self.source, self.timeout)
            else:
                data = await fetch(client, self.source, self.timeout)
        else:
            data = await asyncio.to_thread(read_file, self.source)
        policy = self.policy
        titles = policy.calendar_details == "titles"
        zone = policy.local_zone()  # floating times and all-day events are placed in it
        expansion = await asyncio.to_thread(
            busy_times, data, now, float(policy.calendar_days), zone, titles=titles
        )
        busy = tuple(BusyInterval(b.start, b.end, b.title) for b in expansion.busy)
        return CalendarUpdate(busy), expansion


def _short(error: str, source: str) -> str:
    """The error as the core and the log get it: one line, bounded, never the URL."""
    if is_url(source):
        error = error.replace(source, redact(source))
    return " ".join(error.split())[:_ERROR_CHARS]


def calendar_task(runner: Runner) -> asyncio.Task[Any]:
    """The refresh task for a running runner: updates go into its queue like messages, under a
    correlation id of their own; the runner cancels the task when it stops."""
    s = runner.settings
    world = runner.world

    def deliver(update: CalendarUpdate) -> None:
        world.enqueue(update, world.corr.new())

    refresher = CalendarRefresher(
        s.calendar_ics,
        deliver,
        s.policy,
        refresh=s.calendar_refresh,
        timeout=s.calendar_timeout,
        clock=runner.clock,
        sleep=runner.sleep,
    )
    log_event(log, logging.INFO, "calendar_started", source=refresher.where)
    return asyncio.create_task(refresher.run(), name="calendar")
