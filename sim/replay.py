"""Replay a recording through today's core on a virtual clock, and compare.

The recorded inbound messages and owner commands are fed to `sim.engine.Simulation` at their
recorded times. The recorded world answers again: a `Generate` made within `tolerance` seconds
of a recorded one in the same chat gets the recorded model answer after the recorded latency,
and a `Send` or `Notice` matching a recorded one gets the recorded confirmation or failure and
echo, with the recorded message id. Anything new (a what-if reply) is answered by the fake
model and fake WhatsApp. Recorded echoes of the assistant's own sends (inbound messages the
recording's core marked `echo`) are not fed: the replayed sends produce their own.

Check mode (no policy changes): the recorded `Decision`s and the replayed ones are matched per
chat and code, in time order; a pair matches when their times differ by at most `tolerance`.
Every decision left unmatched on either side is a divergence ("recorded" = the recording has it
and today's core did not do it; "replay" = the other way round), reported with both traces of
that chat around its time. The replay stops where the recording ends (plus `tolerance`).

What-if mode (policy changes): the recording is replayed twice to completion, under its own
policy and under the changed one, and the replies are compared per chat. A reply with a
partner in the other run within `tolerance` is unchanged. The others are paired by what they
answer: the contact messages of their chat since the run's previous reply there (or the owner's
last message) up to the generation that made the reply, the same inputs in both runs. A pair
with the same last message, or else any message in common, is one reply *moved* from T1 to T2;
a what-if reply left without a partner is gained, a baseline reply lost.

Damaged recordings (`check_items`): the reader (`adapters/recording.py`) refuses lines that are
not JSON or lack keys; here every item's fields are checked against their types (text where
text belongs, finite numbers, times between 1970 and 3000), and the first bad one refuses the
whole recording with `file:line: Type.field: ...`, rather than replay invented divergences.
Lines out of time order (edited or concatenated files) are replayed in time order, with a
warning naming the first such line, so an answer written before its request still pairs.

`replay` streams the recording in bounded memory (sim/replay_stream.py, which says what it
holds and the one bound that can change a result); `replay_whole` below holds the whole
recording and every result, and is the reference the streaming replay is tested against.
The functions here (`script_from`, `simulate`, `compare_decisions`, `answered`,
`unanswered`, `compare_replies`) are that reference's steps.
"""

from __future__ import annotations

import bisect
import math
import types
import typing
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from wapa.adapters.recording import Header, Item, Recording, RecordingError
from wapa.core import utc_text
from wapa.core.events import (
    CalendarUpdate,
    Command,
    Decision,
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
from wapa.core.policy import Policy
from wapa.sim.engine import Sent, SimResult, Simulation
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
    used: bool = False
    # A streaming replay (sim/replay_stream.py) may take an item before all its answers are
    # read: each taker gets the answers read after it took the item.
    takers: list[Callable[[Delivery], None]] = field(default_factory=list)

    def answer(self, d: Delivery) -> None:
        """A recorded answer, read now: kept, and handed to those who took the item already."""
        self.responses.append(d)
        for taker in self.takers:
            taker(d)


class Book(Protocol):
    """Recorded outgoing items, taken by chat and time (`_Book`, `replay_stream.StreamBook`)."""

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


class _Book:
    """Recorded outgoing items per chat, taken by the nearest time within a tolerance."""

    def __init__(self, items: Iterable[Outgoing], tolerance: float) -> None:
        self.tolerance = tolerance
        self._by_chat: dict[str, list[Outgoing]] = defaultdict(list)
        for o in items:
            self._by_chat[o.chat].append(o)
        self._times = {c: [o.t for o in xs] for c, xs in self._by_chat.items()}

    def take(self, chat: str, t: float) -> Outgoing | None:
        items, times = self._by_chat.get(chat), self._times.get(chat)
        if not items or times is None:
            return None
        i = bisect.bisect_left(times, t - self.tolerance)
        best: Outgoing | None = None
        while i < len(items) and times[i] <= t + self.tolerance:
            o = items[i]
            if not o.used and (best is None or abs(o.t - t) < abs(best.t - t)):
                best = o
            i += 1
        if best is not None:
            best.used = True
        return best


@dataclass
class Script:
    """A recording turned into inputs for the engine and recorded answers for its fakes."""

    header: Header
    inputs: list[tuple[float, Message | Command | MediaText | CalendarUpdate]] = field(
        default_factory=list
    )
    decisions: list[Decision] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    generations: list[Outgoing] = field(default_factory=list)
    sends: list[Outgoing] = field(default_factory=list)
    notices: list[Outgoing] = field(default_factory=list)
    # (t, down, inputs before it): a restart header in the recording is a crash
    crashes: list[tuple[float, float, int]] = field(default_factory=list)
    echoes: int = 0
    end: float = 0.0
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------- damaged recordings

LATEST = 32503680000.0  # 3000-01-01 UTC: a later time is damage, not a recording


def check_items(recording: Recording) -> None:
    """Raise `RecordingError("file:line: what")` for the first item whose time or fields have
    the wrong type or an absurd value (see the module docstring)."""
    for item in recording.items:
        where = f"{recording.path}:{item.line}"
        if not 0 <= item.t <= LATEST:
            raise RecordingError(f"{where}: t: {item.t!r} is not a time between 1970 and 3000")
        problem = _field_problem(item.obj)
        if problem:
            raise RecordingError(f"{where}: {type(item.obj).__name__}.{problem}")


def _field_problem(obj: Any) -> str:
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


def _in_time_order(recording: Recording, warnings: list[str]) -> list[Item]:
    """The items sorted by time (stable); a warning names the first line out of order."""
    items = recording.items
    late = next(
        (b for a, b in zip(items, items[1:], strict=False) if b.t < a.t),
        None,
    )
    if late is None:
        return items
    warnings.append(
        f"line {late.line}: lines out of time order (this one is earlier than the line before "
        "it): replayed in time order"
    )
    return sorted(items, key=lambda i: i.t)


def script_from(recording: Recording) -> Script:
    check_items(recording)
    header = recording.header
    s = Script(header, end=header.start, warnings=list(recording.warnings))
    owner = header.persona.owner_id
    gens: dict[str, Outgoing] = {}
    sends: dict[str, Outgoing] = {}
    last_msg: tuple[int, float, Message] | None = None  # the latest input, until the next one
    echoes: set[int] = set()  # indexes of inputs that were echoes of our own sends
    for item in _in_time_order(recording, s.warnings):
        t, obj = item.t, item.obj
        s.end = max(s.end, t)
        if item.dir == "in":
            last_msg = None
            if isinstance(obj, Message):
                last_msg = (len(s.inputs), t, obj)
                s.inputs.append((t, obj))
            elif isinstance(
                obj, Command | MediaText | CalendarUpdate
            ):  # media text: as it was delivered
                s.inputs.append((t, obj))
            elif isinstance(obj, Generated | GenerationFailed) and obj.request_id in gens:
                g = gens.pop(obj.request_id)
                g.answer(Delivery(t - g.t, obj, False))
            elif isinstance(obj, SendConfirmed | SendFailed) and obj.request_id in sends:
                o = sends[obj.request_id]
                o.answer(Delivery(t - o.t, obj, False))
                if isinstance(obj, SendConfirmed):
                    o.confirmed_id = obj.message_id
            continue
        if isinstance(obj, Decision):
            s.decisions.append(obj)
            if obj.code == Reason.ECHO and last_msg is not None and last_msg[2].chat == obj.chat:
                index, mt, m = last_msg
                echoes.add(index)
                s.echoes += 1
                _attach_echo(s, mt, m, owner)
                last_msg = None
        elif isinstance(obj, Generate):
            gens[obj.request_id] = Outgoing(t, obj.chat)
            s.generations.append(gens[obj.request_id])
        elif isinstance(obj, Send):
            sends[obj.request_id] = Outgoing(t, obj.chat, obj.text)
            s.sends.append(sends[obj.request_id])
            s.sent.append(Sent(t, obj.chat, obj.text, obj.request_id, obj.quote_id))
        elif isinstance(obj, Notice):
            s.notices.append(Outgoing(t, owner, obj.text))
    kept = [i for i in range(len(s.inputs)) if i not in echoes]
    s.inputs = [s.inputs[i] for i in kept]
    for restart in recording.restarts:
        before = [i for i in recording.items if i.line < restart.line]
        crash_t = restart.crashed_at
        if crash_t is None:  # a production restart: it died after the last thing it wrote
            crash_t = max((i.t for i in before), default=restart.start)
        inputs_before = sum(
            isinstance(i.obj, Message | Command | MediaText | CalendarUpdate) and i.dir == "in"
            for i in before
        )
        s.crashes.append(
            (crash_t, max(0.0, restart.start - crash_t), bisect.bisect_left(kept, inputs_before))
        )
        if restart.policy != header.policy:
            s.warnings.append(
                f"line {restart.line}: the policy changed at a restart; the replay uses the first one"
            )
    return s


def _attach_echo(s: Script, t: float, m: Message, owner: str) -> None:
    pool = s.notices if m.chat == owner else s.sends
    candidates = [o for o in pool if o.chat == m.chat and not o.echoed and o.t <= t]
    match = next((o for o in candidates if o.confirmed_id and o.confirmed_id == m.id), None)
    match = match or next((o for o in candidates if o.text.strip() == m.text.strip()), None)
    if match is not None:
        match.echoed = True
        match.answer(Delivery(t - match.t, m, True))


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


def simulate(script: Script, policy: Policy, tolerance: float, until: float | None) -> SimResult:
    h = script.header
    fresh = [replace(o, used=False) for o in script.generations]
    model = ReplayModel(seed=h.seed, book=_Book(fresh, tolerance))
    whatsapp = ReplayWhatsApp(
        seed=h.seed,
        send_book=_Book([replace(o, used=False) for o in script.sends], tolerance),
        notice_book=_Book([replace(o, used=False) for o in script.notices], tolerance),
    )
    sim = Simulation(
        policy=policy,
        persona=h.persona,
        seed=h.seed,
        start=h.start,
        model=model,
        whatsapp=whatsapp,
        keep_timeline=False,
    )
    crashes = iter(script.crashes)
    crash = next(crashes, None)
    for i, (t, event) in enumerate(script.inputs):
        while crash is not None and crash[2] <= i:  # in recording order: same-instant ties
            sim.add_crash(crash[0], crash[1])
            crash = next(crashes, None)
        if isinstance(event, Command):
            sim.add_command(t, event)
        elif isinstance(event, MediaText | CalendarUpdate):
            sim.traffic_at(t, event)
        else:
            sim.add_message(t, event)
    while crash is not None:
        sim.add_crash(crash[0], crash[1])
        crash = next(crashes, None)
    return sim.run(until)


# ---------------------------------------------------------------------- comparing


class _Traces:
    """One side's decisions per chat, sorted by time, for the traces around a divergence."""

    def __init__(self, decisions: list[Decision]) -> None:
        self._by_chat: dict[str, list[Decision]] = defaultdict(list)
        for d in sorted(decisions, key=lambda d: d.t):
            self._by_chat[d.chat].append(d)
        self._times = {c: [d.t for d in xs] for c, xs in self._by_chat.items()}

    def around(self, chat: str, t: float) -> list[str]:
        items, times = self._by_chat.get(chat, []), self._times.get(chat, [])
        lo = bisect.bisect_left(times, t - TRACE_WINDOW)
        hi = bisect.bisect_right(times, t + TRACE_WINDOW)
        near = sorted(items[lo:hi], key=lambda d: abs(d.t - t))[:TRACE_MAX]
        return [f"{iso(d.t)} {d.code}: {d.detail}" for d in sorted(near, key=lambda d: d.t)]


def _unmatched(a: list[float], b: list[float], tolerance: float) -> tuple[list[int], list[int]]:
    """Indexes of a and b (sorted times) left over by in-order matching within tolerance."""
    i = j = 0
    left_a: list[int] = []
    left_b: list[int] = []
    while i < len(a) and j < len(b):
        if abs(a[i] - b[j]) <= tolerance:
            i, j = i + 1, j + 1
        elif a[i] < b[j]:
            left_a.append(i)
            i += 1
        else:
            left_b.append(j)
            j += 1
    return left_a + list(range(i, len(a))), left_b + list(range(j, len(b)))


def compare_decisions(
    recorded: list[Decision], replayed: list[Decision], tolerance: float
) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], tuple[list[Decision], list[Decision]]] = defaultdict(
        lambda: ([], [])
    )
    for d in recorded:
        groups[(d.chat, d.code)][0].append(d)
    for d in replayed:
        groups[(d.chat, d.code)][1].append(d)
    out: list[dict[str, Any]] = []
    rec_traces, rep_traces = _Traces(recorded), _Traces(replayed)
    for (chat, code), (rec, rep) in groups.items():
        rec.sort(key=lambda d: d.t)
        rep.sort(key=lambda d: d.t)
        only_rec, only_rep = _unmatched([d.t for d in rec], [d.t for d in rep], tolerance)
        for side, items in (
            ("recorded", [rec[i] for i in only_rec]),
            ("replay", [rep[i] for i in only_rep]),
        ):
            for d in items:
                out.append(
                    {
                        "t": d.t,
                        "time": iso(d.t),
                        "chat": chat,
                        "code": code,
                        "side": side,
                        "detail": d.detail,
                        "recorded": rec_traces.around(chat, d.t),
                        "replay": rep_traces.around(chat, d.t),
                    }
                )
    out.sort(key=lambda x: (x["t"], x["chat"], x["code"]))
    return out


Answers = dict[str, tuple[int, ...]]  # request id of a reply -> the inputs it answers


def answered(
    result: SimResult, inputs: list[tuple[float, Message | Command | MediaText | CalendarUpdate]]
) -> Answers:
    """For every reply of a run, the indexes (into `inputs`) of the contact messages it
    answers: those of its chat after the run's previous reply there or the owner's latest
    message, up to the generation that made it (the send itself when there was none)."""
    asked: dict[str, float] = {}
    for g in result.generations:
        asked.setdefault(g.request_id, g.t)  # a request id is asked once per run
    by_chat: dict[str, list[tuple[float, int, bool]]] = defaultdict(list)  # (t, index, owner's)
    for index, (t, event) in enumerate(inputs):
        if isinstance(event, Message):
            by_chat[event.chat].append((t, index, event.from_me))
    out: Answers = {}
    last_reply: dict[str, float] = {}
    for sent in sorted(result.sent, key=lambda x: x.t):
        upto = min(asked.get(sent.request_id, sent.t), sent.t)
        since = last_reply.get(sent.chat, float("-inf"))
        batch: list[int] = []
        for t, index, from_owner in by_chat.get(sent.chat, ()):
            if t > upto:
                break
            if t <= since:
                continue
            if from_owner:
                batch.clear()  # the owner answered what came before
            else:
                batch.append(index)
        out[sent.request_id] = tuple(batch)
        last_reply[sent.chat] = sent.t
    return out


# Why a contact message got no reply: the first of these decisions in its chat after it (before
# the next reply there) says so; otherwise the decision made when it arrived.
_WHY_NOT = frozenset(
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


def unanswered(
    result: SimResult, inputs: list[tuple[float, Message | Command | MediaText | CalendarUpdate]]
) -> list[dict[str, Any]]:
    """The contact messages no reply of `result` answers (see `answered`), each with why: the
    code and detail of the decision that explains it (`_WHY_NOT`), in time order."""
    done = {i for batch in answered(result, inputs).values() for i in batch}
    by_chat: dict[str, list[Decision]] = defaultdict(list)
    for d in result.decisions:
        by_chat[d.chat].append(d)
    replies: dict[str, list[float]] = defaultdict(list)
    for x in result.sent:
        replies[x.chat].append(x.t)
    out = []
    for index, (t, event) in enumerate(inputs):
        if not isinstance(event, Message) or event.from_me or index in done:
            continue
        nxt = min((r for r in replies.get(event.chat, ()) if r >= t), default=float("inf"))
        after = [d for d in by_chat.get(event.chat, ()) if t <= d.t <= nxt]
        why = next((d for d in after if d.code in _WHY_NOT), None) or next(iter(after), None)
        out.append(
            {
                "t": t,
                "time": iso(t),
                "chat": event.chat,
                "text": event.text,
                "code": why.code if why else "",
                "detail": why.detail if why else "no decision was made about it",
            }
        )
    return out


def _pair_by_answers(
    base: list[Sent], new: list[Sent], base_answers: Answers, new_answers: Answers
) -> list[tuple[int, int]]:
    """Pairs (i, j) of replies answering the same messages: the same last message first, then
    any message in common; each reply in at most one pair, earliest first."""
    pairs: list[tuple[int, int]] = []
    free = set(range(len(new)))
    sets = [set(new_answers.get(s.request_id, ())) for s in new]
    unpaired: list[int] = []
    for i, b in enumerate(base):
        mine = base_answers.get(b.request_id, ())
        j = next(
            (
                j
                for j in sorted(free)
                if mine and new_answers.get(new[j].request_id, ())[-1:] == mine[-1:]
            ),
            None,
        )
        if j is None:
            unpaired.append(i)
        else:
            pairs.append((i, j))
            free.discard(j)
    for i in unpaired:
        mine_set = set(base_answers.get(base[i].request_id, ()))
        j = next((j for j in sorted(free) if mine_set & sets[j]), None)
        if j is not None:
            pairs.append((i, j))
            free.discard(j)
    return sorted(pairs)


def compare_replies(
    baseline: list[Sent],
    what_if: list[Sent],
    tolerance: float,
    base_answers: Answers | None = None,
    new_answers: Answers | None = None,
) -> list[dict[str, Any]]:
    """Replies gained, lost and (with the answers of both runs) moved, per chat, in time order.
    A moved entry's `t` is the what-if time; `from_t` the baseline's, `shift_s` the difference."""
    by_chat: dict[str, tuple[list[Sent], list[Sent]]] = defaultdict(lambda: ([], []))
    for s in baseline:
        by_chat[s.chat][0].append(s)
    for s in what_if:
        by_chat[s.chat][1].append(s)
    out: list[dict[str, Any]] = []
    for chat, (base, new) in by_chat.items():
        lost_i, gained_i = _unmatched([s.t for s in base], [s.t for s in new], tolerance)
        lost, gained = [base[i] for i in lost_i], [new[j] for j in gained_i]
        if base_answers is not None and new_answers is not None:
            pairs = _pair_by_answers(lost, gained, base_answers, new_answers)
            for i, j in pairs:
                b, n = lost[i], gained[j]
                out.append(
                    {
                        "t": n.t,
                        "time": iso(n.t),
                        "chat": chat,
                        "kind": "reply_moved",
                        "from_t": b.t,
                        "from_time": iso(b.t),
                        "shift_s": round(n.t - b.t, 3),
                        "text": n.text,
                        "from_text": b.text,
                    }
                )
            lost = [b for i, b in enumerate(lost) if i not in {p[0] for p in pairs}]
            gained = [n for j, n in enumerate(gained) if j not in {p[1] for p in pairs}]
        for kind, items in (("reply_lost", lost), ("reply_gained", gained)):
            for s in items:
                out.append({"t": s.t, "time": iso(s.t), "chat": chat, "kind": kind, "text": s.text})
    out.sort(key=lambda x: (x["t"], x["chat"]))
    return out


# ---------------------------------------------------------------------- the whole replay


@dataclass
class ReplayReport:
    events: int
    sent: list[Sent]
    divergences: list[dict[str, Any]]
    summary: dict[str, Any]
    unanswered: list[dict[str, Any]] = field(default_factory=list)  # see `unanswered()`
    # The totals when the lists above are the first `limit` only (sim/replay_stream.py)
    sent_total: int | None = None
    unanswered_total: int | None = None
    unanswered_codes: dict[str, int] | None = None  # code ("" for none) -> messages

    def replies(self) -> int:
        """How many replies the (what-if) run sent, listed or not."""
        return len(self.sent) if self.sent_total is None else self.sent_total

    def unanswered_count(self) -> tuple[int, dict[str, int]]:
        """How many contact messages no reply answers, and how many per code ("" for none)."""
        if self.unanswered_total is not None and self.unanswered_codes is not None:
            return self.unanswered_total, dict(self.unanswered_codes)
        codes: dict[str, int] = {}
        for item in self.unanswered:
            codes[item["code"]] = codes.get(item["code"], 0) + 1
        return len(self.unanswered), codes

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


def replay_whole(
    recording: Recording,
    changes: Mapping[str, Any] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ReplayReport:
    """`replay` with the whole recording and every result in memory: the reference the
    streaming replay is tested against (tests/sim/test_replay_stream.py)."""
    script = script_from(recording)
    base_policy = recording.header.policy
    summary: dict[str, Any] = {
        "recording": recording.path,
        "redacted": recording.header.redacted,
        "inputs": len(script.inputs),
        "echoes_skipped": script.echoes,
        "restarts": len(script.crashes),
        "tolerance": tolerance,
        "warnings": script.warnings,
    }
    if not changes:
        has_trace = bool(script.decisions)
        until = script.end + tolerance if has_trace else None
        result = simulate(script, base_policy, tolerance, until)
        divergences = (
            compare_decisions(script.decisions, result.decisions, tolerance) if has_trace else []
        )
        summary.update(
            {
                "mode": "check",
                "compared": has_trace,
                "recorded_decisions": len(script.decisions),
                "replayed_decisions": len(result.decisions),
                "recorded_replies": len(script.sent),
                "replayed_replies": len(result.sent),
                "divergences": len(divergences),
            }
        )
        return ReplayReport(
            len(script.inputs),
            result.sent,
            divergences,
            summary,
            unanswered(result, script.inputs),
        )
    policy = Policy.from_mapping(changes, base=base_policy)
    baseline = simulate(script, base_policy, tolerance, None)
    what_if = simulate(script, policy, tolerance, None)
    changed = compare_replies(
        baseline.sent,
        what_if.sent,
        tolerance,
        answered(baseline, script.inputs),
        answered(what_if, script.inputs),
    )
    per_chat: dict[str, dict[str, list[Any]]] = {}
    for c in changed:
        entry = per_chat.setdefault(c["chat"], {"gained": [], "lost": [], "moved": []})
        if c["kind"] == "reply_moved":
            entry["moved"].append({"from": c["from_time"], "to": c["time"]})
        else:
            entry["gained" if c["kind"] == "reply_gained" else "lost"].append(c["time"])
    summary.update(
        {
            "mode": "what-if",
            "changes": dict(changes),
            "baseline_replies": len(baseline.sent),
            "what_if_replies": len(what_if.sent),
            "gained": sum(c["kind"] == "reply_gained" for c in changed),
            "lost": sum(c["kind"] == "reply_lost" for c in changed),
            "moved": sum(c["kind"] == "reply_moved" for c in changed),
            "per_chat": per_chat,
        }
    )
    return ReplayReport(
        len(script.inputs), what_if.sent, changed, summary, unanswered(what_if, script.inputs)
    )
