"""The calendar end to end in the runner: WAPA_CALENDAR_ICS set, the first load starts in the
background once the runner runs, its CalendarUpdate goes through the queue and the commit to
the core, and the next prompt knows the owner's busy times. A calendar that never answers
delays neither the start nor a reply."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.app.test_runner_inprocess import Harness
from tests.support.runner import contact, until

# The harness clock starts at 1_700_000_000: Tuesday 14 November 2023, 22:13 UTC.
ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//wapa tests//EN\r\n"
    "BEGIN:VEVENT\r\nUID:a@example.com\r\nDTSTART:20231115T090000Z\r\n"
    "DTEND:20231115T110000Z\r\nSUMMARY:Board meeting\r\nEND:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)


def committed_events(h: Harness) -> list[str]:
    return [name for j in h.journal if j[0] == "commit" for name in j[2]]


async def test_the_busy_times_reach_the_core_and_the_prompt(tmp_path: Path) -> None:
    path = tmp_path / "cal.ics"
    path.write_text(ICS)
    h = Harness(tmp_path, {"WAPA_CALENDAR_ICS": str(path)})
    runner = await h.start()
    await until(lambda: "CalendarUpdate" in committed_events(h))
    assert runner.assistant is not None
    assert "calendar" in runner.assistant.status(h.clock()).casefold()
    await h.transport.deliver(contact("is he free tomorrow morning?"))
    await h.clock.advance(runner=h.runner, seconds=15)
    (call,) = h.model.calls
    system = call[0].content
    assert "tomorrow (Wed 15 Nov): busy 09:00-11:00, free otherwise" in system, system
    assert "Board meeting" not in " ".join(m.content for m in call)  # titles not allowed
    assert await h.stop() == 0


async def test_a_calendar_that_never_answers_delays_nothing(tmp_path: Path) -> None:
    """A real local server that accepts the connection and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # read nothing, answer nothing

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    h = Harness(tmp_path, {"WAPA_CALENDAR_ICS": f"http://127.0.0.1:{port}/private-x/basic.ics"})
    try:
        await h.start()
        await until(lambda: bool(held))  # the first load is under way...
        await h.transport.deliver(contact("hello?"))
        await h.clock.advance(runner=h.runner, seconds=15)
        assert [s[1] for s in h.transport.sent] == ["Thanks, I will pass it on."]  # ...no matter
        assert "CalendarUpdate" not in committed_events(h)
        assert await h.stop() == 0  # and the shutdown does not wait for it either
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
