"""What goes into the core (events) and what comes out (effects). Plain frozen data (decisions:
plain data, see `Decision`); equality, hashing and repr by value, from `Record`
(core/records.py: fewer generated methods, a faster import).

Drivers (the simulator, the production runner, replay) turn the world into events, call
`Assistant.handle(event, now)`, and carry out the effects it returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from wapa.core.decision import Decision  # an effect too, in its own module (compiled)
from wapa.core.records import Record

# ---------------------------------------------------------------- events (inputs)


class MediaKind(StrEnum):
    """What a message without (or besides) text carries. Members are strings: `Message.media`
    may be given either."""

    VOICE = "voice"
    AUDIO = "audio"
    IMAGE = "image"
    VIDEO = "video"
    DOCUMENT = "document"
    STICKER = "sticker"
    LOCATION = "location"
    CONTACT = "contact"


class NoticeKind(StrEnum):
    """What a notice to the owner is."""

    STATUS = "status"  # an answer to an owner command, a start-up or failure notice
    ESCALATION = "escalation"  # an urgent contact message, told at once
    DIGEST = "digest"  # the summary of what happened


class MessageKind(StrEnum):
    """What WhatsApp delivered; anything but MESSAGE is ignored by the core."""

    MESSAGE = "message"
    REACTION = "reaction"
    SYSTEM = "system"
    STATUS = "status"
    PROTOCOL = "protocol"


MEDIA_KINDS: tuple[MediaKind, ...] = tuple(MediaKind)  # for `in` checks and listings
MESSAGE_KINDS: tuple[MessageKind, ...] = tuple(MessageKind)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Message(Record):
    """A WhatsApp message in a chat. `from_me` is WhatsApp's IsFromMe: the owner typing on one
    of his devices (his phone is device 0). whatsmeow never delivers a linked device's own sends
    back to it, so a from-me message is the owner unless `own_device` says the sender JID
    carries this very device's number (or its id is one WhatsApp confirmed for our send)."""

    chat: str
    sender: str
    id: str
    text: str = ""
    from_me: bool = False
    is_group: bool = False
    sender_name: str = ""
    group_title: str = ""
    participants: int = 0
    mentions: tuple[str, ...] = ()
    quoted_id: str = ""
    quoted_sender: str = ""
    media: str = ""  # a MediaKind, or "" for text
    kind: str = MessageKind.MESSAGE  # a MessageKind; anything but MESSAGE is ignored
    sent_at: float = 0.0  # when the sender wrote it (epoch s), if known; 0 = unknown
    own_device: bool = False  # from_me, sent by this linked device itself (never the owner)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Generated(Record):
    """The model answered a `Generate` effect. `budget_left`: the model's remaining daily
    budget (neurons) when the adapter knows it; the core reports the latest in `status`."""

    request_id: str
    text: str
    budget_left: float | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class GenerationFailed(Record):
    """The model did not answer. `kind` is the adapter's error kind (rate_limited, capacity,
    timeout, server_error, auth, daily_quota, bad_request, ...). `budget_left` as in
    `Generated`."""

    request_id: str
    kind: str
    detail: str = ""
    budget_left: float | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class SendConfirmed(Record):
    """WhatsApp accepted the `Send` with this `request_id`; `message_id` is the id it gave."""

    request_id: str
    message_id: str = ""


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class SendFailed(Record):
    """The `Send` with this `request_id` was not delivered (`detail`: why, for the logs)."""

    request_id: str
    detail: str = ""


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Command(Record):
    """An owner command (pause, resume, status, digest, mute CHAT [DURATION], unmute CHAT,
    profile CHAT NAME, help). The core also parses these from messages the owner writes in his
    chat with himself."""

    name: str
    arg: str = ""


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class MediaText(Record):
    """What a voice note says or an image shows, arriving after its message (speech-to-text
    and image description take seconds): `message_id` is that message's id in `chat`, `kind`
    is "transcript" or "description" (see the machine's rule 6)."""

    chat: str
    message_id: str
    text: str
    kind: str = "transcript"


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class BusyInterval(Record):
    """A time the owner's calendar says he is busy: epoch seconds, `end` > `start`. `title` is
    present only when the owner allowed titles; the core shows it only with
    `Policy.calendar_details == "titles"`, and never in the system prompt."""

    start: float
    end: float
    title: str = ""


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class CalendarUpdate(Record):
    """The owner's busy times for the next days, from the driver (the runner reads an ICS feed;
    the simulator, the scenario's `calendar:`). With `error` == "" it replaces the known busy
    times; with an error (the feed could not be read) the last good ones are kept and `status`
    names the error and the age of the last good update (core/calendar.py)."""

    busy: tuple[BusyInterval, ...] = ()
    error: str = ""


Event = (
    Message
    | Generated
    | GenerationFailed
    | SendConfirmed
    | SendFailed
    | Command
    | MediaText
    | CalendarUpdate
)

# ---------------------------------------------------------------- effects (outputs)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ChatMessage(Record):
    """One turn of a prompt for the model."""

    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class MarkRead(Record):
    """Mark `message_ids` in `chat` read. In a group all ids are `sender`'s (WhatsApp's group
    receipt names the author); "" in direct chats, or when a restored state did not keep it."""

    chat: str
    message_ids: tuple[str, ...]
    sender: str = ""


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Typing(Record):
    """Show (`on`) or stop showing the typing indicator in `chat`."""

    chat: str
    on: bool


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Generate(Record):
    """Ask the model for a reply to `messages`; the answer comes back as `Generated` or
    `GenerationFailed` with the same `request_id`."""

    request_id: str
    chat: str
    messages: tuple[ChatMessage, ...]


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Send(Record):
    """Send `text` to `chat` (quoting `quote_id` if set); the outcome comes back as
    `SendConfirmed` or `SendFailed` with the same `request_id`."""

    request_id: str
    chat: str
    text: str
    quote_id: str = ""


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Notice(Record):
    """A message for the owner; drivers deliver it to his chat with himself.

    `kind` says what it is (a `NoticeKind`), so reports and logs can tell an escalation from a
    command's answer; delivery is the same for every kind.
    """

    text: str
    kind: str = "status"  # a NoticeKind


Effect = MarkRead | Typing | Generate | Send | Notice | Decision


class Reason(StrEnum):
    """Every decision code the core emits, in one place. Members are strings
    (`Reason.SENT == "sent"`), so traces and exported JSON carry the plain code."""

    SCHEDULED = "scheduled"  # a reply is due at T
    DEBOUNCED = "debounced"  # a new message pushed the deadline
    MAX_WAIT = "max_wait"  # the deadline hit the max_wait cap
    URGENT = "urgent"  # urgent message: short delay
    BREAKTHROUGH = "breakthrough"  # urgent message broke a reply cooldown (once)
    COOLDOWN = "cooldown"  # quiet: cooling down until T
    OWNER_TAKEOVER = "owner_takeover"  # the owner wrote: pending cancelled, cooldown
    ECHO = "echo"  # our own send came back as IsFromMe
    GROUP_NOT_ADDRESSED = "group_not_addressed"
    GROUP_NEVER = "group_never"
    IGNORED = "ignored"  # status, system, reaction, protocol, empty
    DUPLICATE = "duplicate"  # redelivered message id
    DENIED = "denied"  # deny list / not on allow list
    PAUSED = "paused"
    MUTED = "muted"
    QUIET_HOURS = "quiet_hours"  # waiting for the end of quiet hours
    CAPPED = "capped"  # a cap was reached: reply dropped
    GENERATING = "generating"  # asked the model
    REPLY_READY = "reply_ready"  # the model's reply passed hygiene: typing until T
    RESTARTED = "restarted"  # new message during generation/typing: start over
    KEPT = "kept"  # new message during generation past max_wait: keep going
    GENERATION_FAILED = "generation_failed"
    GENERATION_TIMEOUT = "generation_timeout"
    REJECTED = "rejected"  # the model's text failed hygiene: nothing sent
    HOLDING = "holding"  # sending the configured holding message instead
    SENT = "sent"
    SEND_CONFIRMED = "send_confirmed"
    SEND_FAILED = "send_failed"
    STALE = "stale"  # a deadline missed while down by more than stale_after: dropped
    MEDIA_TEXT = "media_text"  # a voice note's transcript / an image's description arrived
    SEND_UNKNOWN = "send_unknown"  # restart found a send with no outcome: not repeated
    RECOVERED = "recovered"  # restart resumed a pending reply
    COMMAND = "command"
    ESCALATED = "escalated"  # an urgent contact message was told to the owner at once
    NOT_ESCALATED = "not_escalated"  # an urgent message not told: off, capped, told already...
    ESCALATION_HELD = "escalation_held"  # quiet hours: told when they end
    DIGEST = "digest"  # the digest was sent to the owner (or skipped: nothing new)
    CALENDAR = "calendar"  # busy times replaced, or a failed update (last good kept)
    PROFILE = "profile"  # a chat's profile switched by the owner
    PROFILE_SILENT = "profile_silent"  # the chat's profile answers no one
    CLOCK_SKEW = "clock_skew"  # an event older than the last one: treated as now
    UNKNOWN_REQUEST = "unknown_request"  # a result for a request the core no longer waits for
    BAD_EVENT = "bad_event"
