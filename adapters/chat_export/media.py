"""Lines that stand for a media file, a deleted message, or a system notice, in several languages.

Exports never contain the media itself, only a marker: `<Media omitted>` (Android),
`image omitted` (iOS), `<attached: 00000012-PHOTO-2018-06-23-01-55-12.jpg>` (iOS with media),
`IMG-20180623-WA0001.jpg (file attached)` (Android with media). `media_kind` turns a marker
into one of core.events.MEDIA_KINDS. Android does not say which kind `<Media omitted>` was;
it becomes "image", the most common kind.
"""

from __future__ import annotations

import re

_OMITTED: dict[str, str] = {
    # English (Android, iOS)
    "<media omitted>": "image",
    "image omitted": "image",
    "photo omitted": "image",
    "audio omitted": "voice",
    "voice omitted": "voice",
    "video omitted": "video",
    "gif omitted": "video",
    "sticker omitted": "sticker",
    "document omitted": "document",
    "contact card omitted": "contact",
    "video note omitted": "video",
    # German
    "<medien ausgeschlossen>": "image",
    "bild weggelassen": "image",
    "audio weggelassen": "voice",
    "video weggelassen": "video",
    "gif weggelassen": "video",
    "sticker weggelassen": "sticker",
    "dokument weggelassen": "document",
    # Spanish, Portuguese, French, Italian, Dutch, Finnish
    "<multimedia omitido>": "image",
    "imagen omitida": "image",
    "audio omitido": "voice",
    "video omitido": "video",
    "sticker omitido": "sticker",
    "<mídia oculta>": "image",
    "<arquivo de mídia oculto>": "image",
    "imagem ocultada": "image",
    "<médias omis>": "image",
    "image absente": "image",
    "<media omessi>": "image",
    "<media weggelaten>": "image",
    "<media jätetty pois>": "image",
}

_ATTACHED = re.compile(
    r"^<(?:attached|anhang|adjunto|anexo|pièce jointe|allegato):\s*(?P<file>[^>]+)>", re.IGNORECASE
)
_FILE_ATTACHED = re.compile(
    r"^(?P<file>\S.*?\.\w{2,5})\s+\((?:file attached|datei angehängt|archivo adjunto|"
    r"arquivo anexado|fichier joint|file allegato|bestand bijgevoegd)\)",
    re.IGNORECASE,
)
_LOCATION = re.compile(
    r"^(?:location|standort|ubicación|localização|position|sijainti): https?://", re.IGNORECASE
)

_DELETED = {
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
    "tämä viesti poistettiin",
}

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


def media_kind(first_line: str) -> tuple[str, str]:
    """(kind, the rest of the line as caption) when the line is a media marker, else ("", "")."""
    line = first_line.strip()
    folded = line.casefold()
    if folded in _OMITTED:
        return _OMITTED[folded], ""
    for marker, kind in _OMITTED.items():
        if not marker.startswith("<") and folded.endswith(
            " " + marker
        ):  # "x.pdf • 3 pages document omitted"
            return kind, ""
    m = _ATTACHED.match(line) or _FILE_ATTACHED.match(line)
    if m:
        return _kind_of_file(m.group("file")), line[m.end() :].strip()
    if _LOCATION.match(line):
        return "location", ""
    return "", ""


def is_deleted(text: str) -> bool:
    return text.strip().casefold() in _DELETED


def strip_edited(text: str) -> str:
    return _EDITED.sub("", text)
