"""Go's own prints, into the log (issue 12, defect 8).

whatsmeow's logger reaches Python already: neonize hands each Go log entry to a callback that
logs it under `whatsmeow.*` (neonize/utils/log.py), so wapa's JSON pipeline redacts it, and
the level Go filters at is taken from the `neonize.utils.log` logger (`quiet_neonize_logs`
sets WARNING, so Go drops INFO/DEBUG entries before formatting them). What bypasses that are
neonize's own prints in Go (goneonize/main.go): `println("Press Ctrl+C to exit")` on fd 2
at every connect, `fmt.Println("SendMessage: Error sending message:", err)` on fd 1 (the
error names JIDs), "Pair Code:", "Login event:". They write straight to the file
descriptors, around Python's `sys.stdout`/`sys.stderr`.

`capture_go_prints()` moves Python's own output to duplicates of fds 1 and 2 (sys.stdout,
sys.stderr and the log handlers writing to them follow), then points fds 1 and 2 at a pipe.
A daemon thread reads the pipe line by line (each line bounded) and logs it as the event
`go_output` with the line in `line`: phone numbers in it are redacted like any log field.
Child processes started afterwards inherit the pipe too: their output is logged the same way.

A Go crash ("panic:", "fatal error:", e.g. the concurrent map access of defect 7) ends the
process right after printing its trace, before a queued log line could be written: from such
a line on, each line goes straight to the real stderr (numbers redacted), synchronously.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import threading
from dataclasses import dataclass
from typing import TextIO

from wapa.adapters.logs import log_event
from wapa.adapters.whatsapp.jid import redact_numbers

log = logging.getLogger("wapa.whatsapp.go")

LINE_MAX = 2000  # characters of one Go line kept in the log; the rest is cut
CRASH_STARTS = ("panic:", "fatal error:", "SIGSEGV", "SIGABRT", "runtime:")


@dataclass
class GoPrints:
    """An installed capture: the reader thread and Python's moved streams."""

    thread: threading.Thread
    stdout: TextIO
    stderr: TextIO
    lines: int = 0
    crashing: bool = False  # a Go crash trace is being printed: lines go straight to stderr


_installed: GoPrints | None = None


def capture_go_prints() -> GoPrints:
    """Install once per process (later calls return the first capture)."""
    global _installed
    if _installed is not None:
        return _installed
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    moved: dict[int, TextIO] = {}
    for fd, old in ((1, sys.stdout), (2, sys.stderr)):
        encoding = getattr(old, "encoding", None) or "utf-8"
        moved[fd] = io.TextIOWrapper(
            open(os.dup(fd), "wb", buffering=0),  # noqa: SIM115 - lives as long as the process
            encoding=encoding,
            errors="backslashreplace",
            line_buffering=True,
            write_through=True,
        )
    read_end, write_end = os.pipe()
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.close(write_end)
    _repoint_handlers({id(sys.stdout): moved[1], id(sys.stderr): moved[2]})
    sys.stdout, sys.stderr = moved[1], moved[2]
    capture = GoPrints(threading.Thread(), moved[1], moved[2])
    capture.thread = threading.Thread(
        target=_read, args=(read_end, capture), name="go-prints", daemon=True
    )
    capture.thread.start()
    _installed = capture
    return capture


def _repoint_handlers(moved: dict[int, TextIO]) -> None:
    """Every stream handler writing to the old sys.stdout/sys.stderr writes to its duplicate,
    including the background listener's (adapters/logs.py)."""
    from wapa.adapters import logs

    handlers: list[logging.Handler] = list(logging.getLogger().handlers)
    listener = getattr(logs, "_listener", None)
    handlers += list(getattr(listener, "handlers", ()))
    for handler in handlers:
        if isinstance(handler, logging.StreamHandler) and id(handler.stream) in moved:
            handler.setStream(moved[id(handler.stream)])


def _read(fd: int, capture: GoPrints) -> None:
    with open(fd, "rb", buffering=0) as pipe:
        pending = b""
        while True:
            chunk = pipe.read(65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            if len(pending) > 4 * LINE_MAX:  # a line without an end: logged in pieces
                lines.append(pending)
                pending = b""
            for raw in lines:
                _log_line(raw, capture)
        if pending:
            _log_line(pending, capture)


def _log_line(raw: bytes, capture: GoPrints) -> None:
    line = raw.decode("utf-8", "backslashreplace").rstrip("\r")
    if not line.strip():
        return
    capture.lines += 1
    cut = line[:LINE_MAX] + (" [...]" if len(line) > LINE_MAX else "")
    if capture.crashing or line.startswith(CRASH_STARTS):
        capture.crashing = True  # the process is about to end: no time for the log queue
        with contextlib.suppress(OSError, ValueError):
            os.write(capture.stderr.fileno(), (redact_numbers(cut) + "\n").encode())
        return
    log_event(log, logging.WARNING, "go_output", line=cut)
