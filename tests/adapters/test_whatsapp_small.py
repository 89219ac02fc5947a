"""Issue 12, defect 9, on neonize's real protobufs: the pairing code's device type, its
lifetime, quotes without `messageContextInfo`, polls/events/buttons mapped, and whatsmeow's
ErrNoPushName on presence told once."""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any

import pytest
from neonize.aioze.events import ConnectedEv
from neonize.proto import Neonize_pb2 as neonize_proto
from neonize.proto.waCompanionReg.WAWebProtobufsCompanionReg_pb2 import DeviceProps
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa
from wapa.adapters.whatsapp.client import quotable
from wapa.adapters.whatsapp.mapping import Skip, message_from_event
from wapa.adapters.whatsapp.pairing import pair

from tests.adapters.test_whatsapp_mapping import ALICE, OWN, OWN_LID, event, mapped
from tests.adapters.test_whatsapp_pair import PairingClient, unpaired
from tests.adapters.test_whatsapp_transport import settle, started

# ---------------------------------------------------------------- the pairing code


class GoPairing:
    """Stands in for neonize's Go library (the network side): records what neonize's own
    `PairPhone` serialised, answers with a code."""

    def __init__(self) -> None:
        self.params: list[neonize_proto.PairPhoneParams] = []

    async def PairPhone(self, _uuid: bytes, payload: bytes, _size: int) -> bytes:  # noqa: N802
        self.params.append(neonize_proto.PairPhoneParams.FromString(payload))
        return neonize_proto.PairPhoneReturnFunction(Code="ABCD-EFGH").SerializeToString()


class RealPairPhone(PairingClient):
    """neonize's own PairPhone (not the recorder's), with only the Go call replaced."""

    PairPhone = PairingClient.__mro__[2].PairPhone  # NewAClient.PairPhone

    def __init__(self) -> None:
        super().__init__()
        self.go = GoPairing()
        self._NewAClient__client = self.go
        self.device_props = DeviceProps(os="wapa", platformType=DeviceProps.SAFARI)  # as wapa's


async def _pair_by_code(client: RealPairPhone) -> tuple[Any, str]:
    out = io.StringIO()
    task = asyncio.create_task(
        pair(
            "data/s.db",
            phone="972500000001",
            out=out,
            client_factory=lambda: client,
            paired_check=unpaired,
            timeout=0.0,
        )
    )
    while client.running is None:
        await asyncio.sleep(0)
    await client.show_qr(b"2@first")
    return await task, out.getvalue()


async def test_the_pairing_code_device_is_safari_not_opera() -> None:
    client = RealPairPhone()
    _, out = await _pair_by_code(client)
    [params] = client.go.params
    assert params.clientDisplayName == "Safari (Linux)"  # was "Opera (Linux)"
    assert params.clientType == 6 and params.phone == "972500000001"  # ClientType.SAFARI
    assert "ABCD-EFGH" in out


async def test_the_pairing_code_says_how_long_it_lasts() -> None:
    result, out = await _pair_by_code(RealPairPhone())
    assert "about 160 s" in out and "wapa pair --phone" in out
    assert not result.ok and "about 160 s" in result.message


# ---------------------------------------------------------------- quotes


def test_a_quote_never_carries_the_originals_message_secret() -> None:
    original = wa.Message(
        conversation="poll tonight?",
        messageContextInfo=wa.MessageContextInfo(messageSecret=b"\x01" * 32),
    )
    quoted = quotable(original, "", "poll tonight?")
    assert not quoted.HasField("messageContextInfo")
    assert quoted.conversation == "poll tonight?"
    assert original.HasField("messageContextInfo")  # the remembered original is untouched


# ---------------------------------------------------------------- polls, events, buttons


def _poll(name: str) -> wa.PollCreationMessage:
    options = [wa.PollCreationMessage.Option(optionName=x) for x in ("yes", "no")]
    return wa.PollCreationMessage(name=name, options=options)


@pytest.mark.parametrize(
    ("msg", "text"),
    [
        (wa.Message(pollCreationMessageV5=_poll("Dinner at 8?")), "Dinner at 8?"),
        (wa.Message(pollCreationMessageV6=_poll("Dinner at 9?")), "Dinner at 9?"),
        (
            wa.Message(
                pollCreationMessageV4=wa.FutureProofMessage(
                    message=wa.Message(pollCreationMessageV3=_poll("Dinner at 7?"))
                )
            ),
            "Dinner at 7?",
        ),
        (
            wa.Message(eventMessage=wa.EventMessage(name="Party", description="at Bob's")),
            "Party\nat Bob's",
        ),
        (
            wa.Message(
                buttonsResponseMessage=wa.ButtonsResponseMessage(
                    selectedButtonID="b1", selectedDisplayText="Call me back"
                )
            ),
            "Call me back",
        ),
        (
            wa.Message(
                templateButtonReplyMessage=wa.TemplateButtonReplyMessage(
                    selectedID="t1", selectedDisplayText="Yes, confirm"
                )
            ),
            "Yes, confirm",
        ),
        (
            wa.Message(listResponseMessage=wa.ListResponseMessage(title="Tuesday 10:00")),
            "Tuesday 10:00",
        ),
        (
            wa.Message(
                interactiveResponseMessage=wa.InteractiveResponseMessage(
                    body=wa.InteractiveResponseMessage.Body(text="Book it")
                )
            ),
            "Book it",
        ),
    ],
)
def test_polls_events_and_taps_reach_the_core_as_text(msg: wa.Message, text: str) -> None:
    m = mapped(event(msg)).message
    assert m.kind == "message" and m.text == text and m.chat == ALICE


@pytest.mark.parametrize(
    ("msg", "reason"),
    [
        (wa.Message(eventMessage=wa.EventMessage(name="Party", isCanceled=True)), "event_canceled"),
        (wa.Message(encEventResponseMessage=wa.EncEventResponseMessage()), "event_response"),
        (wa.Message(pollResultSnapshotMessage=wa.PollResultSnapshotMessage()), "poll_result"),
        (
            wa.Message(
                buttonsMessage=wa.ButtonsMessage(contentText="Menu"),
                messageContextInfo=wa.MessageContextInfo(messageSecret=b"\x02" * 32),
            ),
            "business_menu",
        ),
    ],
)
def test_what_the_core_cannot_answer_is_skipped_with_its_reason(
    msg: wa.Message, reason: str
) -> None:
    assert message_from_event(event(msg), OWN, OWN_LID) == Skip(reason)


# ---------------------------------------------------------------- ErrNoPushName


async def test_no_push_name_on_presence_is_told_once_at_info(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport, client, _, _ = await started()

    async def refuse(_presence: Any) -> None:
        # whatsmeow presence.go: ErrNoPushName, as neonize raises it
        raise RuntimeError("can't send presence without PushName set")

    client.send_presence = refuse  # type: ignore[method-assign,assignment]
    with caplog.at_level(logging.DEBUG, logger="wapa.whatsapp"):
        for _ in range(3):
            await client.fire(ConnectedEv, ConnectedEv(status=True))
            await settle()
    told = [r for r in caplog.records if r.getMessage() == "whatsapp_no_push_name"]
    assert len(told) == 1 and told[0].levelno == logging.INFO
    assert "name" in told[0].fields["detail"]  # type: ignore[attr-defined]
    assert "whatsapp_presence_failed" not in caplog.text
    await transport.stop()
