"""neonize message events -> core `Message`s. Pure: no I/O, no clock, no neonize client.

`message_from_event(ev, own_jid, own_lid, book)` returns `Mapped` (the core message, WhatsApp's
timestamp in milliseconds, and the chat and sender exactly as WhatsApp addressed them, for
read receipts and quotes) or `Skip(reason)` for events the assistant never sees. The core
message's `sent_at` is that timestamp in seconds (0 when missing): the core treats a message
written long before it arrived (a backlog after downtime) as context only.

    status      status broadcasts (stories)           newsletter  channel posts
    broadcast   broadcast-list copies                  protocol    revokes, key shares, settings...
    edit        edits of earlier messages              revoke/pin  deletions and pins (Info.Edit)
    poll_vote   poll votes, added options              unsupported anything with no text or known media
    poll_result poll result snapshots                  event_response  RSVPs to an event
    event_canceled  a cancelled event                  business_menu   a business's buttons/lists
    no_id / no_chat / no_sender                        malformed events

Edits are dropped on purpose: the original was already handled, and treating the new text as
a new message would count it twice. Polls (all versions) pass on their question, events their
name and description, a tap on a business's buttons or list the words chosen. Reactions are
passed on as `kind="reaction"` (the core ignores them with a traced decision). Media without text keep their kind in `media` (voice =
audio with ptt); the core turns them into placeholders. Group title and participant count
are not in a message event: the transport fills them from a cached group-info lookup.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from neonize.proto.Neonize_pb2 import Message as MessageEvent
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message as WAMessage
from wapa.adapters.whatsapp import jid as J
from wapa.core.events import Message

MAX_TEXT = 65536  # WhatsApp's own limit; anything longer is cut
MAX_MENTIONS = 256
UNKNOWN_NAME = "someone"  # a LID mention whose person has no known name: never the digits
_MENTION_TOKEN = re.compile(r"@(\d{5,20})(?!\d)")
_WRAPPERS = (
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "viewOnceMessageV2Extension",
    "documentWithCaptionMessage",
    "lottieStickerMessage",
    "deviceSentMessage",
    "pollCreationMessageV4",  # a FutureProofMessage around the poll
)
_POLLS = (
    "pollCreationMessage",
    "pollCreationMessageV2",
    "pollCreationMessageV3",
    "pollCreationMessageV5",
    "pollCreationMessageV6",
)  # V4 arrives wrapped (see _WRAPPERS)
# Present without anything the core can answer: skipped under their own reason.
_SKIPPED = {
    "encEventResponseMessage": "event_response",  # someone's RSVP to an event
    "pollResultSnapshotMessage": "poll_result",
    "pollResultSnapshotMessageV3": "poll_result",
    "pollAddOptionMessage": "poll_vote",
    "buttonsMessage": "business_menu",  # a business's menus; the contact's tap is a message
    "listMessage": "business_menu",
    "templateMessage": "business_menu",
    "interactiveMessage": "business_menu",
}
_EDIT_ATTRS = {"1": "edit", "3": "edit", "2": "pin", "7": "revoke", "8": "revoke"}
_PROTOCOL_ONLY = {
    "senderKeyDistributionMessage",
    "fastRatchetKeySenderKeyDistributionMessage",
    "messageContextInfo",
    "protocolMessage",
    "keepInChatMessage",
    "pinInChatMessage",
    "encReactionMessage",
    "messageHistoryBundle",
    "messageHistoryNotice",
    "placeholderMessage",
    "secretEncryptedMessage",
    "groupRootKeyShare",
    "rootSecretDistributeMessage",
}


@dataclass(frozen=True, slots=True)
class Skip:
    """An event the assistant never sees; `reason` is a short code (see the module doc)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Mapped:
    message: Message
    timestamp_ms: int = 0  # WhatsApp's send time; 0 when missing
    raw_chat: str = ""  # the chat JID as WhatsApp addressed it (may be a LID)
    raw_sender: str = ""  # the sender JID as WhatsApp addressed it (may be a LID)


class _ContextHolder(Protocol):
    """The submessage that may carry `contextInfo` (mentions, the quoted message):
    extendedTextMessage, imageMessage, ... (neonize's protobuf classes are untyped)."""

    @property
    def contextInfo(self) -> Any: ...

    def HasField(self, field_name: str) -> bool: ...


def unwrap(msg: WAMessage) -> WAMessage:
    for _ in range(4):
        for name in _WRAPPERS:
            if msg.HasField(name):
                inner = getattr(msg, name)
                if inner.HasField("message"):
                    msg = inner.message
                    break
        else:
            return msg
    return msg


def _text(value: str) -> str:
    return value[:MAX_TEXT]


def _content(msg: WAMessage) -> tuple[str, str, str, _ContextHolder | None] | Skip:
    """(kind, media, text, the submessage holding contextInfo) or Skip."""
    if msg.HasField("protocolMessage"):
        return Skip("protocol")
    if msg.HasField("editedMessage"):
        return Skip("edit")
    if msg.HasField("reactionMessage"):
        return ("reaction", "", _text(msg.reactionMessage.text), None)
    if msg.HasField("pollUpdateMessage"):
        return Skip("poll_vote")
    if msg.conversation:
        return ("message", "", _text(msg.conversation), None)
    if msg.HasField("extendedTextMessage"):
        sub = msg.extendedTextMessage
        return ("message", "", _text(sub.text), sub)
    if msg.HasField("imageMessage"):
        return ("message", "image", _text(msg.imageMessage.caption), msg.imageMessage)
    if msg.HasField("videoMessage"):
        return ("message", "video", _text(msg.videoMessage.caption), msg.videoMessage)
    if msg.HasField("ptvMessage"):
        return ("message", "video", _text(msg.ptvMessage.caption), msg.ptvMessage)
    if msg.HasField("audioMessage"):
        media = "voice" if msg.audioMessage.PTT else "audio"
        return ("message", media, "", msg.audioMessage)
    if msg.HasField("documentMessage"):
        return ("message", "document", _text(msg.documentMessage.caption), msg.documentMessage)
    if msg.HasField("stickerMessage"):
        return ("message", "sticker", "", msg.stickerMessage)
    if msg.HasField("locationMessage"):
        return ("message", "location", _text(msg.locationMessage.comment), msg.locationMessage)
    if msg.HasField("liveLocationMessage"):
        sub = msg.liveLocationMessage
        return ("message", "location", _text(sub.caption), sub)
    if msg.HasField("contactMessage"):
        return ("message", "contact", "", msg.contactMessage)
    if msg.HasField("contactsArrayMessage"):
        return ("message", "contact", "", msg.contactsArrayMessage)
    for name in _POLLS:
        if msg.HasField(name):
            sub = getattr(msg, name)
            return ("message", "", _text(sub.name), sub)
    if msg.HasField("eventMessage"):
        sub = msg.eventMessage
        if sub.isCanceled:
            return Skip("event_canceled")
        text = "\n".join(x for x in (sub.name, sub.description) if x)
        return ("message", "", _text(text), sub)
    reply = _tapped(msg)
    if reply is not None:
        return reply
    if msg.HasField("groupInviteMessage"):
        sub = msg.groupInviteMessage
        return ("message", "", _text(sub.caption), sub)
    present = {f.name for f, _ in msg.ListFields()}
    if present and present <= _PROTOCOL_ONLY:
        return Skip("protocol")
    for name, reason in _SKIPPED.items():
        if name in present:
            return Skip(reason)
    return Skip("unsupported")


def _tapped(msg: WAMessage) -> tuple[str, str, str, _ContextHolder | None] | None:
    """A contact's tap on a business's buttons or list: the words he chose, as his message."""
    if msg.HasField("buttonsResponseMessage"):
        sub: Any = msg.buttonsResponseMessage
        return ("message", "", _text(sub.selectedDisplayText or sub.selectedButtonID), sub)
    if msg.HasField("templateButtonReplyMessage"):
        sub = msg.templateButtonReplyMessage
        return ("message", "", _text(sub.selectedDisplayText or sub.selectedID), sub)
    if msg.HasField("listResponseMessage"):
        sub = msg.listResponseMessage
        text = sub.title or sub.description or sub.singleSelectReply.selectedRowID
        return ("message", "", _text(text), sub)
    if msg.HasField("interactiveResponseMessage"):
        sub = msg.interactiveResponseMessage
        return ("message", "", _text(sub.body.text), sub)
    return None


def message_from_event(
    ev: MessageEvent,
    own_jid: str = "",
    own_lid: str = "",
    book: Mapping[str, str] | None = None,
    own_device: int = -1,
    names: Mapping[str, str] | None = None,
) -> Mapped | Skip:
    """Map one neonize `MessageEv`. `own_jid`/`own_lid` are the paired account's addresses
    (its messages from any device are the owner's); `book` maps LIDs to phone-number JIDs.
    `own_device` is this linked device's number (`client.me.JID.Device`; -1 unknown): a from-me
    message whose sender JID carries it is our own send (`Message.own_device`), which
    whatsmeow never delivers; every other device of the account (the phone is 0) is the owner.
    `names` maps JIDs (phone-number or LID) to display names: a mention written in the text as
    `@<digits>` of a mentioned LID becomes `@Name` (`@someone` when no name is known)."""
    book = book if book is not None else {}
    names = names if names is not None else {}
    info = ev.Info
    src = info.MessageSource
    if not info.ID:
        return Skip("no_id")
    raw_chat = J.jid_str(src.Chat)
    if not raw_chat:
        return Skip("no_chat")
    if raw_chat == J.STATUS_BROADCAST:
        return Skip("status")
    if src.Chat.Server == J.BROADCAST_SERVER:
        return Skip("broadcast")
    if src.Chat.Server == J.NEWSLETTER_SERVER:
        return Skip("newsletter")
    if info.Edit in _EDIT_ATTRS:
        return Skip(_EDIT_ATTRS[info.Edit])
    if ev.IsEdit:
        return Skip("edit")
    msg = unwrap(ev.Message)
    content = _content(msg)
    if isinstance(content, Skip):
        return content
    kind, media, text, holder = content

    def pn(text_jid: str, alt: str = "") -> str:
        text_jid = J.normalize(text_jid)
        if J.is_lid(text_jid) and J.is_pn(J.normalize(alt)):
            return J.normalize(alt)
        return J.resolve(text_jid, book, own_lid, own_jid)

    is_group = bool(src.IsGroup) or src.Chat.Server == J.GROUP_SERVER
    from_me = bool(src.IsFromMe)
    this_device = from_me and own_device >= 0 and int(src.Sender.Device) == own_device
    raw_sender = J.jid_str(src.Sender)
    sender_alt = J.jid_str(src.SenderAlt)
    sender = pn(raw_sender, sender_alt)
    if from_me and own_jid:
        sender = own_jid  # the owner on any of his devices
    if is_group:
        chat = raw_chat
        if not sender:
            return Skip("no_sender")
    else:
        if from_me:
            alt = J.jid_str(src.RecipientAlt)
        elif J.normalize(raw_chat) == J.normalize(raw_sender):
            alt = sender_alt
        else:
            alt = ""
        chat = pn(raw_chat, alt)
        sender = sender or chat

    mentions: tuple[str, ...] = ()
    quoted_id = quoted_sender = ""
    if kind == "reaction":
        quoted_id = msg.reactionMessage.key.ID
    elif holder is not None and holder.HasField("contextInfo"):
        ctx = holder.contextInfo
        seen: dict[str, None] = {}
        tokens: dict[str, str] = {}
        for m in list(ctx.mentionedJID)[:MAX_MENTIONS]:
            resolved = pn(m)
            if resolved:
                seen[resolved] = None
                tokens[J.normalize(m).split("@")[0]] = _mention_name(
                    J.normalize(m), resolved, names
                )
        mentions = tuple(seen)
        text = _named_mentions(text, tokens, book, names, own_lid)
        quoted_id = ctx.stanzaID
        quoted_sender = pn(ctx.participant) if ctx.participant else ""

    timestamp_ms = max(0, int(info.Timestamp))
    message = Message(
        chat=chat,
        sender=sender,
        id=info.ID,
        text=text,
        from_me=from_me,
        is_group=is_group,
        sender_name=info.Pushname[:200],
        mentions=mentions,
        quoted_id=quoted_id,
        quoted_sender=quoted_sender,
        media=media,
        kind=kind,
        sent_at=timestamp_ms / 1000,  # int / int: correctly rounded even past 2**53 ms
        own_device=this_device,
    )
    return Mapped(
        message=message,
        timestamp_ms=timestamp_ms,
        raw_chat=raw_chat,
        raw_sender=J.normalize(raw_sender) if raw_sender else "",
    )


def _mention_name(raw: str, resolved: str, names: Mapping[str, str]) -> str:
    """The name a mention shows in the text: known name; a LID's never its digits."""
    name = (names.get(resolved) or names.get(raw) or "").strip()
    if name:
        return name
    if J.is_lid(raw) or J.is_lid(resolved):
        return UNKNOWN_NAME
    return ""  # a phone-number mention with no known name stays as written


def _named_mentions(
    text: str,
    tokens: Mapping[str, str],
    book: Mapping[str, str],
    names: Mapping[str, str],
    own_lid: str,
) -> str:
    """`@<digits>` tokens of mentioned people (and of LIDs we know) as `@Name`."""
    if "@" not in text:
        return text

    def swap(match: re.Match[str]) -> str:
        digits = match.group(1)
        name = tokens.get(digits)
        if name is None:
            lid = f"{digits}@{J.LID_SERVER}"
            if lid in book or lid in names or lid == own_lid:
                name = _mention_name(lid, book.get(lid, lid), names)
        return f"@{name}" if name else match.group(0)

    return _MENTION_TOKEN.sub(swap, text)


def lids_in(ev: MessageEvent) -> set[str]:
    """Every LID an event mentions (sender, chat, mentions, quoted participant), so a caller
    can resolve the unknown ones before mapping."""
    found: set[str] = set()
    src = ev.Info.MessageSource
    for j in (src.Sender, src.Chat):
        s = J.jid_str(j)
        if J.is_lid(s):
            found.add(J.normalize(s))
    content = _content(unwrap(ev.Message))
    if not isinstance(content, Skip) and content[3] is not None:
        holder = content[3]
        if holder.HasField("contextInfo"):
            ctx = holder.contextInfo
            for m in [*list(ctx.mentionedJID)[:MAX_MENTIONS], ctx.participant]:
                if m and J.is_lid(J.normalize(m)):
                    found.add(J.normalize(m))
    return found


def learn_pairs(ev: MessageEvent, book: J.LidBook) -> None:
    """Record the LID/phone-number pairs an event carries (sender and recipient alternates)."""
    src = ev.Info.MessageSource
    sender, sender_alt = J.jid_str(src.Sender), J.jid_str(src.SenderAlt)
    if J.is_lid(J.normalize(sender)):
        book.learn(sender, sender_alt)
    elif J.is_lid(J.normalize(sender_alt)):
        book.learn(sender_alt, sender)
    if not src.IsGroup:
        chat, rec_alt = J.jid_str(src.Chat), J.jid_str(src.RecipientAlt)
        if J.is_lid(J.normalize(chat)) and src.IsFromMe:
            book.learn(chat, rec_alt)
