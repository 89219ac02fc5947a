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
import zipfile
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wapa.adapters.chat_export.parser import INVISIBLE, ExportError, ParsedExport, parse_export
from wapa.core.events import Message
from wapa.core.policy import Persona

_CHAT_NAME = re.compile(
    r"^WhatsApp(?: Chat)?(?: with| mit| con| com| avec| met| -|:)?\s*(?P<name>.+)$", re.IGNORECASE
)
_PHONE = re.compile(r"^\+?[\d\s\-().]{6,}$")
MAX_EXPORT_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ImportedChat:
    events: list[tuple[float, Message]]
    persona: Persona
    chat_id: str
    title: str
    is_group: bool
    parsed: ParsedExport


def read_export(path: Path) -> tuple[str, str]:
    """(text, chat name from the file name) of a .txt export or the .zip WhatsApp produces."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                names = [
                    n
                    for n in zf.namelist()
                    if n.lower().endswith(".txt") and not n.startswith("__MACOSX")
                ]
                if not names:
                    raise ExportError(
                        f"{path}: the zip holds no .txt chat (files: {', '.join(zf.namelist()[:5])})"
                    )
                name = "_chat.txt" if "_chat.txt" in names else sorted(names)[0]
                info = zf.getinfo(name)
                if info.file_size > MAX_EXPORT_BYTES:
                    raise ExportError(f"{path}: {name} is larger than {MAX_EXPORT_BYTES} bytes")
                data = zf.read(name)
                label = path.stem if name == "_chat.txt" else Path(name).stem
        else:
            if path.stat().st_size > MAX_EXPORT_BYTES:
                raise ExportError(f"{path}: larger than {MAX_EXPORT_BYTES} bytes")
            data = path.read_bytes()
            label = path.stem
    except (OSError, zipfile.BadZipFile) as exc:
        raise ExportError(f"{path}: cannot read: {exc}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ExportError(
            f"{path}: not UTF-8 text (byte {exc.start}); is this a WhatsApp chat export?"
        ) from exc
    m = _CHAT_NAME.match(label.strip())
    return text, (m.group("name").strip() if m else label.strip())


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


def convert(parsed: ParsedExport, owner: str, title: str, tz: str = "UTC") -> ImportedChat:
    zone = _zone(tz)
    people = parsed.participants
    by_fold = {p.casefold(): p for p in people}
    owner_name = by_fold.get(owner.strip().casefold())
    if owner_name is None:
        raise ExportError(
            f"--owner {owner!r} is not a participant of this chat (participants: {', '.join(people)})"
        )
    others = [p for p in people if p != owner_name]
    is_group = len(others) > 1 or parsed.group_notices > 0
    owner_id = participant_id(owner_name)
    if is_group:
        chat_id = f"{slug(title)}@g.us"
    else:
        chat_id = participant_id(others[0]) if others else f"{slug(title)}@import"
    persona = Persona(owner_id=owner_id, owner_name=owner_name)
    seen: Counter[tuple[str, str, str]] = Counter()
    events: list[tuple[float, Message]] = []
    mention = re.compile(rf"@[{INVISIBLE}]*{re.escape(owner_name)}(?!\w)", re.IGNORECASE)
    for m in parsed.messages:
        key = (m.when.isoformat(), m.author, m.text)
        seen[key] += 1
        digest = hashlib.sha1(repr((*key, m.media, seen[key])).encode("utf-8", "surrogatepass"))
        from_me = m.author == owner_name
        text = m.text.translate({ord(c): None for c in "\u2068\u2069"})
        addressed = is_group and not from_me and mention.search(m.text) is not None
        events.append(
            (
                _epoch(m.when, zone),
                Message(
                    chat=chat_id,
                    sender=participant_id(m.author),
                    id="x" + digest.hexdigest()[:20].upper(),
                    text=text,
                    from_me=from_me,
                    is_group=is_group,
                    sender_name="" if from_me else m.author,
                    group_title=title if is_group else "",
                    participants=len(people) if is_group else 0,
                    mentions=(owner_id,) if addressed else (),
                    media=m.media,
                ),
            )
        )
    return ImportedChat(events, persona, chat_id, title, is_group, parsed)


def import_export(path: Path, owner: str, tz: str = "UTC") -> ImportedChat:
    text, title = read_export(path)
    return convert(parse_export(text, str(path)), owner, title, tz)
