"""Reading an export file (.txt or the .zip WhatsApp produces) as a stream of bounded lines.

Nothing in the file is trusted: the input must be a regular file (a FIFO, a device or a
directory is refused before it is opened, so nothing hangs), a zip member is read with a hard
cap on the bytes actually decompressed (the sizes in its headers may lie), a member that expands
more than `MAX_RATIO` times its compressed size is refused as a zip bomb, encrypted members and
compression methods other than stored/deflate/bzip2/lzma get a clear error, and a line longer
than `MAX_LINE_BYTES` is refused while it is being read. Every error names the file, the zip
member and the line. `ExportSource.lines()` opens the file again at each call: the parser reads
it twice, and memory stays bounded by one chunk and one line whatever the file's size.
"""

from __future__ import annotations

import os
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from wapa.adapters.chat_export.parser import ExportError
from wapa.adapters.filemodes import not_regular

MAX_EXPORT_BYTES = 200 * 1024 * 1024  # a .txt, or the decompressed chat inside a .zip
MAX_LINE_BYTES = 1024 * 1024  # a WhatsApp message is at most 65536 characters
MAX_RATIO = 100  # decompressed / compressed bytes of the chat member (text deflates ~5-10x)
_RATIO_GRACE = 1024 * 1024  # the ratio is checked once this many bytes are out
_CHUNK = 64 * 1024
_METHODS = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
}
_CHAT_NAME = re.compile(
    r"^WhatsApp(?: Chat)?(?: with| mit| con| com| avec| met| -|:)?\s*(?P<name>.+)$", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class ExportSource:
    path: Path
    member: str  # the chat inside a zip, "" for a .txt
    title: str  # the chat's name, from the file name

    @property
    def label(self) -> str:
        """How errors name the file: `chat.zip:_chat.txt` or `chat.txt`."""
        return f"{self.path}:{self.member}" if self.member else str(self.path)

    def lines(self) -> Iterator[str]:
        """The file's lines, decoded, without their line ends; a fresh read at each call."""
        try:
            if self.member:
                with zipfile.ZipFile(self.path) as zf, zf.open(self.member) as f:
                    yield from _lines(f, self.label, self._compressed(zf))
            else:
                with self.path.open("rb") as f:
                    yield from _lines(f, self.label, 0)
        except (OSError, zipfile.BadZipFile, zlib.error, EOFError, RuntimeError) as exc:
            raise ExportError(f"{self.label}: cannot read: {exc}") from exc

    def _compressed(self, zf: zipfile.ZipFile) -> int:
        return max(zf.getinfo(self.member).compress_size, 1)


def _lines(f: IO[bytes], label: str, compressed: int) -> Iterator[str]:
    """Split on "\\n" (and a lone "\\r", as old exports end lines) with every bound enforced."""
    pending = b""
    total = 0
    number = 0
    offset = 0  # of `pending` in the file, for the byte an error names
    while True:
        chunk = f.read(_CHUNK)
        total += len(chunk)
        if total > MAX_EXPORT_BYTES:
            raise ExportError(f"{label}: larger than {MAX_EXPORT_BYTES} bytes (read so far)")
        if compressed and total > _RATIO_GRACE and total > MAX_RATIO * compressed:
            raise ExportError(
                f"{label}: expands more than {MAX_RATIO} times its compressed size "
                f"({compressed} bytes): refused as a zip bomb"
            )
        if not chunk:
            break
        pending += chunk
        parts = pending.split(b"\n")
        pending = parts.pop()
        for raw in parts:
            number += 1
            yield from _decode(raw, label, number, offset)
            offset += len(raw) + 1
        if len(pending) > MAX_LINE_BYTES:
            raise ExportError(
                f"{label}:{number + 1}: a line longer than {MAX_LINE_BYTES} bytes; "
                "is this a WhatsApp chat export?"
            )
    if pending:
        yield from _decode(pending, label, number + 1, offset)


def _decode(raw: bytes, label: str, number: int, offset: int) -> Iterator[str]:
    if offset == 0 and raw.startswith(b"\xef\xbb\xbf"):
        raw, offset = raw[3:], 3
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ExportError(
            f"{label}:{number}: not UTF-8 text (byte {offset + exc.start}); "
            "is this a WhatsApp chat export?"
        ) from exc
    line = line[:-1] if line.endswith("\r") else line
    if "\r" in line:  # old exports that end lines with a lone "\r"
        yield from line.split("\r")
    else:
        yield line


def open_export(path: Path) -> ExportSource:
    """Check the input (a regular .txt or .zip, the chat member's encryption and compression)
    without reading it; `lines()` then reads it."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ExportError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    kind = not_regular(st.st_mode)
    if kind:
        raise ExportError(f"{path}: {kind}, not a chat export file")
    try:
        with path.open("rb") as f:
            is_zip = zipfile.is_zipfile(f)
        if not is_zip:
            if st.st_size > MAX_EXPORT_BYTES:
                raise ExportError(f"{path}: larger than {MAX_EXPORT_BYTES} bytes")
            return ExportSource(path, "", _title(path.stem))
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            names = [
                i.filename
                for i in infos
                if i.filename.lower().endswith(".txt")
                and not i.filename.startswith("__MACOSX")
                and not i.is_dir()
            ]
            if not names:
                listed = ", ".join(i.filename for i in infos[:5])
                raise ExportError(f"{path}: the zip holds no .txt chat (files: {listed})")
            name = "_chat.txt" if "_chat.txt" in names else sorted(names)[0]
            info = zf.getinfo(name)
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise ExportError(f"{path}: cannot read: {exc}") from exc
    where = f"{path}:{name}"
    if info.flag_bits & 0x1:
        raise ExportError(f"{where}: encrypted; export the chat again without a password")
    if info.compress_type not in _METHODS:
        raise ExportError(
            f"{where}: compression method {info.compress_type} is not supported "
            f"(supported: {', '.join(_METHODS.values())})"
        )
    if info.file_size > MAX_EXPORT_BYTES:
        raise ExportError(f"{where}: larger than {MAX_EXPORT_BYTES} bytes")
    if info.file_size > _RATIO_GRACE and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        raise ExportError(
            f"{where}: expands more than {MAX_RATIO} times its compressed size: "
            "refused as a zip bomb"
        )
    title = path.stem if name == "_chat.txt" else Path(name).stem
    return ExportSource(path, name, _title(title))


def _title(label: str) -> str:
    m = _CHAT_NAME.match(label.strip())
    return m.group("name").strip() if m else label.strip()
