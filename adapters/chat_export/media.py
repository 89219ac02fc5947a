"""Lines that stand for a media file, a deleted message, or a system notice, in several languages.

Exports never contain the media itself, only a marker: `<Media omitted>` (Android),
`image omitted` (iOS), `<attached: 00000012-PHOTO-2018-06-23-01-55-12.jpg>` (iOS with media),
`IMG-20180623-WA0001.jpg (file attached)` (Android with media). `media_kind` turns a marker
into one of core.events.MEDIA_KINDS. Android does not say which kind `<Media omitted>` was;
it becomes "image", the most common kind.
"""

from __future__ import annotations

import re

from wapa.adapters.chat_export import phrases

_INVISIBLE = "\u200e\u200f\u061c\ufeff\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_DROP = {ord(c): None for c in _INVISIBLE}
_OMITTED: dict[str, str] = {
    **phrases.MEDIA_OMITTED,
    "<media omitted>": "image",
    "photo omitted": "image",
    "voice omitted": "voice",
    "video note omitted": "video",
    "<medien ausgeschlossen>": "image",
    "<multimedia omitido>": "image",
    "<mídia oculta>": "image",
    "<arquivo de mídia oculto>": "image",
    "imagem ocultada": "image",
    "<médias omis>": "image",
    "image absente": "image",
    "<media omessi>": "image",
    "<media weggelaten>": "image",
    "<media jätetty pois>": "image",
}
_LONGEST = max(len(k.split()) for k in _OMITTED)

# "<attached: 00000012-PHOTO-2018-06-23-01-55-12.jpg>" in any language ("<terlampir: ...>",
# "< pièce jointe : ... >", "<... eklendi>"), and Android's "IMG-...jpg (file attached)"
_ATTACHED = re.compile(r"^<[^<>]{0,40}?(?P<file>[^\s<>:]+\.[A-Za-z0-9]{2,5})[^<>]{0,30}>")
_FILE_ATTACHED = re.compile(r"^(?P<file>\S[^()]*?\.[A-Za-z0-9]{2,5})\s+\((?P<what>[^()]{2,40})\)")
_ATTACHED_WORDS = frozenset(b.strip(" ()").casefold() for _, b in phrases.FILE_ATTACHED) | {
    "file attached",
    "datei angehängt",
    "archivo adjunto",
    "arquivo anexado",
    "fichier joint",
    "file allegato",
    "bestand bijgevoegd",
}
_LOCATION = re.compile(
    r"^(?:[^\W\d_][^:\n]{0,40}: )?https?://(?:maps\.google\.|www\.google\.com/maps|"
    r"goo\.gl/maps|maps\.app\.goo\.gl|maps\.apple\.com)",
    re.IGNORECASE,
)
_LOCATION_WORDS = tuple(phrases.LOCATION) + ("location: ", "standort: ", "ubicación: ")

_DELETED = {d.rstrip(".") for d in phrases.DELETED} | {
    "this message was deleted",
    "you deleted this message",
    "diese nachricht wurde gelöscht",
    "du hast diese nachricht gelöscht",
    "se eliminó este mensaje",
    "eliminaste este mensaje",
    "mensagem apagada",
    "você apagou esta mensagem",
    "ce message a été supprimé",
    "vous avez supprimé ce message",
    "questo messaggio è stato eliminato",
    "dit bericht is verwijderd",
    "u hebt dit bericht verwijderd",
    "tämä viesti poistettiin",
    "это сообщение удалено",
}
_NOTICES = {n.rstrip(".") for n in phrases.NOTICES} | {
    "missed voice call",
    "missed video call",
    "waiting for this message",
    "waiting for this message. this may take a while",
    "you turned off disappearing messages",
    "you turned off disappearing messages. tap to change",
}
_MISSED = re.compile(r"^missed (?:voice|video|group voice|group video) call\b", re.IGNORECASE)

_EDITED = re.compile(
    r"\s*<(?:this message was edited|diese nachricht wurde bearbeitet|"
    r"se editó este mensaje|mensagem editada|ce message a été modifié)>\s*$",
    re.IGNORECASE,
)

_BY_NAME = (
    ("sticker", "sticker"),
    ("photo", "image"),
    ("img", "image"),
    ("video", "video"),
    ("vid", "video"),
    ("gif", "video"),
    ("audio", "voice"),
    ("ptt", "voice"),
    ("aud", "voice"),
)
_BY_EXT = {
    "jpg": "image",
    "jpeg": "image",
    "png": "image",
    "heic": "image",
    "webp": "sticker",
    "mp4": "video",
    "mov": "video",
    "3gp": "video",
    "opus": "voice",
    "ogg": "voice",
    "m4a": "audio",
    "mp3": "audio",
    "aac": "audio",
    "vcf": "contact",
}


def _kind_of_file(name: str) -> str:
    stem = name.rsplit("/", 1)[-1].casefold()
    for marker, kind in _BY_NAME:
        if re.search(rf"(?:^|[-_\d]){marker}(?:[-_\d]|$)", stem):
            return kind
    return _BY_EXT.get(stem.rsplit(".", 1)[-1], "document")


def fold(text: str) -> str:
    return " ".join(text.translate(_DROP).split()).casefold()


def media_kind(first_line: str) -> tuple[str, str]:
    """(kind, the rest of the line as caption) when the line is a media marker, else ("", "")."""
    line = first_line.translate(_DROP).strip()
    folded = " ".join(line.split()).casefold()
    if not folded or len(folded) > 400:
        return "", ""
    if folded[0] in "‹<" and folded[-1] == ">":  # old iPhone "‹image omitted>"
        inner = folded.strip("‹<> ")
        if inner in _OMITTED:
            return _OMITTED[inner], ""
    if folded in _OMITTED:
        return _OMITTED[folded], ""
    words = folded.split()
    for n in range(min(_LONGEST, len(words) - 1), 0, -1):  # "x.pdf • 3 pages document omitted"
        kind = _OMITTED.get(" ".join(words[-n:]))
        if kind and n >= 2 or kind and len(words) <= 4 and "." in folded:
            return kind, ""
    m = _ATTACHED.match(line)
    if m:
        return _kind_of_file(m.group("file")), line[m.end() :].strip()
    m = _FILE_ATTACHED.match(line)
    if m and m.group("what").strip().casefold() in _ATTACHED_WORDS:
        return _kind_of_file(m.group("file")), line[m.end() :].strip()
    if _LOCATION.match(line) or folded.startswith(_LOCATION_WORDS) and "http" in folded:
        return "location", ""
    return "", ""


def is_deleted(text: str) -> bool:
    return fold(text).rstrip(".") in _DELETED


def is_notice(text: str) -> bool:
    """An authored line that is WhatsApp's, not the author's: missed calls, pending messages,
    disappearing-message settings."""
    folded = fold(text).rstrip(".")
    return folded in _NOTICES or bool(_MISSED.match(folded))


def strip_edited(text: str) -> str:
    return _EDITED.sub("", text)
