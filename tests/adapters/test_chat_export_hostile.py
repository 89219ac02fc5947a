"""Hostile export files: lying zip members, zip bombs, encryption, odd compression, FIFOs,
devices, directories and over-long lines are clear errors naming the file, never a hang or
unbounded memory. Every file is built small in tmp_path (the caps are lowered to match)."""

from __future__ import annotations

import os
import struct
import sys
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from wapa.adapters.chat_export import ExportError, import_export, open_export, stream_export
from wapa.adapters.chat_export import source as source_mod

DATA = Path(__file__).resolve().parents[1] / "data" / "exports"
CHAT = (DATA / "android_en_gb.txt").read_bytes()


def _zip(path: Path, data: bytes, method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=method) as zf:
        zf.writestr("_chat.txt", data)
    return path


def _patch_sizes(path: Path, file_size: int) -> None:
    """Make the chat member's local and central headers claim `file_size` bytes."""
    raw = bytearray(path.read_bytes())
    local = raw.find(b"PK\x03\x04")
    struct.pack_into("<I", raw, local + 22, file_size)
    central = raw.find(b"PK\x01\x02")
    struct.pack_into("<I", raw, central + 24, file_size)
    path.write_bytes(bytes(raw))


def test_a_member_that_lies_about_its_size_is_read_with_a_hard_cap(tmp_path: Path) -> None:
    liar = _zip(tmp_path / "liar.zip", CHAT * 200)
    _patch_sizes(liar, len(CHAT))  # says one chat, holds 200
    with pytest.raises(ExportError, match=r"liar\.zip:_chat\.txt: cannot read"):
        import_export(liar, "dana")


def test_the_bytes_read_are_capped_whatever_the_headers_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = _zip(tmp_path / "big.zip", CHAT * 400, zipfile.ZIP_STORED)
    src = open_export(big)  # the headers passed the checks; the cap then counts what is read
    monkeypatch.setattr(source_mod, "MAX_EXPORT_BYTES", 64 * 1024)
    with pytest.raises(ExportError, match=r"big\.zip:_chat\.txt: larger than 65536 bytes"):
        list(src.lines())


def test_zip_bombs_are_refused_by_ratio_and_by_total(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(source_mod, "_RATIO_GRACE", 64 * 1024)
    line = b"23/06/2018, 01:55 - Alice Smith: " + b"a" * 60 + b"\n"
    bomb = _zip(tmp_path / "bomb.zip", line * 20_000)  # ~1.9 MB from a few kB
    with pytest.raises(ExportError, match=r"bomb\.zip:_chat\.txt: expands more than 100 times"):
        open_export(bomb)
    _patch_sizes(bomb, 1000)  # the header hides it: the bytes read still count
    monkeypatch.setattr(source_mod, "MAX_RATIO", 100)
    tracemalloc.start()
    try:
        with pytest.raises(ExportError, match=r"bomb\.zip:_chat\.txt: .*(zip bomb|cannot read)"):
            list(open_export(bomb).lines())
        assert tracemalloc.get_traced_memory()[1] < 4 * 1024 * 1024
    finally:
        tracemalloc.stop()
    monkeypatch.setattr(source_mod, "MAX_EXPORT_BYTES", 100 * 1024)
    with pytest.raises(ExportError, match=r"big\.txt: larger than 102400 bytes"):
        (tmp_path / "big.txt").write_bytes(line * 2000)
        open_export(tmp_path / "big.txt")


def test_encrypted_members_and_unsupported_compression(tmp_path: Path) -> None:
    enc = _zip(tmp_path / "enc.zip", CHAT)
    raw = bytearray(enc.read_bytes())
    for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = raw.find(sig) + at
        struct.pack_into("<H", raw, pos, struct.unpack_from("<H", raw, pos)[0] | 1)
    enc.write_bytes(bytes(raw))
    with pytest.raises(ExportError, match=r"enc\.zip:_chat\.txt: encrypted"):
        import_export(enc, "dana")
    odd = _zip(tmp_path / "odd.zip", CHAT, zipfile.ZIP_STORED)
    raw = bytearray(odd.read_bytes())
    for sig, at in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        struct.pack_into("<H", raw, raw.find(sig) + at, 99)  # AES (WinZip)
    odd.write_bytes(bytes(raw))
    with pytest.raises(ExportError, match=r"odd\.zip:_chat\.txt: compression method 99"):
        import_export(odd, "dana")
    bz = _zip(tmp_path / "bz.zip", CHAT, zipfile.ZIP_BZIP2)  # supported: read as usual
    assert len(import_export(bz, "dana").events) == 5
    broken = tmp_path / "broken.zip"
    broken.write_bytes(_zip(tmp_path / "ok.zip", CHAT * 50).read_bytes()[:-30])
    with pytest.raises(ExportError, match=r"broken\.zip"):
        import_export(broken, "dana")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifos_devices_and_directories_are_refused_without_opening(tmp_path: Path) -> None:
    fifo = tmp_path / "chat.txt"
    os.mkfifo(fifo)  # opening it for reading would block forever: it must not be opened
    with pytest.raises(ExportError, match=r"chat\.txt: a FIFO"):
        stream_export(fifo, "dana")
    with pytest.raises(ExportError, match=r": a directory"):
        import_export(tmp_path, "dana")
    if sys.platform != "win32" and Path("/dev/zero").exists():
        with pytest.raises(ExportError, match=r"/dev/zero: a device"):
            import_export(Path("/dev/zero"), "dana")
    with pytest.raises(ExportError, match=r"missing\.txt: cannot read"):
        import_export(tmp_path / "missing.txt", "dana")


def test_over_long_lines_are_refused_while_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(source_mod, "MAX_LINE_BYTES", 100 * 1024)
    long = tmp_path / "long.txt"
    long.write_bytes(CHAT + b"x" * (4 * 1024 * 1024))  # 4 MB without a line end
    tracemalloc.start()
    try:
        with pytest.raises(ExportError, match=r"long\.txt:10: a line longer than 102400 bytes"):
            stream_export(long, "dana")
        assert tracemalloc.get_traced_memory()[1] < 2 * 1024 * 1024
    finally:
        tracemalloc.stop()
    zipped = _zip(tmp_path / "long.zip", CHAT + b"y" * (300 * 1024))
    with pytest.raises(ExportError, match=r"long\.zip:_chat\.txt:10: a line longer"):
        stream_export(zipped, "dana")


def test_bad_utf8_names_the_line_and_the_byte(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(CHAT + b"23/06/2018, 09:00 - Dana: caf\xe9\n")
    with pytest.raises(ExportError, match=r"bad\.txt:10: not UTF-8 text \(byte \d+\)"):
        import_export(bad, "dana")


def test_line_ends_and_bom_read_as_before(tmp_path: Path) -> None:
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(b"\xef\xbb\xbf" + CHAT.replace(b"\n", b"\r\n"))
    cr = tmp_path / "cr.txt"
    cr.write_bytes(CHAT.replace(b"\n", b"\r"))
    plain = import_export(DATA / "android_en_gb.txt", "dana").events
    assert import_export(crlf, "dana").events == plain
    assert import_export(cr, "dana").events == plain
    streamed = stream_export(DATA / "android_en_gb.txt", "dana")
    assert list(streamed.events()) == plain and streamed.parsed.count == 5
