"""@lid identities (issue 12, defect 4), on neonize's real protobufs through the transport's
registered handlers: group info fetched before mapping an uncached group's message, cached
misses that expire, re-resolution after a fetch, the owner's LID read live (`get_me`), and
mentions written as `@<lid digits>` reaching the model as names."""

from __future__ import annotations

from typing import Any

from neonize.aioze.events import MessageEv
from neonize.proto.Neonize_pb2 import JID, Device, GroupInfo, GroupParticipant
from wapa.adapters.whatsapp.mapping import Mapped, message_from_event

from tests.adapters.test_whatsapp_mapping import (
    ALICE,
    ALICE_LID,
    BOB,
    BOB_LID,
    GROUP,
    OWN,
    OWN_LID,
    event,
    jid,
    text_msg,
)
from tests.adapters.test_whatsapp_transport import Clock, FakeClient, started


class LearningClient(FakeClient):
    """whatsmeow's behaviour: fetching a group's info stores its members' LID/phone pairs in
    the LID store (`group.go` parseGroupNode -> `Store.LIDs.PutManyLIDMappings`)."""

    def __init__(self) -> None:
        super().__init__()
        self.learned_by_group_info: dict[str, str] = {}

    async def get_group_info(self, jid: JID) -> GroupInfo:
        info = await super().get_group_info(jid)
        self.lids.update(self.learned_by_group_info)
        return info


async def test_uncached_group_is_fetched_before_mapping_and_the_lid_re_resolved() -> None:
    client = LearningClient()
    client.members = [GroupParticipant(JID=jid(ALICE_LID)), GroupParticipant(JID=jid(BOB))]
    client.learned_by_group_info = {ALICE_LID: ALICE}
    transport, _, inbox, _ = await started(client=client)
    # Alice's first message in the group carries her LID only (no SenderAlt)
    await client.fire(MessageEv, event(chat=GROUP, sender=ALICE_LID, mid="G1"))
    assert inbox[0].sender == ALICE  # not "...@lid": allow lists and dedup see one person
    order = [name for name, _ in client.calls if name in ("pn_from_lid", "group_info")]
    assert order == ["pn_from_lid", "group_info", "pn_from_lid"]  # miss, fetch, asked again
    await transport.stop()


async def test_group_members_pairs_and_names_are_learned_from_the_group_info() -> None:
    transport, client, inbox, _ = await started()
    client.members = [
        GroupParticipant(JID=jid(BOB_LID), PhoneNumber=jid(BOB), DisplayName="Bob Smith"),
    ]
    msg = text_msg(f"@{BOB_LID.split('@')[0]} look", mentions=(BOB_LID,))
    await client.fire(MessageEv, event(msg, chat=GROUP, sender=ALICE, mid="G1"))
    assert inbox[0].mentions == (BOB,)
    assert inbox[0].text == "@Bob Smith look"
    await transport.stop()


async def test_a_cached_miss_expires_and_the_lid_is_asked_again() -> None:
    clock = Clock()
    transport, client, inbox, _ = await started(clock=clock)
    await client.fire(MessageEv, event(chat=ALICE_LID, sender=ALICE_LID, mid="D1"))
    assert inbox[-1].sender == ALICE_LID  # nobody knows the pair yet: a stable LID
    client.lids = {ALICE_LID: ALICE}  # whatsmeow learned it meanwhile (e.g. a PN-addressed msg)
    clock.t += 60
    await client.fire(MessageEv, event(chat=ALICE_LID, sender=ALICE_LID, mid="D2"))
    assert inbox[-1].sender == ALICE_LID and len(client.of("pn_from_lid")) == 1  # not hammered
    clock.t += 3600
    await client.fire(MessageEv, event(chat=ALICE_LID, sender=ALICE_LID, mid="D3"))
    assert (inbox[-1].chat, inbox[-1].sender) == (ALICE, ALICE)  # the miss expired
    assert len(client.of("pn_from_lid")) == 2
    await transport.stop()


async def test_the_owners_lid_is_read_live_not_only_from_the_connect_snapshot() -> None:
    transport, client, inbox, _ = await started()
    client.me = Device(JID=jid(OWN))  # connected before the account had a LID
    client.live_me = Device(JID=jid(OWN), LID=jid(OWN_LID), PushName="Dana")
    msg = text_msg(f"@{OWN_LID.split('@')[0]} can you help?", mentions=(OWN_LID,))
    await client.fire(MessageEv, event(msg, chat=GROUP, sender=ALICE, mid="G1"))
    assert inbox[0].mentions == (OWN,)  # the core sees the owner addressed
    assert inbox[0].text == "@Dana can you help?"
    assert transport.own_lid == OWN_LID
    await transport.stop()


async def test_lid_mentions_in_the_body_reach_the_model_as_names_never_digits() -> None:
    transport, client, inbox, _ = await started()
    client.contacts = {BOB: "Bob Smith"}
    client.lids = {BOB_LID: BOB}
    # Alice wrote before: her push name is known under her LID and her number
    await client.fire(MessageEv, event(chat=GROUP, sender=ALICE_LID, sender_alt=ALICE, mid="G0"))
    stranger = "999999999999999@lid"
    body = "@222222222222222 and @333333333333333, ask @999999999999999"
    msg = text_msg(body, mentions=(ALICE_LID, BOB_LID, stranger))
    await client.fire(MessageEv, event(msg, chat=GROUP, sender=ALICE, mid="G1"))
    assert inbox[-1].text == "@Alice and @Bob Smith, ask @someone"
    assert inbox[-1].mentions == (ALICE, BOB, stranger)
    await transport.stop()


def test_mapping_names_mentions_and_leaves_other_digits_alone() -> None:
    body = "@222222222222222: call 0501234567 or @972501234567"
    msg = text_msg(body, mentions=(ALICE_LID, ALICE))
    names: dict[str, Any] = {ALICE: "Alice"}
    result = message_from_event(
        event(msg, chat=GROUP, sender=BOB), OWN, OWN_LID, {ALICE_LID: ALICE}, names=names
    )
    assert isinstance(result, Mapped)
    assert result.message.text == "@Alice: call 0501234567 or @Alice"
    unnamed = message_from_event(event(msg, chat=GROUP, sender=BOB), OWN, OWN_LID, {})
    assert isinstance(unnamed, Mapped)
    assert unnamed.message.text == "@someone: call 0501234567 or @972501234567"
