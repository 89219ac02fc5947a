"""JSON-lines logging with redaction and correlation ids.

Every line is one JSON object: `ts` (UTC, ISO 8601), `level`, `event` (a short snake_case
name), `corr` (the correlation id of the inbound message being handled, when there is one)
and the event's fields. Library log records (httpx, neonize...) come out the same way, with
their message in `msg`.

Privacy by default:
- fields that hold message content or names (`CONTENT_KEYS`) are replaced by their length;
- phone numbers anywhere in a string (WhatsApp JIDs are phone numbers: `972501234567@s...`)
  become `<phone:1a2b3c>`, a keyed hash that is stable within one process (so one chat can be
  followed through the log) but not reversible by trying every number (the key is random per
  process);
`WAPA_LOG_CONTENT=1` (`show_content=True`) turns both off for debugging.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import hmac
import json
import logging
import logging.handlers
import math
import os
import queue
import re
import sys
import threading
import time
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

correlation: ContextVar[str] = ContextVar("wapa_correlation", default="")

CONTENT_KEYS = frozenset(
    {"text", "content", "sender_name", "push_name", "group_title", "title", "notice", "quote"}
)
# A run of 7+ digits not inside a word (JIDs, LIDs, bare numbers), or a "+" number with spaces
# or dashes. ISO timestamps (2024-05-01) and hex message ids do not match.
_PHONE = re.compile(r"(?<![\w+])\+?\d{7,}(?!\w)|\+\d[\d \-().]{6,}\d")
_PHONE_MIN = 7  # the shortest string _PHONE matches: seven digits
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}
_PLAIN = frozenset({bool, int, float})  # values a line shows as they are
# json.dumps(out, ensure_ascii=..., default=str), without building an encoder for each line
_ENCODE = json.JSONEncoder(ensure_ascii=False, default=str).encode
_ENCODE_ASCII = json.JSONEncoder(ensure_ascii=True, default=str).encode


class Redactor:
    """Scrubs phone numbers and hides content unless `show_content`."""

    def __init__(self, show_content: bool = False, key: bytes | None = None) -> None:
        self.show_content = show_content
        self._key = key if key is not None else os.urandom(16)

    def token(self, digits: str) -> str:
        plain = re.sub(r"\D", "", digits)
        return "<phone:" + hmac.new(self._key, plain.encode(), hashlib.sha256).hexdigest()[:6] + ">"

    def scrub(self, value: str) -> str:
        if self.show_content or len(value) < _PHONE_MIN:  # too short to hold a number
            return value
        return _PHONE.sub(lambda m: self.token(m.group(0)), value)

    def content(self, value: Any) -> Any:
        if self.show_content:
            return value
        if isinstance(value, str):
            return f"<{len(value)} chars>"
        if isinstance(value, list | tuple):
            return f"<{len(value)} items>"
        return "<redacted>"

    def field(self, key: str, value: Any) -> Any:
        if key in CONTENT_KEYS:
            return self.content(value)
        return self.value(value)

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, bool | int | float) or value is None:
            return value
        if isinstance(value, Mapping):
            return {str(k): self.field(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(v) for v in value]
        return self.scrub(repr(value))


class JsonFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor
        self._second = -1  # the UTC second `_stamp` was made for
        self._stamp = ""

    def timestamp(self, created: float) -> str:
        """`created` as ISO 8601 UTC to the millisecond, as `datetime.isoformat` writes it
        (`2024-05-01T12:00:00.123+00:00`); the date and time are formatted once a second."""
        fraction, whole = math.modf(created)  # rounded as datetime.fromtimestamp rounds
        second, micro = int(whole), round(fraction * 1_000_000)
        if micro >= 1_000_000:
            second, micro = second + 1, micro - 1_000_000
        if second != self._second:
            self._stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = second
        return f"{self._stamp}.{micro // 1000:03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        r = self.redactor
        out: dict[str, Any] = {
            "ts": self.timestamp(record.created),
            "level": record.levelname.lower(),
        }
        fields: dict[str, Any] = getattr(record, "fields", None) or {}
        if fields or getattr(record, "wapa_event", False):
            out["event"] = str(record.msg)
        else:  # a library's record
            out["event"] = "library"
            out["logger"] = record.name
            try:
                out["msg"] = r.scrub(record.getMessage())
            except (TypeError, ValueError):
                out["msg"] = r.scrub(str(record.msg))
        corr = getattr(record, "corr", "") or correlation.get()
        if corr:
            out["corr"] = corr
        for key, value in fields.items():  # `Redactor.field`, its common cases inline
            if key in out:
                continue
            if key in CONTENT_KEYS:
                out[key] = r.content(value)
            elif value.__class__ is str:
                out[key] = r.scrub(value)
            elif value is None or value.__class__ in _PLAIN:
                out[key] = value
            else:
                out[key] = r.value(value)
        if record.exc_info and record.exc_info[0] is not None:
            exc = record.exc_info[1]
            out["error"] = r.scrub(f"{type(exc).__name__}: {exc}")
            out["traceback"] = r.scrub(self.formatException(record.exc_info))
        try:
            return _ENCODE(out)
        except ValueError:  # lone surrogates and the like
            return _ENCODE_ASCII(out)


class _StampingQueueHandler(logging.handlers.QueueHandler):
    """Hands records to the listener thread unformatted, with the correlation id stamped on
    the calling thread (the listener runs in another context, where the ContextVar is empty)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        if not getattr(record, "corr", ""):
            record.corr = correlation.get()
        return record


class _WriterHandler(logging.StreamHandler[TextIO]):
    """The background writer's stream handler. Once `_BatchWriter.stop` has given up on a
    write that blocks (`stuck`), its lock and its stream's are held by that write: logging's
    own shutdown at exit (which takes every handler's lock and flushes it) must then leave it
    alone, or the exit would hang all the same."""

    stuck = False

    def acquire(self) -> None:
        if not self.stuck:
            super().acquire()

    def release(self) -> None:
        if not self.stuck:
            super().release()

    def flush(self) -> None:
        if not self.stuck:
            super().flush()


_STOP = logging.makeLogRecord({"msg": "stop"})  # the writer's sentinel
_BATCH_WAIT = 0.005  # seconds the writer lets records gather after it wakes
_BATCH_LINES = 32  # lines formatted between two writes (about half a millisecond)
STOP_TIMEOUT = 3.0  # seconds an exit waits for the writer to write what is queued


class _BatchWriter:
    """The thread of background logging. It wakes when a record is queued, lets more gather
    for `_BATCH_WAIT` seconds, then formats everything queued and writes it with one write
    and one flush: the event loop only queues records, and this thread takes the interpreter
    lock a couple of hundred times a second (for at most `_BATCH_LINES` lines at a time)
    instead of once per line. A record that cannot be formatted, or a write that fails, goes
    to `Handler.handleError` as `StreamHandler` does."""

    def __init__(
        self, records: queue.SimpleQueue[logging.LogRecord], handler: logging.StreamHandler[TextIO]
    ) -> None:
        self.records, self.handler = records, handler
        self.handlers = (handler,)  # as QueueListener names them (whatsapp/goprints.py repoints)
        self._thread = threading.Thread(target=self._run, name="wapa-logs", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """Write every record queued before this call, then end the thread, waiting at most
        `timeout` seconds: a stream that takes nothing (a stderr pipe nobody reads, once its
        buffer is full) must not hang an exit. None: everything was written. Else the number
        of records still queued when it gave up: they, and the batch whose write is blocked,
        are lost if the process then exits (the thread is a daemon, ended with it); if the
        process goes on, the thread writes them once the stream takes them again."""
        self.records.put(_STOP)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            return None
        if isinstance(self.handler, _WriterHandler):
            self.handler.stuck = True
        return max(0, self.records.qsize() - 1)  # the sentinel is not a line

    def _run(self) -> None:
        records, drained = self.records, True
        while True:
            batch = [records.get()]
            if drained and batch[0] is not _STOP:  # woken by a record: let more gather
                time.sleep(_BATCH_WAIT)
            with contextlib.suppress(queue.Empty):
                while len(batch) < _BATCH_LINES:
                    batch.append(records.get_nowait())
            drained = len(batch) < _BATCH_LINES  # full: more may be waiting, no pause
            if self._write(batch):
                return

    def _write(self, batch: list[logging.LogRecord]) -> bool:
        """Write `batch`; True when it held the sentinel (the thread ends). A batch is at most
        `_BATCH_LINES` lines: the write between two batches lets the event loop's thread have
        the interpreter lock, which formatting holds."""
        h, lines, written, stop = self.handler, [], [], False
        for record in batch:
            if record is _STOP:
                stop = True
                continue
            try:
                lines.append(h.format(record) + h.terminator)
                written.append(record)
            except Exception:
                h.handleError(record)
        if lines:
            with h.lock or contextlib.nullcontext():
                try:
                    h.stream.write("".join(lines))
                    h.stream.flush()
                except UnicodeError:  # raised before anything is written: line by line
                    self._write_each(lines, written)
                except Exception:
                    h.handleError(written[0])
        return stop

    def _write_each(self, lines: list[str], records: list[logging.LogRecord]) -> None:
        """One line the stream cannot encode (a lone surrogate in a strict UTF-8 file) costs
        that line only, as with `StreamHandler`, not the batch it came in."""
        h = self.handler
        for line, record in zip(lines, records, strict=True):
            try:
                h.stream.write(line)
                h.stream.flush()
            except Exception:
                h.handleError(record)


_listener: _BatchWriter | None = None


def flush_logging(timeout: float = STOP_TIMEOUT) -> int | None:
    """Write out every record still queued (background mode) and flush the handlers. Call it
    before `os._exit`, which skips the interpreter's own shutdown. Waits for the writer at
    most `timeout` seconds (`_BatchWriter.stop`): None when everything was written, else how
    many records were still queued (lost if the process exits now)."""
    global _listener
    left = None
    if _listener is not None:
        left = _listener.stop(timeout)  # drains the queue, then joins the thread
        _listener = None
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):  # a closed stream must not stop an exit
            handler.flush()
    return left


_at_exit = False


def _flush_at_exit() -> None:
    """Once per process: an exit that skips `flush_logging()` still writes what is queued
    (atexit functions run before the interpreter stops daemon threads, the writer's among
    them). `os._exit` skips atexit: its callers flush first."""
    global _at_exit
    if not _at_exit:
        atexit.register(flush_logging)
        _at_exit = True


def setup_logging(
    level: str | int = "INFO",
    show_content: bool = False,
    stream: TextIO | None = None,
    *,
    background: bool = False,
) -> Redactor:
    """Route every log record (ours and libraries') to `stream` (stderr) as JSON lines. With
    `background`, redaction, JSON encoding and the write happen on a listener thread, off the
    event loop (`wapa run` does this; call `flush_logging()` before `os._exit`: an ordinary
    exit flushes by itself)."""
    global _listener
    flush_logging()
    redactor = Redactor(show_content)
    kind = _WriterHandler if background else logging.StreamHandler
    stream_handler = kind(stream or sys.stderr)
    stream_handler.setFormatter(JsonFormatter(redactor))
    handler: logging.Handler = stream_handler
    if background:
        records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        _listener = _BatchWriter(records, stream_handler)
        _listener.start()
        _flush_at_exit()
        handler = _StampingQueueHandler(records)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "aiosqlite", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # A line never shows the thread or process a record came from: records skip looking them
    # up (the logging HOWTO's "Optimization"; a fifth of what making a record costs).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    return redactor


def log_event(
    logger: logging.Logger,
    level: int,
    event: str,
    /,
    *,
    exc_info: bool = False,
    corr: str = "",
    **fields: Any,
) -> None:
    """Log one structured event: `log_event(log, logging.INFO, "send_ok", chat=..., chars=3)`.
    The record is made and handled directly (`makeRecord`, `handle`): `Logger.log` would also
    walk the stack for the caller's file and line, which no line shows."""
    if not logger.isEnabledFor(level):
        return
    extra: dict[str, Any] = {
        "fields": {k: v for k, v in fields.items() if k not in _RESERVED},
        "wapa_event": True,
    }
    if corr:
        extra["corr"] = corr
    info = sys.exc_info() if exc_info else None
    logger.handle(logger.makeRecord(logger.name, level, "", 0, event, (), info, None, extra))
