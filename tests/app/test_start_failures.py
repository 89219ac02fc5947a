"""Every start-up failure of `wapa run` exits non-zero within seconds with one clear line.

Subprocess tests with a timeout: before the fix, a taken HTTP port or an unknown host left a
traceback and a process that never exited (the store's worker thread kept it alive), so a
supervisor's restart policy never fired.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_TIMEOUT = 30.0  # generous for a slow CI box; a healthy failure takes about a second


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WAPA_", "CLOUDFLARE_", "AI_", "OPENAI_"))
    }
    env.update(
        {
            # a model that is never called: these runs stop before any message
            "CLOUDFLARE_API_BASE": "http://127.0.0.1:9/client/v4",
            "CLOUDFLARE_API_TOKEN": "fake-token",
            "CLOUDFLARE_ACCOUNT_ID": "0123456789abcdef0123456789abcdef",
            "WAPA_DB": str(tmp_path / "wapa.db"),
            "WAPA_HTTP_HOST": "127.0.0.1",
            "WAPA_HTTP_PORT": "0",
            "WAPA_LOG_LEVEL": "warning",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def _run(env: dict[str, str]) -> tuple[int, str, float]:
    began = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "wapa", "run", "--transport", "console"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
        pytest.fail(f"wapa run did not exit within {_TIMEOUT:g} s; stderr:\n{err[-3000:]}")
    return done.returncode, done.stderr, time.monotonic() - began


def _one_clear_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    human = [line for line in stderr.splitlines() if line.startswith("wapa run: ")]
    assert len(human) == 1, stderr
    return human[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_http_port_taken_exits_with_one_line(tmp_path: Path, taken_port: int) -> None:
    code, stderr, took = _run(_env(tmp_path, WAPA_HTTP_PORT=str(taken_port)))
    assert code == 1
    line = _one_clear_line(stderr)
    assert f"127.0.0.1:{taken_port}" in line and "already in use" in line.lower(), line
    assert "WAPA_HTTP_PORT" in line
    assert took < 20


def test_unknown_http_host_exits_with_one_line(tmp_path: Path) -> None:
    code, stderr, _ = _run(_env(tmp_path, WAPA_HTTP_HOST="not-a-host.invalid"))
    assert code == 1
    line = _one_clear_line(stderr)
    assert "not-a-host.invalid" in line and "WAPA_HTTP_HOST" in line, line


def test_unusable_record_path_stops_the_start(tmp_path: Path) -> None:
    """WAPA_RECORD asked for and unusable: refused at start (exit 2, the variable named), so
    a recording never goes silently missing (docs/runner.md, "Recording traffic")."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    record = blocker / "traffic.jsonl"  # its folder is a file: cannot be created
    code, stderr, _ = _run(_env(tmp_path, WAPA_RECORD=str(record)))
    assert code == 2
    line = _one_clear_line(stderr)
    assert line.startswith("wapa run: WAPA_RECORD: cannot write") and str(record) in line, line


def test_unusable_database_exits_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    code, stderr, _ = _run(_env(tmp_path, WAPA_DB=str(tmp_path / "db")))
    assert code == 1
    assert str(tmp_path / "db") in _one_clear_line(stderr)


def test_unreadable_saved_state_exits_with_one_line(tmp_path: Path) -> None:
    import asyncio
    import sqlite3

    from wapa.adapters.store import Store

    db = tmp_path / "wapa.db"

    async def create() -> None:
        await (await Store.open(db)).close()

    asyncio.run(create())
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO assistant (id, state, updated) VALUES (1, ?, 0)", (b"{not json",))
    code, stderr, _ = _run(_env(tmp_path))
    assert code == 1
    line = _one_clear_line(stderr)
    assert str(db) in line and "not valid JSON" in line, line
