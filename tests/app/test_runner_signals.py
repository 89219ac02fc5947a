"""A second SIGTERM exits at once (status 143) while the first shutdown still waits for a
generation, and the store file then opens and loads cleanly: `wapa run --transport console`
in a subprocess against a slow fake Cloudflare server. Waiting polls briefly; nothing waits
for the slow model."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from wapa.adapters.store import Store
from wapa.config import load_settings
from wapa.sim.fake_cloudflare import FakeCloudflare

from tests.support.console_process import ConsoleWapa as Wapa


def _poll(condition: Callable[[], bool], what: str, proc: Wapa, timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end or proc.proc.poll() is not None:
            raise AssertionError(f"{what}: not reached; stderr:\n" + "".join(proc.stderr[-20:]))
        time.sleep(0.02)


def test_second_sigterm_exits_at_once_and_the_store_stays_sound(tmp_path: Path) -> None:
    db = tmp_path / "wapa.db"
    with FakeCloudflare(latency=120.0) as cloudflare:  # a generation that will not finish
        env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("WAPA_", "CLOUDFLARE_", "AI_", "OPENAI_"))
            },
            **cloudflare.env(),
            "WAPA_DB": str(db),
            "WAPA_HTTP_PORT": "0",
            "WAPA_OWNER_NAME": "Gilad",
            "WAPA_RESPONSE_DELAY": "200ms",
            "WAPA_TYPING_MIN": "100ms",
            "WAPA_TYPING_MAX": "200ms",
            "WAPA_SHUTDOWN_TIMEOUT": "60s",
            "PYTHONUNBUFFERED": "1",
        }
        wapa = Wapa(env)
        try:
            wapa.expect(r"^\[http\] ")
            wapa.say("alice: hello, are you there?")
            wapa.expect(r"^\[decision\] alice scheduled")
            _poll(lambda: len(cloudflare.requests) == 1, "a generation under way", wapa)
            wapa.proc.send_signal(signal.SIGTERM)
            _poll(
                lambda: any('"shutdown_waiting"' in line for line in wapa.stderr),
                "the first shutdown waiting for the generation",
                wapa,
            )
            assert wapa.proc.poll() is None  # still waiting: 60 s of shutdown timeout
            started = time.monotonic()
            wapa.proc.send_signal(signal.SIGTERM)
            code = wapa.proc.wait(10)
            assert code == 128 + signal.SIGTERM == 143
            assert time.monotonic() - started < 5  # at once, not after the shutdown timeout
            # the line was written before the exit; the test's reader thread may lag behind it
            wapa.read_to_end()
            assert any('"exit_now"' in line for line in wapa.stderr), "".join(wapa.stderr[-20:])
        finally:
            wapa.kill()

    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()
    settings = load_settings({"WAPA_OWNER_NAME": "Gilad", "WAPA_DB": str(db)})

    async def load() -> None:
        store = await Store.open(db)
        try:
            a = await store.load(settings.policy, settings.persona)
            assert a is not None
            (chat,) = a.chats.values()
            assert chat.phase == "generating"  # the state committed before the model call
            assert await store.unconfirmed_sends() == []
        finally:
            await store.close()

    asyncio.run(load())
