"""The console's output for a person: JSON logs to a file (when stderr is a terminal), named in
the start banner, and a `sent` decision shown after its `[send]` line, not before."""

from __future__ import annotations

import asyncio
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from wapa.adapters.console import ConsoleTransport, console_log_path, open_console_log
from wapa.core import Decision
from wapa.sim.fake_cloudflare import FakeCloudflare

from tests.support.console_process import ROOT, clean_env


def _console() -> tuple[ConsoleTransport, io.StringIO]:
    out = io.StringIO()
    return ConsoleTransport("me", "Gilad", stdin=io.StringIO(""), stdout=out), out


def test_a_sent_decision_waits_for_its_send_line() -> None:
    t, out = _console()
    t.show_decision(Decision(0.0, "alice", "reply_ready", "reply ready", "r1"))
    t.show_decision(Decision(0.0, "alice", "sent", "reply sent; quiet until later", "r1"))
    t.show_decision(Decision(0.0, "bob", "scheduled", "reply due soon"))  # another chat: at once
    asyncio.run(t.send("alice", "Hi Alice"))
    t.show_decision(Decision(0.0, "alice", "send_confirmed", "WhatsApp accepted the reply", "r1"))
    assert out.getvalue().splitlines() == [
        "[decision] alice reply_ready: reply ready",
        "[decision] bob scheduled: reply due soon",
        "[send] alice: Hi Alice",
        "[decision] alice sent: reply sent; quiet until later",
        "[decision] alice send_confirmed: WhatsApp accepted the reply",
    ]


def test_a_held_decision_is_shown_at_stop_when_its_send_never_came() -> None:
    t, out = _console()
    t.show_decision(Decision(0.0, "alice", "sent", "reply sent", "r1"))
    t.show_decision(Decision(0.0, "alice", "kept", "after it", "r1"))
    assert out.getvalue() == ""
    asyncio.run(t.stop())
    assert out.getvalue().splitlines() == [
        "[decision] alice sent: reply sent",
        "[decision] alice kept: after it",
    ]


def test_logs_go_to_a_file_only_when_stderr_is_a_terminal(tmp_path: Path) -> None:
    db = str(tmp_path / "data" / "wapa.db")
    assert open_console_log(db, io.StringIO()) == (None, "")  # redirected: stderr keeps them
    leader, follower = os.openpty()
    try:
        with os.fdopen(os.dup(follower), "w") as tty:
            stream, path = open_console_log(db, tty)
        assert stream is not None and path == str(tmp_path / "data" / "wapa.log")
        stream.close()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(tmp_path / "data").st_mode) == 0o700
        with os.fdopen(os.dup(follower), "w") as tty:
            assert open_console_log(":memory:", tty) == (None, "")
    finally:
        os.close(leader)
        os.close(follower)
    assert console_log_path("data/wapa.db") == Path("data/wapa.log")


def test_the_console_at_a_terminal_keeps_json_off_it(tmp_path: Path) -> None:
    """`wapa run --transport console` with stderr on a pseudo-terminal, as a person runs it."""
    leader, follower = os.openpty()
    try:
        with FakeCloudflare(latency=0.05) as cloudflare:
            env = clean_env(
                **cloudflare.env(),
                WAPA_DB=str(tmp_path / "wapa.db"),
                WAPA_HTTP_PORT="0",
                WAPA_RESPONSE_DELAY="200ms",
                WAPA_TYPING_MIN="100ms",
                WAPA_TYPING_MAX="200ms",
                WAPA_OWNER_NAME="Gilad",
            )
            proc = subprocess.run(
                [sys.executable, "-m", "wapa", "run", "--transport", "console", "--exit-on-eof"],
                cwd=ROOT,
                env=env,
                input="alice: hello there\n",
                stdout=subprocess.PIPE,
                stderr=follower,
                text=True,
                timeout=60,
            )
    finally:
        os.close(follower)
        terminal = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            terminal += chunk
        os.close(leader)
    assert proc.returncode == 0, proc.stdout
    lines = proc.stdout.splitlines()
    log = tmp_path / "wapa.log"
    assert any(f"JSON logs go to {log}" in line for line in lines), lines
    assert not [line for line in lines if line.startswith("{")], lines
    assert b'"event"' not in terminal  # nothing JSON on the terminal's stderr either
    events = [json.loads(line)["event"] for line in log.read_text().splitlines()]
    assert "message_in" in events and "sent" in events
    send = next(i for i, line in enumerate(lines) if line.startswith("[send] alice: "))
    decided = next(i for i, line in enumerate(lines) if line.startswith("[decision] alice sent:"))
    assert send < decided, lines
