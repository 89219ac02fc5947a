"""The runner in-process: real core, real SQLite store, fake WhatsApp/model, manual clock."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from wapa.adapters.logs import setup_logging
from wapa.adapters.store import Store
from wapa.adapters.store.protocol import OutboxEntry
from wapa.config import load_settings
from wapa.core import Assistant, Message, Persona, Policy
from wapa.core.driver import Batch
from wapa.runner import Runner

from tests.adapters.test_http import http_get
from tests.support.runner import (
    FakeModel,
    FakeTransport,
    ManualClock,
    contact,
    settle,
    until,
)

OWNER = "15550000000@s.whatsapp.net"
ENV = {
    "WAPA_RESPONSE_DELAY": "10s",
    "WAPA_TYPING_MIN": "1s",
    "WAPA_TYPING_MAX": "2s",
    "WAPA_OWNER_ID": OWNER,
    "WAPA_OWNER_NAME": "Gilad",
    "WAPA_SEED": "7",
}


class JournalStore:
    """The real store, with each commit written to the shared journal (to check ordering)."""

    def __init__(self, store: Store, journal: list[tuple[Any, ...]], fail: bool = False) -> None:
        self.store, self.journal, self.fail = store, journal, fail

    @property
    def encrypted(self) -> bool:
        return self.store.encrypted

    async def load(self, policy: Policy | None, persona: Persona | None) -> Assistant | None:
        return await self.store.load(policy, persona)

    async def save(self, batch: Batch, *, values: Mapping[str, str] | None = None) -> None:
        if self.fail:
            raise OSError("disk full")
        await self.store.save(batch, values=values)
        kinds = tuple(type(e).__name__ for e in batch.effects())
        self.journal.append(("commit", kinds, tuple(type(e).__name__ for e in batch.events())))

    async def get_value(self, name: str) -> str | None:
        return await self.store.get_value(name)

    async def unconfirmed_sends(self) -> list[OutboxEntry]:
        return await self.store.unconfirmed_sends()

    async def close(self) -> None:
        await self.store.close()


class Harness:
    def __init__(self, tmp_path: Path, env: dict[str, str] | None = None) -> None:
        self.settings = load_settings({**ENV, "WAPA_DB": str(tmp_path / "w.db"), **(env or {})})
        self.journal: list[tuple[Any, ...]] = []
        self.clock = ManualClock()
        self.transport = FakeTransport(self.journal)
        self.model = FakeModel()
        self.store_fail = False
        self.runner: Runner | None = None
        self.task: asyncio.Task[int] | None = None

    async def start(self, **kw: Any) -> Runner:
        store = JournalStore(await Store.open(self.settings.db), self.journal, self.store_fail)
        kw.setdefault("http", False)
        self.runner = Runner(
            self.settings,
            self.transport,
            store,
            self.model,
            clock=self.clock,
            sleep=self.clock.sleep,
            install_signals=False,
            monitor_interval=0,
            **kw,
        )
        self.task = asyncio.create_task(self.runner.run())
        self.transport.runner = self.runner
        loop = asyncio.get_running_loop()
        end = loop.time() + 5
        while self.transport.on_message is None and loop.time() < end:
            await asyncio.sleep(0.001)  # store opening and loading run in aiosqlite's thread
        assert self.transport.on_message is not None, "runner did not start"
        await settle(self.runner)
        return self.runner

    async def stop(self) -> int:
        assert self.runner is not None and self.task is not None
        self.runner.request_stop("test")
        return await asyncio.wait_for(self.task, 5)


async def test_reply_after_delay_with_state_committed_before_each_effect(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.start()
    await h.transport.deliver(contact("hello, are you there?"))
    await h.clock.advance(runner=h.runner, seconds=5)
    assert h.transport.sent == []  # not before the delay
    await h.clock.advance(runner=h.runner, seconds=10)
    assert [s[1] for s in h.transport.sent] == ["Thanks, I will pass it on."]
    names = [j[0] for j in h.journal]
    assert names.index("mark_read") < names.index("typing") < names.index("send")
    # the step whose effects include Send was committed before transport.send ran
    send_at = names.index("send")
    commits = [i for i, j in enumerate(h.journal) if j[0] == "commit" and "Send" in j[1]]
    assert commits and commits[0] < send_at
    assert len(h.model.calls) == 1
    assert await h.stop() == 0
    assert h.transport.stopped
    ok, body = h.runner.health()  # type: ignore[union-attr]
    assert body["components"]["runner"]["state"] == "stopped"


async def test_model_auth_rejected_turns_health_red_and_stops_model_calls(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.model.fail_kind = "auth"
    runner = await h.start()
    assert runner.health()[0] is True
    await h.transport.deliver(contact("hi", mid="a1"))
    await h.clock.advance(runner=h.runner, seconds=15)
    ok, body = runner.health()
    assert not ok and body["components"]["model"]["state"] == "auth_rejected"
    await h.transport.deliver(contact("hi again", chat="15557654321@s.whatsapp.net", mid="b1"))
    await h.clock.advance(runner=h.runner, seconds=15)
    assert len(h.model.calls) == 1  # the second chat never reached the model
    assert h.transport.sent == []
    text = runner.render_metrics().decode()
    assert 'wapa_model_failures_total{kind="auth"} 2.0' in text
    await h.stop()


async def test_malformed_inbound_event_costs_one_event(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    runner = await h.start()
    await h.transport.deliver("not a message")
    await h.transport.deliver(Message(123, None, 5, None))  # type: ignore[arg-type]
    await h.transport.deliver(contact("still here?"))
    await h.clock.advance(runner=h.runner, seconds=15)
    assert len(h.transport.sent) == 1
    text = runner.render_metrics().decode()
    assert "wapa_bad_events_total 1.0" in text
    assert 'wapa_decisions_total{reason="bad_event"} 1.0' in text
    await h.stop()


async def test_planted_phrase_and_number_appear_in_no_log_line(tmp_path: Path) -> None:
    stream = io.StringIO()
    setup_logging("DEBUG", show_content=False, stream=stream)
    phrase, number = "purple elephant secret", "972541234567"
    h = Harness(tmp_path)
    h.model.reply = f"About the {phrase}: call {number} later."
    await h.start()
    chat = f"{number}@s.whatsapp.net"
    await h.transport.deliver(
        Message(chat, chat, "p1", f"my {phrase}, +972 54 123 4567", sender_name="Dana Phone")
    )
    await h.clock.advance(runner=h.runner, seconds=15)
    await h.transport.deliver(Message(chat, OWNER, "p2", f"{phrase} again", from_me=True))
    await h.stop()
    lines = stream.getvalue().splitlines()
    assert len(lines) > 10 and all(json.loads(line) for line in lines)
    assert h.transport.sent  # the traffic really went through
    for needle in (phrase, number, "+972 54 123 4567", "541234567", "Dana Phone"):
        assert not [line for line in lines if needle in line], needle
    corrs = {json.loads(line).get("corr") for line in lines if '"decision"' in line}
    assert len(corrs - {None}) >= 1
    logging.getLogger().handlers.clear()


async def test_log_content_on_shows_text(tmp_path: Path) -> None:
    stream = io.StringIO()
    setup_logging("INFO", show_content=True, stream=stream)
    h = Harness(tmp_path)
    await h.start()
    await h.transport.deliver(contact("visible words"))
    await h.stop()
    assert "visible words" in stream.getvalue()
    logging.getLogger().handlers.clear()


async def test_correlation_id_follows_one_message_to_its_send(tmp_path: Path) -> None:
    stream = io.StringIO()
    setup_logging("INFO", stream=stream)
    h = Harness(tmp_path)
    await h.start()
    await h.transport.deliver(contact("hello"))
    await h.clock.advance(runner=h.runner, seconds=15)
    await h.stop()
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    corr = next(r["corr"] for r in records if r["event"] == "message_in")
    events = {r["event"] + ":" + r.get("code", "") for r in records if r.get("corr") == corr}
    for wanted in (
        "decision:scheduled",
        "decision:generating",
        "generated:",
        "sent:",
        "decision:send_confirmed",
    ):
        assert wanted in events, (wanted, events)
    logging.getLogger().handlers.clear()


async def test_a_backlog_after_downtime_is_logged_with_its_age_and_not_answered(
    tmp_path: Path,
) -> None:
    stream = io.StringIO()
    setup_logging("INFO", stream=stream)
    h = Harness(tmp_path)
    await h.start()
    chat = "15551234567@s.whatsapp.net"
    old = Message(chat, chat, "old1", "sent while wapa was down", sent_at=h.clock() - 7200)
    fresh = Message(
        "15557654321@s.whatsapp.net",
        "15557654321@s.whatsapp.net",
        "new1",
        "just now",
        sent_at=h.clock() - 3,
    )
    await h.transport.deliver(old)
    await h.transport.deliver(fresh)
    await h.clock.advance(runner=h.runner, seconds=15)
    await h.stop()
    assert [s[0] for s in h.transport.sent] == [fresh.chat]  # the backlog is context only
    ages = [
        json.loads(line).get("age_s")
        for line in stream.getvalue().splitlines()
        if '"message_in"' in line
    ]
    assert ages == [7200.0, 3.0]
    logging.getLogger().handlers.clear()


async def test_status_notice_has_model_budget(tmp_path: Path) -> None:
    """The core writes the budget into `status` from what the last model result said; the
    runner adds nothing to the notice (and the budget is kept in the stored state)."""
    h = Harness(tmp_path)
    await h.start()
    await h.transport.deliver(Message(OWNER, OWNER, "c1", "status", from_me=True))
    assert "Model budget" not in h.transport.notices[0]  # no model result yet
    await h.transport.deliver(contact("hello"))
    await h.clock.advance(runner=h.runner, seconds=15)
    assert await h.stop() == 0
    h2 = Harness(tmp_path)
    h2.clock.t = h.clock.t + 5
    await h2.start()
    await h2.transport.deliver(Message(OWNER, OWNER, "c2", "status", from_me=True))
    await h2.stop()
    assert len(h2.transport.notices) == 1
    assert "wapa is active" in h2.transport.notices[0]
    assert "Model budget left today: 9876 neurons." in h2.transport.notices[0]


async def test_logged_out_health_red_and_sends_fail_fast(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    runner = await h.start()
    assert h.transport.on_lifecycle is not None
    h.transport.on_lifecycle("logged_out", "device removed")
    h.transport.sendable = False
    ok, body = runner.health()
    assert not ok and body["components"]["whatsapp"]["state"] == "logged_out"
    assert "run `wapa pair` again" in body["components"]["whatsapp"]["reason"]
    await h.transport.deliver(contact("hello"))
    await h.clock.advance(runner=h.runner, seconds=15)
    assert not [j for j in h.journal if j[0] == "send"]
    text = runner.render_metrics().decode()
    assert 'wapa_decisions_total{reason="send_failed"} 1.0' in text
    assert 'wapa_lifecycle_events_total{kind="logged_out"} 1.0' in text
    await h.stop()


async def test_stream_replaced_stops_sending_but_keeps_running_until_signalled(
    tmp_path: Path,
) -> None:
    """Exiting would let `restart: unless-stopped` start a client that takes the session back
    from the other one, over and over: wapa stays up, red, silent, until told to stop."""
    stream = io.StringIO()
    setup_logging("INFO", stream=stream)
    h = Harness(tmp_path, {"WAPA_HTTP_PORT": "0", "WAPA_HTTP_HOST": "127.0.0.1"})
    runner = await h.start(http=True)
    await h.transport.deliver(contact("hello"))
    assert h.transport.on_lifecycle is not None
    h.transport.sendable = False  # what NeonizeTransport.can_send() says once replaced
    h.transport.on_lifecycle("stream_replaced", "another WhatsApp Web client took over")
    h.transport.on_lifecycle("disconnected", "connection lost")  # does not hide the cause
    h.transport.on_lifecycle("stream_replaced", "again")
    await h.clock.advance(runner=runner, seconds=60)
    assert not h.task.done()  # type: ignore[union-attr]
    assert not [j for j in h.journal if j[0] in ("send", "stop")]
    assert runner.http_port
    status, body = await http_get(runner.http_port, "/healthz")
    whatsapp = json.loads(body)["components"]["whatsapp"]
    assert status == 503 and whatsapp["state"] == "replaced" and not whatsapp["can_send"]
    assert "another WhatsApp client" in whatsapp["reason"]
    assert "Stop the other client, then restart wapa" in whatsapp["reason"]
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    said = [r for r in records if r["event"] == "whatsapp_stream_replaced"]
    assert len(said) == 1 and said[0]["level"] == "error" and "restart wapa" in said[0]["hint"]
    await h.transport.deliver(contact("anyone?", mid="m2"))  # still handled and committed
    runner._on_signal(signal.SIGTERM)
    assert await asyncio.wait_for(h.task, 5) == 0  # type: ignore[arg-type]
    store = await Store.open(h.settings.db)
    restored = await store.load(h.settings.policy, h.settings.persona)
    await store.close()
    assert restored is not None and len(restored.chats) == 1  # the state is kept
    logging.getLogger().handlers.clear()


async def test_store_failure_carries_out_nothing_and_exits_1(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    runner = await h.start()
    runner.store.fail = True  # type: ignore[attr-defined]
    await h.transport.deliver(contact("hello"))
    assert await asyncio.wait_for(h.task, 5) == 1  # type: ignore[arg-type]
    assert runner.health()[0] is False
    assert [j for j in h.journal if j[0] in ("send", "typing", "mark_read")] == []


async def test_shutdown_waits_for_a_send_under_way(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.transport.send_gate = asyncio.Event()
    await h.start()
    await h.transport.deliver(contact("hello"))
    await h.clock.advance(15)  # not waiting for idle: the gated send keeps the runner busy
    await until(lambda: any(j[0] == "send" for j in h.journal))
    assert not h.transport.sent
    h.runner.request_stop("test")  # type: ignore[union-attr]
    await settle()
    assert not h.task.done()  # type: ignore[union-attr]
    h.transport.send_gate.set()
    assert await asyncio.wait_for(h.task, 5) == 0  # type: ignore[arg-type]
    assert len(h.transport.sent) == 1
    # the confirmation arrived during shutdown and was committed: no "unknown" after restart
    store = await Store.open(h.settings.db)
    assert await store.unconfirmed_sends() == []
    await store.close()


async def test_restart_sends_the_pending_reply_exactly_once(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.start()
    await h.transport.deliver(contact("hello"))
    await h.clock.advance(runner=h.runner, seconds=5)  # mid-delay
    assert await h.stop() == 0
    assert h.transport.sent == []
    h2 = Harness(tmp_path)
    h2.clock.t = h.clock.t + 3
    await h2.start()
    await h2.clock.advance(runner=h2.runner, seconds=20)
    assert len(h2.transport.sent) == 1
    assert await h2.stop() == 0
    h3 = Harness(tmp_path)
    h3.clock.t = h2.clock.t + 3
    await h3.start()
    await h3.clock.advance(runner=h3.runner, seconds=20)
    assert h3.transport.sent == []
    await h3.stop()


async def test_metrics_and_health_contents(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    runner = await h.start()
    await h.transport.deliver(contact("hello"))
    text = runner.render_metrics().decode()
    assert "wapa_pending_chats 1.0" in text
    await h.clock.advance(runner=h.runner, seconds=15)
    text = runner.render_metrics().decode()
    for wanted in (
        'wapa_messages_in_total{kind="contact"} 1.0',
        "wapa_replies_sent_total 1.0",
        'wapa_decisions_total{reason="scheduled"} 1.0',
        "wapa_model_requests_total 1.0",
        "wapa_model_retries_total 1.0",
        "wapa_model_neurons_total 1.5",
        "wapa_model_latency_seconds_count 1.0",
        "wapa_cooling_chats 1.0",
        "wapa_pending_chats 0.0",
        "wapa_resident_memory_bytes",
        "wapa_event_loop_lag_seconds",
    ):
        assert wanted in text, wanted
    ok, body = runner.health()
    assert ok and body["status"] == "ok"
    assert set(body["components"]) == {"whatsapp", "store", "model", "runner"}
    assert body["components"]["model"] == {"state": "ok", "budget_left": 9876.0}
    await h.stop()


async def test_memory_warning_once_with_allocation_sites(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    h = Harness(tmp_path, {"WAPA_MEMORY_WARN_MB": "1"})
    runner = await h.start()
    with caplog.at_level(logging.INFO, logger="wapa.health"):
        runner.monitor.check(2 * 2**20)
        runner.monitor.check(3 * 2**20)
    warnings = [r for r in caplog.records if r.msg == "memory_high"]
    assert len(warnings) == 1
    assert warnings[0].fields["top_allocations"]  # type: ignore[attr-defined]
    await h.stop()


async def test_owner_id_comes_from_the_paired_account_when_left_default(tmp_path: Path) -> None:
    h = Harness(tmp_path, {"WAPA_OWNER_ID": ""})
    h.transport.own_jid = OWNER  # type: ignore[attr-defined]
    runner = await h.start()
    assert runner.assistant is not None and runner.assistant.persona.owner_id == OWNER
    await h.transport.deliver(Message(OWNER, OWNER, "c1", "pause", from_me=True))
    await h.stop()
    assert h.transport.notices and h.transport.notices[0].startswith("Paused")


async def test_a_core_bug_costs_one_step_and_is_logged_with_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = Assistant.handle

    def handle(self: Assistant, event: Any, now: float) -> Any:
        if isinstance(event, Message) and event.text == "boom":
            raise RuntimeError("a bug in the core")
        return real(self, event, now)

    monkeypatch.setattr(Assistant, "handle", handle)
    h = Harness(tmp_path)
    runner = await h.start()
    with caplog.at_level(logging.ERROR, logger="wapa.runner"):
        await h.transport.deliver(contact("boom", chat="15557654321@s.whatsapp.net", mid="x1"))
    await h.transport.deliver(contact("hello"))
    await h.clock.advance(runner=h.runner, seconds=15)
    assert len(h.transport.sent) == 1  # the next message went through as usual
    text = runner.render_metrics().decode()
    assert "wapa_bad_events_total 1.0" in text
    assert 'wapa_decisions_total{reason="bad_event"} 1.0' in text
    (failed,) = [r for r in caplog.records if r.msg == "core_step_failed"]
    assert "a bug in the core" in failed.fields["traceback"]  # type: ignore[attr-defined]
    assert await h.stop() == 0
