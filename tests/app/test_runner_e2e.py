"""End to end: `wapa run --transport console` in a subprocess against the fake Cloudflare server.

Feeds messages on stdin, sees typing then a reply after the delay, queries /healthz and
/metrics, sends SIGTERM mid-delay (exit 0), restarts on the same database and sees the pending
reply sent exactly once. Waiting polls the output with a timeout (the real runner runs on the
real clock here); the delays are a second or two.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from wapa.sim.fake_cloudflare import FakeCloudflare

from tests.support.console_process import ConsoleWapa

ROOT = Path(__file__).resolve().parents[2]


Wapa = ConsoleWapa  # `wapa run --transport console` in a subprocess (tests/support)


@pytest.fixture
def cloudflare() -> Iterator[FakeCloudflare]:
    with FakeCloudflare(latency=0.05) as fake:
        yield fake


def _get(url: str) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_console_end_to_end_with_sigterm_and_restart(
    tmp_path: Path, cloudflare: FakeCloudflare
) -> None:
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("WAPA_", "CLOUDFLARE_", "AI_", "OPENAI_"))
        },
        **cloudflare.env(),
        "WAPA_DB": str(tmp_path / "wapa.db"),
        "WAPA_HTTP_PORT": "0",
        "WAPA_RESPONSE_DELAY": "1s",
        "WAPA_TYPING_MIN": "200ms",
        "WAPA_TYPING_MAX": "400ms",
        "WAPA_OWNER_NAME": "Gilad",
        "WAPA_SHUTDOWN_TIMEOUT": "5s",
        "PYTHONUNBUFFERED": "1",
    }
    first = Wapa(env)
    try:
        port = int(first.expect(r"^\[http\] ").rsplit(":", 1)[1])
        first.say("alice: hello there")
        first.expect(r"^\[decision\] alice scheduled: reply due")
        first.expect(r"^\[typing\] alice on")
        sent = first.expect(r"^\[send\] alice: ")
        assert "hello there" in sent  # the fake model's reply names the message
        first.expect(r"^\[decision\] alice send_confirmed")
        status, body = _get(f"http://127.0.0.1:{port}/healthz")
        health = json.loads(body)
        assert status == 200 and health["status"] == "ok", health
        assert health["components"]["whatsapp"]["transport"] == "console"
        status, metrics = _get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        assert b"wapa_replies_sent_total 1.0" in metrics
        assert b'wapa_decisions_total{reason="scheduled"} 1.0' in metrics
        assert b"wapa_model_requests_total 1.0" in metrics
        # a second contact, then SIGTERM while its reply is still waiting for the delay
        first.say("bob: are you free tomorrow?")
        first.expect(r"^\[decision\] bob scheduled")
        assert first.stop() == 0
        assert not [line for line in first.seen if line.startswith("[send] bob")]
    finally:
        first.kill()

    second = Wapa(env)
    try:
        second.expect(r"^\[http\] ")
        second.expect(r"^\[send\] bob: ", timeout=20)
        second.expect(r"^\[decision\] bob send_confirmed")
        assert second.stop() == 0
    finally:
        second.kill()
    everything = first.seen + second.seen
    assert len([line for line in everything if line.startswith("[send] bob: ")]) == 1
    assert len([line for line in everything if line.startswith("[send] alice: ")]) == 1
    # logs are JSON lines on stderr
    assert all(json.loads(line) for line in first.stderr + second.stderr if line.strip())


def test_bad_configuration_stops_with_one_line_naming_the_variable(tmp_path: Path) -> None:
    env = {**os.environ, "WAPA_RESPONSE_DELAY": "soon", "WAPA_DB": str(tmp_path / "w.db")}
    proc = subprocess.run(
        [sys.executable, "-m", "wapa", "run", "--transport", "console"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wapa run: WAPA_RESPONSE_DELAY: "), lines


def test_exit_on_eof_finishes_pending_replies(tmp_path: Path, cloudflare: FakeCloudflare) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("WAPA_", "CLOUDFLARE_"))},
        **cloudflare.env(),
        "WAPA_DB": str(tmp_path / "wapa.db"),
        "WAPA_HTTP_PORT": "0",
        "WAPA_RESPONSE_DELAY": "500ms",
        "WAPA_TYPING_MIN": "100ms",
        "WAPA_TYPING_MAX": "200ms",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "wapa", "run", "--transport", "console", "--exit-on-eof"],
        cwd=ROOT,
        env=env,
        input="carol: hi\nnot a valid line\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout.splitlines()
    assert any(line.startswith("[error] expected 'NAME: text'") for line in out), out
    assert len([line for line in out if line.startswith("[send] carol: ")]) == 1, out
