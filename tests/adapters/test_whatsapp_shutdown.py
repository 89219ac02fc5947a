"""Defect 7 (issue 12): stopping while neonize calls are in flight. neonize's `Stop` deletes
the client from Go's (unlocked) client map while a call's goroutine may still use it, which
can crash the process. Each call is counted while Go runs it; stopping waits for them up to
`call_grace`, names what it abandons, and never stops the client under a running call. A send
WhatsApp confirms while the runner shuts down still reaches the runner's queue."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from neonize.proto.Neonize_pb2 import SendResponse
from wapa.core import Send, SendConfirmed

from tests.adapters.test_whatsapp_mapping import ALICE
from tests.adapters.test_whatsapp_transport import FakeClient, settle, started
from tests.app.test_runner_world import Harness


class SlowClient(FakeClient):
    """send_message returns only when the test opens the gate (Go still sending)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def send_message(self, to: Any, message: Any, *a: Any, **kw: Any) -> SendResponse:
        self.calls.append(("send_message", (to, message)))
        await self.gate.wait()
        return SendResponse(ID="3EB0DONE")


async def test_stop_waits_for_a_send_in_flight_then_stops_the_client() -> None:
    client = SlowClient()
    transport, _, _, _ = await started(client=client, call_grace=30.0)
    send = asyncio.create_task(transport.send(ALICE, "hello"))
    await settle()
    stop = asyncio.create_task(transport.stop())
    await settle()
    assert client.of("stop") == []  # not under the running call
    client.gate.set()
    await stop
    assert await send == "3EB0DONE"
    names = [name for name, _ in client.calls]
    assert names.index("send_message") < names.index("stop")
    assert transport.stopped_cleanly and not transport.abandoned


async def test_a_call_that_outlives_the_grace_is_named_and_the_client_left_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = SlowClient()
    transport, _, _, _ = await started(client=client, call_grace=0.0)
    send = asyncio.create_task(transport.send(ALICE, "hello"))
    await settle()
    with caplog.at_level(logging.WARNING, logger="wapa.whatsapp"):
        await transport.stop()  # returns: bounded, never hangs on Go
    assert transport.abandoned == {"send_message": 1}
    [record] = [r for r in caplog.records if r.getMessage() == "whatsapp_calls_abandoned"]
    assert record.fields["calls"] == {"send_message": 1}  # type: ignore[attr-defined]
    assert client.of("stop") == []  # Stop under a running call could crash the process
    assert not transport.stopped_cleanly  # the runner exits without waiting for Go
    client.gate.set()
    assert await send == "3EB0DONE"  # the send itself still finishes


async def test_a_caller_that_stops_waiting_leaves_the_go_call_counted() -> None:
    client = SlowClient()
    transport, _, _, _ = await started(client=client, call_grace=0.0)
    send = asyncio.create_task(transport.send(ALICE, "hello"))
    await settle()
    send.cancel()  # a timeout or shutdown stops the wait, not Go
    await settle()
    assert send.cancelled() and client.of("send_message")
    await transport.stop()
    assert transport.abandoned == {"send_message": 1} and client.of("stop") == []
    client.gate.set()
    await settle()


async def test_a_send_whatsapp_confirms_during_shutdown_reaches_the_queue() -> None:
    """The runner's order: world.finish cancels the wait, the transport stops (waiting for Go),
    the queue is drained. The confirmation arrives in between and is not lost."""
    client = SlowClient()
    transport, _, _, _ = await started(client=client, call_grace=30.0)
    h = Harness()
    h.world.transport = transport
    h.run(Send("r1", ALICE, "hello"))
    await settle()
    await h.world.finish(0.0)  # shutdown_timeout over: the send's wait is cancelled
    assert h.events == []
    stop = asyncio.create_task(transport.stop())
    await settle()
    client.gate.set()
    await stop
    await settle()
    assert [e for e, _ in h.events] == [SendConfirmed("r1", "3EB0DONE")]
