"""whatsmeow as it really behaves, through NeonizeTransport's registered handlers (issue 12):
ConnectFailure is final, the event stream can die, read receipts for forgotten ids, and our
own device's messages. Events are neonize's real protobufs."""

from __future__ import annotations

import asyncio

import pytest
from neonize.aioze.events import ClientOutdatedEv, ConnectedEv, ConnectFailureEv, MessageEv
from neonize.proto.Neonize_pb2 import JID, ConnectFailureReason, Device
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa
from neonize.utils.enum import ReceiptType
from wapa.adapters.transport import LIFECYCLE_KINDS, SendError
from wapa.adapters.whatsapp.link import LinkHealth

from tests.adapters.test_whatsapp_mapping import ALICE, BOB_LID, GROUP, OWN, OWN_LID, event, jid
from tests.adapters.test_whatsapp_transport import FakeClient, kinds, settle, started


class Sleeps:
    """An injected sleep that records and returns at once (no real time)."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        await asyncio.sleep(0)


def _encode_like_neonize(client: FakeClient) -> None:
    """neonize serialises both JIDs before calling Go: an empty JID raises EncodeError."""

    async def mark_read(
        *ids: str, chat: JID, sender: JID, receipt: ReceiptType, timestamp: int | None = None
    ) -> None:
        chat.SerializeToString()
        sender.SerializeToString()
        client.calls.append(("mark_read", (ids, chat, sender, receipt)))

    client.mark_read = mark_read  # type: ignore[method-assign]


# ---------------------------------------------------------------- defect 2: ConnectFailure


async def test_connect_failure_is_final_in_whatsmeow_so_wapa_goes_red_and_reconnects() -> None:
    sleeps = Sleeps()
    transport, client, _, life = await started(sleep=sleeps)
    health = LinkHealth()
    for kind, detail in life:
        health.on_lifecycle(kind, detail)
    reason = ConnectFailureReason.Value("GENERIC")
    await client.fire(ConnectFailureEv, ConnectFailureEv(Reason=reason, Message="x"))
    await settle()
    assert "connect_failed" in kinds(life) and "connect_failed" in LIFECYCLE_KINDS
    for kind, detail in life[1:]:
        health.on_lifecycle(kind, detail)
    assert health.red and health.state == "failed"
    assert not transport.can_send()
    with pytest.raises(SendError, match="gave up"):  # at once, not after waiting 30 s
        await transport.send(ALICE, "hello")
    assert sleeps.asked and sleeps.asked[0] == 5.0  # backoff, then a reconnect of ours
    assert client.connects == 2 and kinds(life)[-1] == "reconnecting"
    await client.fire(ConnectedEv, ConnectedEv(status=True))
    health.on_lifecycle(*life[-1])
    assert transport.can_send() and not health.red and health.state == "connected"
    await transport.stop()


async def test_repeated_connect_failures_back_off() -> None:
    sleeps = Sleeps()
    transport, client, _, _ = await started(sleep=sleeps)
    reason = ConnectFailureReason.Value("GENERIC")
    for _ in range(3):
        await client.fire(ConnectFailureEv, ConnectFailureEv(Reason=reason))
        await settle()
    assert sleeps.asked == [5.0, 10.0, 20.0] and client.connects == 4
    await transport.stop()


async def test_client_outdated_is_red_not_a_passing_disconnect() -> None:
    transport, client, _, life = await started()
    await client.fire(ClientOutdatedEv, ClientOutdatedEv())
    await settle()
    assert kinds(life)[-1] == "client_outdated"
    health = LinkHealth()
    for kind, detail in life:
        health.on_lifecycle(kind, detail)
    assert health.red and "upgrade" in health.reason and not transport.can_send()
    await transport.stop()


# ---------------------------------------------------------------- defect 3: a dead stream


async def test_a_dead_event_stream_is_noticed_reported_and_restarted() -> None:
    sleeps = Sleeps()
    transport, client, _, life = await started(sleep=sleeps)
    assert client.running is not None
    client.running.set_exception(RuntimeError("failed to encode TemporaryBan code 107"))
    await settle()
    assert "stream_dead" in kinds(life) and not transport.can_send()
    health = LinkHealth()
    for kind, detail in life:
        health.on_lifecycle(kind, detail)
    assert health.red and health.state == "failed"
    assert client.connects == 2  # restarted after the backoff
    await client.fire(ConnectedEv, ConnectedEv(status=True))
    assert transport.can_send()
    await transport.stop()
    assert kinds(life).count("stream_dead") == 1  # our own stop is no dead stream


async def test_stopping_is_not_a_dead_stream() -> None:
    transport, _, _, life = await started()
    await transport.stop()
    await settle()
    assert "stream_dead" not in kinds(life)


# ---------------------------------------------------------------- defect 5: read receipts


async def test_read_receipt_for_a_forgotten_id_in_a_direct_chat_uses_the_chat() -> None:
    transport, client, _, _ = await started()
    _encode_like_neonize(client)
    await transport.mark_read(ALICE, ["3EB0FORGOTTEN"], "")
    [(ids, chat, sender, _)] = client.of("mark_read")
    assert ids == ("3EB0FORGOTTEN",) and sender.User == chat.User == ALICE.split("@")[0]
    await transport.stop()


async def test_read_receipt_for_a_forgotten_id_in_a_group_is_skipped_not_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport, client, _, _ = await started()
    _encode_like_neonize(client)
    await transport.mark_read(GROUP, ["3EB0FORGOTTEN"], "")
    assert client.of("mark_read") == []
    assert "whatsapp_mark_read_failed" not in caplog.text
    await transport.stop()


async def test_group_receipts_for_forgotten_ids_go_one_per_sender_the_core_names() -> None:
    """The core emits one MarkRead per group sender (rule 9): each reaches WhatsApp with its
    participant, even for ids this process never saw (a restart)."""
    transport, client, _, _ = await started()
    _encode_like_neonize(client)
    await transport.mark_read(GROUP, ["3EB0A1", "3EB0A2"], ALICE)
    await transport.mark_read(GROUP, ["3EB0B1"], BOB_LID)
    sent = [(ids, c.User, s.User, s.Server) for ids, c, s, _ in client.of("mark_read")]
    group_user = GROUP.split("@")[0]
    assert sent == [
        (("3EB0A1", "3EB0A2"), group_user, ALICE.split("@")[0], "s.whatsapp.net"),
        (("3EB0B1",), group_user, BOB_LID.split("@")[0], "lid"),
    ]
    await transport.stop()


# ---------------------------------------------------------------- defect 6: our device


async def test_this_device_and_the_phone_are_told_apart_by_device_number() -> None:
    transport, client, inbox, _ = await started()
    client.me = Device(JID=jid(OWN, 7), LID=jid(OWN_LID, 7))
    assert transport.own_device == 7
    text = wa.Message(conversation="Gilad will call you back.")
    await client.fire(MessageEv, event(text, from_me=True, device=0, mid="PHONE1"))
    await client.fire(MessageEv, event(text, from_me=True, device=7, mid="OURS1"))
    await settle()
    phone, ours = inbox
    assert phone.from_me and not phone.own_device  # the owner, whatever the text
    assert ours.own_device
    await transport.stop()
