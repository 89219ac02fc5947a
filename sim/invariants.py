"""A black-box trace checker: it watches the events going into the core and the effects coming
out, and reports every place where the trace breaks one of the secretary's promises.

It never looks inside the `Assistant`; it keeps its own small model of each chat from the trace
alone, so a broken core (a cooldown check removed, echoes taken for the owner, a cap ignored) is
caught rather than excused. Where the trace alone cannot tell (a redelivered id the core may
have forgotten, a message whose urgency is borderline), the checker leans towards allowing: it
may miss a subtle fault, but a violation it reports is one.

Rules (each `Violation.rule`):

- `cooldown`: a send within `cooldown` of the chat's last (not failed) send, other than one
  urgent breakthrough (`breakthrough`: a second one before the cooldown ran out, or one with no
  urgent contact message since the cooldown began).
- `owner_cooldown`: a send after the owner wrote in the chat and before his cooldown ended.
- `group_never` / `group_not_addressed`: a group send when groups are off, or with no message
  addressing the owner (mention, quote of the owner or assistant, alias) since the last send.
- `double_reply`: a second send in a chat with no new contact message since the first: at most
  one reply per debounce window.
- `too_early`: a generation started sooner than the shortest delay after the batch's first
  message (or with no message at all).
- `caps`: a send beyond `caps.per_chat_per_day`, `caps.per_hour` or `caps.per_day` (rolling).
- `denied`, `paused`, `empty_send`, `unscheduled_send`: a send to a denied chat,
  while paused, with no text, or with no reply scheduled.
- `echo_as_owner`: the echo of our own send (by confirmed id or text) was taken for the owner.
- `never_concluded`: a scheduled reply neither sent nor dropped nor cancelled with a reason
  within `horizon` seconds of its last progress.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from wapa.core.events import (
    Command,
    Decision,
    Effect,
    Event,
    Generate,
    Message,
    Reason,
    Send,
    SendConfirmed,
    SendFailed,
)
from wapa.core.policy import Persona, Policy

HOUR, DAY = 3600.0, 86400.0
SENDS_REMEMBERED = 8  # the core recognises echoes of this many recent sends per chat
URGENCY_SCAN = 4000  # the core judges a long message by its first few thousand characters

# HOLDING reopens: a failed generation (closed) turns into the holding message (a reply again).
_OPEN = frozenset(
    {Reason.SCHEDULED, Reason.DEBOUNCED, Reason.MAX_WAIT, Reason.URGENT, Reason.HOLDING}
)
_PROGRESS = frozenset(
    {
        Reason.BREAKTHROUGH,
        Reason.RESTARTED,
        Reason.KEPT,
        Reason.RECOVERED,
        Reason.QUIET_HOURS,
        Reason.GENERATING,
        Reason.REJECTED,
    }
)
_CLOSE = frozenset(
    {
        Reason.SENT,
        Reason.OWNER_TAKEOVER,
        Reason.CAPPED,
        Reason.GENERATION_FAILED,
        Reason.GENERATION_TIMEOUT,
        Reason.PAUSED,
        Reason.MUTED,
        Reason.STALE,
    }
)
_COMMAND_WORDS = ("pause", "resume")


@dataclass(frozen=True)
class Violation:
    t: float
    chat: str
    rule: str
    detail: str


@dataclass
class _Sent:
    t: float
    request_id: str
    text: str
    message_id: str = ""
    echoed: bool = False


# Memory per chat is bounded, by more than the core keeps (so the checker never forgets what
# the core still knows, and leans towards allowing where it forgot first): the recent sends
# (the core recognises echoes of its last 8, a cooldown runs from the last one), the message
# ids seen (the core remembers `remembered_ids`, 64 by default), and the ids a quote can point
# at to address us (the core matches its last 8 sends and 10 context entries).
SENDS_KEPT = 4 * SENDS_REMEMBERED
IDS_KEPT = 128  # at least 2x `remembered_ids` (InvariantChecker._ids_kept)


@dataclass
class _ChatView:
    is_group: bool = False
    sends: list[_Sent] = field(default_factory=list)  # not failed, oldest first (the last few)
    all_sends: deque[float] = field(default_factory=deque)  # send times, last day (caps)
    breakthrough_used: bool = False
    urgent_in_cooldown: bool = False
    owner_until: float = -math.inf
    since_send: int = 0  # contact messages since the last send
    batch_start: float | None = None  # first contact message of the reply being prepared
    addressed: bool = False  # a group message addressed the owner since the last send
    seen: dict[str, None] = field(default_factory=dict)  # the last IDS_KEPT, oldest first
    own_ids: dict[str, None] = field(default_factory=dict)  # ids a quote can point at to address us
    arrivals: deque[float] = field(default_factory=deque)

    def cool_until(self, cooldown: float) -> float:
        return self.sends[-1].t + cooldown if self.sends else -math.inf


def _remember(ids: dict[str, None], item: str, kept: int = IDS_KEPT) -> None:
    """Add `item` to a bounded ordered set (the oldest goes past `kept`)."""
    ids.pop(item, None)
    ids[item] = None
    if len(ids) > kept:
        del ids[next(iter(ids))]


def _text(value: object) -> str:
    return value.replace("\x00", "") if isinstance(value, str) else ""


class InvariantChecker:
    """Feed it every input (`observe_input`) and every batch of effects (`observe_effects`) in the
    order they happened, and `observe_crash` when the assistant died; `finish` returns all
    violations. Call `finish` at least `horizon` seconds after the last input (or once the
    core's timers are drained) to have every scheduled reply judged."""

    def __init__(self, policy: Policy, persona: Persona) -> None:
        self.policy = policy
        self.persona = persona
        self.violations: list[Violation] = []
        self.now = -math.inf
        self.paused = False
        self.crashes: list[float] = []
        self._chats: dict[str, _ChatView] = {}
        # request id -> the chat view and send it names, until its outcome is known (a send
        # whose outcome never comes, after a crash, stays: a few per crash)
        self._awaiting: dict[object, list[tuple[_ChatView, _Sent]]] = {}
        self._hour: deque[float] = deque()
        self._day: deque[float] = deque()
        self._open: dict[str, float] = {}  # chat -> time of the reply's last progress
        # no open reply is overdue before this (the earliest progress + horizon, or earlier):
        # `_tick` scans `_open` only past it; progress only moves later, so it stays a bound
        self._next_check = math.inf
        self._ids_kept = max(IDS_KEPT, 2 * policy.remembered_ids)
        self._echo_chat = ""  # the chat of the input being handled, when it was our echo
        self._restarting = False
        self._min_delay = min(policy.urgent_delay, policy.response_delay)
        waits = max(policy.max_wait, DAY if policy.quiet_hours else 0.0)
        typing = policy.typing_max * (1.0 + policy.typing_jitter)
        self.horizon = waits + policy.generation_timeout + typing + 1.0
        words = sorted(
            {k.strip().casefold() for k in policy.urgent_keywords if k.strip()}, key=len
        )[::-1]
        alternatives = "|".join(r"\s+".join(map(re.escape, w.split())) for w in words)
        self._keywords = (
            re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE) if words else None
        )
        aliases = [rf"(?<!\w)@{re.escape(persona.owner_name)}(?!\w)", *policy.aliases]
        self._aliases = re.compile("|".join(f"(?:{a})" for a in aliases), re.IGNORECASE)

    # ------------------------------------------------------------------ observation

    def observe_input(self, t: float, event: Event) -> None:
        now = self._tick(t)
        self._echo_chat = ""
        if isinstance(event, Message):
            self._message(event, now)
        elif isinstance(event, Command):
            self._command(str(event.name), str(event.arg))
        elif isinstance(event, SendConfirmed):
            for view, sent in self._find_send(event.request_id):
                if isinstance(event.message_id, str) and event.message_id:
                    sent.message_id = event.message_id
                    _remember(view.own_ids, event.message_id)
            with contextlib.suppress(TypeError):  # settled: nothing names it again
                self._awaiting.pop(event.request_id, None)
        elif isinstance(event, SendFailed):
            for view, sent in self._find_send(event.request_id):
                for i, kept in enumerate(view.sends):
                    if kept is sent:
                        del view.sends[i]
                        break
            with contextlib.suppress(TypeError):
                self._awaiting.pop(event.request_id, None)

    def observe_effects(self, t: float, effects: Sequence[Effect]) -> None:
        now = self._tick(t)
        for effect in effects:
            if isinstance(effect, Send):
                self._send(effect, now)
            elif isinstance(effect, Generate):
                self._generate(effect, now)
            elif isinstance(effect, Decision):
                self._decision(effect, now)
        self._echo_chat = ""

    def observe_crash(self, t: float) -> None:
        """The assistant died (and is being restored). Its downtime is not held against the
        replies it had scheduled: their clocks restart at the next observation."""
        if isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t):
            self.now = max(self.now, float(t))
        self.crashes.append(self.now)
        self._restarting = True
        self._echo_chat = ""

    def finish(self, t: float) -> list[Violation]:
        self._tick(t)
        return list(self.violations)

    # ------------------------------------------------------------------ inputs

    def _tick(self, t: float) -> float:
        if isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t):
            self.now = max(self.now, float(t))
        if self._restarting:
            self._restarting = False
            self._open = dict.fromkeys(self._open, self.now)
            self._next_check = self.now + self.horizon
        if self.now <= self._next_check:  # no open reply can be overdue yet: no scan
            return self.now
        for chat, since in list(self._open.items()):
            if self.now > since + self.horizon:
                del self._open[chat]
                self._violate(
                    self.now,
                    chat,
                    "never_concluded",
                    f"reply scheduled or progressing at {since:.3f} neither sent nor "
                    f"dropped nor cancelled within {self.horizon:g}s",
                )
        self._next_check = min(self._open.values(), default=math.inf) + self.horizon
        return self.now

    def _view(self, chat: str) -> _ChatView:
        view = self._chats.get(chat)
        if view is None:
            view = self._chats[chat] = _ChatView()
        return view

    def _find_send(self, request_id: object) -> list[tuple[_ChatView, _Sent]]:
        """The sends named `request_id` (a dictionary look-up: scanning every chat's sends on
        each confirmation made the checker quadratic in the run's length)."""
        try:
            return self._awaiting.get(request_id, [])
        except TypeError:  # an unhashable id from a malformed event names no send
            return []

    def _denied(self, chat: str, sender: object) -> bool:
        p = self.policy
        if chat in p.deny or sender in p.deny:
            return True
        return bool(p.allow) and chat not in p.allow and sender not in p.allow

    def _command(self, name: str, arg: str) -> None:
        name = name.casefold()
        if name == "pause" and not arg:
            self.paused = True
        elif name == "resume" and not arg:
            self.paused = False

    def _message(self, m: Message, now: float) -> None:
        if not isinstance(m.chat, str) or not m.chat or not isinstance(m.id, str):
            return
        if m.kind != "message" or m.chat == "status@broadcast":
            return
        text = _text(m.text)
        if m.chat == self.persona.owner_id:
            if m.from_me:
                words = text.strip().lstrip("/!").split()
                if len(words) == 1 and words[0].casefold() in _COMMAND_WORDS:
                    self._command(words[0], "")
            return
        if isinstance(m.sender, list | dict | set) or self._denied(m.chat, m.sender):
            return
        view = self._view(m.chat)
        view.is_group = view.is_group or bool(m.is_group)
        duplicate = m.id in view.seen
        if m.id and not duplicate:
            _remember(view.seen, m.id, self._ids_kept)
        if m.from_me:
            if not duplicate:
                self._from_me(view, m, text, now)
            return
        media = m.media if isinstance(m.media, str) else ""
        if not (media or text.strip()):
            return  # empty: ignored by the rules
        # Redelivered ids still count here: the core may have forgotten them (bounded memory).
        view.since_send += 1
        if view.batch_start is None:
            view.batch_start = now
        view.arrivals.append(now)
        while len(view.arrivals) > self.policy.burst_count:
            view.arrivals.popleft()
        addressed = not view.is_group or self._addressed(view, m, text)
        if view.is_group and addressed:
            view.addressed = True
        if addressed and now < view.cool_until(self.policy.cooldown) and self._urgent(view, text):
            view.urgent_in_cooldown = True

    def _from_me(self, view: _ChatView, m: Message, text: str, now: float) -> None:
        for sent in view.sends[-SENDS_REMEMBERED:]:
            if not sent.echoed and m.id and sent.message_id == m.id:
                sent.echoed = True
                self._echo_chat = m.chat
                return
        if m.own_device is True:  # from this very device: ours, whatever its text (rule 3)
            self._echo_chat = m.chat
            return
        view.owner_until = max(view.owner_until, now + self.policy.cooldown)
        if m.id:
            _remember(view.own_ids, m.id)

    def _addressed(self, view: _ChatView, m: Message, text: str) -> bool:
        owner = self.persona.owner_id
        mentions = m.mentions if isinstance(m.mentions, tuple | list) else ()
        if owner in mentions or m.quoted_sender == owner:
            return True
        if isinstance(m.quoted_id, str) and m.quoted_id and m.quoted_id in view.own_ids:
            return True
        return bool(text) and self._aliases.search(text[:URGENCY_SCAN]) is not None

    def _urgent(self, view: _ChatView, text: str) -> bool:
        p = self.policy
        burst = (
            len(view.arrivals) >= p.burst_count
            and view.arrivals[-1] - view.arrivals[0] <= p.burst_window
        )
        # Judge both the scanned prefix and the whole text; either being urgent is enough.
        return any(
            self._score(part, burst) >= p.urgent_threshold for part in (text[:URGENCY_SCAN], text)
        )

    def _score(self, text: str, burst: bool) -> int:
        points = 1 if burst else 0
        if self._keywords is not None:
            points += 2 * len({w.casefold() for w in self._keywords.findall(text)})
        letters = [c for c in text if c.isalpha() and c.lower() != c.upper()]
        shouted = len(letters) >= 8 and sum(c.isupper() for c in letters) >= 0.7 * len(letters)
        if "!!!" in text or "‼" in text or shouted:
            points += 1
        return points

    # ------------------------------------------------------------------ effects

    def _violate(self, t: float, chat: str, rule: str, detail: str) -> None:
        self.violations.append(Violation(t, chat, rule, detail))

    def _generate(self, g: Generate, now: float) -> None:
        view = self._view(g.chat)
        if view.batch_start is None:
            self._violate(now, g.chat, "too_early", "generation with no contact message waiting")
        elif now < view.batch_start + self._min_delay:
            self._violate(
                now,
                g.chat,
                "too_early",
                f"generation {now - view.batch_start:.3f}s after the first message, "
                f"sooner than {self._min_delay:g}s",
            )

    def _decision(self, d: Decision, now: float) -> None:
        chat = d.chat
        if not chat:
            return
        if d.code == Reason.OWNER_TAKEOVER and chat == self._echo_chat:
            self._violate(now, chat, "echo_as_owner", "our own echoed send was taken for the owner")
            self._echo_chat = ""
        if d.code in _OPEN or (d.code in _PROGRESS and chat in self._open):
            self._open[chat] = now
            self._next_check = min(self._next_check, now + self.horizon)
        elif d.code in _CLOSE:
            self._open.pop(chat, None)
            if chat in self._chats:
                self._chats[chat].batch_start = None

    def _send(self, s: Send, now: float) -> None:
        p = self.policy
        view = self._view(s.chat)
        chat = s.chat
        if chat in p.deny:
            self._violate(now, chat, "denied", "send to a denied chat")
        if self.paused:
            self._violate(now, chat, "paused", "send while the assistant is paused")
        if not isinstance(s.text, str) or not s.text.strip():
            self._violate(now, chat, "empty_send", "send with no text")
        if chat not in self._open:
            self._violate(now, chat, "unscheduled_send", "send with no reply scheduled")
        if view.is_group:
            if p.group_reply == "never":
                self._violate(now, chat, "group_never", "group reply while groups are off")
            elif not view.addressed:
                self._violate(
                    now,
                    chat,
                    "group_not_addressed",
                    "group reply with no message addressing the owner",
                )
        if now < view.owner_until:
            self._violate(
                now,
                chat,
                "owner_cooldown",
                f"send {view.owner_until - now:.3f}s before the owner's cooldown ends",
            )
        if now < view.cool_until(p.cooldown):
            if view.breakthrough_used:
                self._violate(
                    now,
                    chat,
                    "breakthrough",
                    "second send inside a cooldown that an urgent message already broke",
                )
            elif not view.urgent_in_cooldown:
                self._violate(
                    now, chat, "cooldown", "send inside the cooldown without an urgent message"
                )
            view.breakthrough_used = True
        else:
            view.breakthrough_used = False
        if view.since_send == 0:
            self._violate(now, chat, "double_reply", "second send with no new contact message")
        self._caps(view, chat, now)
        # the send happened: update the model
        sent = _Sent(now, s.request_id, s.text if isinstance(s.text, str) else "")
        view.sends.append(sent)
        del view.sends[:-SENDS_KEPT]
        with contextlib.suppress(TypeError):  # an unhashable id: no outcome can name it
            self._awaiting.setdefault(s.request_id, []).append((view, sent))
        if isinstance(s.request_id, str):
            _remember(view.own_ids, s.request_id)
        view.all_sends.append(now)
        self._hour.append(now)
        self._day.append(now)
        view.since_send, view.addressed, view.urgent_in_cooldown = 0, False, False
        view.batch_start = None
        self._open.pop(chat, None)

    def _caps(self, view: _ChatView, chat: str, now: float) -> None:
        caps = self.policy.caps
        for times, window in ((view.all_sends, DAY), (self._hour, HOUR), (self._day, DAY)):
            while times and now - times[0] >= window:
                times.popleft()
        for name, limit, count in (
            ("per_chat_per_day", caps.per_chat_per_day, len(view.all_sends)),
            ("per_hour", caps.per_hour, len(self._hour)),
            ("per_day", caps.per_day, len(self._day)),
        ):
            if limit and count >= limit:
                self._violate(now, chat, "caps", f"send beyond caps.{name} = {limit}")
