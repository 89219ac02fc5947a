"""WhatsApp export text -> authored messages, with system lines, notices and bad lines counted.

`scan_export(lines, source)` reads a file twice, as a stream (memory stays bounded whatever its
size): the first pass finds the line format, the date order and the authors; the second yields
`ExportMessage`s. `count_export` runs both passes to complete every count without keeping a
message, then gives the messages again as a third pass (`wapa import-export` streams it into the
recording). `parse_export(text, source)` does both on a string and keeps the messages.

What is not a message, and why, is counted (`ParsedExport.skipped`): system lines without an
author, authored notices (missed calls, "Waiting for this message", disappearing-message
settings, the encryption notice an iPhone writes under the contact's or the group's name),
deleted-message placeholders, and lines that cannot be read (undated lines before the first
message, a date that does not exist). Only a file with nothing importable is an error, naming
`source:line` and quoting the line.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from wapa.adapters.chat_export import media
from wapa.adapters.chat_export.formats import (
    INVISIBLE,
    DateError,
    DateOrder,
    Header,
    LineFormat,
    match_header,
    timestamp,
    written_year,
)

_NAME_JUNK = INVISIBLE + "\u202f\u00a0~ "
_MAX_NAME = 80
MAX_AUTHORS = 5000
MAX_MESSAGE_CHARS = 64 * 1024
MAX_REPORTED = 20  # skipped lines kept with their line numbers (the rest are only counted)
# System lines that only happen in groups: with one, a chat with a single other author is a group.
_GROUP_NOTICE = re.compile(
    r"(?:created group|\badded\b|\bremoved\b|\bleft$|changed the subject|changed this group|"
    r"changed the group|joined using|hat die gruppe|hinzugefügt|creó el grupo|criou o grupo|"
    r"a créé le groupe|создал|ha creato il gruppo)",
    re.IGNORECASE,
)
_ENCRYPTION = re.compile(r"WhatsApp|end-to-end|encrypt|\bE2EE\b", re.IGNORECASE)
# Old Android exports (2013-14) wrote a group's events under the exporter's own name, at the
# time the phone learnt of them (often before the messages that follow): "Tanay: Viresh changed
# the subject to “NITGians”", "Tanay: ‪+91 94 20 027143‬ joined", "Tanay: Prabhav was removed".
_WHO = r"\u202a?\+[\d ()\-]{6,}\u202c?|You|[^\W\d_][\w.'\-]*(?: [\w.'\-]+){0,3}"
_AUTHORED_EVENT = re.compile(
    rf"^(?P<who>{_WHO}) (?:joined|left|was removed|(?P<subject>changed the subject to “.*”)|"
    rf"changed (?:this group's|the group) icon|(?:removed|added) (?P<whom>{_WHO}))$",
    re.DOTALL,
)
EVENT_WRITER_LINES = 3  # an author with this many such lines writes events, not messages


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
    authors: list[str] = field(default_factory=list)
    system_skipped: int = 0
    notices: int = 0
    deleted: int = 0
    group_notices: int = 0
    format: str = ""
    date_order: str = ""
    day_first: bool = True
    media: Counter[str] = field(default_factory=Counter)
    count: int = 0
    first: datetime | None = None
    last: datetime | None = None
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> lines
    skipped_lines: list[tuple[int, str]] = field(default_factory=list)  # (line, reason), first few

    @property
    def participants(self) -> list[str]:
        return list(self.authors)

    def skip(self, number: int, reason: str) -> None:
        self.skipped[reason] += 1
        if len(self.skipped_lines) < MAX_REPORTED:
            self.skipped_lines.append((number, reason))


def _quote(line: str, limit: int = 80) -> str:
    return repr(line if len(line) <= limit else line[:limit] + "…")


_DROP_INVISIBLE = {ord(c): None for c in INVISIBLE}


def clean_name(name: str) -> str:
    cleaned = name.strip(_NAME_JUNK).replace("\u202f", " ").replace("\u00a0", " ")
    return cleaned.translate(_DROP_INVISIBLE)


def _split_author(rest: str) -> tuple[str, str] | None:
    """("author", "text") for a message, None for a system line (no author)."""
    author, sep, text = rest.partition(": ")
    if not sep:
        if rest.rstrip().endswith(":") and "\n" not in rest:  # "Name:" with an empty first line
            author, text = rest.rstrip()[:-1], ""
        else:
            return None
    author = clean_name(author)
    if not author or len(author) > _MAX_NAME or "\n" in author:
        return None
    return author, text


LineSource = Callable[[], Iterable[str]]


@dataclass(slots=True)
class _Entry:
    number: int
    header: Header
    author: str
    first: str  # the first line's text
    marked: bool  # the text starts with an invisible mark (iPhone notices and media)


def _entries(
    lines: Iterable[str], fmt_box: list[LineFormat], out: ParsedExport, source: str
) -> Iterator[tuple[_Entry, list[str]]]:
    """(entry, continuation lines) per header, in file order; a system line's author is ""."""
    fmt = fmt_box[0] if fmt_box else None
    current: tuple[_Entry, list[str], int] | None = None
    leading: tuple[int, str] | None = None
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        h = match_header(line)
        if h is not None and fmt is None:
            fmt = LineFormat.of(h)
            fmt_box.append(fmt)
        if h is not None and fmt is not None and fmt.matches(h):
            if current is not None:
                yield current[0], current[1]
            authored = _split_author(h.rest)
            if authored is None:  # a system line: counted, dated (for the date order), no message
                out.system_skipped += 1
                out.group_notices += bool(_GROUP_NOTICE.search(h.rest))
                author, first = "", h.rest
            else:
                author, first = authored
            entry = _Entry(number, h, author, first, first[:1] in INVISIBLE and first[:1] != "")
            current = (entry, [], 0)
        elif current is not None:
            more, size = current[1], current[2] + len(line)
            if size <= MAX_MESSAGE_CHARS:
                more.append(line)
            elif current[2] <= MAX_MESSAGE_CHARS:
                out.skip(number, "message longer than 64 KiB (cut)")
            current = (current[0], more, size)
        elif line.strip(INVISIBLE + " \t"):
            if leading is None:
                leading = (number, line)
            out.skip(number, "text before the first dated line")
    if current is not None:
        yield current[0], current[1]
    if fmt is None:
        if leading is not None:
            number, line = leading
            raise ExportError(
                f"{source}:{number}: not a WhatsApp chat export line "
                f"(expected a date, a time and a name): {_quote(line)}"
            )
        raise ExportError(f"{source}: no messages found (the file is empty)")


def _is_notice_author_line(e: _Entry) -> bool:
    """An iPhone line that is a notice in an author's name (the encryption notice, group events)."""
    if not e.marked:
        return False
    text = e.first.strip(INVISIBLE + " ")
    kind, _ = media.media_kind(text)
    return not kind


def _scan(
    source_lines: LineSource, source: str
) -> tuple[
    ParsedExport, Callable[[], Iterator[ExportMessage]], Callable[[], Iterator[ExportMessage]]
]:
    """The first pass now; then message passes that count into `out`, or into nothing."""
    out = ParsedExport()
    fmt_box: list[LineFormat] = []
    order = DateOrder()
    authors: Counter[str] = Counter()
    notice_only: dict[str, bool] = {}
    noticed: set[str] = set()
    events_by: Counter[str] = Counter()  # old Android group events written under an author
    first_number = 0
    last_year = 0
    for entry, more in _entries(source_lines(), fmt_box, out, source):
        order.add(entry.header)
        last_year = max(last_year, written_year(entry.header) or 0)
        if not entry.author:
            continue
        if not more and is_authored_event(entry.first):
            events_by[entry.author] += 1
        if entry.author not in authors and len(authors) >= MAX_AUTHORS:
            raise ExportError(f"{source}:{entry.number}: more than {MAX_AUTHORS} authors")
        authors[entry.author] += 1
        notice_only[entry.author] = notice_only.get(entry.author, True) and (
            _is_notice_author_line(entry) or media.is_deleted(entry.first)
        )
        if not first_number:
            first_number = entry.number  # the encryption notice, when marked, comes first
        if entry.marked and (
            entry.number == first_number
            or _ENCRYPTION.search(entry.first)
            or _is_group_event(entry.first)
        ):
            noticed.add(entry.author)
    fmt = fmt_box[0]
    day_first, why = order.decide()
    out.day_first = day_first
    out.format = fmt.describe(day_first)
    out.date_order = why
    # An author who only ever wrote iPhone notices is the group itself (or WhatsApp): not a member.
    group_authors = {a for a, only in notice_only.items() if only and a in noticed}
    if group_authors and len(authors) > len(group_authors):
        out.group_notices += 1
    # The exporter's name on a group's events (old Android): only in a group, from an author
    # who wrote several of them.
    event_writers = (
        {a for a, n in events_by.items() if n >= EVENT_WRITER_LINES} if len(authors) > 2 else set()
    )
    # WhatsApp leaves the year out of the current year's dates only, so a date without one comes
    # after every written year: the year after the last one, or this year when none is written.
    year = last_year + 1 if last_year else datetime.now().year

    def messages(out: ParsedExport) -> Iterator[ExportMessage]:
        seen_authors: dict[str, None] = {}
        for entry, more in _entries(source_lines(), [fmt], ParsedExport(), source):
            if not entry.author:
                continue
            if entry.author in event_writers and not more and is_authored_event(entry.first):
                out.system_skipped += 1
                out.group_notices += 1
                continue
            try:
                when = timestamp(entry.header, day_first, year)
            except DateError as exc:
                out.skip(entry.number, f"bad date or time ({exc})")
                continue
            msg = _message(entry, more, when, entry.author in group_authors, first_number, out)
            if msg is None:
                continue
            if msg.author not in seen_authors:
                seen_authors[msg.author] = None
                out.authors.append(msg.author)
            out.count += 1
            out.first = out.first or when
            out.last = when
            if msg.media:
                out.media[msg.media] += 1
            yield msg

    return out, lambda: messages(out), lambda: messages(ParsedExport())


def scan_export(
    source_lines: LineSource, source: str = "chat"
) -> tuple[ParsedExport, Iterator[ExportMessage]]:
    """First pass now (format, date order, authors, counts); the messages as a lazy second pass
    that completes the counts (authors, messages, media, skipped lines)."""
    out, counted, _ = _scan(source_lines, source)
    return out, counted()


def count_export(
    source_lines: LineSource, source: str = "chat"
) -> tuple[ParsedExport, Callable[[], Iterator[ExportMessage]]]:
    """Two passes now (every count complete, no message kept), and the messages as a fresh pass
    at each call of the function returned (the counts are not touched again)."""
    out, counted, again = _scan(source_lines, source)
    for _ in counted():
        pass
    if not out.count:
        raise ExportError(nothing_left(out, source))
    return out, again


def _message(
    entry: _Entry,
    more: list[str],
    when: datetime,
    group_author: bool,
    first_number: int,
    out: ParsedExport,
) -> ExportMessage | None:
    first = entry.first
    if entry.marked:
        kind, caption = media.media_kind(first.strip(INVISIBLE))
        notice = group_author or entry.number == first_number or _ENCRYPTION.search(first)
        if not kind and (notice or _is_group_event(first)):
            out.system_skipped += 1
            out.group_notices += bool(_GROUP_NOTICE.search(first)) or group_author
            return None
    else:
        kind, caption = media.media_kind(first)
    if kind:
        body = "\n".join([caption, *more]).strip()
    else:
        body = "\n".join([first, *more]).rstrip("\n").strip(INVISIBLE)
    body = media.strip_edited(body)
    if media.is_deleted(body):
        out.deleted += 1
        return None
    if not kind and media.is_notice(body):
        out.notices += 1
        return None
    return ExportMessage(when, entry.author, body, kind, entry.number)


def _is_group_event(text: str) -> bool:
    return bool(_GROUP_NOTICE.search(text.strip(INVISIBLE)))


def is_authored_event(text: str) -> bool:
    """The text is an old Android group event ("Viresh joined"): the whole text has the shape,
    and whoever it names is a phone number or a capitalised name ("Kibaki left" is, "Only two
    people have joined" and "7300 left" are not; a subject change, quoted in “”, may name
    anyone). One such line is not enough: the author must write `EVENT_WRITER_LINES` of them
    (`_scan`)."""
    m = _AUTHORED_EVENT.match(text)
    if m is None:
        return False
    if m.group("subject"):
        return True
    names = [w for w in (m.group("who"), m.group("whom")) if w]
    return not any(
        word[:1].islower()
        for who in names
        if not who.strip("\u202a\u202c").startswith("+")
        for word in who.split()
    )


def parse_export(text: str, source: str = "chat") -> ParsedExport:
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    parsed, messages = scan_export(lambda: lines, source)
    parsed.messages = list(messages)
    if not parsed.messages:
        raise ExportError(nothing_left(parsed, source))
    return parsed


def nothing_left(parsed: ParsedExport, source: str) -> str:
    why = "".join(f"; {source}:{n}: {reason}" for n, reason in parsed.skipped_lines[:3])
    return (
        f"{source}: no messages with an author (only {parsed.system_skipped} system lines, "
        f"{sum(parsed.skipped.values())} unreadable){why}"
    )
