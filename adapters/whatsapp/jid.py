"""WhatsApp JIDs ("user@server") as the core sees them, and LID to phone-number resolution.

WhatsApp addresses people two ways: by phone number (`972501234567@s.whatsapp.net`, a "PN")
and, more and more, by an opaque linked id (`123456789012345@lid`, a "LID"). The core keys
chats and the owner by phone-number JIDs, so the adapter turns every LID it can into the
matching PN: from the alternate address WhatsApp sends along (`MessageSource.SenderAlt` /
`RecipientAlt`), from pairs learned earlier (`LidBook`), or from neonize's local LID store.
A LID that cannot be resolved is kept as it is (a stable id, just not a phone number).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterator, Mapping

from neonize.proto.Neonize_pb2 import JID

USER_SERVER = "s.whatsapp.net"
LID_SERVER = "lid"
GROUP_SERVER = "g.us"
BROADCAST_SERVER = "broadcast"
NEWSLETTER_SERVER = "newsletter"
STATUS_BROADCAST = "status@broadcast"

_LONG_NUMBER = re.compile(r"\d{7,}")


def jid_str(jid: JID) -> str:
    """`user@server` without device or agent parts; "" for an empty JID."""
    user, server = jid.User, jid.Server
    if not server:
        return ""
    return f"{user}@{server}" if user else server


def parse_jid(text: str) -> JID:
    """The JID for "user@server" (a device suffix "user:3@server" is dropped).

    Raises ValueError naming what is wrong, never echoing the value (it is a phone number)."""
    if not isinstance(text, str) or text.count("@") != 1:
        raise ValueError("not a WhatsApp JID (expected user@server)")
    user, server = text.split("@")
    user = user.split(":", 1)[0].split(".", 1)[0] if server in (USER_SERVER, LID_SERVER) else user
    if not server or not user or any(c.isspace() for c in text):
        raise ValueError("not a WhatsApp JID (expected user@server)")
    return JID(User=user, Server=server, Device=0, RawAgent=0, Integrator=0, IsEmpty=False)


def normalize(text: str) -> str:
    """A JID string without a device part ("972...:12@s.whatsapp.net" -> "972...@s.whatsapp.net");
    anything that is not a JID comes back unchanged."""
    try:
        return jid_str(parse_jid(text))
    except ValueError:
        return text


def is_lid(text: str) -> bool:
    return text.endswith("@" + LID_SERVER)


def is_pn(text: str) -> bool:
    return text.endswith("@" + USER_SERVER) and text.split("@")[0].isdigit()


def redact_numbers(text: str) -> str:
    """Hide long digit runs (phone numbers, LIDs) in a library's error text."""
    return _LONG_NUMBER.sub("<number>", text)


class LidBook(Mapping[str, str]):
    """LID -> phone-number JID pairs seen so far, bounded (least recently used dropped)."""

    def __init__(self, limit: int = 4096) -> None:
        self._limit = limit
        self._pairs: OrderedDict[str, str] = OrderedDict()

    def learn(self, lid: str, pn: str) -> None:
        lid, pn = normalize(lid), normalize(pn)
        if not (is_lid(lid) and is_pn(pn)):
            return
        self._pairs[lid] = pn
        self._pairs.move_to_end(lid)
        while len(self._pairs) > self._limit:
            self._pairs.popitem(last=False)

    def __getitem__(self, lid: str) -> str:
        return self._pairs[lid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)


def resolve(text: str, book: Mapping[str, str], own_lid: str = "", own_jid: str = "") -> str:
    """The phone-number JID for `text` when it is a LID we can resolve; otherwise `text`
    (device part dropped). The owner's own LID resolves to his own JID."""
    text = normalize(text)
    if not is_lid(text):
        return text
    if own_lid and own_jid and text == own_lid:
        return own_jid
    return book.get(text, text)
