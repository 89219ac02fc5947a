"""adapters/logs.py: JSON lines, redaction by default, correlation ids."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest
from wapa.adapters.logs import Redactor, correlation, flush_logging, log_event, setup_logging


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    yield out
    flush_logging()  # stops a background listener, if a test started one
    logging.getLogger().handlers.clear()


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_structured_event_with_redacted_content_and_numbers(stream: io.StringIO) -> None:
    setup_logging("INFO", stream=stream)
    log = logging.getLogger("wapa.test")
    log_event(
        log,
        logging.INFO,
        "message_in",
        chat="972541234567@s.whatsapp.net",
        text="secret words",
        sender_name="Dana",
        chars=12,
        detail="call +972 54-123-4567",
    )
    (rec,) = _lines(stream)
    assert rec["event"] == "message_in" and rec["level"] == "info" and "ts" in rec
    assert rec["text"] == "<12 chars>" and rec["sender_name"] == "<4 chars>" and rec["chars"] == 12
    assert str(rec["chat"]).startswith("<phone:") and str(rec["chat"]).endswith("@s.whatsapp.net")
    assert "972" not in json.dumps(rec) and "4567" not in json.dumps(rec)


def test_same_number_same_token_dates_and_ids_untouched() -> None:
    r = Redactor(key=b"k")
    a = r.scrub("15551234567@s.whatsapp.net")
    assert a == r.scrub("x 15551234567 y").split()[1] + "@s.whatsapp.net"
    for keep in ("2024-05-01 12:00:00", "3EB0C431D5A5F4C2E8F1", "r12", "in-3"):
        assert r.scrub(keep) == keep


def test_show_content_turns_redaction_off(stream: io.StringIO) -> None:
    setup_logging("INFO", show_content=True, stream=stream)
    log_event(logging.getLogger("t"), logging.INFO, "x", text="hello", chat="15551234567")
    (rec,) = _lines(stream)
    assert rec["text"] == "hello" and rec["chat"] == "15551234567"


def test_correlation_id_from_context_or_argument(stream: io.StringIO) -> None:
    setup_logging("INFO", stream=stream)
    log = logging.getLogger("t")
    token = correlation.set("abc-1")
    log_event(log, logging.INFO, "one")
    correlation.reset(token)
    log_event(log, logging.INFO, "two", corr="abc-2")
    log_event(log, logging.INFO, "three")
    assert [r.get("corr") for r in _lines(stream)] == ["abc-1", "abc-2", None]


def test_library_records_and_exceptions_are_scrubbed(stream: io.StringIO) -> None:
    setup_logging("INFO", stream=stream)
    logging.getLogger("neonize").warning("failed for %s", "15551234567@s.whatsapp.net")
    try:
        raise ValueError("bad jid 15551234567")
    except ValueError:
        log_event(logging.getLogger("t"), logging.ERROR, "oops", exc_info=True)
    lib, err = _lines(stream)
    assert lib["event"] == "library" and lib["logger"] == "neonize"
    assert "15551234567" not in stream.getvalue()
    assert str(err["error"]).startswith("ValueError: bad jid <phone:")


def test_level_filters(stream: io.StringIO) -> None:
    setup_logging("WARNING", stream=stream)
    log_event(logging.getLogger("t"), logging.INFO, "quiet")
    log_event(logging.getLogger("t"), logging.WARNING, "loud")
    assert [r["event"] for r in _lines(stream)] == ["loud"]


def test_background_logging_keeps_correlation_and_redaction_and_flushes(
    stream: io.StringIO,
) -> None:
    """`wapa run` formats logs on a listener thread: the correlation id must still be the one
    of the calling context, content still hidden, and nothing lost at flush."""
    setup_logging("INFO", stream=stream, background=True)
    token = correlation.set("c-42")
    try:
        for i in range(200):
            log_event(
                logging.getLogger("wapa.test"),
                logging.INFO,
                "bg_event",
                n=i,
                text="secret words",
                chat="972501234567@s.whatsapp.net",
            )
    finally:
        correlation.reset(token)
    flush_logging()
    lines = _lines(stream)
    assert [line["n"] for line in lines] == list(range(200))
    assert all(line["corr"] == "c-42" for line in lines)
    assert "secret" not in stream.getvalue() and "972501234567" not in stream.getvalue()


def test_timestamps_match_datetime_isoformat() -> None:
    from datetime import UTC, datetime

    from wapa.adapters.logs import JsonFormatter

    f = JsonFormatter(Redactor(key=b"k"))
    for t in (
        0.0,
        1.5,
        1714564800.0,
        1714564800.0005,
        1714564800.9995,
        1714564800.9999996,
        1714564801.0000004,
        1714564859.999,
        1714564860.001,
    ):
        assert f.timestamp(t) == datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


def test_background_writer_keeps_every_line_in_order_past_a_bad_record(
    stream: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    """Records written in batches: all of them, in order; one that cannot be formatted is
    reported on stderr (as StreamHandler does) and the others are still written."""

    class Unprintable:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    setup_logging("INFO", stream=stream, background=True)
    log = logging.getLogger("wapa.test")
    for i in range(500):
        log_event(log, logging.INFO, "n", i=i, bad=Unprintable() if i == 250 else None)
    flush_logging()
    assert [r["i"] for r in _lines(stream)] == [i for i in range(500) if i != 250]
    assert "no repr" in capsys.readouterr().err


def test_background_writer_loses_only_the_line_a_strict_stream_cannot_encode(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A batch is one write: a line the stream cannot encode (a lone surrogate, for a UTF-8
    file opened as `open_append` opens the console's log) must not take the batch's other
    lines with it. Only that line is lost, reported on stderr as StreamHandler reports it."""
    raw = io.BytesIO()
    strict = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", write_through=True)
    setup_logging("INFO", stream=strict, background=True)
    try:
        log = logging.getLogger("wapa.test")
        for i in range(100):
            log_event(log, logging.INFO, "n", i=i, detail="\ud800" if i == 40 else "ok")
    finally:
        flush_logging()
        logging.getLogger().handlers.clear()
    lines = [json.loads(line) for line in raw.getvalue().decode().splitlines()]
    assert [r["i"] for r in lines] == [i for i in range(100) if i != 40]
    assert "UnicodeEncodeError" in capsys.readouterr().err


def test_background_lines_are_written_when_the_process_exits_without_flush_logging() -> None:
    """An exit that skips `flush_logging()` (an exception out of start-up, a Ctrl+C before the
    runner's signal handlers) still writes every queued line: the writer is a daemon thread,
    which the interpreter would otherwise stop with the last batch unwritten."""
    child = (
        "import logging\n"
        "from wapa.adapters.logs import log_event, setup_logging\n"
        "setup_logging('INFO', background=True)\n"
        "for i in range(3):\n"
        "    log_event(logging.getLogger('wapa.test'), logging.WARNING, 'last_words', i=i)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, timeout=60, check=True
    )
    lines = [json.loads(line) for line in done.stderr.decode().splitlines()]
    assert [(r["event"], r["i"]) for r in lines] == [("last_words", i) for i in range(3)]


@pytest.mark.parametrize("leave", ["os._exit", "atexit"])
def test_an_exit_does_not_hang_on_a_stderr_pipe_nobody_reads(leave: str) -> None:
    """stderr is a pipe whose reader reads nothing: once its buffer is full the writer's write
    blocks. The exit still happens, `flush_logging` giving up after its timeout (here 0.5 s)
    and saying how many records were still queued (lost); the lines written before the pipe
    filled are whole JSON lines. Leaving as `wapa run` does (`os._exit` after `flush_logging`,
    not flushing a stuck stderr) or by an ordinary exit (logging's shutdown skips the stuck
    handler)."""
    child = (
        "import logging, sys\n"
        "from wapa.adapters.logs import flush_logging, log_event, setup_logging\n"
        "setup_logging('INFO', background=True)\n"
        "for i in range(5000):\n"
        "    log_event(logging.getLogger('wapa.test'), logging.INFO, 'line', i=i, pad='x' * 80)\n"
        "print(flush_logging(timeout=0.5), flush=True)\n"
        + ("import os; os._exit(0)\n" if leave == "os._exit" else "")
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", child], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        status = proc.wait(timeout=60)  # stderr unread until the child has exited
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert status == 0
    left = int(out.decode())
    lines = [json.loads(line) for line in err.decode().splitlines()[:-1]]  # last may be cut
    assert 0 < len(lines) < 5000 and left > 0
    assert [r["i"] for r in lines] == list(range(len(lines)))
    assert len(lines) + left < 5000  # the batch blocked in its write is lost too


def test_flush_logging_says_everything_was_written(stream: io.StringIO) -> None:
    setup_logging("INFO", stream=stream, background=True)
    log_event(logging.getLogger("wapa.test"), logging.INFO, "one")
    assert flush_logging() is None
    assert [r["event"] for r in _lines(stream)] == ["one"]
