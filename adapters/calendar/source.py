"""Where the calendar comes from: `WAPA_CALENDAR_ICS`, a file path or an https URL.

- `location(value, name)` is the configuration parser: an `https://` URL, an `http://` URL
  only to this machine (localhost, 127.0.0.1, ::1: a local proxy or test server; anything else
  would send the calendar's private token in clear), or a path. `webcal://` (what calendar apps
  hand out) is refused with the https URL to use instead; other schemes are refused.
- `redact(location)` is what logs and errors show: a URL's scheme and host only. Calendar
  URLs carry their secret in the path or the query (Google's `private-<token>/basic.ics`,
  iCloud's, Outlook's); a file path is shown as it is.
- `read_file(path)` reads a regular file (a FIFO or a device is refused unopened: it could
  block forever), at most `MAX_BYTES`.
- `fetch(client, url, timeout)` GETs the URL with httpx: at most `MAX_REDIRECTS` redirects,
  each checked like the configured URL (an https feed never redirects to plain http); the
  body streamed and refused beyond `MAX_BYTES` (Content-Length is checked before reading;
  gzip and deflate are inflated here, piece by piece, never past the limit);
  the whole exchange within `timeout` seconds (a server that trickles one byte a second is cut
  off too). Errors are `CalendarError` with a short reason: "timeout after 20 s", "HTTP 404",
  "too big: more than 5242880 bytes", "cannot connect: [Errno 111] Connection refused". They
  never hold the URL.
"""

from __future__ import annotations

import asyncio
import os
import zlib
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from wapa.adapters.calendar.scan import MAX_BYTES, CalendarError
from wapa.adapters.filemodes import not_regular
from wapa.adapters.variables import ConfigError, text

__all__ = ["MAX_REDIRECTS", "fetch", "is_url", "location", "read_file", "redact"]

MAX_REDIRECTS = 5
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def is_url(value: str) -> bool:
    return "://" in value


def location(value: Any, name: str) -> str:
    """The configuration parser of WAPA_CALENDAR_ICS (never echoes a URL: it holds a token)."""
    raw = text(value, name)
    if not raw:
        return raw
    if not is_url(raw):
        if "\x00" in raw:
            raise ConfigError(f"{name}: a path with a NUL character")
        return raw
    problem = _url_problem(raw)
    if problem:
        raise ConfigError(f"{name}: {problem}")
    return raw


def _url_problem(url: str) -> str:
    """Why `url` may not be fetched, or ""."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return "not a valid URL"
    scheme = parts.scheme.lower()
    if scheme == "webcal":
        return "webcal:// is what calendar apps show; write the same address with https://"
    if scheme == "file":
        return "give the file's path itself, not a file:// URL"
    if scheme not in ("http", "https"):
        return f"expected an https:// URL or a file path, got a {scheme}:// URL"
    if not host:
        return "a URL without a host"
    if scheme == "http" and host not in _LOCAL_HOSTS:
        return f"http:// only to this machine (localhost); use https:// for {host}"
    return ""


def redact(value: str) -> str:
    """What logs show of a location: a URL's scheme and host (its path and query may hold a
    private token), a path as it is."""
    if not is_url(value):
        return value
    try:
        parts = urlsplit(value)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(a URL)"
    return f"{parts.scheme}://{host}{port}/…"


def read_file(path: str) -> bytes:
    """The file's bytes (blocking: call it in a worker thread). Raises `CalendarError`."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise CalendarError(f"cannot read {path}: {exc.strerror or exc}") from None
    kind = not_regular(st.st_mode)
    if kind:
        raise CalendarError(f"{path} is {kind}, not a calendar file")
    if st.st_size > MAX_BYTES:
        raise CalendarError(f"too big: {st.st_size} bytes, at most {MAX_BYTES}")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise CalendarError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:  # it grew since stat
        raise CalendarError(f"too big: more than {MAX_BYTES} bytes")
    return data


async def fetch(client: httpx.AsyncClient, url: str, timeout: float) -> bytes:
    """The body of `url` (200 only). Raises `CalendarError`; never says the URL."""
    try:
        async with asyncio.timeout(timeout):
            return await _fetch(client, url, timeout)
    except TimeoutError:
        raise CalendarError(f"timeout after {timeout:g} s") from None
    except httpx.TimeoutException:
        raise CalendarError(f"timeout after {timeout:g} s") from None
    except httpx.ConnectError as exc:  # the OS's reason: refused, unknown host, TLS
        reason = " ".join(str(exc).split())
        safe = reason and "://" not in reason and all(p not in reason for p in _secrets(url))
        raise CalendarError(
            f"cannot connect: {reason[:80]}" if safe else "cannot connect"
        ) from None
    except httpx.HTTPError as exc:
        raise CalendarError(f"cannot fetch ({type(exc).__name__})") from None


def _secrets(url: str) -> list[str]:
    """The parts of a URL that may hold a token: an error quoting any of them is not shown."""
    parts = urlsplit(url)
    return [x for x in (url, parts.path.strip("/"), parts.query) if x]


async def _fetch(client: httpx.AsyncClient, url: str, timeout: float) -> bytes:
    for _ in range(MAX_REDIRECTS + 1):
        problem = _url_problem(url)
        if problem:
            raise CalendarError(f"redirected to a URL that is refused: {problem}")
        async with client.stream(
            "GET",
            url,
            timeout=timeout,
            follow_redirects=False,
            headers={"Accept": "text/calendar, */*;q=0.5", "Accept-Encoding": "gzip, deflate"},
        ) as response:
            if response.is_redirect:
                target = response.headers.get("location", "")
                if not target:
                    raise CalendarError(f"HTTP {response.status_code} without a Location")
                url = urljoin(url, target)
                continue
            if response.status_code != 200:
                raise CalendarError(f"HTTP {response.status_code}")
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > MAX_BYTES:
                raise CalendarError(f"too big: {length} bytes, at most {MAX_BYTES}")
            return await _body(response)
    raise CalendarError(f"more than {MAX_REDIRECTS} redirects")


async def _body(response: httpx.Response) -> bytes:
    """The body, decompressed by us (gzip, deflate) so that no piece ever grows past the
    limit: httpx would inflate a whole network chunk at once (a 64 KiB gzip bomb is 64 MiB)."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        inflate = None
    elif encoding in ("gzip", "x-gzip", "deflate"):
        inflate = zlib.decompressobj(47 if encoding != "deflate" else 15)  # 47: gzip or zlib
    else:
        raise CalendarError(f"unsupported Content-Encoding {encoding[:20]!r}")
    out = bytearray()
    try:
        async for raw in response.aiter_raw():
            if inflate is None:
                out += raw
            else:
                data = raw
                while data and len(out) <= MAX_BYTES:
                    out += inflate.decompress(data, MAX_BYTES + 1 - len(out))
                    data = inflate.unconsumed_tail
            if len(out) > MAX_BYTES:
                raise CalendarError(f"too big: more than {MAX_BYTES} bytes")
    except zlib.error:
        raise CalendarError(f"a damaged {encoding} body") from None
    return bytes(out)
