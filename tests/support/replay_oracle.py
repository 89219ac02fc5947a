"""TEST ORACLE, not production code: the whole-recording replay that `wapa replay` (the
streamed replay, `wapa.sim.replay_stream`) is tested against (tests/sim/test_replay_stream.py).

It applies the rules of `wapa.sim.replay` (stated there, with their reasons) the simplest way:
the whole recording is read into lists, each run is simulated to the end, and the results are
compared afterwards with sorts and scans over everything (quadratic in places). It bounds
nothing, cuts no list and never prunes, and it was written apart from the streamed replay,
which does the same work incrementally in bounded memory. The two agreeing, to the byte of the
JSON, on fuzz recordings with crashes, what-ifs, divergences, late answers and imported chats
is the evidence that the streamed replay's bookkeeping (look-ahead, late answers, pruning,
incremental pairing) changes nothing. It shares with production only the recorded world
(`ReplayModel`, `ReplayWhatsApp`, `Outgoing`, and `take_answer`/`take_echo`, which attach a
recorded answer to its request), the report's type and the `WHY_NOT` codes; matching,
pairing and what a reply answers it states again its own way (sets of message indexes where
production has ranges). It trusts its input: damaged recordings are the production replay's
to refuse.

Production never imports this module; only tests do.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wapa.adapters.recording import Header, Item, Recording
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
from wapa.sim.engine import Sent, SimResult, Simulation
from wapa.sim.replay import (
    DEFAULT_TOLERANCE,
    TRACE_MAX,
    TRACE_WINDOW,
    WHY_NOT,
    Outgoing,
    ReplayModel,
    ReplayReport,
    ReplayWhatsApp,
    iso,
    per_chat,
    take_answer,
    take_echo,
)


class _Book:
    """Recorded outgoing items per chat, taken by the nearest time within a tolerance."""

    def __init__(self, items: Iterable[Outgoing], tolerance: float) -> None:
        self.tolerance = tolerance
        self._by_chat: dict[str, list[Outgoing]] = defaultdict(list)
        for o in items:
            self._by_chat[o.chat].append(o)
        self._times = {c: [o.t for o in xs] for c, xs in self._by_chat.items()}
        self._used: set[int] = set()  # id() of the items taken

    def take(self, chat: str, t: float) -> Outgoing | None:
        items, times = self._by_chat.get(chat), self._times.get(chat)
        if not items or times is None:
            return None
        i = bisect.bisect_left(times, t - self.tolerance)
        best: Outgoing | None = None
        while i < len(items) and times[i] <= t + self.tolerance:
            o = items[i]
            if id(o) not in self._used and (best is None or abs(o.t - t) < abs(best.t - t)):
                best = o
            i += 1
        if best is not None:
            self._used.add(id(best))
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
            else:
                take_answer(obj, t, gens, sends)
            continue
        if isinstance(obj, Decision):
            s.decisions.append(obj)
            if obj.code == Reason.ECHO and last_msg is not None and last_msg[2].chat == obj.chat:
                index, mt, m = last_msg
                echoes.add(index)
                s.echoes += 1
                take_echo(s.notices if m.chat == owner else s.sends, mt, m)
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


def simulate(script: Script, policy: Policy, tolerance: float, until: float | None) -> SimResult:
    h = script.header
    model = ReplayModel(seed=h.seed, book=_Book(script.generations, tolerance))
    whatsapp = ReplayWhatsApp(
        seed=h.seed,
        send_book=_Book(script.sends, tolerance),
        notice_book=_Book(script.notices, tolerance),
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
def unanswered(
    result: SimResult, inputs: list[tuple[float, Message | Command | MediaText | CalendarUpdate]]
) -> list[dict[str, Any]]:
    """The contact messages no reply of `result` answers (see `answered`), each with why: the
    code and detail of the decision that explains it (`WHY_NOT`), in time order."""
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
        why = next((d for d in after if d.code in WHY_NOT), None) or next(iter(after), None)
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
        return _report(
            len(script.inputs), result.sent, divergences, summary, unanswered(result, script.inputs)
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
    summary.update(
        {
            "mode": "what-if",
            "changes": dict(changes),
            "baseline_replies": len(baseline.sent),
            "what_if_replies": len(what_if.sent),
            "gained": sum(c["kind"] == "reply_gained" for c in changed),
            "lost": sum(c["kind"] == "reply_lost" for c in changed),
            "moved": sum(c["kind"] == "reply_moved" for c in changed),
            "per_chat": per_chat(changed),
        }
    )
    return _report(
        len(script.inputs), what_if.sent, changed, summary, unanswered(what_if, script.inputs)
    )


def _report(
    events: int,
    sent: list[Sent],
    divergences: list[dict[str, Any]],
    summary: dict[str, Any],
    missed: list[dict[str, Any]],
) -> ReplayReport:
    """Everything listed, so the totals are the lists' lengths."""
    codes: dict[str, int] = {}
    for item in missed:
        codes[item["code"]] = codes.get(item["code"], 0) + 1
    return ReplayReport(events, sent, divergences, summary, missed, len(sent), len(missed), codes)
