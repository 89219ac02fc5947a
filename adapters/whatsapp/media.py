"""Voice notes and images to download: what the transport hands the runner after a message.

Pure and neonize-free at import (the runner imports it with the console transport too):

    part = media_part(unwrap(ev.Message))   # ("voice" | "image", the submessage alone, ...)
    sink(MediaFetch(chat, id, kind, download, seconds=..., mime=..., size=...))

The message itself goes to the core first, with its placeholder; the runner (app/media.py)
decides whether to download (the settings, the size bounds, how many are under way) and does
it in a background task: `download()` awaits neonize's `download_any` on the submessage.
Only a contact's voice note (`audioMessage` with `PTT`) or image (`imageMessage`) is offered:
stickers, audio files, videos and documents are never downloaded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class MediaDownloadError(RuntimeError):
    """The download failed; the text names the cause without numbers (already redacted)."""


@dataclass(frozen=True)
class MediaFetch:
    chat: str
    message_id: str
    kind: str  # "voice" or "image" (MediaJob's kinds)
    download: Callable[[], Awaitable[bytes]] = field(repr=False)
    seconds: float = 0.0  # WhatsApp's duration of a voice note; 0 unknown
    mime: str = ""
    size: int = 0  # WhatsApp's fileLength; 0 unknown


OnMedia = Callable[[MediaFetch], None]


@runtime_checkable
class MediaSource(Protocol):
    """A transport that can offer downloads (the WhatsApp one); the sink never raises, never
    blocks: it only schedules."""

    def set_media_sink(self, sink: OnMedia | None) -> None: ...


@dataclass(frozen=True)
class MediaPart:
    kind: str
    message: Any  # a WAMessage holding only the media submessage: what download_any takes
    seconds: float
    mime: str
    size: int


def media_part(msg: Any) -> MediaPart | None:
    """The downloadable voice note or image of an (unwrapped) WAMessage, or None."""
    if msg.HasField("audioMessage"):
        name, kind = "audioMessage", "voice"
        if not msg.audioMessage.PTT:
            return None
    elif msg.HasField("imageMessage"):
        name, kind = "imageMessage", "image"
    else:
        return None
    sub = getattr(msg, name)
    if not sub.directPath and not sub.URL:
        return None  # nothing to download from
    part = type(msg)()
    getattr(part, name).CopyFrom(sub)
    if sub.HasField("contextInfo"):
        getattr(part, name).ClearField("contextInfo")
    seconds = float(sub.seconds) if kind == "voice" else 0.0
    return MediaPart(kind, part, max(0.0, seconds), str(sub.mimetype)[:100], int(sub.fileLength))
