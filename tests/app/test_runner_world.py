"""The pieces the runner is made of, each on its own: the AsyncWorld (lanes, refused sends,
draining), LinkHealth (the lifecycle-to-health mapping) and the correlation tables."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from wapa.adapters.correlation import KEPT, Correlations
from wapa.adapters.llm.service import ModelService
from wapa.adapters.metrics import Metrics
from wapa.adapters.whatsapp.link import LinkHealth
from wapa.core import (
    Decision,
    Event,
    Generate,
    Generated,
    MarkRead,
    Notice,
    Reason,
    Send,
    SendConfirmed,
    SendFailed,
    Typing,
)
from wapa.core.driver import Batch, Step, dispatch
from wapa.world import AsyncWorld

from tests.support.runner import FakeModel, FakeTransport, settle

A, B = "15551110000@s.whatsapp.net", "15552220000@s.whatsapp.net"


class Harness:
    def __init__(self) -> None:
        self.transport = FakeTransport()
        self.model = FakeModel()
        self.events: list[tuple[Event, str]] = []
        self.metrics = Metrics()
        self.world = AsyncWorld(
            self.transport,
            ModelService(self.model, metrics=self.metrics),
            lambda e, corr: self.events.append((e, corr)),
            self.metrics,
            LinkHealth(),
        )

    def run(self, *effects: Any, tag: str = "c-1") -> None:
        step = Step("event", 0.0, None, tuple(effects), tag)
        dispatch(Batch((step,), {}, {}, 0.0), self.world)


async def test_lanes_keep_order_within_a_chat_and_run_chats_concurrently() -> None:
    h = Harness()
    h.transport.send_gate = asyncio.Event()  # chat A's send hangs until the gate opens
    h.run(
        MarkRead(A, ("m1",)),
        Send("r1", A, "first"),
        Typing(A, False),
        MarkRead(B, ("m2",)),
        Send("r2", B, "second"),
    )
    await settle()
    journal = h.transport.journal
    # B went ahead while A's send waits; A's typing waits behind A's send
    assert ("typing", A, False) not in journal
    assert [j[0] for j in journal if j[1] == B] == ["mark_read", "send"]
    assert h.world.busy()
    h.transport.send_gate.set()
    await settle()
    assert [j[0] for j in journal if j[1] == A] == ["mark_read", "send", "typing"]
    assert [type(e) for e, _ in h.events] == [SendConfirmed, SendConfirmed]
    assert {corr for _, corr in h.events} == {"c-1"}
    assert not h.world.busy()


async def test_a_lane_is_one_task_for_the_actions_waiting_and_ends_when_they_are_done() -> None:
    h = Harness()
    h.transport.send_gate = asyncio.Event()
    h.run(MarkRead(A, ("m1",)), Typing(A, True), Send("r1", A, "first"))
    h.run(Typing(A, False), tag="c-2")  # a later step: joins the lane still running
    await settle()
    assert len(h.world.inflight) == 1  # one task for chat A's four actions
    h.transport.send_gate.set()
    await settle()
    assert [j[0] for j in h.transport.journal] == ["mark_read", "typing", "send", "typing"]
    assert not h.world.busy() and not h.world._lanes
    h.run(MarkRead(A, ("m2",)), tag="c-3")  # the lane was gone: a new one starts
    await settle()
    assert h.transport.journal[-1] == ("mark_read", A, ("m2",))


async def test_an_action_that_raises_is_logged_and_the_lane_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness()

    async def broken(chat: str, on: bool) -> None:
        raise RuntimeError("a bug in the transport")

    h.transport.typing = broken  # type: ignore[method-assign]
    h.run(Send("r1", A, "first"))  # the lane (the send's)...
    h.world._lane(A, h.transport.typing(A, True), "c-9")  # ...an action that raises...
    h.run(Typing(A, True), MarkRead(A, ("m1",)))  # ...a typing that fails, and a read mark
    with caplog.at_level(logging.WARNING, logger="wapa.runner"):
        await settle()
    assert [j[0] for j in h.transport.journal] == ["send", "mark_read"]
    fields = {r.msg: r.fields for r in caplog.records}  # type: ignore[attr-defined]
    failed = {event: f["error"] for event, f in fields.items() if event.endswith("_failed")}
    assert failed == {
        "transport_action_failed": "RuntimeError: a bug in the transport",
        "typing_failed": "RuntimeError: a bug in the transport",
    }
    assert not h.world.busy() and not h.world._lanes


async def test_a_lane_cancelled_before_it_ran_closes_its_actions() -> None:
    h = Harness()
    h.run(MarkRead(A, ("m1",)), Send("r1", A, "first"))
    (task,) = h.world.inflight
    task.cancel()  # before its first step: nothing of it ran
    await settle()
    assert h.transport.journal == [] and not h.world._lanes and not h.world.busy()
    h.run(MarkRead(A, ("m2",)))  # the chat's lane starts again
    await settle()
    assert h.transport.journal == [("mark_read", A, ("m2",))]


async def test_a_send_is_refused_at_once_when_the_transport_cannot_send() -> None:
    h = Harness()
    h.transport.sendable = False
    h.world.link.on_lifecycle("logged_out", "device removed")
    h.run(Send("r1", A, "hello"))
    await settle()
    assert not [j for j in h.transport.journal if j[0] == "send"]
    ((event, _),) = h.events
    assert event == SendFailed("r1", "WhatsApp cannot send now (logged_out)")


async def test_generation_goes_through_the_model_service_and_comes_back_as_an_event() -> None:
    h = Harness()
    h.run(Generate("r1", A, ()), tag="c-7")
    await settle()
    ((event, corr),) = h.events
    assert isinstance(event, Generated) and event.text == FakeModel().reply
    assert event.budget_left == 9876.0 and corr == "c-7"


async def test_while_draining_decisions_are_logged_but_nothing_is_carried_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness()
    h.world.executing = False
    with caplog.at_level(logging.INFO, logger="wapa.runner"):
        h.run(
            Decision(0.0, A, Reason.SENT, "reply sent", "r1"),
            MarkRead(A, ("m1",)),
            Typing(A, True),
            Generate("r2", A, ()),
            Send("r3", A, "x"),
            Notice("status"),
        )
        await settle()
    assert h.transport.journal == [] and h.events == [] and h.model.calls == []
    assert [r.msg for r in caplog.records] == ["decision"]


def test_link_health_red_states_are_sticky_and_logged_once() -> None:
    link = LinkHealth()
    assert link.on_lifecycle("connected") is not None and not link.red
    note = link.on_lifecycle("stream_replaced", "another client")
    assert note is not None and note.level == logging.ERROR and "restart wapa" in note.hint
    assert link.red and link.state == "replaced" and "another WhatsApp client" in link.reason
    assert link.on_lifecycle("disconnected", "lost") is None  # does not hide the cause
    assert link.on_lifecycle("stream_replaced", "again") is None  # logged once
    assert link.state == "replaced"
    note = link.on_lifecycle("connected")
    assert note is not None and note.level == logging.INFO
    assert not link.red and link.reason == ""


def test_link_health_ban_is_shown_but_not_red_and_keeps_its_reason() -> None:
    link = LinkHealth()
    link.on_lifecycle("temporary_ban", "for 10 minutes")
    assert link.state == "banned" and not link.red and "banned" in link.reason
    link.on_lifecycle("disconnected")
    assert link.state == "disconnected" and "banned" in link.reason
    link.on_lifecycle("ban_lifted")
    assert link.state == "connected" and link.reason == ""
    link.on_lifecycle("pair_needed")
    assert link.state == "not_paired" and link.red


def test_correlation_lookup_order_and_bounded_tables() -> None:
    c = Correlations(prefix="p")
    first, second = c.new(), c.new()
    assert (first, second) == ("p-1", "p-2")
    c.message(A, first)
    c.request("r1", second)
    assert c.lookup("r1", A, "f") == second  # the request first
    assert c.lookup("r9", A, "f") == first  # then the chat
    assert c.lookup("", B, "f") == "f"  # then the fallback
    c.done("r1")
    assert c.lookup("r1", A, "f") == first
    for i in range(KEPT + 100):
        c.message(f"chat{i}", f"p-{i}")
        c.request(f"r{i}", f"p-{i}")
    assert c.sizes() == (KEPT, KEPT)
    assert c.lookup("r0", "chat0", "gone") == "gone"  # the oldest were forgotten
    assert c.lookup(f"r{KEPT + 99}", "", "") == f"p-{KEPT + 99}"


async def test_tasks_carry_their_correlation_id_and_decisions_are_counted_by_code() -> None:
    """A task the world starts logs with the id of the step that caused it (set in the
    task's own context, not the caller's), and each decision counts under its reason code."""
    from wapa.adapters.logs import correlation

    h = Harness()
    seen: list[str] = []

    async def note() -> None:
        seen.append(correlation.get())

    task = h.world._spawn(note(), "c-42")  # noqa: SLF001
    await task
    assert seen == ["c-42"] and correlation.get() == ""
    for code in (Reason.STALE, Reason.STALE, Reason.BAD_EVENT):
        h.world.decided(Decision(0.0, A, code, "x"))
    count = h.metrics.registry.get_sample_value
    assert count("wapa_decisions_total", {"reason": Reason.STALE}) == 2
    assert count("wapa_decisions_total", {"reason": Reason.BAD_EVENT}) == 1
