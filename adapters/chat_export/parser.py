"""WhatsApp export text -> a list of authored messages, with system lines counted and skipped.

`parse_export(text, source)` recognises the line format (see formats.py), merges multi-line
messages, drops system lines (no author, or iOS's "‎"-prefixed notices), and marks media and
deleted messages. Anything it cannot read raises `ExportError` naming `source:line` and
quoting the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from wapa.adapters.chat_export import media
from wapa.adapters.chat_export.formats import (
    HEADER,
    INVISIBLE,
    DateError,
    LineFormat,
    date_order,
    timestamp,
)

_NAME_JUNK = INVISIBLE + "\u202f\u00a0~ "
_MAX_NAME = 80
_QUOTE_CHARS = '"“”«»„'
# System lines that only happen in groups: with one, a chat with a single other author is a group.
_GROUP_NOTICE = re.compile(
    r"(?:created group|\badded\b|\bremoved\b|\bleft$|changed the subject|changed this group|"
    r"hat die gruppe|hinzugefügt|creó el grupo|criou o grupo|a créé le groupe)",
    re.IGNORECASE,
)


class ExportError(ValueError):
    """The file is not a WhatsApp chat export we can read; the message says where and why."""


@dataclass(frozen=True, slots=True)
class ExportMessage:
    when: datetime  # local time, as written in the file
    author: str
    text: str
    media: str  # one of core.events.MEDIA_KINDS or ""
    line: int


@dataclass(slots=True)
class ParsedExport:
    messages: list[ExportMessage] = field(default_factory=list)
    system_skipped: int = 0
    deleted: int = 0
    group_notices: int = 0
    format: str = ""
    date_order: str = ""

    @property
    def participants(self) -> list[str]:
        return list(dict.fromkeys(m.author for m in self.messages))


def _quote(line: str, limit: int = 80) -> str:
    return repr(line if len(line) <= limit else line[:limit] + "…")


def clean_name(name: str) -> str:
    return name.strip(_NAME_JUNK).replace("\u202f", " ").replace("\u00a0", " ")


def _split_author(rest: str) -> tuple[str, str] | None:
    """("author", "text") for a message, None for a system line (no author)."""
    author, sep, text = rest.partition(": ")
    if not sep:
        if rest.endswith(":") and "\n" not in rest:  # "Name:" with an empty first line
            author, text = rest[:-1], ""
        else:
            return None
    author = clean_name(author)
    if not author or len(author) > _MAX_NAME or "\n" in author:
        return None
    if any(q in author for q in _QUOTE_CHARS):
        return None
    return author, text


def parse_export(text: str, source: str = "chat") -> ParsedExport:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    fmt: LineFormat | None = None
    heads: list[tuple[int, re.Match[str], list[str]]] = []  # (line number, header, more lines)
    for number, line in enumerate(lines, 1):
        m = HEADER.match(line)
        if m is not None and fmt is None:
            fmt = LineFormat.of(m)
        if m is not None and fmt is not None and fmt.matches(m):
            heads.append((number, m, []))
        elif heads:
            heads[-1][2].append(line)
        elif line.strip(INVISIBLE + " \t"):
            raise ExportError(
                f"{source}:{number}: not a WhatsApp chat export line "
                f"(expected a date, a time and a name): {_quote(line)}"
            )
    if fmt is None or not heads:
        raise ExportError(f"{source}: no messages found (the file is empty)")
    try:
        day_first, order = date_order([m for _, m, _ in heads])
    except DateError as exc:
        raise ExportError(f"{source}: {exc}") from exc
    out = ParsedExport(format=fmt.describe(day_first), date_order=order)
    for number, m, more in heads:
        try:
            when = timestamp(m, day_first)
        except DateError as exc:
            raise ExportError(
                f"{source}:{number}: bad date or time ({exc}): {_quote(lines[number - 1])}"
            ) from exc
        authored = _split_author(m.group("rest"))
        if authored is None:
            out.system_skipped += 1
            out.group_notices += bool(_GROUP_NOTICE.search(m.group("rest")))
            continue
        author, first = authored
        body = "\n".join([first, *more]).rstrip("\n")
        if first.startswith("\u200e") or first.startswith("\u200f"):
            kind, caption = media.media_kind(first.strip(INVISIBLE))
            if not kind:  # iOS notices: "‎Alice added Bob", "‎Messages and calls are ..."
                out.system_skipped += 1
                out.group_notices += bool(_GROUP_NOTICE.search(first))
                continue
        else:
            kind, caption = media.media_kind(first)
        body = body.strip(INVISIBLE)
        if kind:
            body = "\n".join([caption, *more]).strip()
        body = media.strip_edited(body)
        if media.is_deleted(body.strip(INVISIBLE)):
            out.deleted += 1
            continue
        out.messages.append(ExportMessage(when, author, body, kind, number))
    if not out.messages:
        raise ExportError(
            f"{source}: no messages with an author (only {out.system_skipped} system lines)"
        )
    return out
