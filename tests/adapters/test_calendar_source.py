"""Where the calendar comes from (adapters/calendar/source.py): the WAPA_CALENDAR_ICS parser,
redaction, real files, and real HTTP over httpx with respx at the transport."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import respx
from wapa.adapters.calendar.scan import MAX_BYTES, CalendarError
from wapa.adapters.calendar.source import fetch, location, read_file, redact
from wapa.adapters.variables import ConfigError

TOKEN = "private-3f9a1c0d2b7e4f65a8c9d0e1f2a3b4c5"
URL = f"https://calendar.google.com/calendar/ical/gilad%40example.com/{TOKEN}/basic.ics"
BODY = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"


# ---------------------------------------------------------------- the setting


@pytest.mark.parametrize(
    "value",
    [
        URL,
        "http://localhost:8000/cal.ics",
        "http://127.0.0.1/x.ics",
        "http://[::1]:9/x",
        "/data/cal.ics",
        "cal.ics",
    ],
)
def test_accepted(value: str) -> None:
    assert location(value, "WAPA_CALENDAR_ICS") == value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (
            f"webcal://p01-caldav.icloud.com/published/2/{TOKEN}",
            "write the same address with https://",
        ),
        (
            f"http://calendar.example.com/{TOKEN}.ics",
            "http:// only to this machine (localhost); use https:// for calendar.example.com",
        ),
        ("ftp://example.com/cal.ics", "expected an https:// URL or a file path, got a ftp:// URL"),
        ("file:///data/cal.ics", "give the file's path itself"),
        ("https:///cal.ics", "a URL without a host"),
    ],
)
def test_refused_with_a_clear_error_that_never_echoes_the_token(value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        location(value, "WAPA_CALENDAR_ICS")
    assert str(info.value).startswith("WAPA_CALENDAR_ICS: ") and reason in str(info.value)
    assert TOKEN not in str(info.value)


def test_redact_keeps_scheme_and_host_only() -> None:
    assert redact(URL) == "https://calendar.google.com/…"
    assert redact("http://localhost:8000/x.ics?token=abc") == "http://localhost:8000/…"
    assert redact("/data/cal.ics") == "/data/cal.ics"


# ---------------------------------------------------------------- files


def test_a_real_file(tmp_path: Path) -> None:
    path = tmp_path / "cal.ics"
    path.write_bytes(BODY)
    assert read_file(str(path)) == BODY


def test_file_problems(tmp_path: Path) -> None:
    with pytest.raises(CalendarError, match="cannot read .*missing.ics: No such file"):
        read_file(str(tmp_path / "missing.ics"))
    with pytest.raises(CalendarError, match="is a directory, not a calendar file"):
        read_file(str(tmp_path))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it would block until a writer comes: refused unopened
    with pytest.raises(CalendarError, match=r"is a FIFO \(named pipe\), not a calendar file"):
        read_file(str(fifo))
    big = tmp_path / "big.ics"
    big.write_bytes(b"x" * (MAX_BYTES + 1))
    with pytest.raises(CalendarError, match=f"too big: {MAX_BYTES + 1} bytes"):
        read_file(str(big))


# ---------------------------------------------------------------- HTTP


class Stream(httpx.AsyncByteStream):
    """A response body that arrives piece by piece, without a Content-Length."""

    def __init__(self, pieces: AsyncIterator[bytes]) -> None:
        self.pieces = pieces

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for piece in self.pieces:
            yield piece


async def get(url: str = URL, timeout: float = 20.0) -> bytes:
    async with httpx.AsyncClient() as client:
        return await fetch(client, url, timeout)


async def failure(url: str = URL, timeout: float = 20.0) -> str:
    with pytest.raises(CalendarError) as info:
        await get(url, timeout)
    assert TOKEN not in str(info.value)
    return str(info.value)


@respx.mock
async def test_200() -> None:
    route = respx.get(URL).respond(200, content=BODY, headers={"Content-Type": "text/calendar"})
    assert await get() == BODY
    assert route.calls.last.request.headers["accept"].startswith("text/calendar")


@respx.mock
async def test_gzip_body_is_decoded() -> None:
    import gzip

    respx.get(URL).respond(200, content=gzip.compress(BODY), headers={"Content-Encoding": "gzip"})
    assert await get() == BODY


@respx.mock
async def test_a_gzip_bomb_is_refused_without_inflating_it() -> None:
    import gzip
    import tracemalloc

    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))  # 64 MiB of zeros in ~64 KiB

    async def pieces() -> AsyncIterator[bytes]:  # as a server sends it: compressed, in chunks
        for i in range(0, len(bomb), 16384):
            yield bomb[i : i + 16384]

    respx.get(URL).respond(200, stream=Stream(pieces()), headers={"Content-Encoding": "gzip"})
    tracemalloc.start()
    try:
        assert await failure() == f"too big: more than {MAX_BYTES} bytes"
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * MAX_BYTES

    async def once(body: bytes) -> AsyncIterator[bytes]:
        yield body

    damaged = Stream(once(b"not gzip at all"))
    respx.get(URL).respond(200, stream=damaged, headers={"Content-Encoding": "gzip"})
    assert await failure() == "a damaged gzip body"
    respx.get(URL).respond(200, stream=Stream(once(BODY)), headers={"Content-Encoding": "br"})
    assert await failure() == "unsupported Content-Encoding 'br'"


@respx.mock
async def test_http_errors() -> None:
    respx.get(URL).respond(404, text="Not Found")
    assert await failure() == "HTTP 404"
    respx.get(URL).respond(500)
    assert await failure() == "HTTP 500"


@respx.mock
async def test_timeouts() -> None:
    respx.get(URL).mock(side_effect=httpx.ConnectTimeout("timed out"))
    assert await failure() == "timeout after 20 s"
    respx.get(URL).mock(side_effect=httpx.ConnectError("[Errno -2] Name or service not known"))
    assert await failure() == "cannot connect: [Errno -2] Name or service not known"
    respx.get(URL).mock(side_effect=httpx.ConnectError(f"cannot reach {URL}"))
    assert await failure() == "cannot connect"  # a message quoting the URL is not shown
    respx.get(URL).mock(side_effect=httpx.RemoteProtocolError("Server disconnected"))
    assert await failure() == "cannot fetch (RemoteProtocolError)"


@respx.mock
async def test_a_body_that_never_ends_is_cut_off_by_the_whole_timeout() -> None:
    never = asyncio.Event()

    async def trickle() -> AsyncIterator[bytes]:
        yield b"BEGIN:VCALENDAR\r\n"
        await never.wait()  # each read would be within httpx's read timeout; the whole is not
        yield b""

    respx.get(URL).respond(200, stream=Stream(trickle()))
    assert await failure(timeout=0.05) == "timeout after 0.05 s"


@respx.mock
async def test_oversize() -> None:
    respx.get(URL).respond(200, content=b"x" * (MAX_BYTES + 1))
    assert await failure() == f"too big: {MAX_BYTES + 1} bytes, at most {MAX_BYTES}"

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(MAX_BYTES // 65536 + 2):
            yield b"x" * 65536

    respx.get(URL).respond(200, stream=Stream(endless()))  # no Content-Length: counted while read
    assert await failure() == f"too big: more than {MAX_BYTES} bytes"


@respx.mock
async def test_redirects() -> None:
    moved = "https://calendar.example.net/feeds/other.ics"
    respx.get(URL).respond(301, headers={"Location": moved})
    respx.get(moved).respond(200, content=BODY)
    assert await get() == BODY

    respx.get(URL).respond(302, headers={"Location": "http://calendar.example.net/plain.ics"})
    assert "redirected to a URL that is refused: http:// only to this machine" in await failure()

    respx.get(URL).respond(302, headers={"Location": URL})
    assert await failure() == "more than 5 redirects"

    respx.get(URL).respond(302)
    assert await failure() == "HTTP 302 without a Location"
