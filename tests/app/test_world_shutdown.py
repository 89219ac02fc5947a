"""Shutdown cancels the AsyncWorld's waits after `shutdown_timeout`, not WhatsApp's sends: a
send that ends afterwards still reports its outcome to the runner's queue (drained after the
transport stops), so a confirmed send is never lost (issue 12, defect 7)."""

from __future__ import annotations

import asyncio

from wapa.core import Send, SendConfirmed, SendFailed

from tests.app.test_runner_world import A, Harness
from tests.support.runner import settle


async def test_a_send_confirmed_after_its_wait_was_cancelled_reaches_the_queue() -> None:
    h = Harness()
    h.transport.send_gate = asyncio.Event()
    h.run(Send("r1", A, "hello"))
    await settle()
    await h.world.finish(0.0)  # the wait is cancelled
    assert h.events == []
    h.transport.send_gate.set()
    await settle()
    assert [e for e, _ in h.events] == [SendConfirmed("r1", "wa-1")]


async def test_a_send_failing_after_its_wait_was_cancelled_is_reported_failed() -> None:
    h = Harness()
    h.transport.send_gate = asyncio.Event()
    h.run(Send("r1", A, "hello"))
    await settle()
    await h.world.finish(0.0)
    h.transport.fail_sends = True
    h.transport.send_gate.set()
    await settle()
    [(event, _)] = h.events
    assert isinstance(event, SendFailed) and event.request_id == "r1"
    assert "stopping" in event.detail
