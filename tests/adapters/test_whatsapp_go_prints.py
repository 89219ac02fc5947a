"""Defect 8 (issue 12): Go's own prints bypass Python's logging. neonize's Go side prints with
fmt.Println (fd 1) and println (fd 2), e.g. "SendMessage: Error sending message: <err with
JIDs>". `capture_go_prints` routes them into the JSON log, redacted; whatsmeow's own logger
already reaches Python's logging, at the level wapa sets. Each test runs in a child process:
it moves the process's file descriptors 1 and 2, which pytest's capture also uses."""

from __future__ import annotations

import importlib
import json
import logging
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from neonize.proto.Neonize_pb2 import LogEntry
from neonize.utils.enum import LogLevel
from wapa.adapters.logs import flush_logging, setup_logging
from wapa.adapters.whatsapp import quiet_neonize_logs

ROOT = Path(__file__).resolve().parents[2]
neonize_log = importlib.import_module("neonize.utils.log")  # the package re-exports a logger

CHILD = textwrap.dedent(
    """
    import logging, os, sys
    from wapa.adapters.logs import flush_logging, setup_logging
    from wapa.adapters.whatsapp.goprints import capture_go_prints
    from neonize._binder import gocode

    setup_logging("INFO", background=True)
    capture = capture_go_prints()
    bad_jid = b"\\x0a\\xff\\xff\\xff\\xff"
    gocode.SendMessage(b"no-client", bad_jid, len(bad_jid), b"", 0)  # Go prints on fd 1
    os.write(2, b"SendMessage: Error sending message: 972501234567@s.whatsapp.net: gone\\n")
    os.write(1, b"x" * 5000 + b"\\n")
    print("python's own stdout")
    logging.getLogger("wapa.test").warning("python's own log line")
    os.close(1)
    os.close(2)
    capture.thread.join(10)
    flush_logging()
    sys.stdout.flush()
    """
)


def _run_child() -> tuple[str, list[dict[str, object]]]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=True,
    )
    err = done.stderr.decode()
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert len(records) == len(err.splitlines()), err  # nothing but JSON on stderr
    return done.stdout.decode(), records


def test_go_prints_become_redacted_json_log_lines_and_python_output_stays_where_it_was() -> None:
    out, records = _run_child()
    assert out == "python's own stdout\n"  # no Go line on stdout
    lines = [str(r["line"]) for r in records if r["event"] == "go_output"]
    assert any(line.startswith("SendMessage: Error unmarshaling JID") for line in lines)
    [sent] = [line for line in lines if "Error sending message" in line]
    assert "972501234567" not in sent and "<phone:" in sent
    [long] = [line for line in lines if line.startswith("xxx")]
    assert len(long) < 2100 and long.endswith("[...]")
    assert any(r.get("msg") == "python's own log line" for r in records)


def test_whatsmeow_log_entries_reach_the_json_pipeline_redacted(
    tmp_path: Path,
) -> None:
    """neonize's log callback (what Go calls for each whatsmeow log entry) with a real
    LogEntry protobuf: the line comes out of wapa's pipeline with the number redacted."""
    stream = (tmp_path / "log.jsonl").open("w", encoding="utf-8")
    setup_logging("INFO", stream=stream)
    try:
        entry = LogEntry(
            Name="Client",
            Level="WARN",
            Message="Failed to send receipt to 972501234567@s.whatsapp.net",
        ).SerializeToString()
        neonize_log.log_whatsmeow(_address_of(entry), len(entry))
        neonize_log._log_queue.join()  # neonize's worker thread has handled it
    finally:
        flush_logging()
        logging.getLogger().handlers.clear()
        stream.close()
    [record] = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert record["logger"] == "whatsmeow.Client" and record["level"] == "warning"
    assert "972501234567" not in record["msg"] and "<phone:" in record["msg"]


def test_go_filters_below_warning_so_info_entries_are_never_formatted() -> None:
    quiet_neonize_logs()
    # neonize passes this logger's level to Go's logger when it connects (aioze/client.py)
    assert LogLevel.from_logging(neonize_log.log.level).level == b"WARN"
    assert logging.getLogger("whatsmeow").level == logging.WARNING


def _address_of(data: bytes) -> int:
    import ctypes

    buf = ctypes.create_string_buffer(data, len(data))
    _KEEP.append(buf)
    return ctypes.addressof(buf)


_KEEP: list[object] = []


def test_the_real_client_captures_go_prints_and_injected_clients_do_not() -> None:
    from wapa.adapters.whatsapp.client import NeonizeTransport

    assert NeonizeTransport("x.db")._capture_go_prints
    injected = NeonizeTransport("x.db", client_factory=lambda: None)
    assert not injected._capture_go_prints


def test_a_go_crash_trace_goes_straight_to_the_real_stderr_redacted(tmp_path: Path) -> None:
    """The process ends right after Go prints its crash: no waiting for the log queue."""
    from wapa.adapters.whatsapp.goprints import GoPrints, _log_line

    with (tmp_path / "stderr").open("w+", encoding="utf-8") as err:
        capture = GoPrints(threading.Thread(), sys.stdout, err)
        _log_line(b"fatal error: concurrent map read and map write", capture)
        _log_line(b"goroutine 7 [running]: send to 972501234567@s.whatsapp.net", capture)
        err.seek(0)
        written = err.read()
    assert capture.crashing and written.splitlines() == [
        "fatal error: concurrent map read and map write",
        "goroutine 7 [running]: send to <number>@s.whatsapp.net",
    ]
