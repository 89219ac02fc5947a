"""neonize message events, built by hand from neonize's own protobufs, mapped to core Messages."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from neonize.proto.Neonize_pb2 import JID, MessageInfo, MessageSource
from neonize.proto.Neonize_pb2 import Message as MessageEv
from neonize.proto.waCommon.WACommon_pb2 import MessageKey
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa
from wapa.adapters.whatsapp import jid as J
from wapa.adapters.whatsapp.mapping import (
    MAX_TEXT,
    Mapped,
    Skip,
    learn_pairs,
    lids_in,
    message_from_event,
)
from wapa.core import Message

OWN = "972500000001@s.whatsapp.net"
OWN_LID = "111111111111111@lid"
ALICE = "972501234567@s.whatsapp.net"
ALICE_LID = "222222222222222@lid"
BOB = "447700900123@s.whatsapp.net"
BOB_LID = "333333333333333@lid"
GROUP = "120363000000000001@g.us"
TS = 1_700_000_000_123


def jid(text: str, device: int = 0) -> JID:
    if not text:
        return JID()
    user, server = text.split("@")
    return JID(User=user, Server=server, Device=device, RawAgent=0, Integrator=0, IsEmpty=False)


def event(
    msg: wa.Message | None = None,
    *,
    chat: str = ALICE,
    sender: str | None = None,
    sender_alt: str = "",
    recipient_alt: str = "",
    from_me: bool = False,
    group: bool | None = None,
    mid: str = "3EB0A1B2C3D4",
    push: str = "Alice",
    ts: int = TS,
    edit: str = "",
    is_edit: bool = False,
    device: int = 0,
) -> MessageEv:
    sender = (OWN if from_me else chat) if sender is None else sender
    src = MessageSource(
        Chat=jid(chat),
        Sender=jid(sender, device),
        IsFromMe=from_me,
        IsGroup=chat.endswith("@g.us") if group is None else group,
        SenderAlt=jid(sender_alt),
        RecipientAlt=jid(recipient_alt),
    )
    info = MessageInfo(MessageSource=src, ID=mid, Pushname=push, Timestamp=ts, Edit=edit)
    return MessageEv(
        Info=info,
        Message=msg if msg is not None else wa.Message(conversation="hello"),
        IsEdit=is_edit,
    )


def text_msg(
    text: str, *, mentions: tuple[str, ...] = (), quote: str = "", who: str = ""
) -> wa.Message:
    ctx = wa.ContextInfo(
        mentionedJID=list(mentions), stanzaID=quote or None, participant=who or None
    )
    return wa.Message(extendedTextMessage=wa.ExtendedTextMessage(text=text, contextInfo=ctx))


def mapped(ev: MessageEv, **kw: Any) -> Mapped:
    kw.setdefault("own_jid", OWN)
    kw.setdefault("own_lid", OWN_LID)
    result = message_from_event(ev, **kw)
    assert isinstance(result, Mapped), result
    return result


def test_plain_direct_message_maps_every_field() -> None:
    result = mapped(event(wa.Message(conversation="Are you free at 5?")))
    assert result.message == Message(
        chat=ALICE,
        sender=ALICE,
        id="3EB0A1B2C3D4",
        text="Are you free at 5?",
        sender_name="Alice",
        sent_at=TS / 1000,  # WhatsApp's milliseconds as the core's epoch seconds
    )
    assert result.timestamp_ms == TS
    assert (result.raw_chat, result.raw_sender) == (ALICE, ALICE)


def test_group_message_with_mentions_and_a_quote() -> None:
    msg = text_msg("@972500000001 can you check?", mentions=(OWN,), quote="ABCDEF", who=BOB)
    m = mapped(event(msg, chat=GROUP, sender=ALICE, push="Alice")).message
    assert (m.chat, m.sender, m.is_group, m.from_me) == (GROUP, ALICE, True, False)
    assert m.text == "@972500000001 can you check?"
    assert m.mentions == (OWN,)
    assert (m.quoted_id, m.quoted_sender) == ("ABCDEF", BOB)
    assert (m.group_title, m.participants) == ("", 0)  # filled by the transport


@pytest.mark.parametrize(
    ("msg", "media", "text"),
    [
        (wa.Message(imageMessage=wa.ImageMessage(caption="look")), "image", "look"),
        (wa.Message(videoMessage=wa.VideoMessage(caption="clip")), "video", "clip"),
        (wa.Message(ptvMessage=wa.VideoMessage()), "video", ""),
        (wa.Message(documentMessage=wa.DocumentMessage(caption="the pdf")), "document", "the pdf"),
        (wa.Message(audioMessage=wa.AudioMessage(PTT=True)), "voice", ""),
        (wa.Message(audioMessage=wa.AudioMessage(PTT=False)), "audio", ""),
        (wa.Message(stickerMessage=wa.StickerMessage()), "sticker", ""),
        (wa.Message(locationMessage=wa.LocationMessage(degreesLatitude=1.0)), "location", ""),
        (
            wa.Message(liveLocationMessage=wa.LiveLocationMessage(caption="here")),
            "location",
            "here",
        ),
        (wa.Message(contactMessage=wa.ContactMessage(displayName="Carol")), "contact", ""),
        (wa.Message(contactsArrayMessage=wa.ContactsArrayMessage()), "contact", ""),
    ],
)
def test_media_kinds_and_captions(msg: wa.Message, media: str, text: str) -> None:
    m = mapped(event(msg)).message
    assert (m.media, m.text, m.kind) == (media, text, "message")


def test_caption_context_info_carries_mentions_and_quotes() -> None:
    ctx = wa.ContextInfo(mentionedJID=[OWN], stanzaID="Q1", participant=BOB)
    msg = wa.Message(imageMessage=wa.ImageMessage(caption="this?", contextInfo=ctx))
    m = mapped(event(msg, chat=GROUP, sender=ALICE)).message
    assert (m.media, m.text, m.mentions, m.quoted_id, m.quoted_sender) == (
        "image",
        "this?",
        (OWN,),
        "Q1",
        BOB,
    )


@pytest.mark.parametrize("wrapper", ["ephemeralMessage", "viewOnceMessage", "viewOnceMessageV2"])
def test_wrapped_messages_are_unwrapped(wrapper: str) -> None:
    inner = wa.Message(imageMessage=wa.ImageMessage(caption="once"))
    msg = wa.Message(**{wrapper: wa.FutureProofMessage(message=inner)})
    m = mapped(event(msg)).message
    assert (m.media, m.text) == ("image", "once")


def test_document_with_caption_wrapper() -> None:
    inner = wa.Message(documentMessage=wa.DocumentMessage(caption="report"))
    msg = wa.Message(documentWithCaptionMessage=wa.FutureProofMessage(message=inner))
    assert mapped(event(msg)).message.media == "document"


def test_lid_sender_becomes_the_phone_number_from_the_alternate_field() -> None:
    ev = event(chat=GROUP, sender=ALICE_LID, sender_alt=ALICE)
    result = mapped(ev)
    assert result.message.sender == ALICE
    assert result.raw_sender == ALICE_LID  # kept for receipts and quotes


def test_lid_direct_chat_uses_the_sender_alternate() -> None:
    result = mapped(event(chat=ALICE_LID, sender=ALICE_LID, sender_alt=ALICE))
    assert (result.message.chat, result.message.sender) == (ALICE, ALICE)
    assert result.raw_chat == ALICE_LID


def test_lids_without_an_alternate_use_the_book_and_the_own_lid() -> None:
    msg = text_msg(
        "hi both", mentions=(BOB_LID, OWN_LID, "999999999999999@lid"), quote="Q", who=BOB_LID
    )
    book = {BOB_LID: BOB}
    m = mapped(event(msg, chat=GROUP, sender=ALICE_LID), book=book).message
    assert m.sender == ALICE_LID  # unknown: stays a stable LID
    assert m.mentions == (BOB, OWN, "999999999999999@lid")
    assert m.quoted_sender == BOB


def test_owner_on_another_device_is_from_me_and_the_owner() -> None:
    ev = event(
        wa.Message(conversation="I'll take this"), chat=ALICE, sender=OWN, from_me=True, device=3
    )
    m = mapped(ev).message
    assert (m.chat, m.sender, m.from_me) == (ALICE, OWN, True)


def test_owner_in_a_lid_chat_uses_the_recipient_alternate() -> None:
    ev = event(chat=ALICE_LID, sender=OWN_LID, from_me=True, recipient_alt=ALICE)
    m = mapped(ev).message
    assert (m.chat, m.sender, m.from_me) == (ALICE, OWN, True)


def test_owner_self_chat_by_lid_is_the_owner_chat() -> None:
    ev = event(wa.Message(conversation="status"), chat=OWN_LID, sender=OWN_LID, from_me=True)
    m = mapped(ev).message
    assert (m.chat, m.sender) == (OWN, OWN)


def test_sender_device_suffix_is_dropped() -> None:
    m = mapped(event(chat=GROUP, sender=ALICE, device=7)).message
    assert m.sender == ALICE


@pytest.mark.parametrize(
    ("ev", "reason"),
    [
        (event(chat="status@broadcast", sender=ALICE), "status"),
        (event(chat="1700000000@broadcast", sender=OWN, from_me=True), "broadcast"),
        (event(chat="120363000000000002@newsletter"), "newsletter"),
        (
            event(wa.Message(protocolMessage=wa.ProtocolMessage(type=wa.ProtocolMessage.REVOKE))),
            "protocol",
        ),
        (event(wa.Message(conversation="fixed typo"), edit="1"), "edit"),
        (event(wa.Message(conversation="fixed typo"), is_edit=True), "edit"),
        (event(edit="7"), "revoke"),
        (event(wa.Message(pollUpdateMessage=wa.PollUpdateMessage())), "poll_vote"),
        (
            event(
                wa.Message(
                    senderKeyDistributionMessage=wa.SenderKeyDistributionMessage(groupID="g")
                )
            ),
            "protocol",
        ),
        (
            event(wa.Message(eventMessage=wa.EventMessage(name="x", isCanceled=True))),
            "event_canceled",
        ),
        (event(wa.Message()), "unsupported"),
        (event(mid=""), "no_id"),
        (event(chat=""), "no_chat"),
        (event(chat=GROUP, sender=""), "no_sender"),
    ],
)
def test_dropped_events_say_why(ev: MessageEv, reason: str) -> None:
    assert message_from_event(ev, OWN, OWN_LID) == Skip(reason)


def test_key_distribution_alongside_text_is_a_normal_message() -> None:
    msg = wa.Message(
        conversation="hi all",
        senderKeyDistributionMessage=wa.SenderKeyDistributionMessage(groupID=GROUP),
    )
    assert mapped(event(msg, chat=GROUP, sender=ALICE)).message.text == "hi all"


def test_reaction_is_passed_as_a_reaction_with_the_target_id() -> None:
    key = MessageKey(ID="TARGET1", remoteJID=ALICE)
    ev = event(wa.Message(reactionMessage=wa.ReactionMessage(key=key, text="👍")))
    m = mapped(ev).message
    assert (m.kind, m.quoted_id, m.text) == ("reaction", "TARGET1", "👍")


def test_poll_question_is_the_text() -> None:
    ev = event(wa.Message(pollCreationMessage=wa.PollCreationMessage(name="Lunch where?")))
    assert mapped(ev).message.text == "Lunch where?"


def test_missing_timestamp_is_zero_and_huge_text_is_cut() -> None:
    result = mapped(event(wa.Message(conversation="x" * (MAX_TEXT + 10)), ts=0))
    assert result.timestamp_ms == 0 and result.message.sent_at == 0.0  # unknown, not 1970
    assert len(result.message.text) == MAX_TEXT


def test_lids_in_and_learn_pairs() -> None:
    msg = text_msg("yo", mentions=(BOB_LID, OWN), who="444444444444444@lid", quote="Q")
    ev = event(msg, chat=GROUP, sender=ALICE_LID, sender_alt=ALICE)
    assert lids_in(ev) == {ALICE_LID, BOB_LID, "444444444444444@lid"}
    book = J.LidBook(limit=2)
    learn_pairs(ev, book)
    learn_pairs(event(chat=BOB_LID, sender=OWN_LID, from_me=True, recipient_alt=BOB), book)
    assert dict(book) == {ALICE_LID: ALICE, BOB_LID: BOB}
    learn_pairs(
        event(chat=GROUP, sender="555555555555555@lid", sender_alt="15550001111@s.whatsapp.net"),
        book,
    )
    assert len(book) == 2 and ALICE_LID not in book  # bounded: oldest dropped


def test_jid_helpers() -> None:
    assert J.parse_jid("972501234567:12@s.whatsapp.net") == jid(ALICE)
    assert J.normalize("972501234567:12@s.whatsapp.net") == ALICE
    assert J.jid_str(JID()) == ""
    for bad in ("", "no-at-sign", "a@b@c", "@s.whatsapp.net", "x y@g.us"):
        with pytest.raises(ValueError, match="not a WhatsApp JID") as info:
            J.parse_jid(bad)
        assert bad not in str(info.value) or not bad
    assert J.redact_numbers("user 972501234567 not found") == "user <number> not found"


# ---------------------------------------------------------------- malformed input never raises

odd_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=200) | st.sampled_from(
    ["", "\x00", "\u202e\u200f", "👍🏽" * 50, "ﷺ" * 30, "a" * 70000]
)
jids = st.sampled_from(
    ["", ALICE, ALICE_LID, OWN, OWN_LID, GROUP, "status@broadcast", "x@lid", "@", "a@"]
)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_never_raise(data: bytes) -> None:
    try:
        ev = MessageEv.FromString(data)
    except Exception:  # noqa: BLE001 - not even a protobuf: neonize would not deliver it
        return
    result = message_from_event(ev, OWN, OWN_LID)
    assert isinstance(result, Mapped | Skip)


@settings(max_examples=150, deadline=None)
@given(
    text=odd_text,
    chat=jids,
    sender=jids,
    alt=jids,
    from_me=st.booleans(),
    group=st.booleans(),
    mentions=st.lists(jids, max_size=5),
    quote=odd_text,
    ts=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    push=odd_text,
)
def test_odd_fields_never_raise(**kw: Any) -> None:
    msg = text_msg(kw["text"], mentions=tuple(kw["mentions"]), quote=kw["quote"], who=kw["alt"])
    try:
        ev = event(
            msg,
            chat=kw["chat"] if "@" in kw["chat"] and kw["chat"][0] != "@" else ALICE,
            sender=kw["sender"] if kw["sender"].count("@") == 1 and kw["sender"][0] != "@" else "",
            sender_alt=kw["alt"] if kw["alt"].count("@") == 1 and kw["alt"][0] != "@" else "",
            from_me=kw["from_me"],
            group=kw["group"],
            ts=kw["ts"],
            push=kw["push"],
        )
    except ValueError:
        return
    result = message_from_event(ev, OWN, OWN_LID)
    if isinstance(result, Mapped):
        assert len(result.message.text) <= MAX_TEXT
        assert result.timestamp_ms >= 0
        assert result.message.sent_at == result.timestamp_ms / 1000
        assert isinstance(result.message.mentions, tuple)


@pytest.mark.parametrize("device", [0, 3, 12])
def test_owner_messages_from_his_other_devices_are_the_owner_whatever_the_text(
    device: int,
) -> None:
    """whatsmeow never delivers this device's own sends back: a from-me message from the phone
    (device 0) or another linked device is the owner, even with our reply's exact words."""
    ev = event(wa.Message(conversation="Gilad will call you back."), from_me=True, device=device)
    m = message_from_event(ev, OWN, OWN_LID, own_device=7)
    assert isinstance(m, Mapped) and m.message.from_me and not m.message.own_device


def test_a_from_me_message_from_this_very_device_is_marked_as_ours() -> None:
    ev = event(wa.Message(conversation="hi"), from_me=True, device=7)
    m = message_from_event(ev, OWN, OWN_LID, own_device=7)
    assert isinstance(m, Mapped) and m.message.own_device
    unknown = message_from_event(ev, OWN, OWN_LID)  # our device not known yet: the owner
    assert isinstance(unknown, Mapped) and not unknown.message.own_device
    contact = message_from_event(event(device=7), OWN, OWN_LID, own_device=7)
    assert isinstance(contact, Mapped) and not contact.message.own_device
