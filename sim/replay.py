"""Replay a recording through today's core on a virtual clock, and compare: the rules.

`replay` is the entry point; `sim/replay_stream.py` does it in bounded memory, applying these
rules as the recording is read (each place that applies one names it here). Each rule is
stated once, here, with its reason.

1. Inputs. The recorded inbound messages, owner commands, media texts and calendar updates are
   fed to `sim.engine.Simulation` at their recorded times, in time order (lines out of order,
   from an edited or concatenated file, are put back with a warning, so an answer written
   before its request still pairs). An inbound message the recording's core marked `echo` is
   not fed: it was WhatsApp's echo of the assistant's own send, and the replayed sends produce
   their own. A restart header is a crash at its `crashed_at` (the simulator knows it), else at
   the latest item before it: a production process died after the last thing it wrote
   (`replay_stream._Builder`).
2. The recorded world answers again (`ReplayModel`, `ReplayWhatsApp`). A Generate, Send or
   Notice takes the recorded one of its chat nearest in time within `tolerance` and not taken
   yet (`replay_stream.StreamBook.take`), and gets that one's recorded answers after their recorded delays (the model's outcome,
   the confirmation or failure, the echo with the recorded message id), so the replay meets
   the latencies and failures the recording met. Anything with no recorded counterpart (a
   what-if reply, an imported chat) is answered by the fake model and fake WhatsApp. A recorded
   echo belongs to the earliest recorded send (or notice) of its chat at or before it, not yet
   echoed, whose confirmation carried the echo's message id, else to the earliest with the same
   text (the confirmation may have been lost in a crash). Recorded answers go to their
   requests by `take_answer`, echoes by `take_echo`.
3. In-order matching (`replay_stream.match_in_order`), for decisions and for replies: two sides'
   items of one kind are taken in time order; the earliest of each side match when their times
   differ by at most `tolerance`, otherwise the earlier one is left over. In order rather than
   nearest, so one early or late item cannot shift every later pair.
4. Check mode (no policy changes): recorded and replayed `Decision`s are matched per chat and
   code (rule 3); every one left over is a divergence, "recorded" (the recording has it and
   today's core does not) or "replay" (the other way round), reported with both sides'
   decisions in that chat within `TRACE_WINDOW` of it (the nearest `TRACE_MAX`). The replay
   stops where the recording ends (plus `tolerance`): what comes after was never recorded.
5. What a reply answers (`replay_stream.Answers.reply`): the contact messages of its chat
   after the run's previous reply there, up to the moment the model was asked for it (the send
   itself when it was not); a message of the owner's in between ends the batch there (he
   answered what came before). A contact message no reply answers is *unanswered*, explained
   by the first decision in its chat from its arrival up to the next reply there whose code is
   in `WHY_NOT`, else by the first decision then (or by none). (The streamed replay bounds how
   long a message waits when very many wait: its module docstring.)
6. What-if mode (policy changes): the recording is replayed twice to the end, under its own
   policy and under the changed one. Replies matched per chat (rule 3) are unchanged. The
   others are paired by what they answer (rule 5; `replay_stream.pair_moved`): both runs get
   the same messages, so a baseline reply and a what-if reply with the same last message,
   or else any message in common, are one reply *moved* from T1 to T2 (each reply in one pair
   at most, earliest first); a what-if reply left without a partner is gained, a baseline
   reply lost. So a shorter delay moves replies rather than gaining and losing them.
7. Damaged recordings: the reader (`adapters/recording.py`) refuses lines that are not JSON or
   lack keys; every item's fields are checked against their types (`field_problem`: text where
   text belongs, finite numbers) and its time against `LATEST`, and the first bad one refuses
   the whole recording with `file:line: Type.field: ...` before anything is replayed, rather
   than replay invented divergences.

The whole-recording replay that the streamed one is tested against is a test oracle, written
apart: `tests/support/replay_oracle.py`.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from wapa.adapters.recording import Recording
from wapa.core import utc_text
from wapa.core.events import (
    CalendarUpdate,
    Command,
    Event,
    Generate,
    Generated,
    GenerationFailed,
    MediaText,
    Message,
    Notice,
    Reason,
    Send,
    SendConfirmed,
    SendFailed,
)
from wapa.sim.engine import Sent, Simulation
from wapa.sim.fake_model import FakeModel
from wapa.sim.fake_whatsapp import Delivery, FakeWhatsApp, NoticeSent

DEFAULT_TOLERANCE = 5.0
TRACE_WINDOW = 600.0  # seconds either side of a divergence shown in its traces
TRACE_MAX = 12


iso = utc_text  # one UTC format for people, the core's


# ---------------------------------------------------------------------- what the recording holds


@dataclass
class Outgoing:
    """A recorded Generate, Send or Notice and what the world answered, with delays."""

    t: float
    chat: str
    text: str = ""
    responses: list[Delivery] = field(default_factory=list)
    confirmed_id: str = ""
    echoed: bool = False
    # A streaming replay (sim/replay_stream.py) may take an item before all its answers are
    # read: each taker gets the answers read after it took the item.
    takers: list[Callable[[Delivery], None]] = field(default_factory=list)

    def answer(self, d: Delivery) -> None:
        """A recorded answer, read now: kept, and handed to those who took the item already."""
        self.responses.append(d)
        for taker in self.takers:
            taker(d)


class Book(Protocol):
    """Recorded outgoing items, taken by chat and time (rule 2; `replay_stream.StreamBook`)."""

    def take(self, chat: str, t: float) -> Outgoing | None: ...


def late_deliverer(
    outlet: Simulation, now: float, adapt: Callable[[Event], Event]
) -> Callable[[Delivery], None]:
    """Schedules a recorded answer read after its item was taken at `now`: `delay` after `now`,
    lost like any answer of the process if it crashed since (an echo survives)."""
    epoch = outlet.epoch

    def deliver(d: Delivery) -> None:
        event = adapt(d.event)
        if d.survives_crash:
            outlet.traffic_at(now + d.delay, event)
        else:
            outlet.deliver_at(now + d.delay, event, epoch)

    return deliver


def take_answer(
    event: object, t: float, gens: dict[str, Outgoing], sends: dict[str, Outgoing]
) -> None:
    """Rule 2: a recorded model outcome, send confirmation or failure read at `t` goes to the
    recorded Generate or Send (by request id, among those still open) it answers, if any."""
    if isinstance(event, Generated | GenerationFailed) and event.request_id in gens:
        g = gens.pop(event.request_id)  # a generation has one outcome
        g.answer(Delivery(t - g.t, event, False))
    elif isinstance(event, SendConfirmed | SendFailed) and event.request_id in sends:
        o = sends[event.request_id]
        o.answer(Delivery(t - o.t, event, False))
        if isinstance(event, SendConfirmed):
            o.confirmed_id = event.message_id


def take_echo(pool: Iterable[Outgoing], t: float, m: Message) -> None:
    """Rule 2: the recorded echo `m`, read at `t`, goes to the recorded send or notice of
    `pool` (in time order) it echoes, if any."""
    candidates = [o for o in pool if o.chat == m.chat and not o.echoed and o.t <= t]
    match = next((o for o in candidates if o.confirmed_id and o.confirmed_id == m.id), None)
    match = match or next((o for o in candidates if o.text.strip() == m.text.strip()), None)
    if match is not None:
        match.echoed = True
        match.answer(Delivery(t - match.t, m, True))


# ---------------------------------------------------------------------- damaged recordings

LATEST = 32503680000.0  # 3000-01-01 UTC: a later time is damage, not a recording


def field_problem(obj: Any) -> str:
    """ "name: expected ..., got ..." for the first field of a decoded event that does not
    match its declared type; "" when all do."""
    hints = _hints(type(obj))
    for f in fields(obj):
        value = getattr(obj, f.name)
        want = _expected(hints.get(f.name), value)
        if want:
            return f"{f.name}: expected {want}, got {value!r}"[:300]
    return ""


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """An event type's field types, resolved once per type."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def _expected(hint: Any, value: Any) -> str:
    """What `value` should have been under the type `hint`, or "" when it is that."""
    if hint is None or hint is Any:
        return ""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        wants = [_expected(h, value) for h in options]
        return "" if "" in wants else " or ".join(wants)
    if hint is type(None):
        return "" if value is None else "null"
    if origin is tuple:
        (item_hint, *_rest) = typing.get_args(hint) or (Any,)
        if not isinstance(value, tuple):
            return "a list"
        bad = next((w for w in (_expected(item_hint, v) for v in value) if w), "")
        return f"a list of {bad}" if bad else ""
    if hint is bool:
        return "" if isinstance(value, bool) else "true or false"
    if hint is str:
        return "" if isinstance(value, str) else "text"
    if hint is int:
        return "" if isinstance(value, int) and not isinstance(value, bool) else "a whole number"
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        return "" if ok else "a finite number"
    if isinstance(hint, type) and is_dataclass(hint):
        return "" if isinstance(value, hint) else hint.__name__
    return ""


# ---------------------------------------------------------------------- the recorded world


def _with_request(event: Event, request_id: str) -> Event:
    """A recorded answer (a generation's outcome, a send's confirmation or failure) addressed to
    the replay's own request."""
    if isinstance(event, Message | Command | MediaText | CalendarUpdate):
        raise TypeError(f"a recorded {type(event).__name__} answers no request")
    return replace(event, request_id=request_id)


def _with_text(event: Event, text: str) -> Event:
    """A recorded echo carrying the text the replay sent."""
    if not isinstance(event, Message):
        raise TypeError(f"a recorded {type(event).__name__} is no echo")
    return replace(event, text=text)


@dataclass
class ReplayModel(FakeModel):
    """Answers a Generate like the recording did when one matches (the recorded outcome is what
    production's model service delivered, retries included), else like the simulated model
    service (the production policy against the fake provider)."""

    book: Book | None = None
    matched: int = 0
    outlet: Simulation | None = None  # set by a streaming replay: answers read late

    def start_generation(self, g: Generate, now: float) -> None:
        recorded = self.book.take(g.chat, now) if self.book else None
        if recorded is None or self.scheduler is None:
            super().start_generation(g, now)
            return
        self.matched += 1
        if self.outlet is not None:
            rid = g.request_id
            recorded.takers.append(
                late_deliverer(self.outlet, now, lambda e: _with_request(e, rid))
            )
        for d in recorded.responses:
            self.scheduler.deliver_at(now + d.delay, _with_request(d.event, g.request_id))


@dataclass
class ReplayWhatsApp(FakeWhatsApp):
    """Confirms, fails and echoes a Send or Notice like the recording did when one matches."""

    send_book: Book | None = None
    notice_book: Book | None = None
    outlet: Simulation | None = None  # set by a streaming replay: answers read late

    def send(self, t: float, e: Send) -> list[Delivery]:
        recorded = self.send_book.take(e.chat, t) if self.send_book else None
        if recorded is None:
            return super().send(t, e)
        if self.outlet is not None:
            recorded.takers.append(
                late_deliverer(
                    self.outlet,
                    t,
                    lambda ev: (
                        replace(ev, text=e.text)
                        if isinstance(ev, Message)
                        else _with_request(ev, e.request_id)
                    ),
                )
            )
        out = []
        for d in recorded.responses:
            if isinstance(d.event, Message):
                out.append(replace(d, event=replace(d.event, text=e.text)))
            else:
                out.append(replace(d, event=_with_request(d.event, e.request_id)))
        if recorded.confirmed_id:
            self.last_sent_id[e.chat] = recorded.confirmed_id
        return out

    def notice(self, t: float, e: Notice) -> list[Delivery]:
        recorded = self.notice_book.take(self.owner_id, t) if self.notice_book else None
        if recorded is None:
            return super().notice(t, e)
        self.notices.append(NoticeSent(t, e.text, e.kind))
        if self.outlet is not None:
            recorded.takers.append(
                late_deliverer(self.outlet, t, lambda ev: _with_text(ev, e.text))
            )
        return [replace(d, event=_with_text(d.event, e.text)) for d in recorded.responses]


# Why a contact message got no reply (rule 5): the codes that say so.
WHY_NOT = frozenset(
    {
        Reason.COOLDOWN,
        Reason.OWNER_TAKEOVER,
        Reason.CAPPED,
        Reason.PAUSED,
        Reason.MUTED,
        Reason.GROUP_NOT_ADDRESSED,
        Reason.GROUP_NEVER,
        Reason.IGNORED,
        Reason.DUPLICATE,
        Reason.DENIED,
        Reason.STALE,
        Reason.GENERATION_FAILED,
        Reason.GENERATION_TIMEOUT,
        Reason.REJECTED,
        Reason.SEND_FAILED,
        Reason.QUIET_HOURS,
    }
)


# ---------------------------------------------------------------------- the report


@dataclass
class ReplayReport:
    """What `replay` found: the first `limit` of each list (by time), and the totals."""

    events: int
    sent: list[Sent]
    divergences: list[dict[str, Any]]
    summary: dict[str, Any]
    unanswered: list[dict[str, Any]]  # contact messages no reply answers (rule 5)
    sent_total: int
    unanswered_total: int
    unanswered_codes: dict[str, int]  # code ("" for none) -> messages

    def replies(self) -> int:
        """How many replies the (what-if) run sent, listed or not."""
        return self.sent_total

    def unanswered_count(self) -> tuple[int, dict[str, int]]:
        """How many contact messages no reply answers, and how many per code ("" for none)."""
        return self.unanswered_total, dict(self.unanswered_codes)

    def to_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "sent": [
                {
                    "t": s.t,
                    "time": iso(s.t),
                    "chat": s.chat,
                    "text": s.text,
                    "request_id": s.request_id,
                    "quote_id": s.quote_id,
                }
                for s in self.sent
            ],
            "divergences": self.divergences,
            "unanswered": self.unanswered,
            "summary": self.summary,
        }


def per_chat(changes: Iterable[dict[str, Any]]) -> dict[str, dict[str, list[Any]]]:
    """A what-if summary's `per_chat`: each chat's gained and lost reply times and moved
    replies (`{"from": time, "to": time}`), from the listed changes."""
    out: dict[str, dict[str, list[Any]]] = {}
    for c in changes:
        entry = out.setdefault(c["chat"], {"gained": [], "lost": [], "moved": []})
        if c["kind"] == "reply_moved":
            entry["moved"].append({"from": c["from_time"], "to": c["time"]})
        else:
            entry["gained" if c["kind"] == "reply_gained" else "lost"].append(c["time"])
    return out


def replay(
    recording: Recording | str | Path,
    changes: Mapping[str, Any] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    limit: int | None = None,
) -> ReplayReport:
    """Check mode without `changes`, what-if mode with them (a mapping for Policy.from_mapping,
    which raises PolicyError on a bad key or value). A path is read as it is replayed, never
    held (sim/replay_stream.py); at most `limit` (default 1,000) of each reported list are
    listed, all are counted."""
    from wapa.sim.replay_stream import DEFAULT_LIMIT, replay_stream

    return replay_stream(recording, changes, tolerance, DEFAULT_LIMIT if limit is None else limit)
