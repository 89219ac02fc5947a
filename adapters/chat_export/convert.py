"""A parsed export -> core `Message` events on a timeline, ready for a recording.

Ids: a participant whose name is a phone number becomes `<digits>@s.whatsapp.net`, anyone
else `<slug>@import`; a group chat is `<slug of its title>@g.us`; a direct chat's id is the
contact's id. Message ids are stable across re-imports of the same or a longer export:
a hash of (time, author, text, occurrence).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wapa.adapters.chat_export.parser import (
    INVISIBLE,
    ExportError,
    ExportMessage,
    ParsedExport,
    count_export,
)
from wapa.adapters.chat_export.source import open_export
from wapa.core.events import Message
from wapa.core.policy import Persona

_PHONE = re.compile(r"^\+?[\d\s\-().]{6,}$")
_DROP_ISOLATES = {ord(c): None for c in "\u2068\u2069"}


@dataclass(frozen=True, slots=True)
class ImportedChat:
    events: list[tuple[float, Message]]
    persona: Persona
    chat_id: str
    title: str
    is_group: bool
    parsed: ParsedExport


@dataclass(frozen=True, slots=True)
class StreamedChat:
    """An import whose events are read from the file again at each call of `events()`."""

    events: Callable[[], Iterator[tuple[float, Message]]]
    persona: Persona
    chat_id: str
    title: str
    is_group: bool
    parsed: ParsedExport  # every count complete; `messages` stays empty


def read_export(path: Path) -> tuple[str, str]:
    """(text, chat name from the file name) of a .txt export or the .zip WhatsApp produces;
    the whole text in memory (`open_export` streams it)."""
    source = open_export(path)
    return "\n".join(source.lines()), source.title


def slug(name: str) -> str:
    folded = unicodedata.normalize("NFKC", name).casefold()
    s = re.sub(r"[^\w]+", "-", folded).strip("-")
    return s[:48] or "x" + hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def participant_id(name: str) -> str:
    if _PHONE.match(name):
        return re.sub(r"\D", "", name) + "@s.whatsapp.net"
    return f"{slug(name)}@import"


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ExportError(
            f"--tz: unknown time zone {tz!r} (use an IANA name like Europe/Berlin)"
        ) from exc


def _epoch(when: datetime, zone: ZoneInfo) -> float:
    return when.replace(tzinfo=zone).timestamp()


class _Chat:
    """Who is who in an imported chat, and each message as a core `Message`."""

    def __init__(self, parsed: ParsedExport, owner: str, title: str, tz: str) -> None:
        self.zone = _zone(tz)
        people = parsed.participants
        by_fold = {p.casefold(): p for p in people}
        owner_name = by_fold.get(owner.strip().casefold())
        if owner_name is None:
            raise ExportError(
                f"--owner {owner!r} is not a participant of this chat "
                f"(participants: {', '.join(people)})"
            )
        others = [p for p in people if p != owner_name]
        self.is_group = len(others) > 1 or parsed.group_notices > 0
        self.owner_name, self.owner_id = owner_name, participant_id(owner_name)
        self.title, self.people = title, len(people)
        if self.is_group:
            self.chat_id = f"{slug(title)}@g.us"
        else:
            self.chat_id = participant_id(others[0]) if others else f"{slug(title)}@import"
        self.persona = Persona(owner_id=self.owner_id, owner_name=owner_name)
        self.mention = re.compile(rf"@[{INVISIBLE}]*{re.escape(owner_name)}(?!\w)", re.IGNORECASE)

    def events(self, messages: Iterable[ExportMessage]) -> Iterator[tuple[float, Message]]:
        # Occurrences of the same (time, author, text) count within a run of equal times (the
        # file's order), so memory holds one minute's messages, not the whole chat's.
        seen: Counter[bytes] = Counter()
        run: datetime | None = None
        for m in messages:
            if m.when != run:
                seen.clear()
                run = m.when
            key = (m.when.isoformat(), m.author, m.text)
            short = hashlib.sha1(repr(key).encode("utf-8", "surrogatepass")).digest()[:12]
            seen[short] += 1
            digest = hashlib.sha1(
                repr((*key, m.media, seen[short])).encode("utf-8", "surrogatepass")
            )
            from_me = m.author == self.owner_name
            text = m.text.translate(_DROP_ISOLATES)
            addressed = self.is_group and not from_me and self.mention.search(m.text) is not None
            yield (
                _epoch(m.when, self.zone),
                Message(
                    chat=self.chat_id,
                    sender=participant_id(m.author),
                    id="x" + digest.hexdigest()[:20].upper(),
                    text=text,
                    from_me=from_me,
                    is_group=self.is_group,
                    sender_name="" if from_me else m.author,
                    group_title=self.title if self.is_group else "",
                    participants=self.people if self.is_group else 0,
                    mentions=(self.owner_id,) if addressed else (),
                    media=m.media,
                ),
            )


def convert(parsed: ParsedExport, owner: str, title: str, tz: str = "UTC") -> ImportedChat:
    chat = _Chat(parsed, owner, title, tz)
    events = list(chat.events(parsed.messages))
    return ImportedChat(events, chat.persona, chat.chat_id, title, chat.is_group, parsed)


def stream_export(path: Path, owner: str, tz: str = "UTC") -> StreamedChat:
    """Import with bounded memory: the file is read three times (format and date order; counts
    and authors; the events, at each call of `events()`), never held whole."""
    source = open_export(path)
    parsed, messages = count_export(source.lines, str(path))
    chat = _Chat(parsed, owner, source.title, tz)
    return StreamedChat(
        lambda: chat.events(messages()),
        chat.persona,
        chat.chat_id,
        source.title,
        chat.is_group,
        parsed,
    )


def import_export(path: Path, owner: str, tz: str = "UTC") -> ImportedChat:
    """The whole chat in memory (tests, small files); `stream_export` for any size."""
    source = open_export(path)
    parsed, messages = count_export(source.lines, str(path))
    parsed.messages = list(messages())
    return convert(parsed, owner, source.title, tz)
