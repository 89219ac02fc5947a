"""A stand-in for WhatsApp: records what the assistant did and answers sends like whatsmeow.

Every accepted send is confirmed (`SendConfirmed` with a new message id) after `latency`. Like
whatsmeow, nothing else comes back: a linked device's own sends are never delivered to it
(whatsmeow `send.go` encrypts a send for the account's *other* devices only), so the owner's
messages from his phone are the only IsFromMe traffic (a scenario's `from: owner` lines).

The old multi-device echo is a fault to inject: `echo=True` (or a scheduled `echo` failure)
hands each send (and notice) back as an IsFromMe `Message` with the confirmed id, from this
very device (`own_device`), `echo_after` seconds after the confirmation. On request a send
fails (`SendFailed`), its injected echo is dropped, or both are delayed.

Lifecycle faults (`LinkFault`: `stream_replaced`, `logged_out`, `temporary_ban`,
`connect_failure`) turn the link red from `after`: every send fails at once, as the runner
refuses it (`app/world.py` `_send`: `can_send` is false), and notices are not delivered. The
first two are final, as in whatsmeow; a ban lasts its `lasts` plus the 5 s after which wapa
reconnects; a connect failure lasts until wapa's first reconnect (`RECONNECT_BASE`, 5 s) or
its `lasts`. `lifecycle` records the reports the adapter would make.

A `dead_stream` is a socket that went silent (whatsmeow keepalive.go): nothing arrives, the
link is not red (pings go unanswered: `keepalive_lost`, "degraded"), so sends are made and
time out (`SEND_TIMEOUT`, whatsmeow's request timeout) and notices are lost; whatsmeow forces
a reconnect after `KEEPALIVE_MAX_FAIL` (3 min) of failed pings, or the network comes back
sooner (`for:`).

Traffic written while the link is down (`arrival`): whatsmeow receives nothing then, and the
server delivers the offline backlog after the next `Connected`, each message with the time it
was written (its `sent_at`), so the core keeps what is older than `stale_after` as context only
(rule 8). After a final fault nothing arrives any more (another client has the session, or
the device keys are gone).

Group senders addressed by LID (`...@lid` member ids: WhatsApp's LID addressing mode with no
phone-number alternate the adapter could resolve, message.go `parseMessageSource`) reach the
core as they are: one stable id per person, never digits in place of a name.
See docs/whatsapp.md for what whatsmeow does and how faithful this fake is.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from functools import cached_property

from wapa.adapters.whatsapp.link import LinkHealth
from wapa.core.events import (
    Event,
    MarkRead,
    Message,
    Notice,
    Send,
    SendConfirmed,
    SendFailed,
    Typing,
)
from wapa.core.records import Record

SEND_FAILURE_KINDS = ("fail", "drop_echo", "delay", "echo")
LINK_FAULT_KINDS = (
    "stream_replaced",
    "logged_out",
    "temporary_ban",
    "connect_failure",
    "dead_stream",
)
FINAL_LINK_FAULTS = ("stream_replaced", "logged_out")
RECONNECT_AFTER_BAN = 5.0  # adapters/whatsapp/client.py _after_ban: 5 s after the ban ends
FIRST_RECONNECT = 5.0  # adapters/whatsapp/client.py RECONNECT_BASE
KEEPALIVE_MAX_FAIL = 180.0  # whatsmeow keepalive.go KeepAliveMaxFailTime: forced reconnect
FIRST_PING_LOST = 40.0  # keepalive.go: a ping within 20-30 s, unanswered after 10 s
SEND_TIMEOUT = 75.0  # whatsmeow request.go defaultRequestTimeout: a send nobody answers
WHATSMEOW_RECONNECT = 2.0  # whatsmeow client.go autoReconnect: 2 s times the failed attempts


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Delivery(Record):
    """Something WhatsApp hands back to the assistant `delay` seconds after a send. A confirmation
    belongs to the process that sent (lost if it crashes); an echo is new traffic (never lost)."""

    delay: float
    event: Event
    survives_crash: bool


@dataclass
class ScheduledSendFailure:
    """`count` sends made at or after `after` (epoch seconds) fail, lose their (injected)
    echo, are delayed by `by` seconds, or are echoed back (`echo`: the fault whatsmeow never
    has)."""

    kind: str
    count: int = 1
    after: float = float("-inf")
    by: float = 30.0

    def __post_init__(self) -> None:
        if self.kind not in SEND_FAILURE_KINDS:
            raise ValueError(
                f"send failure kind {self.kind!r} is unknown (known: {', '.join(SEND_FAILURE_KINDS)})"
            )
        if self.count < 1:
            raise ValueError(f"send failure count must be >= 1, got {self.count}")


@dataclass(frozen=True, eq=False, repr=False)
class LinkFault(Record):
    """From `after` (epoch seconds) the link is red for `lasts` seconds (None: for good)."""

    kind: str
    after: float
    lasts: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in LINK_FAULT_KINDS:
            raise ValueError(
                f"link fault kind {self.kind!r} is unknown (known: {', '.join(LINK_FAULT_KINDS)})"
            )
        if self.kind in FINAL_LINK_FAULTS and self.lasts is not None:
            raise ValueError(f"{self.kind} is final in whatsmeow: it takes no duration")
        if self.kind == "temporary_ban" and self.lasts is None:
            raise ValueError("temporary_ban needs its length (`for`)")
        if self.lasts is not None and self.lasts < 0:
            raise ValueError("a link fault's duration must be >= 0")

    @property
    def until(self) -> float:
        """When the link is green again (the adapter's `connected`); inf when never."""
        if self.kind in FINAL_LINK_FAULTS:
            return float("inf")
        if self.kind == "temporary_ban":
            return self.after + (self.lasts or 0.0) + RECONNECT_AFTER_BAN
        if self.kind == "dead_stream":  # by itself, whatsmeow reconnects after 3 min
            silent = KEEPALIVE_MAX_FAIL + WHATSMEOW_RECONNECT if self.lasts is None else self.lasts
            return self.after + silent
        return self.after + (FIRST_RECONNECT if self.lasts is None else self.lasts)

    @property
    def red(self) -> bool:
        """The runner refuses sends while it lasts (all but a dead stream, which it cannot
        tell from a slow network)."""
        return self.kind != "dead_stream"

    def lifecycle(self) -> list[tuple[float, str]]:
        """The reports the adapter makes for this fault (kind names as in link.py)."""
        if self.kind != "dead_stream":
            out = [(self.after, "connect_failed" if self.kind == "connect_failure" else self.kind)]
            return out + ([(self.until, "connected")] if self.until != float("inf") else [])
        out = []
        if self.until - self.after > FIRST_PING_LOST:
            out.append((self.after + FIRST_PING_LOST, "keepalive_lost"))
        if self.lasts is None or self.lasts >= KEEPALIVE_MAX_FAIL:  # whatsmeow reconnects
            out += [(self.after + KEEPALIVE_MAX_FAIL, "disconnected"), (self.until, "connected")]
        elif out:
            out.append((self.until, "keepalive_restored"))
        return out


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Arrival(Record):
    """When a message written at some time reaches this device, and as what."""

    at: float
    message: Message


@dataclass
class GroupInfo:
    """A group as WhatsApp describes it: its title and how many take part."""

    title: str
    participants: int


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class NoticeSent(Record):
    """A notice the owner received: when, its text, and its `core.events.NoticeKind`."""

    t: float
    text: str
    kind: str = "status"


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ReadSent(Record):
    """A read receipt sent: when, the chat, the message ids, and whose they are. whatsmeow's
    `MarkRead(ids, timestamp, chat, sender)` names the sender as the receipt's `participant` in
    groups (receipt.go), so a group receipt is per author; "" in direct chats."""

    t: float
    chat: str
    message_ids: tuple[str, ...]
    sender: str = ""


@dataclass
class FakeWhatsApp:
    """The stand-in for WhatsApp (see the module docstring)."""

    latency: float = 0.3  # send -> confirmation
    echo_after: float = 0.2  # confirmation -> echo (only when echoes are injected)
    echo: bool = False  # inject the echo of every send and notice (whatsmeow sends none)
    failures: list[ScheduledSendFailure] = field(default_factory=list)
    fail_rate: float = 0.0  # fuzzing: probability a send fails
    drop_echo_rate: float = 0.0  # fuzzing: probability an echo never arrives
    seed: int = 0
    owner_id: str = "owner"
    reads: list[ReadSent] = field(default_factory=list)
    typing: list[tuple[float, str, bool]] = field(default_factory=list)
    notices: list[NoticeSent] = field(default_factory=list)
    last_sent_id: dict[str, str] = field(default_factory=dict)  # chat -> id of our last message
    groups: dict[str, GroupInfo] = field(default_factory=dict)
    link_faults: list[LinkFault] = field(default_factory=list)
    refused: list[tuple[float, str]] = field(default_factory=list)  # (t, why) sends refused
    backlog: list[tuple[float, float, str]] = field(default_factory=list)  # (written, arrives, id)
    never_arrived: list[tuple[float, str]] = field(default_factory=list)  # (written, id)
    _ids: int = field(default=0, init=False, repr=False)
    _by: float = field(default=0.0, init=False, repr=False)

    @cached_property
    def _rng(self) -> random.Random:
        """The `fail_rate` and `drop_echo_rate` draws' generator, seeded at its first draw
        (most runs never draw, and seeding one costs about 6 µs)."""
        return random.Random(self.seed)

    def _new_id(self) -> str:
        self._ids += 1
        return f"wa{self._ids}"

    def saw(self, m: Message) -> None:
        """Remember group facts from incoming traffic, to make echoes look like the real ones."""
        if m.is_group and m.chat not in self.groups:
            self.groups[m.chat] = GroupInfo(m.group_title, m.participants)

    def mark_read(self, t: float, e: MarkRead) -> None:
        self.reads.append(ReadSent(t, e.chat, e.message_ids, e.sender))

    def set_typing(self, t: float, e: Typing) -> None:
        self.typing.append((t, e.chat, e.on))

    def _fault_at(self, t: float) -> LinkFault | None:
        for fault in self.link_faults:
            if fault.after <= t < fault.until:
                return fault
        return None

    def link_down(self, t: float) -> str:
        """The lifecycle fault keeping the link red at `t`, or "" when it is green (a dead
        stream is not red: see `link_silent`)."""
        fault = self._fault_at(t)
        return fault.kind if fault is not None and fault.red else ""

    def link_silent(self, t: float) -> LinkFault | None:
        """The fault during which nothing gets through at `t` (red or a dead stream)."""
        return self._fault_at(t)

    def arrival(self, t: float, m: Message) -> Arrival | None:
        """When `m`, written at `t`, reaches this device: at once when the link is up; when it
        is down, with the offline backlog once it is up again, stamped with when it was written;
        never after a final fault."""
        at = t
        while (fault := self._fault_at(at)) is not None:
            if fault.until == float("inf"):
                self.never_arrived.append((t, m.id))
                return None
            at = fault.until
        if at == t:
            return Arrival(t, m)
        self.backlog.append((t, at, m.id))
        return Arrival(at, replace(m, sent_at=m.sent_at or t))

    @property
    def lifecycle(self) -> list[tuple[float, str]]:
        """The adapter's lifecycle reports for the injected faults, in time order."""
        return sorted(report for f in self.link_faults for report in f.lifecycle())

    def health_at(self, t: float) -> LinkHealth:
        """The link's health at `t` as the runner shows it (/healthz): the lifecycle reports
        so far fed to the real `LinkHealth`, after the connect at the start."""
        health = LinkHealth()
        health.on_lifecycle("connected")
        for when, kind in self.lifecycle:
            if when > t:
                break
            health.on_lifecycle(kind)
        return health

    def health_changes(self) -> list[float]:
        """When the health may change: the times of the lifecycle reports."""
        return [when for when, _ in self.lifecycle]

    def send(self, t: float, e: Send) -> list[Delivery]:
        down = self.link_down(t)
        if down:  # the runner refuses it before the transport: nothing reaches WhatsApp
            why = f"WhatsApp cannot send now ({down})"
            self.refused.append((t, why))
            return [Delivery(0.0, SendFailed(e.request_id, why), False)]
        silent = self.link_silent(t)
        if silent is not None:  # written into a dead socket: nobody answers
            timeout = min(SEND_TIMEOUT, silent.until - t)
            return [Delivery(timeout, SendFailed(e.request_id, "timed out: no answer"), False)]
        kind = self._failure(t)
        if kind == "fail":
            return [Delivery(self.latency, SendFailed(e.request_id, "fake send failure"), False)]
        msg_id = self._new_id()
        self.last_sent_id[e.chat] = msg_id
        delay = self.latency + (self._by if kind == "delay" else 0.0)
        out = [Delivery(delay, SendConfirmed(e.request_id, msg_id), False)]
        if (self.echo or kind == "echo") and kind != "drop_echo":
            out.append(Delivery(delay + self.echo_after, self._echo(e.chat, msg_id, e.text), True))
        return out

    def notice(self, t: float, e: Notice) -> list[Delivery]:
        if self.link_silent(t) is not None:
            self.refused.append((t, "notice not delivered: link down"))
            return []
        self.notices.append(NoticeSent(t, e.text, e.kind))
        msg_id = self._new_id()
        if not self.echo:
            return []
        return [
            Delivery(
                self.latency + self.echo_after, self._echo(self.owner_id, msg_id, e.text), True
            )
        ]

    def _echo(self, chat: str, msg_id: str, text: str) -> Message:
        group = self.groups.get(chat)
        return Message(
            chat=chat,
            sender=self.owner_id,
            id=msg_id,
            text=text,
            from_me=True,
            own_device=True,  # sent by this very device: the sender JID carries our number
            is_group=group is not None,
            group_title=group.title if group else "",
            participants=group.participants if group else 0,
        )

    def _failure(self, t: float) -> str:
        self._by = 0.0
        for rule in self.failures:
            if rule.count > 0 and t >= rule.after:
                rule.count -= 1
                self._by = rule.by
                return rule.kind
        if self.fail_rate or self.drop_echo_rate:
            draw = self._rng.random()
            if draw < self.fail_rate:
                return "fail"
            if draw < self.fail_rate + self.drop_echo_rate:
                return "drop_echo"
        return ""
