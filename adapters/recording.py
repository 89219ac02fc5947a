"""Recorded traffic: every inbound event and every effect as JSON lines, and reading it back.

    {"format": "wapa-recording", "version": 1, "policy": {...}, "persona": {...}, "seed": 0,
     "start": 1700000000.0, "redacted": false}
    {"t": 1700000012.5, "dir": "in", "item": {"type": "Message", ...}}
    {"t": 1700000132.5, "dir": "out", "item": {"type": "Decision", ...}}

`Recorder` appends (flushing each line, so a crash loses at most the line being written); a
process that starts again on the same file writes a new header line, which marks a restart.
A simulator that crashes its assistant writes that restart header itself, with the time of the
crash (`"crashed_at"`, optional: a production process cannot know when it died, and the replay
then takes the time of the last item before the restart). Version 1 readers ignore the key.
`read_recording` validates everything and names `file:line` in its errors; a truncated last
line (a crash while writing) is reported in `Recording.warnings` and skipped. `RecordingStream` reads
it line by line without holding it (`wapa replay`); `read_recording` holds it. Each line is read
with bounded cost (adapters/safe_yaml.py `load_json`: at most 1,000,000 characters, 64 levels
deep, 100-digit integers).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any

from wapa.adapters import codec
from wapa.adapters.filemodes import not_regular, open_append, private_dir
from wapa.adapters.redact import Redactor
from wapa.adapters.safe_yaml import MAX_JSON_CHARS, JSONLimitError, load_json
from wapa.core.events import Effect, Event
from wapa.core.policy import Persona, Policy, PolicyError

FORMAT = "wapa-recording"
VERSION = 1
DIRECTIONS = ("in", "out")
RESTART = "restart"  # `record(t, RESTART, {"crashed_at": T})`: a new header line, as at a restart
_PERSONA_FIELDS = {f.name for f in fields(Persona)}

log = logging.getLogger("wapa.recording")


class RecordingError(ValueError):
    """A recording cannot be read; the message starts with `file:line:`."""


def persona_mapping(persona: Persona) -> dict[str, Any]:
    return {
        f: (list(v) if isinstance(v := getattr(persona, f), tuple) else v)
        for f in sorted(_PERSONA_FIELDS)
    }


def _json_line(data: dict[str, Any]) -> str:
    try:
        line = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        line.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: escape them rather than fail
        line = json.dumps(data, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return line + "\n"


class Recorder:
    """Appends a recording. `record(t, "in"|"out", event_or_effect_or_codec_dict)`.

    Cheap and synchronous: one `json.dumps` and one buffered write plus flush per item. Never
    raises into its caller after construction: a failing disk is logged once and recording
    stops (the assistant goes on)."""

    def __init__(
        self,
        path: str | Path,
        policy: Policy,
        persona: Persona,
        seed: int,
        redact: bool = False,
        *,
        start: float | None = None,
        salt: bytes | None = None,
    ) -> None:
        self.path = Path(path)
        self.redactor = Redactor(policy, persona, salt) if redact else None
        self.items = 0
        self.failed = False
        private_dir(self.path.parent)  # recordings hold message text: 0700 / 0600
        self._file: IO[str] | None = open_append(self.path)
        self._header = {
            "format": FORMAT,
            "version": VERSION,
            "policy": self.redactor.policy_mapping() if self.redactor else policy.to_mapping(),
            "persona": self.redactor.persona_mapping()
            if self.redactor
            else persona_mapping(persona),
            "seed": seed,
            "start": float(start if start is not None else time.time()),
            "redacted": redact,
        }
        self._write(self._header)

    def restarted(self, t: float, crashed_at: float | None = None) -> None:
        """The assistant died (at `crashed_at`, when known) and starts again at `t`: a new header
        line, as a restarted process on the same file writes."""
        header = {**self._header, "start": float(t)}
        if crashed_at is not None:
            header["crashed_at"] = float(crashed_at)
        self._write(header)

    def record(self, t: float, direction: str, obj: Event | Effect | dict[str, Any]) -> None:
        if self._file is None:
            return
        try:
            if direction == RESTART and isinstance(obj, dict):
                self.restarted(t, obj.get("crashed_at"))
                return
            if direction not in DIRECTIONS:
                raise ValueError(f"direction must be 'in' or 'out', got {direction!r}")
            item = obj if isinstance(obj, dict) else codec.encode(obj)
            if self.redactor is not None:
                item = self.redactor.item(item)
            self._write({"t": float(t), "dir": direction, "item": item})
            self.items += 1
        except (TypeError, ValueError) as exc:
            log.warning(
                "recording %s: item %d not recorded: %s",
                self.path,
                self.items + 1,
                type(exc).__name__,
            )

    def __call__(self, t: float, direction: str, obj: Event | Effect | dict[str, Any]) -> None:
        self.record(t, direction, obj)

    def _write(self, data: dict[str, Any]) -> None:
        if self._file is None:
            return
        try:
            self._file.write(_json_line(data))
            self._file.flush()
        except OSError as exc:
            self.failed = True
            log.error("recording %s stopped: %s", self.path, exc.strerror or type(exc).__name__)
            self.close()

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class Header:
    policy: Policy
    persona: Persona
    seed: int
    start: float
    redacted: bool
    line: int
    crashed_at: float | None = None  # a restart header: when the previous process died


@dataclass(frozen=True, slots=True)
class Item:
    t: float
    dir: str  # "in" | "out"
    obj: Event | Effect
    line: int


@dataclass(slots=True)
class Recording:
    path: str
    header: Header
    items: list[Item] = field(default_factory=list)
    restarts: list[Header] = field(default_factory=list)  # later headers: the process restarted
    warnings: list[str] = field(default_factory=list)


def _header(data: dict[str, Any], where: str, line: int) -> Header:
    if data.get("format") != FORMAT:
        raise RecordingError(
            f"{where}: not a wapa recording (format {data.get('format')!r}, expected {FORMAT!r})"
        )
    version = data.get("version")
    if version != VERSION:
        raise RecordingError(
            f"{where}: recording version {version!r} is not supported (this wapa reads {VERSION})"
        )
    try:
        policy = Policy.from_mapping(data.get("policy") or {})
    except (PolicyError, TypeError) as exc:
        raise RecordingError(f"{where}: policy: {exc}") from exc
    persona_data = data.get("persona") or {}
    if not isinstance(persona_data, dict) or set(persona_data) - _PERSONA_FIELDS:
        raise RecordingError(
            f"{where}: persona: expected an object with {', '.join(sorted(_PERSONA_FIELDS))}"
        )
    try:
        persona = Persona(**persona_data)
    except (PolicyError, TypeError) as exc:
        raise RecordingError(f"{where}: persona: {exc}") from exc
    seed, start, redacted = data.get("seed", 0), data.get("start"), data.get("redacted", False)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise RecordingError(f"{where}: seed: expected a whole number, got {seed!r}")
    if isinstance(start, bool) or not isinstance(start, int | float) or not math.isfinite(start):
        raise RecordingError(f"{where}: start: expected epoch seconds, got {start!r}")
    if not isinstance(redacted, bool):
        raise RecordingError(f"{where}: redacted: expected true or false, got {redacted!r}")
    crashed_at = data.get("crashed_at")
    if crashed_at is not None and (
        isinstance(crashed_at, bool)
        or not isinstance(crashed_at, int | float)
        or not math.isfinite(crashed_at)
        or crashed_at > start
    ):
        raise RecordingError(
            f"{where}: crashed_at: expected epoch seconds no later than start, got {crashed_at!r}"
        )
    return Header(
        policy,
        persona,
        seed,
        float(start),
        redacted,
        line,
        None if crashed_at is None else float(crashed_at),
    )


def _item(data: dict[str, Any], where: str, line: int) -> Item:
    t, direction = data.get("t"), data.get("dir")
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
        raise RecordingError(f"{where}: t: expected epoch seconds, got {t!r}")
    if direction not in DIRECTIONS:
        raise RecordingError(f"{where}: dir: expected 'in' or 'out', got {direction!r}")
    extra = set(data) - {"t", "dir", "item"}
    if extra:
        raise RecordingError(f"{where}: unknown key {sorted(extra)[0]!r}")
    try:
        obj = codec.decode(data.get("item"))
    except codec.CodecError as exc:
        raise RecordingError(f"{where}: item: {exc}") from exc
    return Item(float(t), direction, obj, line)


READ_CHUNK = 1 << 16
MAX_LINE_BYTES = 4 * MAX_JSON_CHARS  # a line of MAX_JSON_CHARS characters takes at most this


@dataclass(slots=True)
class _Line:
    number: int
    text: str
    last: bool  # the file's last line, without its newline: cut off while writing


class RecordingStream:
    """A recording read line by line, never held whole: `header` is read when it is opened,
    iterating yields the later entries (`Item`s and restart `Header`s) in file order. Each line
    costs bounded memory (at most `MAX_LINE_BYTES` are read before it is refused), and errors
    name `file:line` as `read_recording`'s do. `warnings` gets the cut-off last line, once the
    iteration reaches it. Each iteration reads the file again from its start."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.warnings: list[str] = []
        entries = self._entries()
        try:
            first = next(entries, None)
        finally:
            entries.close()
        if not isinstance(first, Header):  # an item first is refused by _entries
            raise RecordingError(f"{self.path}: empty file, not a wapa recording")
        self.header = first

    def __iter__(self) -> Iterator[Header | Item]:
        self.warnings.clear()
        entries = self._entries()
        next(entries)  # the header, read when opened
        return entries

    def _lines(self) -> Iterator[_Line]:
        """The file's lines (split at \\n, \\r\\n and \\r, as a text-mode read splits them)."""
        try:
            kind = not_regular(os.stat(self.path).st_mode)
            if kind:  # a FIFO would block the open, a device never end
                raise RecordingError(f"{self.path}: {kind}, not a wapa recording")
            f = self.path.open("rb")
        except OSError as exc:
            raise RecordingError(f"{self.path}: cannot read: {exc}") from exc
        number = 0
        with f:
            while True:
                try:
                    raw = f.readline(MAX_LINE_BYTES + 1)
                except OSError as exc:
                    raise RecordingError(f"{self.path}: cannot read: {exc}") from exc
                if not raw:
                    return
                if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                    yield self._too_long(f, number + 1)
                    return
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise RecordingError(f"{self.path}:{number + 1}: cannot read: {exc}") from exc
                ended = text.endswith("\n")
                parts = (
                    text.replace("\r\n", "\n").rstrip("\n").split("\r")
                    if "\r" in text
                    else [text.rstrip("\n")]
                )
                for i, part in enumerate(parts):
                    number += 1
                    yield _Line(number, part, not ended and i == len(parts) - 1)

    def _too_long(self, f: IO[bytes], number: int) -> _Line:
        """A line longer than MAX_LINE_BYTES: read to its end in chunks and refuse it, unless
        it is a last line cut off while writing (then it is skipped, as any cut-off line)."""
        while chunk := f.read(READ_CHUNK):
            if b"\n" in chunk:
                raise RecordingError(
                    f"{self.path}:{number}: refused: line of more than {MAX_LINE_BYTES:,} bytes "
                    f"(at most {MAX_JSON_CHARS:,} characters)"
                )
        return _Line(number, "\x00", True)  # not JSON, last: the cut-off case below

    def _entries(self) -> Generator[Header | Item, None, None]:
        seen_header = False
        for line in self._lines():
            number, text = line.number, line.text
            where = f"{self.path}:{number}"
            if not text.strip():
                continue
            try:
                data = load_json(text)  # depth, integers, line length bounded
                if not isinstance(data, dict):
                    raise RecordingError(
                        f"{where}: expected a JSON object, got {type(data).__name__}"
                    )
                entry: Header | Item = (
                    _header(data, where, number) if "format" in data else _item(data, where, number)
                )
            except (json.JSONDecodeError, JSONLimitError, RecordingError) as exc:
                if line.last and seen_header:
                    self.warnings.append(
                        f"{where}: last line is incomplete (cut off while writing): skipped"
                    )
                    return
                if isinstance(exc, json.JSONDecodeError):
                    raise RecordingError(
                        f"{where}: not JSON: {exc.msg} at column {exc.colno}"
                    ) from exc
                if isinstance(exc, JSONLimitError):
                    raise RecordingError(f"{where}: refused: {exc}") from None
                raise
            if not seen_header and not isinstance(entry, Header):
                raise RecordingError(f"{where}: the first line must be the recording header")
            seen_header = True
            yield entry


def read_recording(path: str | Path) -> Recording:
    """The whole recording in memory (`RecordingStream` reads it without holding it)."""
    stream = RecordingStream(path)
    recording = Recording(str(stream.path), stream.header)
    for entry in stream:
        if isinstance(entry, Header):
            recording.restarts.append(entry)
        else:
            recording.items.append(entry)
    recording.warnings.extend(stream.warnings)
    return recording
