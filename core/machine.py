"""The secretary state machine: every behaviour rule of DESIGN.md, in one place.

One `Assistant` owns every chat. Drivers call `handle(event, now)` for each input and
`on_timer(now)` when `next_deadline()` has come; both return effects to carry out. The core
never reads a clock, never does I/O, and draws its only randomness (typing jitter) from a
generator seeded at construction. Same inputs and seed: the same effects, bit for bit.

A chat's reply pipeline has four phases:

    IDLE --contact msg--> WAITING --deadline--> GENERATING --Generated--> TYPING --deadline--> IDLE
                            ^   | (debounce)        |  (MarkRead, Typing on,     (Typing off,
                            +---+                   |   Generate)                 Send)
    any phase --owner writes--> IDLE + cooldown     +--failed/timeout/rejected--> IDLE

The rules (numbers are `Policy` settings, defaults in brackets):

 1 Delay and debounce: a contact's message makes a reply due `response_delay` [120 s] after
   the latest unanswered message, never later than `max_wait` [10 min] after the first one.
 2 Cooldown: after a reply the chat stays quiet for `cooldown` [5 h].
 3 Owner takeover: an IsFromMe message that is not the echo of our own send is the owner: the
   pending reply is cancelled, an in-flight generation discarded, and the chat cools down.
   whatsmeow never delivers a linked device's own sends back to it, and every device of the
   account has its own device number in the sender JID (0 is the phone): so an echo is only
   a from-me message from this very device (`Message.own_device`) or one carrying the id
   WhatsApp confirmed for our send. Its text is never evidence: the owner may type our words.
 4 Urgency (core/urgency.py): urgent messages use `urgent_delay` [15 s] and may break a reply
   cooldown once; the next breakthrough needs the cooldown to run out first. An owner's
   cooldown is never broken.
 5 Groups: a reply only when addressed (owner @mentioned, owner/assistant quoted, alias
   pattern); urgency alone never makes it speak there. `group_reply: never` silences groups.
 6 Ignored: status broadcasts, system/reaction/protocol messages, empty messages, redelivered
   ids (the last `remembered_ids` per chat), denied or not-allowed chats and senders. Media
   without text enters the context as a placeholder ("[voice message]"). A message written
   more than `stale_after` [1 h] before it arrived (a backlog after downtime) is context only.
   Media text (`MediaText`, a transcript or an image description, arriving seconds after its
   message) fills that message's context entry ("[voice message] <transcript>", "[photo: <what
   it shows>] <caption>"); when a reply is pending (WAITING) and the text is urgent, the reply
   becomes urgent (due `urgent_delay` after the message, never later than before). A reply
   already being generated or typed goes on without it: at the deadline the assistant answers
   with what it has, never waits for media text (it usually arrives well before).
 7 Quiet hours (off by default): a reply due inside them waits for their end, unless urgent.
 8 Caps: per chat per rolling day, global per rolling hour and day; checked before generating
   and again before sending; a capped reply is dropped with a trace, never queued.
 9 Pacing: at the deadline mark read, show typing, generate; send after a typing time
   proportional to the reply (bounded, seeded jitter), counted from the start of generation.
   In a group one MarkRead per sender: WhatsApp's group receipt names the message's author.
   A contact message during generation or typing restarts the debounce while max_wait allows.
10 Context (core/context.py): last `max_context` [10] messages younger than `context_ttl` [24 h].
11 Hygiene (core/hygiene.py): a rejected or failed reply sends nothing, or `holding_message`.
12 Owner commands, written in the owner's chat with himself: pause, resume, status, digest,
   mute CHAT [DURATION], unmute CHAT, profile CHAT NAME, help.
13 Profiles (core/profiles.py): a chat's profile (the owner's `profile CHAT NAME`, else the
   first matching `profile_rules`, else `default_profile`) sets its tone, language and what
   may be said of the owner's whereabouts (the owner's own words: system prompt), its delay
   and cooldown (overriding rules 1 and 2, the owner's cooldown of rule 3 too), whether it is
   answered at all, and whether its prompts get the calendar. Reason: a secretary speaks to
   his mother otherwise than to a client, and the owner decides who hears what of his day.
14 Escalation (core/escalation.py): an urgent contact message (rule 4) is told to the owner
   at once in a notice of kind `escalation`, whatever the reply pipeline does: once per chat
   per cooldown, in groups only when he is addressed, held by quiet hours (unless
   `escalate_in_quiet_hours`) and told in one notice when they end, at most
   `escalate_per_day` [10] a rolling day, `escalate: false` turns it off. Reason: a
   secretary interrupts her boss for what cannot wait, and only for that.
15 Digest (core/digest.py): at `digest_at` local time (zoneinfo: daylight saving included)
   and on `digest`, a notice of kind `digest`: who wrote, what was answered when, who waits
   and why, urgent first, bounded; built from the core's own decisions, no model.
   `digest_detail: names` never includes message text. Reason: the owner learns what
   happened without reading every chat, and exactly what the assistant did.
16 Calendar (core/calendar.py): `CalendarUpdate` events replace the owner's busy times; a
   failed update keeps the last good ones. The prompt gets free/busy for `calendar_days` [3]
   days and may say he looks free or busy, never commit him; titles (only with
   `calendar_details: titles`) go to the opening user turn, never the system prompt, since
   other people's invitations write them. Reason: "is he free tomorrow at 5?" deserves an
   answer, and only the owner makes appointments.
   Notices (rules 12, 14, 15) never count toward the caps of rule 8 (they have their own) and
   never look like the owner taking over: they go to his chat with himself, where an echo is
   ours or a note to self. Neither the digest log nor held escalations keep message text (they
   read it from the chat's context) and the send records (core/sends.py) keep none, so data
   retention reaches it.

How a message is judged (`Assistant._on_message`). First a malformed message, an ignored kind
(reaction, system, protocol) or a status broadcast is dropped, and a message in the owner's chat
with himself goes to the commands. Then these steps run in this order, each seeing only what the
earlier ones let through; the order is behaviour:

 1 Deny: a denied (or not allowed) chat or sender stops here, before anything is kept: not its
   id, not its chat, not its text.
 2 Duplicate: a redelivered id stops here; a new id is remembered. Before step 3, so that a
   redelivered echo or owner message counts once (no second takeover, no second echo match).
 3 Echo or owner: an IsFromMe message is our own send coming back (from this device, or by
   a confirmed id) or the owner taking over (rule 3), whatever its text. Before step 4: an
   owner's message without text (a photo) still takes over; his messages enter the context
   as his, not as a contact's.
 4 Empty: a contact's message with neither text nor media stops here: no context, no reply.
 5 Context: the message enters the context and the burst window (rule 4) before the checks
   below, so a group message that does not address the owner, a backlog message, and one that
   arrives while paused, muted or cooling down are all seen by the model when a reply follows.
 6 Group: in a group only an addressed message goes on (rule 5), and it becomes the one to
   quote. Before step 7: urgency alone never makes the assistant speak (or escalate) in a
   group. A message stopped here is in the digest (without its text).
 7 Urgency: the score (rule 4), from the text and the burst window step 5 filled; the message
   enters the digest's log (rule 15) with it.
 8 Stale: a message written more than `stale_after` before it arrived (a backlog after
   downtime) stops here. Before steps 9 and 13: a backlog is neither escalated nor breaks a
   cooldown.
 9 Escalation: an urgent message is told to the owner (rule 14). Before steps 10-13: the
   owner hears of it whatever the reply pipeline does (paused, muted, cooling down).
10 Paused: the owner's pause stops every chat here.
11 Muted: a chat the owner muted stops here.
12 Profile: a chat whose profile answers no one stops here (rule 13).
13 Cooldown: a chat cooling down with no reply under way stays quiet, unless the message is
   urgent, the cooldown is a reply's (never the owner's) and its one breakthrough is unused.
   A reply under way is not stopped by a cooldown: step 14 debounces it instead.
14 Schedule: the reply is due (rule 1), or a reply under way starts over or goes on (rule 9).

Every decision is a `Decision` effect with a `Reason` code: "why did it (not) answer?" always
has an answer. Bad input (wrong types, out-of-order times, lone surrogates) never raises.
"""

from __future__ import annotations

try:  # the builtin module itself: `import hashlib` would load OpenSSL just for blake2b
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - an interpreter without it
    from hashlib import blake2b
import heapq
import math
import operator
import re
from collections import deque
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any, ClassVar, Final

from wapa.core import context as ctx
from wapa.core import profiles, sends, urgency
from wapa.core.calendar import Calendar
from wapa.core.digest import LOG_FIELDS, ChatLog, DigestLog, counted, next_time
from wapa.core.escalation import NAME_CHARS, Escalations, clean, notice_line
from wapa.core.events import (
    CalendarUpdate,
    Command,
    Decision,
    Effect,
    Event,
    Generate,
    Generated,
    GenerationFailed,
    MarkRead,
    MediaText,
    Message,
    MessageKind,
    Notice,
    NoticeKind,
    Reason,
    Send,
    SendConfirmed,
    SendFailed,
    Typing,
)
from wapa.core.hygiene import clean_reply
from wapa.core.policy import Persona, Policy, PolicyError, parse_duration
from wapa.core.profiles import Profile
from wapa.core.sends import ID_BYTES as _ID_BYTES
from wapa.core.sends import id_hash as _id_hash


class Phase(StrEnum):
    """Where a chat's reply pipeline stands (see the diagram above)."""

    IDLE = "idle"
    WAITING = "waiting"
    GENERATING = "generating"
    TYPING = "typing"


# module names for the members: the hot path reads globals, not enum class attributes (in
# Python 3.11 `Reason.SENT` goes through EnumType.__getattr__, about 200 ns a time). Constants
# read on the message path are `Final`: compiled, a Final global is read in place, another
# one is looked up in the module's dict.
IDLE: Final = Phase.IDLE
WAITING: Final = Phase.WAITING
GENERATING: Final = Phase.GENERATING
TYPING: Final = Phase.TYPING
_REPLYING: Final = (GENERATING, TYPING)
_MESSAGE: Final = MessageKind.MESSAGE
_SCHEDULED: Final = Reason.SCHEDULED
_DEBOUNCED: Final = Reason.DEBOUNCED
_URGENT: Final = Reason.URGENT
_MAX_WAIT: Final = Reason.MAX_WAIT
_COOLDOWN: Final = Reason.COOLDOWN
_DUPLICATE: Final = Reason.DUPLICATE
_NOT_ADDRESSED: Final = Reason.GROUP_NOT_ADDRESSED
FOREVER = 1e18  # "muted until further notice"; JSON-safe, unlike inf
# Accepted event times (epoch seconds): 1970 to year ~5000. Refuses inf, NaN, and timestamps
# in milliseconds (1.7e12), which would otherwise push the clock past anything datetime handles.
MAX_TIME: Final = 1e11
NO_TIME: Final = float("-inf")
DAY, HOUR = 86400.0, 3600.0
STATE_VERSION = 1
_UNREAD_KEPT: Final = 32
_SENDS_KEPT = 8
_DISCARDED_KEPT = 64


def _count(n: int, noun: str) -> str:
    """'1 message', '3 messages': for the sentences of decisions."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def utc_text(t: float) -> str:
    """A time for people: epoch seconds as UTC "YYYY-MM-DD HH:MM:SS", or "never" outside the
    times the core accepts (negative, NaN, inf, milliseconds). Every decision formats one, so
    the date is cached per day and the time of day comes from two small tables (strftime
    alone was a fifth of the message path, formatting three numbers a tenth)."""
    if not 0 <= t < MAX_TIME:
        return "never"
    day, rest = divmod(int(t), 86400)
    date = _DAYS.get(day)
    if date is None:
        date = _day(day)
    minute, second = divmod(rest, 60)
    return f"{date} {_HH_MM[minute]}:{_SS[second]}"


def _due_because(due: float, why: str) -> str:
    """The sentence of a scheduling decision (made when read: `Decision.later`)."""
    return f"reply due at {utc_text(due)} ({why})"


def _due_held(due: float, first: float) -> str:
    """The sentence of a reply held to `max_wait` after the chat's first message at `first`."""
    return _due_because(due, f"held to max_wait after the first message at {utc_text(first)}")


_HH_MM = tuple(f"{h:02d}:{m:02d}" for h in range(24) for m in range(60))
_SS = tuple(f"{s:02d}" for s in range(60))
_DAYS: dict[int, str] = {}  # day number -> "YYYY-MM-DD", the last few days


def _day(day: int) -> str:
    if len(_DAYS) >= 64:
        _DAYS.clear()
    text = _DAYS[day] = datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%d")
    return text


def _with_media_text(content: str, kind: str, text: str) -> str:
    """ "[voice message] caption" + a transcript -> "[voice message] <transcript> caption";
    "[photo] caption" + a description -> "[photo: <description>] caption"."""
    end = content.find("]") if content.startswith("[") else -1
    label, caption = (content[: end + 1], content[end + 1 :].strip()) if end > 0 else ("", content)
    if kind == "description" and label:
        head = f"{label[:-1]}: {text}]"
    else:
        head = f"{label} {text}".strip()
    return f"{head} {caption}".strip()


def _clean_text(text: object) -> str:
    if not isinstance(text, str):
        return ""
    if not text.isascii():  # ASCII (most text, an O(1) test) holds no lone surrogate
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: keep the rest, mark the damage
            text = text.encode("utf-8", "replace").decode("utf-8")
    return text.replace("\x00", "")


class Chat(ChatLog):
    """One chat's state. Bounded: context, ids, arrivals, unread and sends all have limits.
    Its line in the digest's log (rule 15) is the fields it inherits from `ChatLog`."""

    # a ClassVar for mypyc (bench/build_core.py), which reads a plain __slots__ as a field
    __slots__: ClassVar[tuple[str, ...]] = (
        "id",
        "is_group",
        "title",
        "participants",
        "name",
        "context",
        "seen",
        "arrivals",
        "phase",
        "first",
        "due",
        "timer_seq",
        "urgent",
        "unread",
        "quote_id",
        "request_id",
        "started",
        "reply",
        "system",
        "cooldown_until",
        "cooldown_reason",
        "breakthrough_used",
        "muted_until",
        "profile",
        "replies",
        "sends",
        "heap_seq",  # not saved: rebuilt on restore with the heap
        *LOG_FIELDS,  # its line in the digest's log, saved as "digest" (`ChatLog`)
    )

    def __init__(self, chat_id: str) -> None:
        super().__init__()
        self.id = chat_id
        self.is_group = False
        self.title = ""
        self.participants = 0
        self.name = ""
        self.context = ctx.Context()  # packed entries, trimmed on every append (rule 10)
        self.seen = b""  # the remembered ids: 8-byte hashes (`_id_hash`), oldest first
        # small lists, not deques: an empty deque costs ~600 bytes, and there are 100k chats
        self.arrivals: list[float] = []  # the last burst_count arrival times
        self.phase: Phase = IDLE
        self.first = 0.0  # time of the first unanswered message
        self.due = 0.0  # the live timer's time (meaning depends on phase)
        self.timer_seq = 0  # the live deadline's sequence number, 0 for none
        self.urgent = False
        # the messages to mark read at the deadline: a bare id, or (id, sender) in groups, where
        # WhatsApp's receipt must name who wrote each message (one MarkRead per sender); as
        # they are saved, and a direct chat's message costs no tuple
        self.unread: list[str | tuple[str, str]] = []
        self.quote_id = ""
        self.request_id = ""
        self.started = 0.0
        self.reply = ""
        self.system = ""
        self.cooldown_until = 0.0
        self.cooldown_reason = ""  # "reply" or "owner": only a reply's cooldown can be broken
        self.breakthrough_used = False
        self.muted_until = 0.0
        self.profile = ""  # the owner's choice (`profile CHAT NAME`); "": by the rules
        self.replies: list[float] = []  # send times within the last day (cap)
        self.sends = b""  # the last _SENDS_KEPT sends, packed (core/sends.py), oldest first
        self.heap_seq = 0  # the sequence number of its entry in the deadline heap, 0 for none

    def export(self) -> dict[str, Any]:
        """Plain JSON. Context entries and sends are compact lists in their fields' order."""
        out = dict(zip(_SAVED, _all_fields(self), strict=True))
        out["context"] = self.context.export()
        out["seen"] = self.seen.hex()
        out["arrivals"] = list(self.arrivals)
        out["replies"] = list(self.replies)
        out["sends"] = sends.export(self.sends)
        # a bare id when the sender is not needed (direct chats: only bare ids) or unknown, as
        # states were saved before senders were kept; [id, sender] in groups
        unread = self.unread
        out["unread"] = (
            [u if isinstance(u, str) else list(u) for u in unread] if self.is_group else unread[:]
        )
        if not self.profile:  # set by the owner's `profile` command only: most chats lack it
            del out["profile"]
        if self.log_seq:  # only chats in the digest's log have an entry
            out["digest"] = self.log_export()
        return out

    @classmethod
    def restore(cls, data: dict[str, Any]) -> Chat:
        """The inverse of `export`; a field missing from `data` keeps its initial value."""
        chat = cls(data["id"])
        for name in _SAVED:
            if name in data and name not in _CONTAINERS:
                setattr(chat, name, data[name])
        chat.phase = Phase(data.get("phase", IDLE))
        chat.context = ctx.Context.restore(data.get("context", ()))
        seen = data.get("seen", "")
        # hex of the hashes; a list of the ids themselves in states saved before (issue 18)
        chat.seen = bytes.fromhex(seen) if isinstance(seen, str) else _seen_of(seen)
        chat.arrivals = list(data.get("arrivals", ()))
        chat.replies = list(data.get("replies", ()))
        chat.sends = sends.restore(data.get("sends", ()))
        # a bare id: a direct chat (whose receipts name no sender), or a state saved before
        # senders were kept (sender unknown)
        group = chat.is_group
        chat.unread = [
            u if isinstance(u, str) else _unread(u[0], u[1] if group else "")
            for u in data.get("unread", ())
        ]
        entry = data.get("digest")
        if entry is not None:  # an entry may be stale: the log's restore tells (and clears it)
            chat.log_load(entry)
        return chat

    def expire(self, cutoff: float) -> bool:
        """Forget what is older than `cutoff` (data retention): context entries (a reply's
        text with its entry: the send records keep none) and, when no reply is under way, the
        last prompt and reply. True if anything changed."""
        context = self.context
        changed = context.keep(context.time(i) >= cutoff for i in range(len(context)))
        if self.phase == IDLE and (self.system or self.reply):
            self.system = self.reply = ""
            changed = True
        return changed


# Remembered message ids (rule 6, duplicates) are kept as 8-byte blake2b hashes
# (`sends.id_hash`) in one bytes object per chat: 64 ids cost 512 bytes instead of a dict of 64
# strings (about 8 KB, most of a chat's memory). Two different ids collide with probability
# 2**-64 per pair.


def _unread(msg_id: object, sender: object) -> str | tuple[str, str]:
    """A saved message to mark read as `Chat.unread` keeps it (the bare id without a sender)."""
    return (str(msg_id), str(sender)) if sender else str(msg_id)


def _remembered(seen: bytes, id_hash: bytes) -> bool:
    """`id_hash` is one of the hashes in `seen` (a match must start on a hash boundary)."""
    i = seen.find(id_hash)
    while i >= 0:
        if i % _ID_BYTES == 0:
            return True
        i = seen.find(id_hash, i + 1)
    return False


def _seen_of(ids: Any) -> bytes:
    """The hashes of a list of ids (how states saved before issue 18 kept them)."""
    out = b""
    for msg_id in ids:
        if isinstance(msg_id, str) and msg_id:
            id_hash = _id_hash(msg_id)
            if not _remembered(out, id_hash):
                out += id_hash
    return out


_SAVED = Chat.__slots__[: Chat.__slots__.index("heap_seq")]  # in this order (`export`)
_all_fields = operator.attrgetter(*_SAVED)  # every saved field at once, in C (export)
_CONTAINERS = frozenset(  # and the phase: restored as a `Phase`, never set as a plain str
    ("phase", "context", "seen", "arrivals", "replies", "sends", "unread")
)


def expire_chat_state(data: dict[str, Any], cutoff: float) -> dict[str, Any]:
    """`Chat.expire` on one chat as `Assistant.export_chat` exported it: for a store that
    purges old data without loading the assistant. Returns a new dict; `data` is unchanged."""
    chat = Chat.restore(data)
    chat.expire(cutoff)
    return chat.export()


class _Settings:
    """The `Policy` settings read for every message, copied once into the fields of a class the
    compiled core compiles (`Assistant._compile`). Reason: `Policy` stays a Python class there,
    since it parses and checks what it is given (core/policy.py), and compiled code reads a
    Python object's field by a lookup by its name; these fields it reads in place. `Policy`
    is frozen, so the copy is always the same."""

    def __init__(self, p: Policy) -> None:
        self.deny, self.allow, self.remembered_ids = p.deny, p.allow, p.remembered_ids
        self.max_message_chars = p.max_message_chars
        self.max_context, self.context_ttl = p.max_context, p.context_ttl
        self.burst_count, self.burst_window = p.burst_count, p.burst_window
        self.urgent_threshold, self.urgent_delay = p.urgent_threshold, p.urgent_delay
        self.response_delay, self.max_wait = p.response_delay, p.max_wait
        self.group_reply, self.stale_after = p.group_reply, p.stale_after
        self.has_profiles = bool(p.profiles)


class Assistant:
    """The whole assistant: all chats, one deadline heap, global caps and the pause switch."""

    def __init__(self, policy: Policy | None = None, persona: Persona | None = None, seed: int = 0):
        self.policy = policy or Policy()
        self.persona = persona or Persona()
        self.seed = seed
        self._draws = 0  # typing jitter: draw n is a hash of (seed, n); the state is one int
        self.chats: dict[str, Chat] = {}
        self.paused = False
        self.now = float("-inf")
        self._heap: list[tuple[float, int, str]] = []
        self._seq = 0
        self._req = 0
        self._requests: dict[str, str] = {}  # request id -> chat id, while a result is awaited
        self._discarded: dict[str, str] = {}  # recently abandoned request ids -> chat id
        # global send times for the caps: only kept while a cap is on, and only the newest
        # `cap` of them (enough to tell whether the cap is reached), so the state stays small
        self._hour: list[float] = []
        self._day: list[float] = []
        self._today_day = 0  # for `status`: the UTC day number of the latest reply...
        self._today_count = 0  # ...and how many replies were sent that day
        self._notices: deque[str] = deque(maxlen=_SENDS_KEPT)  # to spot their echoes
        # the model, as its results report it (for `status`): the latest known daily budget
        # left, and whether the last failure was a rejection of the credentials
        self._budget_left: float | None = None
        self._model_auth_failed = False
        self._dirty: set[str] = set()  # chats changed since the last take_dirty()
        self._escalations = Escalations()  # rule 14
        self._digest = DigestLog()  # rule 15
        self._digest_due: tuple[float, float] = (NO_TIME, NO_TIME)  # (log.first, its digest)
        self._calendar = Calendar()  # rule 16
        self._compile()

    def _compile(self) -> None:
        self._settings = _Settings(self.policy)
        self._urgent_re = urgency.keywords(self.policy.urgent_keywords)
        # @owner not after a word character: the "@" first (then the lookbehind, over it), as a
        # pattern that starts with a literal is searched for that character (about 20x faster
        # than trying the lookbehind at every position: rule 5 reads every group message)
        mention = rf"@(?<!\w@){re.escape(self.persona.owner_name)}(?!\w)"
        aliases = [mention, *self.policy.aliases]
        self._alias_re = re.compile("|".join(f"(?:{a})" for a in aliases), re.IGNORECASE)

    # ------------------------------------------------------------------ driver API

    def handle(self, event: Event, now: float | object) -> list[Effect]:
        out: list[Effect] = []
        now = self._tick(now, out)
        if now == NO_TIME:  # no valid time yet: nothing can be scheduled
            return out
        try:
            if isinstance(event, Message):
                self._on_message(event, now, out)
            elif isinstance(event, Generated):
                self._on_generated(event, now, out)
            elif isinstance(event, GenerationFailed):
                self._on_generation_failed(event, now, out)
            elif isinstance(event, SendConfirmed):
                self._on_send_result(event.request_id, True, event.message_id, now, out)
            elif isinstance(event, SendFailed):
                self._on_send_result(event.request_id, False, event.detail, now, out)
            elif isinstance(event, Command):
                self._on_command(event.name, event.arg, now, out)
            elif isinstance(event, MediaText):
                self._on_media_text(event, now, out)
            elif isinstance(event, CalendarUpdate):
                self._on_calendar(event, now, out)
            else:
                out.append(
                    Decision(now, "", Reason.BAD_EVENT, f"unknown event {type(event).__name__}")
                )
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            out.append(
                Decision(now, "", Reason.BAD_EVENT, f"malformed {type(event).__name__}: {exc}")
            )
        if self._digest.chats:
            self._digest.observe(out, self._dirty)
        return out

    def next_deadline(self) -> float | None:
        owner = self._owner_due()
        chats = self._chat_deadline()
        if owner is None:
            return chats
        return owner if chats is None or owner < chats else chats

    def _chat_deadline(self) -> float | None:
        chat = self._next_timer()
        return chat.due if chat is not None else None

    def _next_timer(self) -> Chat | None:
        """The chat whose deadline comes first, its entry on top of the heap. The top is settled
        on the way: an entry no chat holds or whose deadline was cancelled goes, one whose
        deadline moved later (see `_set_timer`) moves to it."""
        heap = self._heap
        while heap:
            _, seq, chat_id = heap[0]
            chat = self.chats.get(chat_id)
            if chat is None or chat.heap_seq != seq:
                heapq.heappop(heap)
            elif chat.timer_seq == seq:
                return chat
            elif chat.timer_seq:
                chat.heap_seq = chat.timer_seq
                heapq.heapreplace(heap, (chat.due, chat.timer_seq, chat_id))
            else:
                chat.heap_seq = 0
                heapq.heappop(heap)
        return None

    def on_timer(self, now: float | object) -> list[Effect]:
        out: list[Effect] = []
        now = self._tick(now, out)
        if now == NO_TIME:
            return out
        while (chat := self._next_timer()) is not None and chat.due <= now:
            heapq.heappop(self._heap)
            chat.timer_seq = chat.heap_seq = 0
            self._dirty.add(chat.id)
            if chat.phase == WAITING:
                self._fire_reply(chat, now, out)
            elif chat.phase == GENERATING:
                self._to_idle(
                    chat,
                    out,
                    Reason.GENERATION_TIMEOUT,
                    now,
                    f"no answer from the model within {self.policy.generation_timeout:g}s",
                )
            elif chat.phase == TYPING:
                self._send(chat, now, out)
        self._owner_timers(now, out)
        if self._digest.chats:
            self._digest.observe(out, self._dirty)
        return out

    # ------------------------------------------------------------------ inputs

    def _tick(self, now: float | object, out: list[Effect]) -> float:
        """`now` as the step's time: a bad time (not epoch seconds) or one older than the last
        is refused with a decision, and the last known time is used. `now` is typed as
        anything, since bad times are answered, never raised (the compiled core checks a
        declared type at every call)."""
        if type(now) is float and 0.0 <= now < MAX_TIME and now >= self.now:  # the usual case
            self.now = now
        elif isinstance(now, bool) or not isinstance(now, (int, float)) or not 0 <= now < MAX_TIME:
            known = "the last known time" if self.now != NO_TIME else "nothing: no time known yet"
            out.append(
                Decision(
                    max(self.now, 0.0),
                    "",
                    Reason.BAD_EVENT,
                    f"bad time {now!r} (expected epoch seconds): using {known}",
                )
            )
            return self.now
        elif now < self.now:
            out.append(
                Decision(
                    self.now,
                    "",
                    Reason.CLOCK_SKEW,
                    f"event at {utc_text(now)} is older than {utc_text(self.now)}: treated as now",
                )
            )
            return self.now
        else:
            self.now = float(now)
        if self._digest.since is None:
            self._digest.since = self.now
        return self.now

    def _on_message(self, m: Message, now: float, out: list[Effect]) -> None:
        """The steps of the module docstring, in their order (the order is behaviour)."""
        # each field of `m` is read once, where it was first needed (compiled, a read is a
        # lookup by name, and an ill-typed field is refused there: the order of reads is kept)
        chat_id, msg_id = m.chat, m.id
        if not isinstance(chat_id, str) or not chat_id or not isinstance(msg_id, str):
            out.append(Decision(now, "", Reason.BAD_EVENT, "message without a chat or id"))
            return
        kind = m.kind
        if kind != _MESSAGE or chat_id == "status@broadcast":
            out.append(Decision(now, chat_id, Reason.IGNORED, f"{kind} message ignored"))
            return
        text = _clean_text(m.text)
        if chat_id == self.persona.owner_id:
            self._on_self_chat(m, text, now, out)
            return
        settings = self._settings
        deny, allow = settings.deny, settings.allow
        if (  # step 1: deny
            chat_id in deny
            or m.sender in deny
            or (allow and chat_id not in allow and m.sender not in allow)
        ):
            out.append(Decision(now, chat_id, Reason.DENIED, "chat or sender not allowed"))
            return
        sender = m.sender
        chat = self._chat(m, chat_id)
        seen_id = _id_hash(msg_id)
        seen = chat.seen
        if seen_id in seen and _remembered(seen, seen_id):  # step 2: duplicate
            out.append(Decision(now, chat_id, _DUPLICATE, "message id seen before: ignored"))
            return
        if msg_id:
            keep = _ID_BYTES * settings.remembered_ids
            chat.seen = (seen + seen_id)[-keep:] if keep else b""
        if m.from_me:  # step 3: echo or owner
            if self._is_echo(chat, m):
                out.append(
                    Decision(now, chat.id, Reason.ECHO, "our own send came back: not the owner")
                )
            else:
                self._owner_wrote(chat, text, m, now, out)
            return
        media = m.media
        media = media if isinstance(media, str) else ""
        content = ctx.media_text(media, text) if media else text
        if not content.strip():  # step 4: empty
            out.append(Decision(now, chat_id, Reason.IGNORED, "empty message ignored"))
            return
        name = m.sender_name  # step 5: context
        name = name if isinstance(name, str) else ""
        name = name or (sender if isinstance(sender, str) else "")  # state stays plain JSON
        content = content[: settings.max_message_chars + 1]  # the prompt cuts it: keep state small
        chat.context.add(
            now, ctx.CONTACT, name, content, msg_id, settings.max_context, settings.context_ttl
        )
        arrivals, burst_count = chat.arrivals, settings.burst_count
        arrivals.append(now)
        del arrivals[:-burst_count]
        if chat.is_group:  # step 6: group
            if settings.group_reply == "never" or not self._addressed(chat, m, text):
                self._digest.wrote(chat.id, chat, chat.title, True, "", False, now)
                if settings.group_reply == "never":
                    out.append(
                        Decision(now, chat.id, Reason.GROUP_NEVER, "groups are set to never")
                    )
                    return
                out.append(
                    Decision(
                        now,
                        chat.id,
                        _NOT_ADDRESSED,
                        "group message does not address the owner",
                    )
                )
                return
            chat.quote_id = msg_id
        burst = (  # step 7: urgency
            len(arrivals) >= burst_count and now - arrivals[0] <= settings.burst_window
        )
        urgent = urgency.score(text, self._urgent_re, burst) >= settings.urgent_threshold
        label = chat.title if chat.is_group else (chat.name or name)
        self._digest.wrote(chat_id, chat, label, chat.is_group, msg_id, urgent, now)
        sent_at = m.sent_at
        sent_at = sent_at if isinstance(sent_at, (int, float)) else 0.0
        if sent_at and now - sent_at > settings.stale_after:  # step 8: stale
            out.append(
                Decision(
                    now,
                    chat.id,
                    Reason.STALE,
                    f"message written {now - sent_at:.0f}s ago, delivered late: kept in context, not answered",
                )
            )
            return
        if urgent:  # step 9: escalation
            self._escalate(chat, msg_id, name, content, now, out)
        if self.paused:  # step 10: paused
            out.append(Decision(now, chat.id, Reason.PAUSED, "assistant is paused"))
            return
        if now < chat.muted_until:  # step 11: muted
            out.append(
                Decision(
                    now, chat.id, Reason.MUTED, f"chat muted until {utc_text(chat.muted_until)}"
                )
            )
            return
        profile = self._profile(chat) if settings.has_profiles else None
        if profile is not None and not profile.answer:  # step 12: profile
            out.append(
                Decision(
                    now,
                    chat.id,
                    Reason.PROFILE_SILENT,
                    f"profile {profile.name!r} answers no one",
                )
            )
            return
        if now < chat.cooldown_until and chat.phase == IDLE:  # step 13: cooldown
            if urgent and chat.cooldown_reason == "reply" and not chat.breakthrough_used:
                chat.breakthrough_used = True
                out.append(
                    Decision(
                        now,
                        chat.id,
                        Reason.BREAKTHROUGH,
                        f"urgent message breaks the cooldown (until {utc_text(chat.cooldown_until)}) once",
                    )
                )
            else:
                why = "owner wrote" if chat.cooldown_reason == "owner" else "replied"
                out.append(
                    Decision(
                        now,
                        chat.id,
                        _COOLDOWN,
                        f"cooling down until {utc_text(chat.cooldown_until)} ({why})",
                    )
                )
                return
        elif now >= chat.cooldown_until:
            chat.breakthrough_used = False
        sender = sender if chat.is_group and isinstance(sender, str) else ""
        self._schedule(chat, msg_id, sender, urgent, now, out)  # step 14: schedule

    def _on_media_text(self, ev: MediaText, now: float, out: list[Effect]) -> None:
        """Rule 6, media text: fill the message's context entry; an urgent text makes a
        pending reply urgent."""
        chat = self.chats.get(ev.chat) if isinstance(ev.chat, str) else None
        text = _clean_text(ev.text).strip()
        kind = ev.kind if ev.kind in ("transcript", "description") else "transcript"
        i = next(
            (
                i
                for i, e in enumerate(chat.context if chat else ())
                if e.id == ev.message_id and e.who == ctx.CONTACT
            ),
            -1,
        )
        if chat is None or i < 0 or not text:
            where = chat.id if chat is not None else ""
            out.append(Decision(now, where, Reason.IGNORED, f"{kind} for no message in context"))
            return
        entry = chat.context[i]
        content = _with_media_text(entry.text, kind, text)[: self.policy.max_message_chars + 1]
        chat.context[i] = ctx.Entry(entry.t, entry.who, entry.name, content, entry.id)
        self._dirty.add(chat.id)
        score = urgency.score(text, self._urgent_re, False)
        if score >= self.policy.urgent_threshold and not chat.is_group:  # rule 14 too
            if chat.log_seq:
                chat.log_urgent = True
            self._escalate(chat, ev.message_id, entry.name, content, now, out)
        if chat.phase == WAITING and not chat.urgent and score >= self.policy.urgent_threshold:
            chat.urgent = True
            due = max(now, min(chat.due, entry.t + self.policy.urgent_delay))
            self._set_timer(chat, due)
            out.append(
                Decision(
                    now, chat.id, Reason.URGENT, f"reply due at {utc_text(due)} (urgent {kind})"
                )
            )
            return
        out.append(Decision(now, chat.id, Reason.MEDIA_TEXT, f"{kind} added to the context"))

    def _chat(self, m: Message, chat_id: str) -> Chat:
        """The chat `chat_id` (`m.chat`), made if new, with what `m` says of it."""
        chat = self.chats.get(chat_id)
        if chat is None:
            chat = self.chats[chat_id] = Chat(chat_id)
            chat.is_group = bool(m.is_group)
        self._dirty.add(chat_id)
        if m.is_group:
            chat.is_group = True
            title, participants = m.group_title, m.participants
            if isinstance(title, str) and title:
                chat.title = title[:200]
            if isinstance(participants, int) and participants > 0:
                chat.participants = participants
        elif not m.from_me:
            name = m.sender_name  # unchanged, the chat keeps its copy: its entries share it
            if isinstance(name, str) and name and name != chat.name:
                chat.name = name[:200]
        return chat

    def _addressed(self, chat: Chat, m: Message, text: str) -> bool:
        owner = self.persona.owner_id
        if owner in m.mentions or m.quoted_sender == owner:
            return True
        if m.quoted_id and any(e.id == m.quoted_id for e in chat.context if e.who != ctx.CONTACT):
            return True
        quoted = m.quoted_id
        if quoted and isinstance(quoted, str) and sends.quoted(chat.sends, _id_hash(quoted)):
            return True
        return bool(text) and self._alias_re.search(text[: urgency.SCAN_CHARS]) is not None

    def _is_echo(self, chat: Chat, m: Message) -> bool:
        """Rule 3: from this device, or WhatsApp's confirmed id of our send; never by text."""
        if m.id and chat.sends:
            echoed = sends.echo(chat.sends, _id_hash(m.id))
            if echoed is not None:
                chat.sends = echoed
                return True
        return m.own_device is True

    def _owner_wrote(
        self, chat: Chat, text: str, m: Message, now: float, out: list[Effect]
    ) -> None:
        content = ctx.media_text(m.media if isinstance(m.media, str) else "", text)
        if content:
            settings = self._settings
            content = content[: settings.max_message_chars + 1]
            chat.context.add(
                now, ctx.OWNER, "", content, m.id, settings.max_context, settings.context_ttl
            )
        if chat.phase != IDLE:
            self._to_idle(
                chat, out, Reason.OWNER_TAKEOVER, now, "owner wrote: pending reply cancelled"
            )
        chat.cooldown_until = max(chat.cooldown_until, now + self._cooldown(chat))
        chat.cooldown_reason = "owner"
        out.append(
            Decision(
                now,
                chat.id,
                Reason.OWNER_TAKEOVER,
                f"owner wrote: quiet until {utc_text(chat.cooldown_until)}",
            )
        )

    # ------------------------------------------------------------------ the reply pipeline

    def _set_timer(self, chat: Chat, t: float) -> None:
        """The chat's one live deadline becomes `t`, with a new sequence number (which orders
        equal times). The heap holds at most one entry per chat (`heap_seq`), at or before its
        deadline: a deadline moved later, as a debounce moves it (most messages), keeps the
        entry, which `_next_timer` moves when it comes up; so a message pushes nothing."""
        self._seq += 1
        if not chat.heap_seq or chat.due > t:  # no entry at or before t (`due`: the last one's)
            chat.heap_seq = self._seq
            heapq.heappush(self._heap, (t, self._seq, chat.id))
            if len(self._heap) > 64 and len(self._heap) > 2 * len(self.chats):  # stale entries
                self._rebuild_heap()
        chat.due, chat.timer_seq = t, self._seq

    def _rebuild_heap(self) -> None:
        """One entry per live deadline, exact (on restore, and when stale entries pile up)."""
        self._heap = []
        for c in self.chats.values():
            c.heap_seq = c.timer_seq
            if c.timer_seq:
                self._heap.append((c.due, c.timer_seq, c.id))
        heapq.heapify(self._heap)

    def _schedule(
        self, chat: Chat, msg_id: str, sender: str, urgent: bool, now: float, out: list[Effect]
    ) -> None:
        settings = self._settings
        if msg_id:
            chat.unread.append((msg_id, sender) if sender else msg_id)
            del chat.unread[:-_UNREAD_KEPT]
        was_waiting = chat.phase == WAITING  # chat.due is a reply deadline only then
        if chat.phase in _REPLYING:
            if now < chat.first + settings.max_wait:
                if chat.phase == TYPING or chat.request_id:
                    out.append(Typing(chat.id, False))
                self._forget(chat.request_id, chat.id)
                chat.request_id, chat.reply, chat.phase = "", "", WAITING
                out.append(
                    Decision(
                        now, chat.id, Reason.RESTARTED, "new message while replying: starting over"
                    )
                )
            else:
                chat.urgent = chat.urgent or urgent
                out.append(
                    Decision(
                        now,
                        chat.id,
                        Reason.KEPT,
                        "new message past max_wait: the reply under way goes on",
                    )
                )
                return
        fresh = chat.phase == IDLE
        if fresh:
            chat.phase, chat.first, chat.urgent = WAITING, now, False
        chat.urgent = chat.urgent or urgent
        if chat.urgent:
            delay = settings.urgent_delay
        else:
            delay = self._delay(chat) if settings.has_profiles else settings.response_delay
        cap = chat.first + settings.max_wait
        due = max(now, min(now + delay, cap))
        if was_waiting and chat.urgent:
            due = min(due, chat.due)
        self._set_timer(chat, due)
        if chat.urgent and urgent:
            code, why = _URGENT, "urgent message"
        elif due >= cap and now + delay > cap:
            out.append(Decision.later(now, chat.id, _MAX_WAIT, _due_held, due, chat.first))
            return
        elif fresh:
            code, why = _SCHEDULED, "new message"
        else:
            code, why = _DEBOUNCED, "another message pushed the deadline"
        out.append(Decision.later(now, chat.id, code, _due_because, due, why))

    def _to_idle(self, chat: Chat, out: list[Effect], code: str, now: float, detail: str) -> None:
        self._dirty.add(chat.id)
        if chat.phase in (GENERATING, TYPING):
            out.append(Typing(chat.id, False))
        self._forget(chat.request_id, chat.id)
        out.append(Decision(now, chat.id, code, detail, chat.request_id))
        chat.phase, chat.timer_seq, chat.request_id, chat.reply = IDLE, 0, "", ""
        chat.urgent, chat.quote_id = False, ""
        chat.unread.clear()

    def _forget(self, request_id: str, chat_id: str) -> None:
        """Stop awaiting a request; remember its chat for a while so that a late result is
        still traced in the right chat."""
        if request_id and self._requests.pop(request_id, None) is not None:
            self._discarded[request_id] = chat_id
            if len(self._discarded) > _DISCARDED_KEPT:
                del self._discarded[next(iter(self._discarded))]

    def _quiet_until(self, now: float) -> float | None:
        qh = self.policy.quiet_hours
        if qh is None:
            return None
        start, end = qh.minutes()
        if start == end:
            return None
        zone = qh.zone()
        local = datetime.fromtimestamp(now, zone)
        minute = local.hour * 60 + local.minute
        inside = start <= minute < end if start < end else (minute >= start or minute < end)
        if not inside:
            return None
        day = local.date() + timedelta(days=1) if start > end and minute >= start else local.date()
        wake = datetime.combine(day, time(end // 60, end % 60), tzinfo=zone)
        return max(wake.timestamp(), now)

    def _cap_reached(self, chat: Chat, now: float) -> str:
        caps = self.policy.caps
        while self._hour and now - self._hour[0] >= HOUR:
            del self._hour[0]
        while self._day and now - self._day[0] >= DAY:
            del self._day[0]
        while chat.replies and now - chat.replies[0] >= DAY:
            del chat.replies[0]
        if caps.per_chat_per_day and len(chat.replies) >= caps.per_chat_per_day:
            return f"{caps.per_chat_per_day} replies in this chat within a day"
        if caps.per_hour and len(self._hour) >= caps.per_hour:
            return f"{caps.per_hour} replies within an hour"
        if caps.per_day and len(self._day) >= caps.per_day:
            return f"{caps.per_day} replies within a day"
        return ""

    def _fire_reply(self, chat: Chat, now: float, out: list[Effect]) -> None:
        if self.paused or now < chat.muted_until:
            self._to_idle(
                chat,
                out,
                Reason.PAUSED if self.paused else Reason.MUTED,
                now,
                "paused or muted before the reply was due",
            )
            return
        if not chat.urgent:
            wake = self._quiet_until(now)
            if wake is not None and wake > now:
                self._set_timer(chat, wake)
                out.append(
                    Decision(
                        now,
                        chat.id,
                        Reason.QUIET_HOURS,
                        f"quiet hours: reply waits until {utc_text(wake)}",
                    )
                )
                return
        capped = self._cap_reached(chat, now)
        if capped:
            self._to_idle(chat, out, Reason.CAPPED, now, f"reply dropped: {capped}")
            return
        self._req += 1
        chat.request_id = f"r{self._req}"
        self._requests[chat.request_id] = chat.id
        ctx.trim(chat.context, now, self.policy)
        profile = self._profile(chat)
        calendar = titles = ""
        if profile is None or profile.calendar:
            calendar, titles = self._calendar_texts(now)
        messages = ctx.build_prompt(
            chat.context,
            self.persona,
            self.policy,
            is_group=chat.is_group,
            title=chat.title,
            participants=chat.participants,
            contact_name=chat.name,
            profile=profile,
            calendar=calendar,
            calendar_titles=titles,
        )
        chat.system = messages[0].content
        chat.phase, chat.started = GENERATING, now
        if chat.unread:
            by_sender: dict[str, list[str]] = {}
            for u in chat.unread:
                msg_id, sender = (u, "") if isinstance(u, str) else u
                by_sender.setdefault(sender, []).append(msg_id)
            out.extend(MarkRead(chat.id, tuple(ids), s) for s, ids in by_sender.items())
            chat.unread.clear()
        out.append(Typing(chat.id, True))
        out.append(Generate(chat.request_id, chat.id, messages))
        out.append(
            Decision(
                now,
                chat.id,
                Reason.GENERATING,
                f"asking the model ({_count(len(messages) - 1, 'message')} of context)",
                chat.request_id,
            )
        )
        self._set_timer(chat, now + self.policy.generation_timeout)

    def _chat_for(self, request_id: str, now: float, out: list[Effect]) -> Chat | None:
        chat = self.chats.get(self._requests.get(request_id, ""))
        if chat is None or chat.request_id != request_id or chat.phase != GENERATING:
            cid = chat.id if chat else self._discarded.get(request_id, "")
            out.append(
                Decision(
                    now,
                    cid,
                    Reason.UNKNOWN_REQUEST,
                    f"result for {request_id!r}, which is no longer awaited: discarded",
                    str(request_id),
                )
            )
            return None
        self._dirty.add(chat.id)
        return chat

    def _model_result(self, budget_left: object, auth_failed: bool) -> None:
        """What a model result says about the model itself, late results included."""
        if (
            isinstance(budget_left, int | float)
            and not isinstance(budget_left, bool)
            and math.isfinite(budget_left)
        ):
            self._budget_left = float(budget_left)
        self._model_auth_failed = auth_failed

    def _on_generated(self, ev: Generated, now: float, out: list[Effect]) -> None:
        self._model_result(ev.budget_left, False)
        chat = self._chat_for(ev.request_id, now, out)
        if chat is None:
            return
        heard = "\n".join(e.text for e in chat.context if e.who == ctx.CONTACT)
        text, why = clean_reply(
            _clean_text(ev.text),
            chat.system,
            self.policy.max_reply_chars,
            persona=self.persona,
            heard=heard,  # the contact's own words: his numbers are no leak, his quotes no promise
        )
        if why:
            out.append(
                Decision(
                    now, chat.id, Reason.REJECTED, f"model reply refused: {why}", ev.request_id
                )
            )
            self._hold_or_idle(chat, now, out)
            return
        self._type(chat, text, now, out)

    def _on_generation_failed(self, ev: GenerationFailed, now: float, out: list[Effect]) -> None:
        self._model_result(ev.budget_left, ev.kind == "auth")
        chat = self._chat_for(ev.request_id, now, out)
        if chat is None:
            return
        kind = ev.kind if isinstance(ev.kind, str) else "unknown"
        out.append(
            Decision(now, chat.id, Reason.GENERATION_FAILED, f"model failed: {kind}", ev.request_id)
        )
        self._hold_or_idle(chat, now, out)

    def _hold_or_idle(self, chat: Chat, now: float, out: list[Effect]) -> None:
        holding = self.policy.holding_message.strip()
        if holding:
            out.append(
                Decision(
                    now, chat.id, Reason.HOLDING, "sending the holding message", chat.request_id
                )
            )
            self._type(chat, holding, now, out)
        else:
            self._to_idle(chat, out, Reason.GENERATION_FAILED, now, "nothing sent")

    def _type(self, chat: Chat, text: str, now: float, out: list[Effect]) -> None:
        p = self.policy
        seconds = min(p.typing_max, max(p.typing_min, len(text) / p.typing_chars_per_second))
        seconds *= 1.0 + p.typing_jitter * (2.0 * self._random() - 1.0)
        chat.phase, chat.reply = TYPING, text
        at = max(now, chat.started + seconds)
        self._set_timer(chat, at)
        out.append(
            Decision(
                now,
                chat.id,
                Reason.REPLY_READY,
                f"reply ready ({len(text)} chars): sending at {utc_text(at)} after typing",
                chat.request_id,
            )
        )

    def _random(self) -> float:
        """A seeded uniform draw in [0, 1): the n-th is a hash of (seed, n), so the generator's
        whole state is the draw count (a Mersenne Twister's is 2.5 KB, saved at every step)."""
        self._draws += 1
        digest = blake2b(f"{self.seed}:{self._draws}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2.0**64

    def _send(self, chat: Chat, now: float, out: list[Effect]) -> None:
        capped = self._cap_reached(chat, now)
        if capped:
            self._to_idle(chat, out, Reason.CAPPED, now, f"reply dropped before sending: {capped}")
            return
        rid, text = chat.request_id, chat.reply
        quote = chat.quote_id if chat.is_group and self.policy.quote_in_groups else ""
        out.append(Typing(chat.id, False))
        out.append(Send(rid, chat.id, text, quote))
        if now >= chat.cooldown_until:
            chat.breakthrough_used = False
        chat.sends, evicted = sends.add(chat.sends, rid, chat.cooldown_until, _SENDS_KEPT)
        for old in evicted:
            self._requests.pop(old, None)
        settings = self._settings
        chat.context.add(
            now, ctx.ASSISTANT, "", text, rid, settings.max_context, settings.context_ttl
        )
        caps = self.policy.caps
        for times, cap in (
            (chat.replies, caps.per_chat_per_day),
            (self._hour, caps.per_hour),
            (self._day, caps.per_day),
        ):
            if cap:
                times.append(now)
                del times[:-cap]
        day = int(now // DAY)
        self._today_count = self._today_count + 1 if self._today_day == day else 1
        self._today_day = day
        chat.cooldown_until, chat.cooldown_reason = now + self._cooldown(chat), "reply"
        out.append(
            Decision(
                now,
                chat.id,
                Reason.SENT,
                f"reply sent; quiet until {utc_text(chat.cooldown_until)}",
                rid,
            )
        )
        chat.phase, chat.timer_seq, chat.request_id, chat.reply = IDLE, 0, "", ""
        chat.urgent, chat.quote_id = False, ""
        self._requests[rid] = chat.id  # now awaiting the send's outcome

    def _on_send_result(self, rid: str, ok: bool, info: str, now: float, out: list[Effect]) -> None:
        chat = self.chats.get(self._requests.get(rid, ""))
        i = sends.find(chat.sends, rid) if chat else -1
        if chat is None or i < 0:
            cid = chat.id if chat else self._discarded.get(rid, "")
            out.append(
                Decision(
                    now,
                    cid,
                    Reason.UNKNOWN_REQUEST,
                    f"send result for unknown request {rid!r}",
                    str(rid),
                )
            )
            return
        del self._requests[rid]
        self._dirty.add(chat.id)
        if ok:
            chat.sends = sends.confirm(chat.sends, i, info)
            out.append(
                Decision(now, chat.id, Reason.SEND_CONFIRMED, "WhatsApp accepted the reply", rid)
            )
            return
        # Not delivered: forget it in the context and give the cooldown back. Never retried here:
        # a retry could double-send; the contact's next message gets a fresh reply.
        latest = i == sends.count(chat.sends) - 1  # an earlier failure keeps a later cooldown
        chat.sends, prev_cooldown = sends.remove(chat.sends, i)
        chat.context.keep(e.id != rid for e in chat.context)
        if chat.cooldown_reason == "reply" and latest:
            chat.cooldown_until = prev_cooldown
        out.append(
            Decision(
                now, chat.id, Reason.SEND_FAILED, "WhatsApp refused the reply; not retried", rid
            )
        )

    # ------------------------------------------------------------------ the owner's view

    def _profile(self, chat: Chat) -> Profile | None:
        """Rule 13: the owner's choice, the first matching rule, the default profile."""
        p = self.policy
        if not p.profiles:
            return None
        return profiles.choose(
            p.profiles,
            p.profile_rules,
            p.default_profile,
            chosen=chat.profile,
            chat=chat.id,
            sender="" if chat.is_group else chat.id,
            name=chat.title if chat.is_group else chat.name,
        )

    def _delay(self, chat: Chat) -> float:
        profile = self._profile(chat) if self.policy.profiles else None
        if profile is not None and profile.delay is not None:
            return profile.delay
        return self.policy.response_delay

    def _cooldown(self, chat: Chat) -> float:
        profile = self._profile(chat) if self.policy.profiles else None
        if profile is not None and profile.cooldown is not None:
            return profile.cooldown
        return self.policy.cooldown

    def _message(self, chat_id: str, msg_id: str) -> ctx.Entry | None:
        """A contact's message still in its chat's context (None once expired or trimmed)."""
        chat = self.chats.get(chat_id)
        for e in reversed(chat.context if chat is not None else ()):
            if e.id == msg_id and e.who == ctx.CONTACT:
                return e
        return None

    def _excerpt(self, chat_id: str, msg_id: str) -> str:
        """Rule 15: a message's text for the digest; never with `digest_detail: names`."""
        if self.policy.digest_detail != "text":
            return ""
        entry = self._message(chat_id, msg_id)
        return entry.text if entry is not None else ""

    def _held_line(self, chat_id: str, msg_id: str) -> str:
        """Rule 14: a held escalation, told when quiet hours end, from the chat's context."""
        chat = self.chats.get(chat_id)
        entry = self._message(chat_id, msg_id)
        if chat is None or entry is None:
            label = (chat.name or chat.title) if chat is not None else ""
            return f"Urgent from {clean(label, NAME_CHARS) or 'someone'} (the message expired)"
        at = datetime.fromtimestamp(entry.t, self.policy.local_zone()).strftime("%H:%M")
        return notice_line(entry.name, chat.title, entry.text, chat.is_group, at)

    def _escalate(
        self, chat: Chat, msg_id: str, name: str, text: str, now: float, out: list[Effect]
    ) -> None:
        """Rule 14 (core/escalation.py): tell the owner of an urgent message, at once or when
        quiet hours end."""
        p = self.policy
        if not p.escalate:
            out.append(Decision(now, chat.id, Reason.NOT_ESCALATED, "escalation is off"))
            return
        esc = self._escalations
        why = esc.refusal(chat.id, now, self._cooldown(chat), p.escalate_per_day)
        if why:
            out.append(Decision(now, chat.id, Reason.NOT_ESCALATED, f"not escalated: {why}"))
            return
        esc.count(chat.id, now, p.escalate_per_day)
        wake = None if p.escalate_in_quiet_hours else self._quiet_until(now)
        if wake is not None and wake > now:
            esc.hold(chat.id, msg_id, now, wake)
            out.append(
                Decision(
                    now,
                    chat.id,
                    Reason.ESCALATION_HELD,
                    f"urgent: quiet hours, the owner is told at {utc_text(esc.release_at)}",
                )
            )
            return
        line = notice_line(name, chat.title, text, chat.is_group)
        self._notice(line, now, out, NoticeKind.ESCALATION)
        out.append(Decision(now, chat.id, Reason.ESCALATED, "urgent: the owner is told at once"))

    def _owner_due(self) -> float | None:
        """The next time the owner is owed a notice: held escalations, the digest."""
        release = self._escalations.release_at or None
        digest = self._digest_time()
        if digest is None:
            return release
        return digest if release is None or digest < release else release

    def _digest_time(self) -> float | None:
        """Rule 15: the first `digest_at` after the first message logged (none while there is
        nothing to tell: a scheduled digest is never empty, and a run can end)."""
        first, at = self._digest.first, self.policy.digest_at
        if first is None or at is None:
            return None
        if self._digest_due[0] != first:
            self._digest_due = (first, next_time(first, at, self.policy.local_zone()))
        return self._digest_due[1]

    def _owner_timers(self, now: float, out: list[Effect]) -> None:
        esc = self._escalations
        if esc.release_at and now >= esc.release_at:
            text = esc.release(self._held_line)
            if text:
                self._notice(text, now, out, NoticeKind.ESCALATION)
                out.append(
                    Decision(
                        now,
                        self.persona.owner_id,
                        Reason.ESCALATED,
                        "quiet hours ended: what they held is told",
                    )
                )
        due = self._digest_time()
        if due is not None and now >= due:
            self._send_digest(now, out, asked=False)

    def _send_digest(self, now: float, out: list[Effect], asked: bool) -> None:
        log = self._digest
        text = log.build(
            now, self.policy.local_zone(), self._excerpt, limit=self.policy.digest_max_chars
        )
        chats = len(log.chats)
        log.reset(now)  # the entries stay in their rows, stale, until next written (`start`)
        self._notice(text, now, out, NoticeKind.DIGEST)
        why = "asked by the owner" if asked else f"daily at {self.policy.digest_at}"
        out.append(
            Decision(
                now,
                self.persona.owner_id,
                Reason.DIGEST,
                f"digest sent ({why}): {_count(chats, 'chat')}, {len(text)} chars",
            )
        )

    def _switch_profile(self, arg: str, now: float, out: list[Effect]) -> None:
        words = arg.split()
        wanted = words[-1] if words else ""
        names = [p.name for p in self.policy.profiles]
        chat = self._find_chat(" ".join(words[:-1])) if len(words) > 1 else None
        if wanted.casefold() in ("default", "none"):
            wanted = ""
        elif wanted not in names:
            known = ", ".join(names) if names else "none configured"
            self._notice(f"No profile called {wanted!r} (profiles: {known}).", now, out)
            return
        if chat is None:
            self._notice(f"No chat called {' '.join(words[:-1])!r}.", now, out)
            return
        chat.profile = wanted
        self._dirty.add(chat.id)
        label = chat.name or chat.title or chat.id
        chosen = self._profile(chat)
        now_is = f"profile {chosen.name!r}" if chosen else "no profile"
        out.append(Decision(now, chat.id, Reason.PROFILE, f"the owner set the profile: {now_is}"))
        self._notice(f"{label}: {now_is} from now on.", now, out)

    def _on_calendar(self, ev: CalendarUpdate, now: float, out: list[Effect]) -> None:
        p = self.policy
        detail = self._calendar.apply(ev, now, p.calendar_days, p.calendar_details == "titles")
        out.append(Decision(now, "", Reason.CALENDAR, detail))

    def _calendar_texts(self, now: float) -> tuple[str, str]:
        """Rule 16: (free/busy for the system prompt, titles for the opening user turn)."""
        p, cal = self.policy, self._calendar
        if cal.good_at is None:
            return "", ""
        zone = p.local_zone()
        free_busy = cal.prompt_text(now, zone, p.calendar_days, self.persona.owner_name)
        titles = (
            cal.titles_line(now, zone, p.calendar_days) if p.calendar_details == "titles" else ""
        )
        return free_busy, titles

    # ------------------------------------------------------------------ owner commands

    def _on_self_chat(self, m: Message, text: str, now: float, out: list[Effect]) -> None:
        if not m.from_me:
            out.append(Decision(now, m.chat, Reason.IGNORED, "message in the owner's own chat"))
            return
        notice = next(
            (
                n
                for n in self._notices
                if text == n or text.startswith(n + "\n") or text.startswith(n + " ")
            ),
            None,
        )
        if notice is not None or m.own_device is True:  # drivers may append a line (budget)
            if notice is not None:
                self._notices.remove(notice)
            out.append(Decision(now, m.chat, Reason.ECHO, "our notice came back"))
            return
        words = text.strip().lstrip("/!").split()
        name = words[0].casefold() if words else ""
        arg = " ".join(words[1:])
        if (
            name in ("pause", "resume", "status", "help", "digest")
            and not arg
            or name in ("mute", "unmute", "profile")
            and arg
        ):
            self._on_command(name, arg, now, out)
        else:
            out.append(Decision(now, m.chat, Reason.IGNORED, "note to self, not a command"))

    def _notice(
        self, text: str, now: float, out: list[Effect], kind: str = NoticeKind.STATUS
    ) -> None:
        """A notice to the owner. A status notice's text is remembered to spot its echo;
        escalations and digests quote contacts, so their text is not kept in the state (an
        echo of one, should a device send it back, is only a note to self: never a command,
        never a takeover)."""
        if kind == NoticeKind.STATUS:
            self._notices.append(text)
        out.append(Notice(text, kind))

    def _on_command(self, name: str, arg: str, now: float, out: list[Effect]) -> None:
        name = str(name).casefold()
        out.append(Decision(now, "", Reason.COMMAND, f"owner command: {name}"))
        if name == "pause":
            self.paused = True
            for chat in self.chats.values():
                if chat.phase != IDLE:
                    self._to_idle(
                        chat,
                        out,
                        Reason.PAUSED,
                        now,
                        "paused by the owner: pending reply cancelled",
                    )
            self._notice("Paused: I will not answer anyone until you send 'resume'.", now, out)
        elif name == "resume":
            self.paused = False
            self._notice("Resumed: answering again.", now, out)
        elif name == "status":
            self._notice(self.status(now), now, out)
        elif name in ("mute", "unmute"):
            self._mute(name, str(arg), now, out)
        elif name == "digest":
            self._send_digest(now, out, asked=True)
        elif name == "profile":
            self._switch_profile(str(arg), now, out)
        else:
            self._notice(
                "Commands: pause, resume, status, digest, mute CHAT [DURATION], unmute CHAT, "
                "profile CHAT NAME (NAME 'default': back to the rules).",
                now,
                out,
            )

    def _find_chat(self, label: str) -> Chat | None:
        """A chat by id, contact name or group title (case-insensitive)."""
        folded = label.casefold()
        return self.chats.get(label) or next(
            (c for c in self.chats.values() if folded in (c.name.casefold(), c.title.casefold())),
            None,
        )

    def _mute(self, name: str, arg: str, now: float, out: list[Effect]) -> None:
        words = arg.split()
        until = FOREVER if name == "mute" else 0.0
        chat = self._find_chat(" ".join(words))  # "mute Team 5" is the chat "Team 5" if it exists
        if chat is None and name == "mute" and len(words) > 1:
            try:
                until = now + parse_duration(words[-1], "mute")
                words = words[:-1]
                chat = self._find_chat(" ".join(words))
            except PolicyError:
                pass
        if chat is None:
            self._notice(f"No chat called {' '.join(words)!r}.", now, out)
            return
        chat.muted_until = until
        self._dirty.add(chat.id)
        if until and chat.phase != IDLE:
            self._to_idle(
                chat, out, Reason.MUTED, now, "muted by the owner: pending reply cancelled"
            )
        label = chat.name or chat.title or chat.id
        when = "until further notice" if until >= FOREVER else f"until {utc_text(until)}"
        self._notice(f"Muted {label} {when}." if until else f"Unmuted {label}.", now, out)

    def status(self, now: float) -> str:
        pending = sum(c.phase != IDLE for c in self.chats.values())
        cooling = sum(c.cooldown_until > now for c in self.chats.values())
        today = self._today_count if self._today_day == int(now // DAY) else 0
        state = "paused" if self.paused else "active"
        if self._model_auth_failed:  # first: the owner must act, and a budget is always known
            model = " The model's credentials were rejected: fix them and restart."
        elif self._budget_left is not None:
            model = f" Model budget left today: {self._budget_left:.0f} neurons."
        else:
            model = ""
        esc = self._escalations
        told = sum(1 for t in esc.times if now - t < DAY)
        owner = f" Escalations in the last day: {told} of {self.policy.escalate_per_day}."
        if not told:
            owner = ""
        if not self.policy.escalate:
            owner = " Escalation is off."
        if esc.held or esc.held_more:
            owner += f" Held for the end of quiet hours: {len(esc.held) + esc.held_more}."
        return (
            f"wapa is {state}: {counted(pending, 'reply', 'replies')} pending, "
            f"{counted(cooling, 'chat')} cooling down, {counted(today, 'reply', 'replies')} today (UTC), "
            f"{counted(len(self.chats), 'chat')} known.{model}{owner}"
            f"{self._calendar.status(now)}"
        )

    # ------------------------------------------------------------------ persistence

    def take_dirty(self) -> set[str]:
        """Ids of the chats changed since the last call: what a store must write (O(1) rows per
        message). The global part (`export_meta`) is small and written every step."""
        dirty, self._dirty = self._dirty, set()
        return dirty

    def export_chat(self, chat_id: str) -> dict[str, Any]:
        return self.chats[chat_id].export()

    def expire(self, cutoff: float) -> set[str]:
        """Data retention: `Chat.expire(cutoff)` for every chat (what `expire_chat_state` does
        to a stored one). Returns the ids of the chats that changed; they are also dirty."""
        changed = {cid for cid, chat in self.chats.items() if chat.expire(cutoff)}
        self._dirty |= changed
        # the digest log and held escalations keep no text (they read it from the context)
        return changed

    def export(self) -> dict[str, Any]:
        """Everything needed to continue exactly where this left off (JSON-serialisable)."""
        state = self.export_meta()
        state["chats"] = {cid: c.export() for cid, c in self.chats.items()}
        return state

    def export_meta(self) -> dict[str, Any]:
        """The global part of the state: clock, counters, random generator, caps, pause."""
        return {
            "version": STATE_VERSION,
            "seed": self.seed,
            "now": self.now if self.now != float("-inf") else None,
            "paused": self.paused,
            "seq": self._seq,
            "req": self._req,
            "draws": self._draws,
            "today": [self._today_day, self._today_count],
            "requests": dict(self._requests),
            "discarded": dict(self._discarded),
            "hour": list(self._hour),
            "day": list(self._day),
            "notices": list(self._notices),
            "budget_left": self._budget_left,
            "model_auth_failed": self._model_auth_failed,
            "escalations": self._escalations.export(),
            "digest": self._digest.export(),
            "calendar": self._calendar.export(),
        }

    @classmethod
    def restore(
        cls, state: dict[str, Any], policy: Policy | None = None, persona: Persona | None = None
    ) -> Assistant:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"state version {state.get('version')!r} is not {STATE_VERSION}")
        a = cls(policy, persona, state["seed"])
        a.now = state["now"] if state["now"] is not None else float("-inf")
        a.paused, a._seq, a._req = state["paused"], state["seq"], state["req"]
        a._draws = int(state.get("draws", 0))
        a._today_day, a._today_count = state.get("today", (0, 0))
        a._requests = dict(state["requests"])
        a._discarded = dict(state.get("discarded", {}))
        a._hour = list(state["hour"])
        a._day = list(state["day"])
        a._notices.extend(state["notices"])
        budget = state.get("budget_left")  # states saved before these two existed lack them
        a._budget_left = float(budget) if isinstance(budget, int | float) else None
        a._model_auth_failed = bool(state.get("model_auth_failed", False))
        a._escalations = Escalations.restore(state.get("escalations"))  # absent before rule 14
        a._calendar = Calendar.restore(state.get("calendar"))
        for cid, data in state["chats"].items():
            a.chats[cid] = Chat.restore(data)
        a._restore_digest(state.get("digest"))
        a._rebuild_heap()
        return a

    def _restore_digest(self, data: dict[str, Any] | None) -> None:
        """Rule 15's log from its global part and the entries the chats hold (stale ones are
        dropped). A state saved with the whole log in the meta has its entries moved into
        their chats (an entry of a chat the state no longer has is dropped), and those chats
        are dirty: the next commit writes them, since the meta no longer holds their entries."""
        for cid, row in DigestLog.saved_in_meta(data).items():
            chat = self.chats.get(cid)
            if chat is not None and not chat.log_seq:
                chat.log_load(row)
                self._dirty.add(cid)
        held: dict[str, ChatLog] = {cid: c for cid, c in self.chats.items() if c.log_seq}
        self._digest = DigestLog.restore(data, held)  # stale lines (dropped, emptied) cleared

    def recover(self, now: float | object) -> list[Effect]:
        """After a crash and `restore`: results of generations and sends in flight at the crash
        will never arrive. Generations are asked again, typing resumes, sends with no known
        outcome are reported (never repeated), deadlines missed by more than `stale_after` are
        dropped; a deadline missed by less fires at the next `on_timer`."""
        out: list[Effect] = []
        now = self._tick(now, out)
        if now == NO_TIME:
            return out
        for chat in self.chats.values():
            for rid in sends.request_ids(chat.sends):
                if rid in self._requests:
                    del self._requests[rid]
                    out.append(
                        Decision(
                            now,
                            chat.id,
                            Reason.SEND_UNKNOWN,
                            "a send was under way at the crash: outcome unknown, not repeated",
                            rid,
                        )
                    )
            if chat.phase == IDLE:
                continue
            late = now - chat.due
            if chat.phase == GENERATING:
                late = now - chat.started
            if late > self.policy.stale_after:
                self._to_idle(
                    chat,
                    out,
                    Reason.STALE,
                    now,
                    f"reply {late:.0f}s overdue after restart: dropped",
                )
                continue
            if chat.phase == GENERATING:
                self._forget(chat.request_id, chat.id)
                chat.request_id, chat.phase = "", WAITING
                self._set_timer(chat, now)
            elif chat.phase == TYPING:
                out.append(Typing(chat.id, True))
            out.append(
                Decision(now, chat.id, Reason.RECOVERED, f"pending reply resumed ({chat.phase})")
            )
        return out
