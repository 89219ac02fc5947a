"""Seeded fuzzing: realistic traffic for many chats over days, with the invariants checked live.

`generate_traffic` draws, from one `random.Random(seed)`, a population of direct and group chats
and their traffic: conversations in bursts during waking hours, owner replies (sometimes while
a reply is being generated), urgent and shouted messages, near-miss words ("network", "know"),
media without text, reactions and system messages, redelivered ids, group mentions, quotes and
alias hits, owner commands, and crashes with short downtimes. `run_fuzz` plays it through a
`Simulation` whose fake model and fake WhatsApp fail at seeded rates, with
`sim.invariants.InvariantChecker` watching every input and effect. The same arguments always
give the same run, so a failing seed is replayed exactly with the printed command.

With `store`, every step is committed to a real SQLite store and each crash restarts from it
(`sim.durable`); `crash_rate` adds crashes right after random steps. After a store-backed run,
the sends the store's outbox held with no outcome at each restart must be exactly the ones the
core reported `send_unknown` for (rule `store_outbox`).

Also the entry point for benchmarks: `generate_traffic(...)`, then `build_simulation(traffic)`.
"""

from __future__ import annotations

import math
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wapa.core.events import Decision, Message, Reason
from wapa.core.policy import Persona, Policy
from wapa.sim.engine import QUOTE_LAST_REPLY, Observer, SimResult, Simulation
from wapa.sim.fake_model import FakeModel
from wapa.sim.fake_whatsapp import FakeWhatsApp

DEFAULT_START = datetime(2026, 1, 5, 0, 0, tzinfo=UTC).timestamp()
DAY = 86400.0
OWNER_ID = "owner@s.whatsapp.net"
OWNER_NAME = "Gilad"

MODEL_FAILURE_RATES = {
    "rate_limited": 0.02,
    "capacity": 0.01,
    "timeout": 0.01,
    "server_error": 0.01,
    # Not here: auth and daily_quota. They are states of the account, not noise on a request:
    # one auth error locks the model out until the next restart and one daily_quota blocks it
    # until midnight, as in production (scenarios/model_auth_* and model_daily_quota_*).
    "no_answer": 0.005,
}
SEND_FAIL_RATE = 0.01
DROP_ECHO_RATE = 0.01

_NAMES = (
    "Alice",
    "Bob",
    "Carol",
    "Dan",
    "Eve",
    "Frank",
    "Grace",
    "Heidi",
    "Ivan",
    "Judy",
    "Mallory",
    "Noa",
    "Oscar",
    "Peggy",
    "Rupert",
    "Sybil",
    "Trent",
    "Uri",
    "Victor",
    "Yael",
)
_OPENERS = ("hi", "hey", "hello", "good morning", "yo", "shalom", "hola", "hallo")
_BODIES = (
    "are you free tomorrow",
    "can you send me the file",
    "did you see the network report",
    "I know you are busy",
    "call me when you can",
    "what time is the meeting",
    "the work on the kitchen is done",
    "thanks for yesterday",
    "happy birthday",
    "is the offer still open",
    "we are at the restaurant",
    "let me know about friday",
    "can we talk later",
    "the kids say hi",
    "running late sorry",
    "need your signature",
)
_URGENT = (
    "urgent: {b}",
    "please call me asap",
    "EMERGENCY {b}",
    "it's urgent!!! {b}",
    "dringend: {b}",
    "urgente {b}",
    "call me right now",
    "{b} - hospital",
)
_SHOUTED = ("WHERE ARE YOU", "ANSWER THE PHONE PLEASE", "{b}!!!")
_OWNER_TEXTS = ("on my way", "ok, talk later", "thanks!", "I'll call you in 5", "yes", "👍")
_MEDIA = ("voice", "image", "video", "document", "sticker")
_KINDS = ("reaction", "system", "protocol")


@dataclass
class ChatPlan:
    id: str
    is_group: bool
    name: str  # contact name or group title
    members: list[tuple[str, str]] = field(default_factory=list)  # (id, name)
    rate: float = 1.0  # conversations per day


@dataclass
class Traffic:
    """Everything a fuzz run feeds in; `messages` and `crashes` are sorted by time. A lazy
    run (`run_fuzz`) leaves `messages` empty and takes each day from `source`."""

    seed: int
    start: float
    days: float
    chats: list[ChatPlan]
    messages: list[tuple[float, Message]]
    crashes: list[tuple[float, float]]  # (t, downtime)
    persona: Persona
    source: TrafficSource | None = None


class TrafficSource:
    """The traffic of a run, made one day at a time (`day(d)`), so a long run holds one day
    of it, not all of it. Each chat draws from its own generator (seeded by the run's seed and
    the chat's number), the owner's commands and the crashes from theirs: day d is the same
    whether the days before it were made or not, and the whole run is a function of the seed.
    Days must be asked for in order (each chat's generator moves on)."""

    def __init__(
        self,
        chats: int,
        days: float,
        seed: int,
        start: float = DEFAULT_START,
        *,
        crashes_per_day: float = 2.0,
    ) -> None:
        rng = random.Random(seed)
        self.seed, self.start, self.days = seed, start, days
        self.persona = Persona(owner_id=OWNER_ID, owner_name=OWNER_NAME, assistant_name="Dana")
        self.plans = [_plan(rng, i) for i in range(chats)]
        self.end = start + days * DAY
        self._streams = [_ChatStream(random.Random(f"{seed}:chat:{i}")) for i in range(chats)]
        self._commands = _ChatStream(random.Random(f"{seed}:commands"))
        crash_rng = random.Random(f"{seed}:crashes")
        n_crashes = int(days * crashes_per_day + crash_rng.random())
        self.crashes = sorted(
            (start + crash_rng.random() * days * DAY, crash_rng.choice((0.0, 5.0, 30.0, 90.0)))
            for _ in range(n_crashes)
        )
        self._next_day = 0

    @property
    def day_count(self) -> int:
        return math.ceil(self.days)

    def day_start(self, d: int) -> float:
        return self.start + d * DAY

    def day(self, d: int) -> list[tuple[float, Message]]:
        """Day d's messages (conversations that start that day; a burst or an owner's answer
        may run past midnight), sorted by time; every message is at or after the day's start."""
        if d != self._next_day:
            raise ValueError(f"day {d} asked for before day {self._next_day}")
        self._next_day += 1
        day = self.day_start(d)
        out: list[tuple[float, Message]] = []
        for plan, stream in zip(self.plans, self._streams, strict=True):
            out.extend(_chat_day(stream, plan, day, self.end))
        out.extend(_owner_commands_day(self._commands, self.plans, day, self.end))
        out.sort(key=lambda item: item[0])
        return out

    def traffic(self, messages: list[tuple[float, Message]]) -> Traffic:
        return Traffic(
            self.seed,
            self.start,
            self.days,
            self.plans,
            messages,
            list(self.crashes),
            self.persona,
            self,
        )


@dataclass
class _ChatStream:
    rng: random.Random
    n: int = 0  # messages numbered so far (their ids)


def generate_traffic(
    chats: int,
    days: float,
    seed: int,
    start: float = DEFAULT_START,
    *,
    crashes_per_day: float = 2.0,
) -> Traffic:
    """The whole run's traffic at once (for benchmarks and tests): `TrafficSource`'s days,
    concatenated."""
    source = TrafficSource(chats, days, seed, start, crashes_per_day=crashes_per_day)
    messages: list[tuple[float, Message]] = []
    for d in range(source.day_count):
        messages.extend(source.day(d))
    messages.sort(key=lambda item: item[0])
    return source.traffic(messages)


def _plan(rng: random.Random, i: int) -> ChatPlan:
    if rng.random() < 0.25:
        size = rng.choice((3, 4, 6, 10, 25))
        members = [(f"m{i:04d}x{j}@s.whatsapp.net", rng.choice(_NAMES)) for j in range(size)]
        return ChatPlan(f"group{i:04d}@g.us", True, f"Group {i}", members, rng.uniform(0.5, 8.0))
    return ChatPlan(
        f"contact{i:04d}@s.whatsapp.net",
        False,
        rng.choice(_NAMES),
        [],
        rng.choice((0.1, 0.3, 1.0, 2.0, 4.0)),
    )


_HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 4, 8, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 9, 7, 4, 2)
_HOURS = range(24)


def _waking_time(rng: random.Random, day_start: float) -> float:
    hour = rng.choices(_HOURS, weights=_HOUR_WEIGHTS)[0]
    return day_start + hour * 3600.0 + rng.random() * 3600.0


def _text(rng: random.Random) -> str:
    roll = rng.random()
    body = rng.choice(_BODIES)
    if roll < 0.05:
        return rng.choice(_URGENT).format(b=body)
    if roll < 0.08:
        return rng.choice(_SHOUTED).format(b=body.upper())
    if roll < 0.3:
        return f"{rng.choice(_OPENERS)}! {body}?"
    return body


def _chat_day(
    stream: _ChatStream, plan: ChatPlan, day: float, end: float
) -> list[tuple[float, Message]]:
    """One chat's conversations starting on the day that begins at `day`."""
    rng = stream.rng
    out: list[tuple[float, Message]] = []
    prefix = plan.id.split("@")[0]
    conversations = int(plan.rate) + (rng.random() < plan.rate - int(plan.rate))
    for _ in range(conversations):
        t = _waking_time(rng, day)
        for _ in range(rng.choices((1, 2, 3, 5, 8), weights=(40, 25, 15, 12, 8))[0]):
            if t >= end:
                break
            stream.n += 1
            m = _message(rng, plan, f"{prefix}-{stream.n}", t)
            out.append((t, m))
            if rng.random() < 0.02:  # WhatsApp redelivers the same message id
                out.append((t + rng.choice((0.5, 30.0, 600.0)), m))
            t += rng.choice((1.0, 5.0, 20.0, 45.0, 90.0, 200.0))
        if rng.random() < 0.3:  # the owner answers himself, sometimes mid-reply
            t_owner = t + rng.choice((10.0, 60.0, 125.0, 130.0, 600.0, 3600.0))
            if t_owner < end:
                stream.n += 1
                out.append((t_owner, _owner_message(rng, plan, f"{prefix}-o{stream.n}")))
    return out


def _message(rng: random.Random, plan: ChatPlan, msg_id: str, t: float) -> Message:
    roll = rng.random()
    text = _text(rng)
    media, kind = "", "message"
    if roll < 0.06:
        media, text = rng.choice(_MEDIA), ""
    elif roll < 0.09:
        media = rng.choice(_MEDIA)
    elif roll < 0.11:
        kind = rng.choice(_KINDS)
    elif roll < 0.115:
        text = ""
    if not plan.is_group:
        return Message(
            chat=plan.id,
            sender=plan.id,
            id=msg_id,
            text=text,
            sender_name=plan.name,
            media=media,
            kind=kind,
        )
    sender, name = rng.choice(plan.members)
    mentions: tuple[str, ...] = ()
    quoted_id = quoted_sender = ""
    address = rng.random()
    if address < 0.12:
        mentions, text = (OWNER_ID,), f"@{OWNER_NAME} {text}"
    elif address < 0.16:
        quoted_id = QUOTE_LAST_REPLY
    elif address < 0.19:
        text = f"{text} @{OWNER_NAME.lower()}"
    return Message(
        chat=plan.id,
        sender=sender,
        id=msg_id,
        text=text,
        is_group=True,
        sender_name=name,
        group_title=plan.name,
        participants=len(plan.members) + 1,
        mentions=mentions,
        quoted_id=quoted_id,
        quoted_sender=quoted_sender,
        media=media,
        kind=kind,
    )


def _owner_message(rng: random.Random, plan: ChatPlan, msg_id: str) -> Message:
    return Message(
        chat=plan.id,
        sender=OWNER_ID,
        id=msg_id,
        text=rng.choice(_OWNER_TEXTS),
        from_me=True,
        is_group=plan.is_group,
        group_title=plan.name if plan.is_group else "",
        participants=len(plan.members) + 1 if plan.is_group else 0,
    )


def _owner_commands_day(
    stream: _ChatStream, plans: list[ChatPlan], day: float, end: float
) -> list[tuple[float, Message]]:
    """The owner's commands on the day that begins at `day`: status, sometimes a pause and
    its resume, sometimes a mute (and its unmute)."""
    rng = stream.rng
    out: list[tuple[float, Message]] = []

    def cmd(t: float, text: str) -> None:
        stream.n += 1
        message = Message(
            chat=OWNER_ID, sender=OWNER_ID, id=f"cmd-{stream.n}", text=text, from_me=True
        )
        out.append((t, message))

    cmd(_waking_time(rng, day), "status")
    if rng.random() < 0.3:
        t = _waking_time(rng, day)
        cmd(t, "pause")
        cmd(t + rng.choice((600.0, 3600.0, 7200.0)), "resume")
    if plans and rng.random() < 0.3:
        plan = rng.choice(plans)
        t = _waking_time(rng, day)
        cmd(t, f"mute {plan.id} {rng.choice(('30m', '2h', '1d'))}")
        if rng.random() < 0.5:
            cmd(t + 1800.0, f"unmute {plan.id}")
    return [(t, m) for t, m in out if t < end]


def build_simulation(
    traffic: Traffic,
    policy: Policy | None = None,
    *,
    faults: bool = True,
    observer: Observer | None = None,
    keep_timeline: bool = False,
    **engine: Any,
) -> Simulation:
    """A `Simulation` loaded with the traffic; with `faults`, the model and WhatsApp fail at the
    module's seeded rates. `engine`: more `Simulation` options (`store`, `crash_rate`,
    `on_record`)."""
    seed = traffic.seed
    model = FakeModel(failure_rates=MODEL_FAILURE_RATES if faults else {}, seed=seed)
    whatsapp = FakeWhatsApp(
        fail_rate=SEND_FAIL_RATE if faults else 0.0,
        drop_echo_rate=DROP_ECHO_RATE if faults else 0.0,
        seed=seed,
    )
    sim = Simulation(
        policy=policy or Policy(),
        persona=traffic.persona,
        seed=seed,
        start=traffic.start,
        model=model,
        whatsapp=whatsapp,
        observer=observer,
        keep_timeline=keep_timeline,
        **engine,
    )
    for t, m in traffic.messages:
        sim.add_message(t, m)
    if faults:
        for t, down in traffic.crashes:
            sim.add_crash(t, down)
    return sim


@dataclass
class FuzzReport:
    seed: int
    chats: int
    days: float
    messages: int
    sent: int
    decisions: int
    crashes: int
    steps: int
    seconds: float  # wall-clock time of the run
    violations: list  # list[sim.invariants.Violation]
    commits: int = 0  # steps committed to the store (0 without one)

    @property
    def ok(self) -> bool:
        return not self.violations


def run_fuzz(
    chats: int,
    days: float,
    seed: int,
    policy: Policy | None = None,
    *,
    store: str | Path | None = None,
    crash_rate: float = 0.0,
    on_decisions: Callable[[list[Decision]], None] | None = None,
) -> FuzzReport:
    """`store`: a new SQLite file to commit every step to and restart from.

    The run goes one simulated day at a time: that day's traffic is made (`TrafficSource`),
    played up to the next midnight, and what the day left in the result (decisions, sends,
    generations, the fake WhatsApp's reads and typing) is counted and dropped. Memory is one
    day of traffic and results plus the state the core and the checker keep (bounded per
    chat), not the whole run; the time per message does not grow with the days.
    `on_decisions(decisions)` sees each day's decisions before they are dropped."""
    from wapa.sim.invariants import InvariantChecker

    began = time.perf_counter()
    policy = policy or Policy()
    source = TrafficSource(chats, days, seed)
    checker = InvariantChecker(policy, source.persona)
    tally = _Tally()
    with build_simulation(
        source.traffic([]), policy, observer=checker, store=store, crash_rate=crash_rate
    ) as sim:
        for d in range(source.day_count):
            for t, m in source.day(d):
                sim.add_message(t, m)
                tally.messages += 1
            # up to just before the next day's first possible message (at its midnight)
            result = sim.run(until=source.day_start(d + 1) - _WINDOW_GAP)
            tally.take(sim, on_decisions)
        result = sim.run()
        tally.take(sim, on_decisions)
        commits = sim.store.commits if sim.store else 0
    violations = checker.finish(result.end + checker.horizon + 1.0)
    if store is not None:
        violations.extend(outbox_disagreements(result, tally.unknown))
    return FuzzReport(
        seed=seed,
        chats=chats,
        days=days,
        messages=tally.messages,
        sent=tally.sent,
        decisions=tally.decisions,
        crashes=len(result.crashes),
        steps=result.steps,
        seconds=time.perf_counter() - began,
        violations=violations,
        commits=commits,
    )


_WINDOW_GAP = 1e-3  # seconds: a window ends this long before the next day's midnight


@dataclass
class _Tally:
    """What `run_fuzz` keeps of each day's result once it is dropped."""

    messages: int = 0
    sent: int = 0
    decisions: int = 0
    unknown: list[Decision] = field(default_factory=list)  # send_unknown decisions

    def take(self, sim: Simulation, on_decisions: Callable[[list[Decision]], None] | None) -> None:
        res = sim.result
        self.sent += len(res.sent)
        self.decisions += len(res.decisions)
        self.unknown.extend(d for d in res.decisions if d.code == Reason.SEND_UNKNOWN)
        if on_decisions is not None:
            on_decisions(res.decisions)
        res.sent.clear()
        res.decisions.clear()
        res.generations.clear()
        res.send_failures.clear()
        res.timeline.clear()
        res.echo_ids.clear()
        wa = sim.whatsapp
        for kept in (wa.reads, wa.typing, wa.notices, wa.refused, wa.backlog, wa.never_arrived):
            kept.clear()


def outbox_disagreements(
    result: SimResult, decisions: Sequence[Decision] | None = None
) -> list[Any]:
    """Restarts where the store's open outbox rows and the core's `send_unknown` reports differ:
    each is a send whose outcome one side knows and the other does not. `decisions`: the run's
    (default: `result.decisions`)."""
    from wapa.sim.invariants import Violation

    unknown: dict[float, set[str]] = defaultdict(set)
    for d in result.decisions if decisions is None else decisions:
        if d.code == Reason.SEND_UNKNOWN:
            unknown[d.t].add(d.request_id)
    outbox: dict[float, set[str]] = defaultdict(set)
    for t, request_id in result.unconfirmed:
        outbox[t].add(request_id)
    out = []
    for t in sorted(set(unknown) | set(outbox)):
        for rid in sorted(outbox[t] - unknown[t]):
            out.append(
                Violation(
                    t,
                    "",
                    "store_outbox",
                    f"send {rid} open in the store's outbox but not reported unknown",
                )
            )
        for rid in sorted(unknown[t] - outbox[t]):
            out.append(
                Violation(
                    t,
                    "",
                    "store_outbox",
                    f"send {rid} reported unknown but settled in the store's outbox",
                )
            )
    return out


# ---------------------------------------------------------------- many seeds: ranges, shards, jobs


class SeedError(ValueError):
    """A bad `--seeds` or `--shard` text."""


def parse_seeds(text: str) -> list[int]:
    """`1-1000`, `7`, `1,5,10-20` -> the seeds in the order given, without repeats."""
    seeds: list[int] = []
    seen: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        low, dash, high = part.partition("-")
        try:
            a = int(low)
            b = int(high) if dash else a
        except ValueError:
            raise SeedError(f"expected seeds like 1-1000 or 1,5,7-9, got {text!r}") from None
        if a < 0 or b < a:
            raise SeedError(f"bad seed range {part!r}: expected LOW-HIGH with 0 <= LOW <= HIGH")
        if b - a >= 10_000_000:
            raise SeedError(f"seed range {part!r} is too large")
        for s in range(a, b + 1):
            if s not in seen:
                seen.add(s)
                seeds.append(s)
    return seeds


def parse_shard(text: str) -> tuple[int, int]:
    """`K/M` (1 <= K <= M) -> (K, M)."""
    k, slash, m = text.partition("/")
    try:
        shard, shards = int(k), int(m)
    except ValueError:
        raise SeedError(f"expected --shard K/M (e.g. 2/4), got {text!r}") from None
    if not slash or not 1 <= shard <= shards:
        raise SeedError(f"--shard {text}: expected K/M with 1 <= K <= M")
    return shard, shards


def shard_seeds(seeds: list[int], shard: int, shards: int) -> list[int]:
    """Shard K of M: every M-th seed from the K-th (round robin, so shards are of about equal
    size and equal cost). The M shards together are exactly `seeds`, each once."""
    return seeds[shard - 1 :: shards]


@dataclass(frozen=True)
class FuzzJob:
    """One seed's run, as handed to a worker process (everything picklable)."""

    chats: int
    days: float
    seed: int
    policy: Policy | None = None
    crash_rate: float = 0.0
    store_dir: str | None = None  # with a store: a folder for this seed's SQLite file


def _run_job(job: FuzzJob) -> FuzzReport:
    store = None if job.store_dir is None else Path(job.store_dir) / f"fuzz-seed-{job.seed}.db"
    try:
        return run_fuzz(
            job.chats, job.days, job.seed, job.policy, store=store, crash_rate=job.crash_rate
        )
    finally:
        if store is not None:
            for f in store.parent.glob(store.name + "*"):
                f.unlink(missing_ok=True)


def default_jobs() -> int:
    """All the cores this process may use."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def run_seeds(
    jobs_list: list[FuzzJob],
    jobs: int = 1,
    on_report: Any = None,
) -> list[FuzzReport]:
    """Run every job, across `jobs` processes (1: in this process). Reports come back in the
    order of `jobs_list` whatever the number of processes; each run depends only on its own
    job, so the results are the same for any `jobs`. `on_report(report)` is called as each one
    arrives (in order)."""
    reports: list[FuzzReport] = []
    if jobs <= 1 or len(jobs_list) <= 1:
        for job in jobs_list:
            reports.append(_run_job(job))
            if on_report:
                on_report(reports[-1])
        return reports
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # forkserver: workers start from a clean process with the simulator imported once, not
    # from a fork of a possibly threaded caller (pytest, an IDE).
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload(["wapa.sim.fuzz", "wapa.sim.invariants"])
    with ProcessPoolExecutor(max_workers=min(jobs, len(jobs_list)), mp_context=ctx) as pool:
        for report in pool.map(_run_job, jobs_list):
            reports.append(report)
            if on_report:
                on_report(report)
    return reports
