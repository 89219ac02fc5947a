"""NeonizeTransport driven through the handlers it registers on a real neonize `NewAClient`.

Only the calls that would reach WhatsApp (connect, stop, send_message, mark_read, presence,
group info, the LID store) are replaced, by a subclass that records their arguments.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from neonize.aioze.client import NewAClient
from neonize.aioze.events import (
    EVENT_TO_INT,
    ConnectedEv,
    DisconnectedEv,
    KeepAliveRestoredEv,
    KeepAliveTimeoutEv,
    LoggedOutEv,
    MessageEv,
    StreamReplacedEv,
    TemporaryBanEv,
)
from neonize.proto.Neonize_pb2 import (
    JID,
    ContactInfo,
    Device,
    GroupInfo,
    GroupName,
    GroupParticipant,
    SendResponse,
    TemporaryBan,
)
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa
from neonize.utils.enum import ChatPresence, ChatPresenceMedia, Presence, ReceiptType
from wapa.adapters.transport import SendError, Transport
from wapa.adapters.whatsapp.client import NeonizeTransport, PairingRequired, WhatsAppStartError
from wapa.core import Message

from tests.adapters.test_whatsapp_mapping import (
    ALICE,
    ALICE_LID,
    BOB,
    GROUP,
    OWN,
    OWN_LID,
    event,
    jid,
    text_msg,
)


class FakeClient(NewAClient):
    """neonize's client with the network calls replaced by recorders."""

    def __init__(self) -> None:
        super().__init__("test-session.db")
        self.calls: list[tuple[str, Any]] = []
        self.me = Device(JID=jid(OWN), LID=jid(OWN_LID))
        self.connects = 0
        self.running: asyncio.Future[None] | None = None
        self.send_error: Exception | None = None
        self.group_error: Exception | None = None
        self.lids: dict[str, str] = {}
        self.live_me: Device | None = None  # what get_me answers (default: the snapshot)
        self.contacts: dict[str, str] = {}  # JID -> full name in the contact store
        self.members: list[GroupParticipant] | None = None  # the group's members, if set
        self.stop_hangs = False

    async def connect(self, proxy_settings: Any = None) -> asyncio.Future[None]:
        self.connects += 1
        self.running = asyncio.get_running_loop().create_future()
        return self.running

    async def stop(self) -> None:
        self.calls.append(("stop", None))
        if self.running is not None and not self.running.done() and not self.stop_hangs:
            self.running.set_result(None)

    async def send_message(self, to: Any, message: Any, *a: Any, **kw: Any) -> SendResponse:
        self.calls.append(("send_message", (to, message)))
        if self.send_error:
            raise self.send_error
        return SendResponse(ID=f"SENT{len(self.of('send_message'))}")

    async def mark_read(
        self, *ids: str, chat: JID, sender: JID, receipt: ReceiptType, timestamp: int | None = None
    ) -> None:
        self.calls.append(("mark_read", (ids, chat, sender, receipt)))

    async def send_chat_presence(
        self, jid: JID, state: ChatPresence, media: ChatPresenceMedia
    ) -> None:
        self.calls.append(("chat_presence", (jid, state, media)))

    async def send_presence(self, presence: Presence) -> None:
        self.calls.append(("presence", presence))

    async def get_group_info(self, jid: JID) -> GroupInfo:
        self.calls.append(("group_info", jid))
        if self.group_error:
            raise self.group_error
        people = [GroupParticipant(JID=JID(User=str(i), Server="s.whatsapp.net")) for i in range(7)]
        if self.members is not None:
            people = self.members
        return GroupInfo(GroupName=GroupName(Name="Team"), Participants=people)

    async def get_me(self) -> Device:
        self.calls.append(("get_me", None))
        return self.live_me if self.live_me is not None else self.me

    async def get_contact(self, user: JID) -> ContactInfo:
        self.calls.append(("get_contact", user))
        name = self.contacts.get(f"{user.User}@{user.Server}", "")
        return ContactInfo(Found=bool(name), FullName=name)

    async def get_pn_from_lid(self, jid: JID) -> JID:
        self.calls.append(("pn_from_lid", jid))
        found = self.lids.get(f"{jid.User}@{jid.Server}")
        if not found:
            raise LookupError("not in store")
        user, server = found.split("@")
        return JID(User=user, Server=server)

    @property
    def is_connected(self) -> Any:
        async def answer() -> bool:
            return self.running is not None and not self.running.done()

        return answer()

    def of(self, name: str) -> list[Any]:
        return [args for call, args in self.calls if call == name]

    async def fire(self, ev_type: type, ev: Any) -> None:
        """Deliver an event exactly as neonize does: the handler registered for its type."""
        await self.event.list_func[EVENT_TO_INT[ev_type]](self, ev)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def no_sleep(_seconds: float) -> None:
    await asyncio.sleep(0)


def make(**kw: Any) -> tuple[NeonizeTransport, FakeClient, list[Message], list[tuple[str, str]]]:
    client = kw.pop("client", None) or FakeClient()
    kw.setdefault("paired_check", _paired)
    kw.setdefault("sleep", no_sleep)
    transport = NeonizeTransport("test-session.db", client_factory=lambda: client, **kw)
    return transport, client, [], []


async def _paired(_db: str) -> list[str]:
    return [OWN]


async def started(
    **kw: Any,
) -> tuple[NeonizeTransport, FakeClient, list[Message], list[tuple[str, str]]]:
    transport, client, inbox, life = make(**kw)

    async def on_message(m: Message) -> None:
        inbox.append(m)

    start = asyncio.create_task(transport.start(on_message, lambda k, d: life.append((k, d))))
    while client.running is None:
        await asyncio.sleep(0)
    await client.fire(ConnectedEv, ConnectedEv(status=True))
    await start
    return transport, client, inbox, life


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def kinds(life: list[tuple[str, str]]) -> list[str]:
    return [k for k, _ in life]


# ---------------------------------------------------------------- start, identity, stop


async def test_it_is_a_transport_and_connects() -> None:
    transport, client, _, life = await started()
    assert isinstance(transport, Transport)
    assert kinds(life) == ["connected"]
    assert transport.can_send() and await transport.is_connected()
    assert (transport.own_jid, transport.own_lid) == (OWN, OWN_LID)
    assert client.of("presence") == [Presence.UNAVAILABLE]  # push name published, not "online"
    await transport.stop()
    await transport.stop()
    assert client.of("stop") == [None]
    assert transport.stopped_cleanly and not await transport.is_connected()


async def test_unpaired_session_says_run_pair_without_connecting() -> None:
    async def unpaired(_db: str) -> list[str]:
        return []

    transport, client, _, life = make(paired_check=unpaired)
    with pytest.raises(PairingRequired, match="wapa pair"):
        await transport.start(_ignore, lambda k, d: life.append((k, d)))
    assert kinds(life) == ["pair_needed"] and client.connects == 0


async def test_qr_during_run_means_pair_needed() -> None:
    transport, client, _, life = make()
    start = asyncio.create_task(transport.start(_ignore, lambda k, d: life.append((k, d))))
    while client.running is None:
        await asyncio.sleep(0)
    await client.event._qr(client, b"2@qrdata")
    with pytest.raises(PairingRequired, match="wapa pair"):
        await start
    assert kinds(life) == ["pair_needed"] and client.of("stop") == [None]


async def test_logged_out_at_start_raises_a_clear_error() -> None:
    transport, client, _, life = make()
    start = asyncio.create_task(transport.start(_ignore, lambda k, d: life.append((k, d))))
    while client.running is None:
        await asyncio.sleep(0)
    await client.fire(LoggedOutEv, LoggedOutEv(OnConnect=True, Reason=2))
    with pytest.raises(WhatsAppStartError, match="logged out at connect"):
        await start
    assert kinds(life) == ["logged_out"] and not transport.can_send()


async def test_connect_timeout_and_a_hung_worker_are_reported() -> None:
    transport, client, _, _ = make(connect_timeout=0, stop_timeout=0)
    client.stop_hangs = True
    with pytest.raises(WhatsAppStartError, match="not connected to WhatsApp after"):
        await transport.start(_ignore, _ignore_life)
    assert not transport.stopped_cleanly  # the runner must os._exit


async def _ignore(_m: Message) -> None:
    return None


def _ignore_life(_k: str, _d: str) -> None:
    return None


# ---------------------------------------------------------------- inbound messages


async def test_message_goes_through_the_registered_handler() -> None:
    transport, client, inbox, _ = await started()
    await client.fire(
        MessageEv,
        event(wa.Message(conversation="hi"), chat=ALICE_LID, sender=ALICE_LID, sender_alt=ALICE),
    )
    assert inbox == [
        Message(
            chat=ALICE,
            sender=ALICE,
            id="3EB0A1B2C3D4",
            text="hi",
            sender_name="Alice",
            sent_at=1_700_000_000.123,
        )
    ]
    assert transport.last_timestamp_ms == 1_700_000_000_123
    await transport.stop()


async def test_group_title_and_size_are_looked_up_once() -> None:
    transport, client, inbox, _ = await started()
    await client.fire(MessageEv, event(chat=GROUP, sender=ALICE, mid="G1"))
    await client.fire(MessageEv, event(chat=GROUP, sender=BOB, mid="G2"))
    assert [(m.group_title, m.participants, m.is_group) for m in inbox] == [("Team", 7, True)] * 2
    assert client.of("group_info") == [jid(GROUP)]
    await transport.stop()


async def test_group_lookup_failure_costs_only_the_title() -> None:
    transport, client, inbox, _ = await started()
    client.group_error = RuntimeError("server said no")
    await client.fire(MessageEv, event(chat=GROUP, sender=ALICE))
    assert [(m.id, m.group_title) for m in inbox] == [("3EB0A1B2C3D4", "")]
    assert transport.handler_errors == 0
    await transport.stop()


async def test_unknown_lids_are_asked_from_the_local_store() -> None:
    transport, client, inbox, _ = await started()
    client.lids = {"444444444444444@lid": BOB}
    msg = text_msg("ping", mentions=("444444444444444@lid", "555555555555555@lid"))
    await client.fire(MessageEv, event(msg, chat=GROUP, sender=ALICE))
    await client.fire(MessageEv, event(msg, chat=GROUP, sender=ALICE, mid="X2"))
    assert inbox[0].mentions == (BOB, "555555555555555@lid") == inbox[1].mentions
    # 444 is a hit; 555 a miss, asked again once after the group's info was fetched; the
    # second message asks nothing (hits and recent misses remembered, the group cached)
    assert len(client.of("pn_from_lid")) == 3
    await transport.stop()


async def test_dropped_events_never_reach_the_runner() -> None:
    transport, client, inbox, _ = await started()
    await client.fire(MessageEv, event(chat="status@broadcast", sender=ALICE))
    assert inbox == [] and transport.skipped["status"] == 1
    await transport.stop()


async def test_a_failing_handler_is_logged_with_the_event_id_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport, client, inbox, _ = await started()
    seen: list[str] = []

    async def flaky(m: Message) -> None:
        seen.append(m.id)
        if m.id == "BAD1":
            raise RuntimeError(f"boom with {m.text}")

    transport._on_message = flaky
    with caplog.at_level(logging.ERROR, logger="wapa.whatsapp"):
        await client.fire(
            MessageEv, event(wa.Message(conversation="secret plan 972501234567"), mid="BAD1")
        )
        await client.fire(MessageEv, event(wa.Message(conversation="next"), mid="OK2"))
    assert seen == ["BAD1", "OK2"] and transport.handler_errors == 1
    [record] = [r for r in caplog.records if r.msg == "whatsapp_handler_failed"]
    assert vars(record)["fields"] == {
        "handler": "message",
        "event_id": "BAD1",
        "error": "RuntimeError",
    }
    assert "secret plan" not in record.getMessage()
    await transport.stop()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=300))
def test_malformed_events_never_escape_the_handler(data: bytes) -> None:
    async def scenario() -> None:
        transport, client, _, _ = await started()
        try:
            ev = MessageEv.FromString(data)
        except Exception:  # noqa: BLE001 - not a protobuf at all
            ev = MessageEv()
        await client.fire(MessageEv, ev)
        await client.fire(MessageEv, "not even a protobuf")
        assert transport.handler_errors >= 1  # the string: logged and counted, not raised
        await transport.stop()

    asyncio.run(scenario())


# ---------------------------------------------------------------- effects


async def test_send_plain_text_to_the_chat_jid() -> None:
    transport, client, _, _ = await started()
    assert await transport.send(ALICE, "On it, thanks!") == "SENT1"
    [(to, message)] = client.of("send_message")
    assert to == jid(ALICE)
    assert message == wa.Message(conversation="On it, thanks!")
    await transport.stop()


async def test_send_quotes_the_original_message_as_whatsapp_addressed_it() -> None:
    transport, client, _, _ = await started()
    original = text_msg("@gilad can you check?", mentions=(OWN,), quote="OLDER", who=BOB)
    await client.fire(
        MessageEv, event(original, chat=GROUP, sender=ALICE_LID, sender_alt=ALICE, mid="Q1")
    )
    await transport.send(GROUP, "Checking now.", quote_id="Q1")
    [(to, message)] = client.of("send_message")
    assert to == jid(GROUP)
    ext = message.extendedTextMessage
    assert ext.text == "Checking now."
    assert (ext.contextInfo.stanzaID, ext.contextInfo.participant) == ("Q1", ALICE_LID)
    quoted = ext.contextInfo.quotedMessage
    assert quoted.extendedTextMessage.text == "@gilad can you check?"
    assert not quoted.extendedTextMessage.HasField("contextInfo")  # no quote inside the quote
    await transport.stop()


async def test_send_to_a_lid_chat_uses_the_lid_and_unknown_quotes_send_plain() -> None:
    transport, client, _, _ = await started()
    await client.fire(MessageEv, event(chat=ALICE_LID, sender=ALICE_LID, sender_alt=ALICE))
    await transport.send(ALICE, "ok", quote_id="NOT-REMEMBERED")
    [(to, message)] = client.of("send_message")
    assert to == jid(ALICE_LID) and message == wa.Message(conversation="ok")
    await transport.stop()


async def test_send_failures_raise_send_error_without_numbers() -> None:
    transport, client, _, _ = await started()
    client.send_error = RuntimeError("server rejected 972501234567@s.whatsapp.net")
    with pytest.raises(SendError) as info:
        await transport.send(ALICE, "hi")
    assert "972501234567" not in str(info.value) and "rejected" in str(info.value)
    with pytest.raises(SendError, match="empty"):
        await transport.send(ALICE, "   ")
    with pytest.raises(SendError, match="not a WhatsApp JID"):
        await transport.send("alice", "hi")
    await transport.stop()


async def test_mark_read_uses_the_original_chat_and_sender_per_message() -> None:
    transport, client, _, _ = await started()
    await client.fire(MessageEv, event(chat=GROUP, sender=ALICE_LID, sender_alt=ALICE, mid="A1"))
    await client.fire(MessageEv, event(chat=GROUP, sender=BOB, mid="B1"))
    await client.fire(MessageEv, event(chat=GROUP, sender=ALICE_LID, sender_alt=ALICE, mid="A2"))
    await transport.mark_read(GROUP, ["A1", "B1", "A2"], ALICE)
    assert client.of("mark_read") == [
        (("A1", "A2"), jid(GROUP), jid(ALICE_LID), ReceiptType.READ),
        (("B1",), jid(GROUP), jid(BOB), ReceiptType.READ),
    ]
    await transport.stop()


async def test_typing_is_composing_then_paused_and_online_only_meanwhile() -> None:
    transport, client, _, _ = await started()
    client.calls.clear()
    await transport.typing(ALICE, True)
    await transport.typing(BOB, True)
    await transport.typing(ALICE, False)
    await transport.typing(BOB, False)
    text = ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT
    assert client.calls == [
        ("presence", Presence.AVAILABLE),
        ("chat_presence", (jid(ALICE), ChatPresence.CHAT_PRESENCE_COMPOSING, text)),
        ("chat_presence", (jid(BOB), ChatPresence.CHAT_PRESENCE_COMPOSING, text)),
        ("chat_presence", (jid(ALICE), ChatPresence.CHAT_PRESENCE_PAUSED, text)),
        ("chat_presence", (jid(BOB), ChatPresence.CHAT_PRESENCE_PAUSED, text)),
        ("presence", Presence.UNAVAILABLE),
    ]
    await transport.stop()


async def test_notify_owner_writes_to_his_own_chat() -> None:
    transport, client, _, _ = await started()
    await transport.notify_owner("Paused.")
    assert client.of("send_message") == [(jid(OWN), wa.Message(conversation="Paused."))]
    await transport.stop()


async def test_effects_after_stop_never_touch_the_client() -> None:
    transport, client, _, _ = await started()
    await transport.stop()
    client.calls.clear()
    await transport.mark_read(ALICE, ["X"], ALICE)
    await transport.typing(ALICE, True)
    with pytest.raises(SendError, match="stopping"):
        await transport.send(ALICE, "hi")
    assert client.calls == []


# ---------------------------------------------------------------- connection lifecycle


async def test_disconnect_then_whatsmeow_reconnects_and_waiting_sends_go_out() -> None:
    transport, client, _, life = await started()
    await client.fire(DisconnectedEv, DisconnectedEv(status=True))
    assert kinds(life)[-2:] == ["disconnected", "reconnecting"] and transport.can_send()
    send = asyncio.create_task(transport.send(ALICE, "hi"))
    await asyncio.sleep(0)
    assert client.of("send_message") == []  # waits for the reconnect
    await client.fire(ConnectedEv, ConnectedEv(status=True))
    assert await send == "SENT1"
    assert kinds(life)[-1] == "connected"
    await transport.stop()


async def test_a_send_gives_up_when_the_reconnect_takes_too_long() -> None:
    transport, client, _, _ = await started(send_wait=0)
    await client.fire(DisconnectedEv, DisconnectedEv(status=True))
    with pytest.raises(SendError, match="not connected"):
        await transport.send(ALICE, "hi")
    await transport.stop()


async def test_keepalive_lost_once_then_restored() -> None:
    transport, client, _, life = await started()
    await client.fire(KeepAliveTimeoutEv, KeepAliveTimeoutEv(ErrorCount=1))
    await client.fire(KeepAliveTimeoutEv, KeepAliveTimeoutEv(ErrorCount=2))
    await client.fire(KeepAliveRestoredEv, KeepAliveRestoredEv())
    assert kinds(life)[1:] == ["keepalive_lost", "keepalive_restored"]
    await transport.stop()


async def test_stream_replaced_stops_for_good() -> None:
    transport, client, _, life = await started()
    await client.fire(StreamReplacedEv, StreamReplacedEv())
    await settle()
    assert kinds(life)[-1] == "stream_replaced" and not transport.can_send()
    assert client.of("stop") == [None]  # the Go client is stopped, no reconnect fight
    with pytest.raises(SendError, match="another WhatsApp client"):
        await transport.send(ALICE, "hi")
    await transport.stop()


async def test_logged_out_later_stops_sending_and_keeps_running() -> None:
    transport, client, _, life = await started()
    await client.fire(LoggedOutEv, LoggedOutEv(OnConnect=False, Reason=4))
    assert life[-1][0] == "logged_out" and "main_device_gone" in life[-1][1]
    with pytest.raises(SendError, match="wapa pair"):
        await transport.send(ALICE, "hi")
    await transport.stop()


async def test_temporary_ban_pauses_sending_and_reconnects_when_it_lifts() -> None:
    clock = Clock()
    slept: list[float] = []
    lift = asyncio.Event()

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await lift.wait()

    transport, client, _, life = await started(clock=clock, sleep=sleep)
    ban = TemporaryBanEv(Code=TemporaryBan.SENT_TOO_MANY_SAME_MESSAGE, Expire=3600)
    await client.fire(TemporaryBanEv, ban)
    assert life[-1][0] == "temporary_ban" and "about 60 min" in life[-1][1]
    assert not transport.can_send()
    with pytest.raises(SendError, match="temporarily banned"):
        await transport.send(ALICE, "hi")
    await asyncio.sleep(0)
    assert slept == [3605.0]
    clock.t += 3605
    lift.set()
    await settle()
    assert client.connects == 2 and client.of("stop") == [None]  # a fresh Go client
    await client.fire(ConnectedEv, ConnectedEv(status=True))
    assert kinds(life)[-3:] == ["reconnecting", "ban_lifted", "connected"]
    assert transport.can_send()
    await transport.stop()


async def test_lifecycle_details_carry_no_phone_numbers() -> None:
    transport, client, _, life = await started()
    await client.fire(DisconnectedEv, DisconnectedEv(status=True))
    await client.fire(LoggedOutEv, LoggedOutEv(OnConnect=False, Reason=2))
    assert all(not any(ch.isdigit() for ch in detail) for _, detail in life)
    await transport.stop()
