"""`wapa replay` in bounded memory: the recording is streamed, never held.

`sim.replay` states the rules of a replay, with their reasons; this module applies them
without holding the recording, the replay's results or the simulation's history, so a
recording of millions of events replays in the memory of a few minutes of it:

1. A first pass (`survey`) reads every line once: the reader's `file:line` errors, then each
   item's fields and time (rule 7), the recording's end, and whether lines are
   out of time order. Nothing is replayed from a recording that has a bad line.
2. A second pass reads the items in time order (`_in_order`). Lines out of order are put back
   in order by a buffer of `REORDER_LINES` lines; a line that belongs before a line more than
   that many lines above it is refused in the first pass, naming it (sort the file first).
3. The simulation runs `LOOKAHEAD` recorded seconds behind the reading: inputs are added as
   they are read (`Simulation.add_scripted`: the order of adding everything first), and the
   recorded Generates, Sends and Notices with their answers wait in per-chat books until the
   replay takes one (within the tolerance) or its time has passed. An answer recorded more than
   `LOOKAHEAD` after its request is handed over when it is read (`Outgoing.answer`).
4. Results are consumed as the simulation makes them and then dropped: decisions are matched
   against the recorded ones per chat and code as they come (the same in-order pairing), with
   the traces of a divergence cut from the last `TRACE_WINDOW` seconds of both sides; replies
   are paired with the contact messages they answer per chat; what-if runs go in lockstep and
   their replies are matched per chat. Only counts are kept of everything, and the first
   `limit` (by time) of each list that is reported: divergences, replies, unanswered messages.

One bound changes results, and only for recordings with more than `KEPT` (10,000) contact
messages waiting for a reply at once (a chat the assistant never answers, over months): then
a contact message still waiting `HORIZON` (a day) after it arrived, with no reply in its chat
since, is reported unanswered with the decision that explained it within that day (rule 5
alone would wait for a reply however late, and take the first explaining decision however
late); likewise, with more than `KEPT` what-if replies waiting for a
partner, one not paired within a day of its time is gained or lost, not moved. A recorded
answer or echo is attached to its request only within `ANSWER_HORIZON` (an hour) of it.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from wapa.adapters.recording import Header, Item, Recording, RecordingError, RecordingStream
from wapa.core.events import (
    CalendarUpdate,
    Command,
    Decision,
    Generate,
    MediaText,
    Message,
    Notice,
    Reason,
    Send,
)
from wapa.core.policy import Policy
from wapa.sim.engine import Sent, Simulation
from wapa.sim.replay import (
    DEFAULT_TOLERANCE,
    LATEST,
    TRACE_MAX,
    TRACE_WINDOW,
    WHY_NOT,
    Outgoing,
    ReplayModel,
    ReplayReport,
    ReplayWhatsApp,
    field_problem,
    iso,
    per_chat,
    take_answer,
    take_echo,
)

LOOKAHEAD = TRACE_WINDOW + 60.0  # recorded seconds read ahead of the simulation
HORIZON = 86_400.0  # how long a message waits for its reply, a reply for its partner, once
KEPT = 10_000  # more than this many are waiting (in one run)
ANSWER_HORIZON = 3_600.0  # how long a recorded request waits for its recorded answers, a send
# for its echo (a model answer comes within minutes, a confirmation within 75 s)
REORDER_LINES = 10_000  # how far (in lines) a line may sit from its place in time
DEFAULT_LIMIT = 1_000  # how many of each reported list are listed (all are counted)
STEP = 300.0  # recorded seconds between two advances: each looks at every chat with state

Input = Message | Command | MediaText | CalendarUpdate
K = TypeVar("K", bound=tuple[Any, ...])
V = TypeVar("V")
T = TypeVar("T")


# ---------------------------------------------------------------------- reading


class Entries(Protocol):
    """A recording's header, and its later entries in file order (`RecordingStream`)."""

    header: Header
    warnings: list[str]

    def __iter__(self) -> Iterator[Header | Item]: ...


class _InMemory:
    """A `Recording` already read, as entries in file order."""

    def __init__(self, recording: Recording) -> None:
        self.header = recording.header
        self.warnings = list(recording.warnings)
        self._recording = recording

    def __iter__(self) -> Iterator[Header | Item]:
        r = self._recording
        return heapq.merge(r.items, r.restarts, key=lambda e: e.line)


@dataclass
class Survey:
    end: float
    has_trace: bool  # the recording holds decisions to compare
    restarts: int
    reordered: bool
    warnings: list[str]


def survey(src: Entries, where: str) -> Survey:
    """The first pass (see the module docstring). Raises `RecordingError` for the first bad
    line: a line the reader refuses wherever it is, else the first item with a bad field or
    out of order beyond `REORDER_LINES`."""
    header = src.header
    end, has_trace, restarts = header.start, False, 0
    order: list[str] = []
    policy: list[str] = []
    problem: RecordingError | None = None
    window: list[float] = []  # the latest times, as the second pass's reorder buffer holds them
    released, last = -math.inf, -math.inf
    for entry in src:
        if isinstance(entry, Header):
            restarts += 1
            if entry.policy != header.policy:
                policy.append(
                    f"line {entry.line}: the policy changed at a restart; the replay uses the "
                    "first one"
                )
            continue
        if problem is not None:
            continue  # read on: a line the reader refuses further down is reported first
        here = f"{where}:{entry.line}"
        if not 0 <= entry.t <= LATEST:
            problem = RecordingError(f"{here}: t: {entry.t!r} is not a time between 1970 and 3000")
            continue
        bad = field_problem(entry.obj)
        if bad:
            problem = RecordingError(f"{here}: {type(entry.obj).__name__}.{bad}")
            continue
        if entry.t < released:
            problem = RecordingError(
                f"{here}: out of time order by more than {REORDER_LINES:,} lines (it is earlier "
                f"than a line {REORDER_LINES:,} or more lines above it): sort the file by time "
                "first"
            )
            continue
        heapq.heappush(window, entry.t)
        if len(window) > REORDER_LINES:
            released = heapq.heappop(window)
        if entry.t < last and not order:
            order.append(
                f"line {entry.line}: lines out of time order (this one is earlier than the line "
                "before it): replayed in time order"
            )
        last = entry.t
        end = max(end, entry.t)
        has_trace = has_trace or (entry.dir == "out" and isinstance(entry.obj, Decision))
    if problem is not None:
        raise problem
    return Survey(end, has_trace, restarts, bool(order), [*src.warnings, *order, *policy])


def _in_order(src: Entries, capacity: int) -> Iterator[tuple[float, Header | Item]]:
    """Entries by time (ties in file order), through a buffer of `capacity` lines. A restart
    header sorts at the latest time before it (its crash happened after what came before)."""
    heap: list[tuple[float, int, Header | Item]] = []
    latest = -math.inf
    for entry in src:
        if isinstance(entry, Item):
            latest = max(latest, entry.t)
            key = entry.t
        else:
            key = latest
        if not capacity:
            yield key, entry
            continue
        heapq.heappush(heap, (key, entry.line, entry))
        if len(heap) > capacity:
            k, _, e = heapq.heappop(heap)
            yield k, e
    while heap:
        k, _, e = heapq.heappop(heap)
        yield k, e


# ---------------------------------------------------------------------- bounded lists


class _Smallest(Generic[K, V]):
    """The `limit` values with the smallest keys, and how many were offered."""

    def __init__(self, limit: int) -> None:
        self.limit, self.total = limit, 0
        self._heap: list[tuple[_Reversed[K], V]] = []

    def add(self, key: K, value: V) -> None:
        self.total += 1
        if self.limit <= 0:
            return
        item = (_Reversed(key), value)
        if len(self._heap) < self.limit:
            heapq.heappush(self._heap, item)
        elif key < self._heap[0][0].key:
            heapq.heapreplace(self._heap, item)

    def values(self) -> list[V]:
        return [v for _, v in sorted(self._heap, key=lambda x: x[0], reverse=True)]


@dataclass(frozen=True, slots=True)
class _Reversed(Generic[K]):
    key: K

    def __lt__(self, other: _Reversed[K]) -> bool:
        return other.key < self.key


# ---------------------------------------------------------------------- recorded world


class StreamBook:
    """Recorded outgoing items per chat, in time order, for one run: `take` the nearest unused
    one within the tolerance (rule 2 of `sim.replay`); items the clock has left behind by more
    than the tolerance are dropped (`prune`)."""

    def __init__(self, tolerance: float) -> None:
        self.tolerance = tolerance
        self._by_chat: dict[str, deque[list[Any]]] = {}  # [Outgoing, used]

    def add(self, o: Outgoing) -> None:
        self._by_chat.setdefault(o.chat, deque()).append([o, False])

    def take(self, chat: str, t: float) -> Outgoing | None:
        items = self._by_chat.get(chat)
        if not items:
            return None
        while items and items[0][0].t < t - self.tolerance:
            items.popleft()
        best: list[Any] | None = None
        for entry in items:
            o = entry[0]
            if o.t > t + self.tolerance:
                break
            if not entry[1] and (best is None or abs(o.t - t) < abs(best[0].t - t)):
                best = entry
        if best is None:
            return None
        best[1] = True
        taken: Outgoing = best[0]
        return taken

    def prune(self, now: float) -> None:
        for chat in list(self._by_chat):
            items = self._by_chat[chat]
            while items and items[0][0].t < now - self.tolerance:
                items.popleft()
            if not items:
                del self._by_chat[chat]


# ---------------------------------------------------------------------- replies and messages


@dataclass(slots=True)
class _Pending:
    """A chat's message (the owner's or a contact's) not yet answered or given up."""

    t: float
    index: int  # among the replayed inputs
    owner: bool
    message: Message
    first: Decision | None = None  # the first decision in its chat at or after it
    why: Decision | None = None  # the first that explains a missing reply (`WHY_NOT`)


@dataclass(frozen=True, slots=True)
class Batch:
    """The contact messages a reply answers: a run of the chat's contact messages, from input
    `lo` to input `hi` (the same numbers in every run: two batches of a chat share a message
    exactly when these ranges overlap)."""

    lo: int
    hi: int
    hi_t: float  # the time of the last one

    def overlaps(self, other: Batch) -> bool:
        """The two batches answer a message in common."""
        return self.lo <= other.hi and other.lo <= self.hi


@dataclass
class _ChatLog:
    entries: deque[_Pending] = field(default_factory=deque)
    since: float = -math.inf  # the run's latest reply in the chat
    k_first: int = 0  # entries[:k_first] have `first`
    k_why: int = 0

    def pop(self) -> _Pending:
        self.k_first = max(0, self.k_first - 1)
        self.k_why = max(0, self.k_why - 1)
        return self.entries.popleft()


class Answers:
    """One run's replies and the contact messages they answer, and the messages no reply
    answers with why (rule 5 of `sim.replay`), worked out as the run goes: each chat's messages
    wait in its log until a reply (or the end) settles them."""

    def __init__(self, explain: bool, limit: int) -> None:
        self.explain = explain
        self.chats: dict[str, _ChatLog] = {}
        self.waiting = 0  # messages in all chats' logs
        self.unanswered: _Smallest[tuple[float, int], dict[str, Any]] = _Smallest(limit)
        self.codes: dict[str, int] = {}

    def message(self, index: int, t: float, m: Message) -> None:
        log = self.chats.setdefault(m.chat, _ChatLog())
        log.entries.append(_Pending(t, index, m.from_me, m))
        self.waiting += 1

    def decision(self, d: Decision) -> None:
        """A decision of the run: the first (and the first explaining one) after each message
        of its chat still waiting for a reply."""
        log = self.chats.get(d.chat)
        if log is None or not self.explain:
            return
        entries = log.entries
        while log.k_first < len(entries) and entries[log.k_first].t <= d.t:
            entries[log.k_first].first = d
            log.k_first += 1
        if d.code in WHY_NOT:
            while log.k_why < len(entries) and entries[log.k_why].t <= d.t:
                entries[log.k_why].why = d
                log.k_why += 1

    def reply(self, s: Sent, upto: float) -> Batch | None:
        """The contact messages reply `s` answers, the model asked at `upto` (rule 5); the
        messages of its chat up to `s` that it does not answer are unanswered."""
        log = self.chats.setdefault(s.chat, _ChatLog())
        lo: _Pending | None = None
        hi: _Pending | None = None
        for e in log.entries:
            if e.t > upto:
                break
            if e.t <= log.since:
                continue
            if e.owner:
                lo = hi = None  # the owner answered what came before
            else:
                lo, hi = lo or e, e
        while log.entries and log.entries[0].t <= s.t:
            e = log.pop()
            self.waiting -= 1
            if not e.owner and (lo is None or hi is None or not lo.index <= e.index <= hi.index):
                self._unanswered(e)
        log.since = s.t
        return None if lo is None or hi is None else Batch(lo.index, hi.index, hi.t)

    def prune(self, now: float) -> None:
        """With more than `KEPT` messages waiting, those waiting longer than `HORIZON` are
        unanswered (the module docstring)."""
        for chat in list(self.chats):
            log = self.chats[chat]
            while self.waiting > KEPT and log.entries and log.entries[0].t < now - HORIZON:
                e = log.pop()
                self.waiting -= 1
                if not e.owner:
                    self._unanswered(e)
            if not log.entries and log.since < now - HORIZON:
                del self.chats[chat]  # a later reply there answers nothing before it either

    def finish(self) -> None:
        for log in self.chats.values():
            while log.entries:
                e = log.pop()
                self.waiting -= 1
                if not e.owner:
                    self._unanswered(e)
        self.chats.clear()

    def _unanswered(self, e: _Pending) -> None:
        if not self.explain:
            return
        why = e.why or e.first
        code = why.code if why else ""
        self.codes[code] = self.codes.get(code, 0) + 1
        self.unanswered.add(
            (e.t, e.index),
            {
                "t": e.t,
                "time": iso(e.t),
                "chat": e.message.chat,
                "text": e.message.text,
                "code": code,
                "detail": why.detail if why else "no decision was made about it",
            },
        )


# ---------------------------------------------------------------------- one replay run


class _Run:
    """One simulation of the recording, fed as it is read, its results consumed as they come."""

    def __init__(
        self, header: Header, policy: Policy, tolerance: float, explain: bool, limit: int
    ) -> None:
        self.gen_book = StreamBook(tolerance)
        self.send_book = StreamBook(tolerance)
        self.notice_book = StreamBook(tolerance)
        self.model = ReplayModel(seed=header.seed, book=self.gen_book)
        self.whatsapp = ReplayWhatsApp(
            seed=header.seed, send_book=self.send_book, notice_book=self.notice_book
        )
        self.sim = Simulation(
            policy=policy,
            persona=header.persona,
            seed=header.seed,
            start=header.start,
            model=self.model,
            whatsapp=self.whatsapp,
            keep_timeline=False,
        )
        self.model.outlet = self.whatsapp.outlet = self.sim
        self.answers = Answers(explain, limit)
        self.sent: list[Sent] = []
        self.sent_total = self.decisions = 0
        self.limit = limit
        self.asked: dict[str, float] = {}  # request id -> when first asked

    def books(self) -> tuple[StreamBook, StreamBook, StreamBook]:
        return self.gen_book, self.send_book, self.notice_book

    def input(self, index: int, t: float, event: Input) -> None:
        if isinstance(event, MediaText | CalendarUpdate):  # new traffic, as it was delivered
            self.sim.add_scripted(max(t, self.sim.result.start), event, traffic=True)
        else:
            self.sim.add_scripted(t, event)
        if isinstance(event, Message):
            self.answers.message(index, t, event)

    def advance(
        self, until: float | None, compare: _Compare | None, pairing: _Pairing | None, side: int
    ) -> None:
        """Run to `until` (to the end when None) and take in what the run did."""
        self.sim.run(until)
        res = self.sim.result
        for g in res.generations:
            self.asked.setdefault(g.request_id, g.t)
        decisions, sent = res.decisions, res.sent
        i = j = 0
        while i < len(decisions) or j < len(sent):
            if j >= len(sent) or (i < len(decisions) and decisions[i].t <= sent[j].t):
                d = decisions[i]
                i += 1
                self.decisions += 1
                self.answers.decision(d)
                if compare is not None:
                    compare.replayed(d)
                continue
            s = sent[j]
            j += 1
            self.sent_total += 1
            if len(self.sent) < self.limit:
                self.sent.append(s)
            batch = self.answers.reply(s, min(self.asked.get(s.request_id, s.t), s.t))
            if pairing is not None:
                pairing.reply(side, s, batch)
        for kept in (res.generations, res.decisions, res.sent, res.send_failures, res.crashes):
            kept.clear()
        res.unconfirmed.clear()
        res.echo_ids.clear()
        w = self.whatsapp
        for seen in (w.reads, w.typing, w.notices, w.refused, w.never_arrived, w.backlog):
            seen.clear()

    def prune(self, now: float) -> None:
        for book in self.books():
            book.prune(now)
        self.answers.prune(now)
        while self.asked:
            rid, t = next(iter(self.asked.items()))
            if t >= now - HORIZON:
                break
            del self.asked[rid]


# ---------------------------------------------------------------------- matching and pairing


def match_in_order(
    a: deque[T],
    b: deque[T],
    time: Callable[[T], float],
    tolerance: float,
    frontiers: tuple[float, float],
    left: Callable[[int, T], None],
) -> None:
    """Rule 3 of `sim.replay` (in-order matching) on two time-ordered queues, as far as it can
    be decided now: matched items are removed, left-over ones handed to `left(side, item)`
    (side 0 for `a`). A head with nothing on the other side is left over once that side's
    `frontiers` (its later items come at or after it) is beyond the tolerance of it."""
    while True:
        if a and b:
            ta, tb = time(a[0]), time(b[0])
            if abs(ta - tb) <= tolerance:
                a.popleft()
                b.popleft()
            elif ta < tb:
                left(0, a.popleft())
            else:
                left(1, b.popleft())
        elif a and frontiers[1] - time(a[0]) > tolerance:
            left(0, a.popleft())
        elif b and frontiers[0] - time(b[0]) > tolerance:
            left(1, b.popleft())
        else:
            break


def pair_moved(
    lost: Sequence[Batch | None], gained: Sequence[Batch | None]
) -> list[tuple[int, int]]:
    """Rule 6 of `sim.replay`: which of a chat's left-over baseline replies (`lost`, by the
    messages each answers, in time order) and what-if replies (`gained`) are one reply moved,
    as (i, j) pairs, sorted. The same last message pairs first, then any message in common;
    each reply is in one pair at most, the earliest lost reply taking the earliest free gained
    one."""
    pairs: list[tuple[int, int]] = []
    free = list(range(len(gained)))
    unpaired: list[int] = []
    for i, mine in enumerate(lost):
        j = next(
            (j for j in free if mine is not None and (g := gained[j]) and g.hi == mine.hi),
            None,
        )
        if j is None:
            unpaired.append(i)
        else:
            pairs.append((i, j))
            free.remove(j)
    for i in unpaired:
        mine = lost[i]
        j = next(
            (j for j in free if mine is not None and (g := gained[j]) and mine.overlaps(g)),
            None,
        )
        if j is not None:
            pairs.append((i, j))
            free.remove(j)
    return sorted(pairs)


def _decision_time(d: Decision) -> float:
    return d.t


def _reply_time(reply: tuple[Sent, Batch | None]) -> float:
    return reply[0].t


# ---------------------------------------------------------------------- check mode


class _Compare:
    """Check mode (rule 4 of `sim.replay`) as both sides come in: recorded and replayed
    decisions matched per chat and code (`match_in_order`), the traces of each one left over
    cut from the last `TRACE_WINDOW` of both sides."""

    def __init__(self, tolerance: float, limit: int) -> None:
        self.tolerance = tolerance
        self.groups: dict[tuple[str, str], tuple[deque[Decision], deque[Decision]]] = {}
        self.history: tuple[dict[str, deque[Decision]], dict[str, deque[Decision]]] = ({}, {})
        self.waiting: list[tuple[float, int, Decision, int]] = []  # (t, seq, decision, side)
        self.found: _Smallest[tuple[float, str, str, int, int], dict[str, Any]] = _Smallest(limit)
        self.frontier = [-math.inf, -math.inf]  # later decisions come at or after these
        self._seq = 0

    def _add(self, d: Decision, side: int) -> None:
        queue = self.groups.setdefault((d.chat, d.code), (deque(), deque()))[side]
        history = self.history[side].setdefault(d.chat, deque())
        for q in (queue, history):
            if q and d.t < q[-1].t:  # a recorded decision out of order: put in place
                i = len(q)
                while i and q[i - 1].t > d.t:
                    i -= 1
                q.insert(i, d)
            else:
                q.append(d)

    def recorded(self, d: Decision) -> None:
        self._add(d, 0)

    def replayed(self, d: Decision) -> None:
        self._add(d, 1)

    def advance(self, recorded_at: float, replayed_at: float) -> None:
        self.frontier = [recorded_at, replayed_at]
        tol = self.tolerance
        for key in list(self.groups):
            rec, rep = self.groups[key]
            match_in_order(
                rec, rep, _decision_time, tol, (recorded_at, replayed_at), self._unmatched
            )
            if not rec and not rep:
                del self.groups[key]
        seen = min(recorded_at, replayed_at)
        while self.waiting and self.waiting[0][0] + TRACE_WINDOW < seen:
            _, seq, d, side = heapq.heappop(self.waiting)
            self._report(d, side, seq)
        oldest = min([seen, *(w[0] for w in self.waiting[:1])])
        cutoff = oldest - TRACE_WINDOW - tol - 1.0
        for history in self.history:
            for chat in list(history):
                q = history[chat]
                while q and q[0].t < cutoff:
                    q.popleft()
                if not q:
                    del history[chat]

    def _unmatched(self, side: int, d: Decision) -> None:
        self._seq += 1
        heapq.heappush(self.waiting, (d.t, self._seq, d, side))

    def _report(self, d: Decision, side: int, seq: int) -> None:
        self.found.add(
            (d.t, d.chat, d.code, side, seq),
            {
                "t": d.t,
                "time": iso(d.t),
                "chat": d.chat,
                "code": d.code,
                "side": "recorded" if side == 0 else "replay",
                "detail": d.detail,
                "recorded": self._around(0, d.chat, d.t),
                "replay": self._around(1, d.chat, d.t),
            },
        )

    def _around(self, side: int, chat: str, t: float) -> list[str]:
        near = [d for d in self.history[side].get(chat, ()) if abs(d.t - t) <= TRACE_WINDOW]
        near = sorted(near, key=lambda d: abs(d.t - t))[:TRACE_MAX]
        return [f"{iso(d.t)} {d.code}: {d.detail}" for d in sorted(near, key=lambda d: d.t)]


# ---------------------------------------------------------------------- what-if mode


@dataclass
class _ChatReplies:
    runs: tuple[deque[tuple[Sent, Batch | None]], deque[tuple[Sent, Batch | None]]] = field(
        default_factory=lambda: (deque(), deque())
    )
    lost: list[tuple[Sent, Batch | None]] = field(default_factory=list)
    gained: list[tuple[Sent, Batch | None]] = field(default_factory=list)
    since: list[float] = field(default_factory=lambda: [-math.inf, -math.inf])
    # the latest message the lost (0) and the gained (1) replies answer
    answered_upto: list[float] = field(default_factory=lambda: [-math.inf, -math.inf])

    def unpaired(self, side: int, reply: tuple[Sent, Batch | None]) -> None:
        (self.lost if side == 0 else self.gained).append(reply)
        if reply[1] is not None:
            self.answered_upto[side] = max(self.answered_upto[side], reply[1].hi_t)


class _Pairing:
    """What-if mode (rule 6 of `sim.replay`) as both runs go: replies matched per chat
    (`match_in_order`), the ones left over paired once no reply to come can answer what they
    answer (`pair_moved`)."""

    def __init__(self, tolerance: float, limit: int) -> None:
        self.tolerance = tolerance
        self.chats: dict[str, _ChatReplies] = {}
        self.waiting = 0  # lost and gained replies not yet paired
        self.found: _Smallest[tuple[float, str, int, int], dict[str, Any]] = _Smallest(limit)
        self.counts = {"reply_gained": 0, "reply_lost": 0, "reply_moved": 0}
        self._seq = 0

    def reply(self, side: int, s: Sent, batch: Batch | None) -> None:
        chat = self.chats.setdefault(s.chat, _ChatReplies())
        chat.runs[side].append((s, batch))
        chat.since[side] = s.t

    def advance(self, now: float) -> None:
        for name in list(self.chats):
            c = self.chats[name]
            base, new = c.runs
            left = len(c.lost) + len(c.gained)
            match_in_order(base, new, _reply_time, self.tolerance, (now, now), c.unpaired)
            self.waiting += len(c.lost) + len(c.gained) - left
            if (c.lost or c.gained) and self._closed(c, now):
                self.waiting -= len(c.lost) + len(c.gained)
                self._pair(name, c)
            if not (base or new or c.lost or c.gained) and max(c.since) < now - HORIZON:
                del self.chats[name]

    def _closed(self, c: _ChatReplies, now: float) -> bool:
        """No reply to come can answer a message these answer (or they waited `HORIZON`)."""
        if math.isinf(now):
            return True
        oldest = min(x[0][0].t for x in (c.lost, c.gained) if x)  # each list in time order
        if self.waiting > KEPT and oldest < now - HORIZON:
            return True
        if c.runs[0] or c.runs[1]:
            return False
        return c.answered_upto[0] <= c.since[1] and c.answered_upto[1] <= c.since[0]

    def _pair(self, name: str, c: _ChatReplies) -> None:
        lost, gained = c.lost, c.gained
        c.lost, c.gained = [], []
        c.answered_upto = [-math.inf, -math.inf]
        pairs = pair_moved([b for _, b in lost], [b for _, b in gained])
        for i, j in pairs:
            b, n = lost[i][0], gained[j][0]
            self._found(
                0,
                {
                    "t": n.t,
                    "time": iso(n.t),
                    "chat": name,
                    "kind": "reply_moved",
                    "from_t": b.t,
                    "from_time": iso(b.t),
                    "shift_s": round(n.t - b.t, 3),
                    "text": n.text,
                    "from_text": b.text,
                },
            )
        paired_lost, paired_gained = {i for i, _ in pairs}, {j for _, j in pairs}
        for rank, kind, items, paired in (
            (1, "reply_lost", lost, paired_lost),
            (2, "reply_gained", gained, paired_gained),
        ):
            for k, (s, _) in enumerate(items):
                if k not in paired:
                    self._found(
                        rank,
                        {"t": s.t, "time": iso(s.t), "chat": name, "kind": kind, "text": s.text},
                    )

    def _found(self, rank: int, entry: dict[str, Any]) -> None:
        self._seq += 1
        self.counts[entry["kind"]] += 1
        self.found.add((entry["t"], entry["chat"], rank, self._seq), entry)


# ---------------------------------------------------------------------- the recording, in order


class _Builder:
    """Rules 1 and 2 of `sim.replay` as the recording is read: inputs go to the runs (an
    inbound message is held until the next inbound item, in case the recording's core took it
    for an echo of its own send), restarts to the runs as crashes, recorded outgoing items to
    the runs' books, recorded answers and echoes to their items, recorded decisions to the
    comparison."""

    def __init__(self, header: Header, runs: list[_Run], compare: _Compare | None) -> None:
        self.owner = header.persona.owner_id
        self.runs, self.compare = runs, compare
        self.gens: dict[str, Outgoing] = {}
        self.sends: dict[str, Outgoing] = {}
        self.recent: dict[str, deque[Outgoing]] = {}  # sends per chat, for echoes
        self.notices: deque[Outgoing] = deque()
        self.held: list[tuple[float, Input | None, float]] = []  # (t, input or crash, down)
        self.inputs = self.echoes = self.decisions = self.sent = 0
        self.latest = -math.inf

    def entry(self, e: Header | Item) -> None:
        if isinstance(e, Header):
            crash_t = e.crashed_at
            if crash_t is None:  # a production restart: it died after the last thing it wrote
                crash_t = self.latest if self.latest > -math.inf else e.start
            self._emit(crash_t, None, max(0.0, e.start - crash_t))
            return
        t, obj = e.t, e.obj
        self.latest = max(self.latest, t)
        if e.dir == "in":
            self.release()
            if isinstance(obj, Message):
                self.held.append((t, obj, 0.0))
            elif isinstance(obj, Command | MediaText | CalendarUpdate):
                self._emit(t, obj)
            else:
                take_answer(obj, t, self.gens, self.sends)
            return
        if isinstance(obj, Decision):
            self.decisions += 1
            if self.compare is not None:
                self.compare.recorded(obj)
            first = self.held[0][1] if self.held else None
            if obj.code == Reason.ECHO and isinstance(first, Message) and first.chat == obj.chat:
                mt = self.held[0][0]
                rest, self.held = self.held[1:], []
                self.echoes += 1
                pool = self.notices if first.chat == self.owner else self.recent.get(first.chat, ())
                take_echo(pool, mt, first)
                for t2, ev, down in rest:
                    self._emit(t2, ev, down)
        elif isinstance(obj, Generate):
            o = Outgoing(t, obj.chat)
            self.gens[obj.request_id] = o
            for run in self.runs:
                run.gen_book.add(o)
        elif isinstance(obj, Send):
            o = Outgoing(t, obj.chat, obj.text)
            self.sends[obj.request_id] = o
            self.recent.setdefault(obj.chat, deque()).append(o)
            self.sent += 1
            for run in self.runs:
                run.send_book.add(o)
        elif isinstance(obj, Notice):
            o = Outgoing(t, self.owner, obj.text)
            self.notices.append(o)
            for run in self.runs:
                run.notice_book.add(o)

    def held_since(self) -> float | None:
        return self.held[0][0] if self.held else None

    def release(self) -> None:
        """The held message was no echo: it and what waited behind it go to the runs."""
        held, self.held = self.held, []
        for t, event, down in held:
            self._emit(t, event, down, force=True)

    def _emit(self, t: float, event: Input | None, down: float = 0.0, force: bool = False) -> None:
        if self.held and not force:
            self.held.append((t, event, down))
            return
        for run in self.runs:
            if event is None:
                run.sim.add_scripted(t, down=down)
            else:
                run.input(self.inputs, t, event)
        if event is not None:
            self.inputs += 1

    def prune(self, now: float) -> None:
        """Recorded items older than `ANSWER_HORIZON` get no more answers or echoes."""
        old = now - ANSWER_HORIZON
        for pending in (self.gens, self.sends):
            while pending:
                rid, o = next(iter(pending.items()))
                if o.t >= old:
                    break
                del pending[rid]
        for chat in list(self.recent):
            q = self.recent[chat]
            while q and q[0].t < old:
                q.popleft()
            if not q:
                del self.recent[chat]
        while self.notices and self.notices[0].t < old:
            self.notices.popleft()


# ---------------------------------------------------------------------- the whole replay


def replay_stream(
    source: Recording | str | Path,
    changes: Mapping[str, Any] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    limit: int = DEFAULT_LIMIT,
) -> ReplayReport:
    """`sim.replay.replay`, in bounded memory (the module docstring)."""
    src: Entries = _InMemory(source) if isinstance(source, Recording) else RecordingStream(source)
    where = source.path if isinstance(source, Recording) else str(source)
    header = src.header
    seen = survey(src, where)
    policy = Policy.from_mapping(changes, base=header.policy) if changes else None
    check = policy is None
    runs = [_Run(header, header.policy, tolerance, check, limit)]
    if policy is not None:
        runs.append(_Run(header, policy, tolerance, True, limit))
    compare = _Compare(tolerance, limit) if check and seen.has_trace else None
    pairing = _Pairing(tolerance, limit) if not check else None
    builder = _Builder(header, runs, compare)
    final = seen.end + tolerance if compare is not None else None
    frontier, done = -math.inf, -math.inf

    def advance(until: float | None, read: float) -> None:
        for side, run in enumerate(runs):
            run.advance(until, compare, pairing, side)
        now = math.inf if until is None else until
        if compare is not None:
            compare.advance(read, now)
        if pairing is not None:
            pairing.advance(now)
        if until is not None:
            for run in runs:
                run.prune(until)
            builder.prune(until)

    for key, entry in _in_order(src, REORDER_LINES if seen.reordered else 0):
        builder.entry(entry)
        frontier = max(frontier, key)
        until = frontier - LOOKAHEAD
        held = builder.held_since()
        if held is not None:
            until = min(until, math.nextafter(held, -math.inf))
        if final is not None:
            until = min(until, final)
        if until >= done + STEP:
            advance(until, frontier)
            done = until
    builder.release()
    advance(final, math.inf)  # check mode: to the recording's end; else to the last reply
    if compare is not None:
        compare.advance(math.inf, math.inf)  # nothing more comes from either side
    for run in runs:
        run.answers.finish()
    return _report(where, header, seen, builder, runs, compare, pairing, changes, tolerance)


def _report(
    where: str,
    header: Header,
    seen: Survey,
    builder: _Builder,
    runs: list[_Run],
    compare: _Compare | None,
    pairing: _Pairing | None,
    changes: Mapping[str, Any] | None,
    tolerance: float,
) -> ReplayReport:
    last = runs[-1]
    summary: dict[str, Any] = {
        "recording": where,
        "redacted": header.redacted,
        "inputs": builder.inputs,
        "echoes_skipped": builder.echoes,
        "restarts": seen.restarts,
        "tolerance": tolerance,
        "warnings": seen.warnings,
    }
    if pairing is None:
        divergences = compare.found.values() if compare is not None else []
        summary.update(
            {
                "mode": "check",
                "compared": compare is not None,
                "recorded_decisions": builder.decisions,
                "replayed_decisions": last.decisions,
                "recorded_replies": builder.sent,
                "replayed_replies": last.sent_total,
                "divergences": compare.found.total if compare is not None else 0,
            }
        )
        total = summary["divergences"]
    else:
        divergences = pairing.found.values()
        summary.update(
            {
                "mode": "what-if",
                "changes": dict(changes or {}),
                "baseline_replies": runs[0].sent_total,
                "what_if_replies": last.sent_total,
                "gained": pairing.counts["reply_gained"],
                "lost": pairing.counts["reply_lost"],
                "moved": pairing.counts["reply_moved"],
                "per_chat": per_chat(divergences),
            }
        )
        total = pairing.found.total
    unanswered = last.answers.unanswered
    if (
        total > len(divergences)
        or last.sent_total > len(last.sent)
        or (unanswered.total > len(unanswered.values()))
    ):
        summary["listed"] = {
            "limit": unanswered.limit,
            "divergences": total,
            "sent": last.sent_total,
            "unanswered": unanswered.total,
        }
    return ReplayReport(
        builder.inputs,
        last.sent,
        divergences,
        summary,
        unanswered.values(),
        sent_total=last.sent_total,
        unanswered_total=unanswered.total,
        unanswered_codes=dict(last.answers.codes),
    )
