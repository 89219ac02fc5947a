"""Crash-restart against a real SQLite file, at each phase of the reply pipeline, and at random
points over many seeds.

A crash is simulated the way a `kill -9` leaves the disk: the database and its WAL are copied
as they are after the last commit, the dead process's connection is let go, and a new store
opens the copy. Results addressed to the dead process (model answers, send confirmations)
are lost; WhatsApp messages (contacts, the owner, echoes of our sends) are delivered to the
new process, including the one whose step was not committed yet. One test does a real
SIGKILL of a child process.
"""

from __future__ import annotations

import heapq
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from wapa.adapters.store import Store
from wapa.core import (
    Assistant,
    Decision,
    Effect,
    Event,
    Generate,
    Generated,
    Message,
    Persona,
    Policy,
    Reason,
    Send,
    SendConfirmed,
)
from wapa.core.driver import Batch, Driver, NullWorld

T0 = 1_700_000_000.0
OWNER = "491700000000@s.whatsapp.net"
ALICE = "491711111111@s.whatsapp.net"
REPLY = "Thanks! I'll pass this on and he will get back to you."


class Crashed(Exception):
    pass


@dataclass(frozen=True)
class Step:
    index: int
    t: float
    kind: str  # "inbound" | "result" | "timer"
    event: Event | None
    effects: tuple[Effect, ...]


CrashPlan = Callable[[Step], str | None]  # -> "before_commit" | "after_commit" | None


class World(NullWorld):
    """Drives a real Assistant + Store through the shared `Driver` against a fake WhatsApp and
    a fake model, on a virtual clock, and can kill and restart the assistant process between
    any two instants. It is the driver's world too: committed effects reach it through
    `Driver.committed` (what it does not model it inherits from `NullWorld`: nothing)."""

    def __init__(
        self,
        root: Path,
        *,
        key: bytes | None = None,
        seed: int = 7,
        policy: Policy | None = None,
        llm_latency: float = 5.0,
    ) -> None:
        self.root = root
        self.key = key
        self.seed = seed
        self.policy = policy or Policy()
        self.persona = Persona(owner_id=OWNER, owner_name="Dan")
        self.llm_latency = llm_latency
        self.now = T0
        self.queue: list[tuple[float, int, str, Event]] = []
        self._seq = 0
        self.steps = 0
        self.gen = 0
        self.sent: list[tuple[float, Send]] = []
        self.intents: dict[str, tuple[float, str]] = {}  # committed Send: rid -> (t, chat)
        self.unknown: set[str] = set()
        self.decisions: list[Decision] = []
        self.generates = 0
        self.plan: CrashPlan = lambda step: None
        self.store: Store
        self.d: Driver

    @property
    def a(self) -> Assistant:
        return self.d.assistant

    async def start(self) -> World:
        self.store = await Store.open(self._db(0), self.key, clock=lambda: self.now)
        self.d = Driver(Assistant(self.policy, self.persona, self.seed), self)
        return self

    def _db(self, gen: int) -> Path:
        return self.root / f"proc{gen}" / "wapa.db"

    def push(self, t: float, kind: str, event: Event) -> None:
        self._seq += 1
        heapq.heappush(self.queue, (t, self._seq, kind, event))

    def contact(self, t: float, chat: str, msg_id: str, text: str) -> None:
        self.push(t, "inbound", Message(chat, chat, msg_id, text, sender_name="Alice"))

    def owner(self, t: float, chat: str, msg_id: str, text: str) -> None:
        self.push(t, "inbound", Message(chat, OWNER, msg_id, text, from_me=True))

    async def run(self, until: float = float("inf")) -> None:
        while True:
            tq = self.queue[0][0] if self.queue else float("inf")
            deadline = self.a.next_deadline()
            td = float("inf") if deadline is None else deadline
            t = min(tq, td)
            if t == float("inf") or t > until:
                if until != float("inf"):
                    self.now = max(self.now, until)
                return
            self.now = max(self.now, t)
            event: Event | None
            if tq <= td:
                _, _, kind, event = heapq.heappop(self.queue)
                effects = self.d.feed(event, self.now)
            else:
                kind, event = "timer", None
                effects = self.d.fire_due(self.now)
            self.steps += 1
            mode = self.plan(Step(self.steps, self.now, kind, event, effects))
            if mode == "before_commit":
                if kind == "inbound" and event is not None:
                    self.push(self.now, "inbound", event)  # WhatsApp redelivers it
                raise Crashed
            batch = await self._commit()
            if mode == "after_commit":
                raise Crashed
            self.d.committed(batch)

    async def run_with_crashes(self, downtime: Callable[[], float]) -> int:
        crashes = 0
        while True:
            try:
                await self.run()
                return crashes
            except Crashed:
                crashes += 1
                await self.crash_and_restart(self.now + downtime())

    async def _commit(self) -> Batch:
        batch = self.d.take_batch()
        assert batch is not None
        await self.store.save(batch)
        for e in batch.effects():  # on disk now, whether or not the effects happen
            if isinstance(e, Send):
                assert e.request_id not in self.intents, f"request id {e.request_id} reused"
                self.intents[e.request_id] = (self.now, e.chat)
            elif isinstance(e, Decision):
                self.decisions.append(e)
        return batch

    # the driver's World: committed effects, carried out on the virtual clock

    def start_generation(self, effect: Generate) -> None:
        self.generates += 1
        self.push(self.now + self.llm_latency, "result", Generated(effect.request_id, REPLY))

    def start_send(self, effect: Send) -> None:
        assert all(s.request_id != effect.request_id for _, s in self.sent), "sent twice"
        self.sent.append((self.now, effect))
        wa_id = "wa-" + effect.request_id
        self.push(self.now + 1, "result", SendConfirmed(effect.request_id, wa_id))
        echo = Message(effect.chat, OWNER, wa_id, effect.text, from_me=True, own_device=True)
        self.push(self.now + 2, "inbound", echo)

    async def crash_and_restart(self, at: float) -> list[Effect]:
        """The process dies now (files frozen as they are), and a new one starts at `at`."""
        self.gen += 1
        new = self._db(self.gen)
        new.parent.mkdir(parents=True)
        for suffix in ("", "-wal"):
            src = Path(f"{self.store.path}{suffix}")
            if src.exists():
                shutil.copyfile(src, f"{new}{suffix}")
        await self.store.close()  # the dead process's files are no longer ours to touch
        self.queue = [q for q in self.queue if q[2] == "inbound"]  # results went to the dead
        heapq.heapify(self.queue)
        self.now = max(self.now, at)
        self.store = await Store.open(new, self.key, clock=lambda: self.now)
        open_before = {e.request_id for e in await self.store.unconfirmed_sends()}
        loaded = await self.store.load(self.policy, self.persona)
        self.d = Driver(loaded or Assistant(self.policy, self.persona, self.seed), self)
        effects = self.d.recover(self.now)
        reported = {
            e.request_id
            for e in effects
            if isinstance(e, Decision) and e.code == Reason.SEND_UNKNOWN
        }
        assert reported == open_before, "the store's open outbox and recover() disagree"
        self.unknown |= reported
        batch = await self._commit()
        assert await self.store.unconfirmed_sends() == []
        self.d.committed(batch)
        return list(effects)

    def codes(self, chat: str = ALICE) -> list[str]:
        return [d.code for d in self.decisions if d.chat == chat]


def crash_on(predicate: Callable[[Step], bool], mode: str = "after_commit") -> CrashPlan:
    fired = [False]

    def plan(step: Step) -> str | None:
        if not fired[0] and predicate(step):
            fired[0] = True
            return mode
        return None

    return plan


def has(effect_type: type) -> Callable[[Step], bool]:
    return lambda step: any(isinstance(e, effect_type) for e in step.effects)


@pytest.fixture
async def world(tmp_path: Path):
    w = await World(tmp_path, key=b"k" * 32).start()
    yield w
    await w.store.close()


# ---------------------------------------------------------------- each phase


async def test_crash_while_waiting_resumes_the_deadline(world: World) -> None:
    world.contact(T0, ALICE, "m1", "are you free tomorrow?")
    world.plan = crash_on(lambda s: s.kind == "inbound", "after_commit")
    with pytest.raises(Crashed):
        await world.run()
    effects = await world.crash_and_restart(T0 + 60)  # back before the deadline
    assert [d.code for d in effects if isinstance(d, Decision)] == [Reason.RECOVERED]
    assert world.a.next_deadline() == T0 + world.policy.response_delay
    await world.run()
    assert [s.chat for _, s in world.sent] == [ALICE]
    assert world.sent[0][0] >= T0 + world.policy.response_delay


async def test_crash_before_commit_loses_nothing_as_whatsapp_redelivers(world: World) -> None:
    world.contact(T0, ALICE, "m1", "hello?")
    world.plan = crash_on(lambda s: s.kind == "inbound", "before_commit")
    with pytest.raises(Crashed):
        await world.run()
    await world.crash_and_restart(T0 + 30)
    assert await world.store.load() is None or not world.a.chats  # nothing was saved
    await world.run()
    assert [s.chat for _, s in world.sent] == [ALICE]


async def test_deadline_missed_while_down_fires_once(world: World) -> None:
    world.contact(T0, ALICE, "m1", "let me know when you can")
    world.plan = crash_on(lambda s: s.kind == "inbound")
    with pytest.raises(Crashed):
        await world.run()
    await world.crash_and_restart(T0 + 900)  # 780 s late, under stale_after (1 h)
    assert world.a.next_deadline() == T0 + world.policy.response_delay
    await world.run()
    assert world.generates == 1
    assert len(world.sent) == 1
    assert world.codes().count(Reason.GENERATING) == 1


async def test_deadline_older_than_stale_after_is_dropped_with_a_trace(world: World) -> None:
    world.contact(T0, ALICE, "m1", "hi")
    world.plan = crash_on(lambda s: s.kind == "inbound")
    with pytest.raises(Crashed):
        await world.run()
    effects = await world.crash_and_restart(T0 + 120 + world.policy.stale_after + 1)
    assert [d.code for d in effects if isinstance(d, Decision)] == [Reason.STALE]
    assert world.a.next_deadline() is None
    await world.run()
    assert world.sent == [] and world.generates == 0
    assert Reason.STALE in [d.code for d in await world.store.traces(ALICE)]


async def test_crash_while_generating_asks_the_model_again(world: World) -> None:
    world.contact(T0, ALICE, "m1", "what's the address?")
    world.plan = crash_on(has(Generate))  # the model's answer goes to the dead process
    with pytest.raises(Crashed):
        await world.run()
    assert world.a.chats[ALICE].phase == "generating"
    await world.crash_and_restart(world.now + 20)
    await world.run()
    assert world.generates == 1  # the first Generate was never carried out
    assert len(world.sent) == 1
    assert world.codes().count(Reason.RECOVERED) == 1


async def test_crash_while_typing_sends_once_at_the_typing_deadline(world: World) -> None:
    world.contact(T0, ALICE, "m1", "ok, see you")
    world.plan = crash_on(lambda s: isinstance(s.event, Generated))
    with pytest.raises(Crashed):
        await world.run()
    assert world.a.chats[ALICE].phase == "typing"
    effects = await world.crash_and_restart(world.now + 1)
    assert any(getattr(e, "on", None) is True for e in effects)  # typing shown again
    await world.run()
    assert [s.text for _, s in world.sent] == [REPLY]
    assert world.generates == 1


async def test_send_committed_but_not_carried_out_is_reported_never_repeated(
    world: World,
) -> None:
    world.contact(T0, ALICE, "m1", "ping")
    world.plan = crash_on(has(Send), "after_commit")
    with pytest.raises(Crashed):
        await world.run()
    (rid,) = world.intents
    assert [e.request_id for e in await world.store.unconfirmed_sends()] == [rid]
    effects = await world.crash_and_restart(world.now + 5)
    assert [d.code for d in effects if isinstance(d, Decision)] == [Reason.SEND_UNKNOWN]
    assert world.unknown == {rid}
    assert [(e.request_id, e.outcome) for e in await world.store.outbox()] == [(rid, "unknown")]
    world.contact(world.now + 600, ALICE, "m2", "hello??")  # within the cooldown
    await world.run()
    assert world.sent == []


async def test_send_carried_out_but_unconfirmed_is_reported_and_its_echo_recognised(
    world: World,
) -> None:
    world.contact(T0, ALICE, "m1", "ping")
    world.plan = crash_on(lambda s: isinstance(s.event, SendConfirmed), "before_commit")
    with pytest.raises(Crashed):
        await world.run()
    await world.crash_and_restart(world.now + 3)
    assert len(world.unknown) == 1
    world.contact(world.now + 60, ALICE, "m2", "thanks")
    await world.run()
    assert len(world.sent) == 1
    codes = world.codes()
    assert Reason.ECHO in codes and Reason.OWNER_TAKEOVER not in codes


async def test_cancelled_deadline_stays_cancelled_after_restart(world: World) -> None:
    world.contact(T0, ALICE, "m1", "are you there?")
    world.owner(T0 + 30, ALICE, "o1", "yes, here, one sec")
    world.plan = crash_on(lambda s: s.event is not None and getattr(s.event, "from_me", False))
    with pytest.raises(Crashed):
        await world.run()
    await world.crash_and_restart(T0 + 600)  # well past the cancelled deadline
    assert world.a.next_deadline() is None
    await world.run()
    assert world.sent == [] and world.generates == 0
    assert Reason.OWNER_TAKEOVER in world.codes()


async def test_a_real_sigkill_after_commit_keeps_the_intent(tmp_path: Path) -> None:
    db = tmp_path / "wapa.db"
    child = textwrap.dedent(
        f"""
        import asyncio, sys
        from wapa.adapters.store import Store
        from wapa.core import Assistant, Generated, Message, Persona, Policy
        from tests.support.store import driver, step
        async def main():
            store = await Store.open({str(db)!r}, b"k" * 32)
            d = driver(a := Assistant(Policy(), Persona(owner_id={OWNER!r}), 3))
            t = {T0!r}
            await step(store, d, Message({ALICE!r}, {ALICE!r}, "m1", "hi"), t)
            await step(store, d, None, t + 120)
            rid = a.chats[{ALICE!r}].request_id
            await step(store, d, Generated(rid, "On my way to tell him."), t + 125)
            await step(store, d, None, t + 200)
            print("committed", flush=True)
            sys.stdin.read()  # wait here until killed
        asyncio.run(main())
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", child],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "committed"
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(timeout=30) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
    store = await Store.open(db, b"k" * 32)
    try:
        assert [e.text for e in await store.unconfirmed_sends()] == ["On my way to tell him."]
        a = await store.load(Policy(), Persona(owner_id=OWNER))
        assert a is not None
        effects = a.recover(T0 + 300)
        assert [d.code for d in effects if isinstance(d, Decision)] == [Reason.SEND_UNKNOWN]
        assert not any(isinstance(e, Send) for e in effects + a.on_timer(T0 + 400))
    finally:
        await store.close()


# ---------------------------------------------------------------- random crash points


def _script(world: World, rng: random.Random, chats: int) -> list[tuple[str, list[float]]]:
    """Each chat gets one or two bursts of 1-3 messages; bursts are > cooldown apart, so each
    burst is exactly one reply obligation."""
    plan = []
    for c in range(chats):
        chat = f"4915{c:08d}@s.whatsapp.net"
        starts = [T0 + rng.uniform(0, 3600)]
        if rng.random() < 0.5:
            starts.append(starts[0] + world.policy.cooldown + rng.uniform(3600, 7200))
        for b, start in enumerate(starts):
            t = start
            for i in range(rng.randint(1, 3)):
                world.contact(t, chat, f"{chat}-{b}-{i}", rng.choice(["hi", "you there?", "ok"]))
                t += rng.uniform(1, 50)
        plan.append((chat, starts))
    return plan


@pytest.mark.parametrize("seed", range(40))
async def test_random_crash_points_never_double_send_or_lose_a_reply(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    world = await World(tmp_path, key=b"s" * 32 if seed % 2 else None, seed=seed).start()
    try:
        plan = _script(world, rng, chats=rng.randint(2, 5))
        budget = [rng.randint(1, 4)]

        def crash(step: Step) -> str | None:
            if budget[0] and rng.random() < 0.12:
                budget[0] -= 1
                return rng.choice(["before_commit", "after_commit"])
            return None

        world.plan = crash
        crashes = await world.run_with_crashes(lambda: rng.uniform(1, 900))
        sent_ids = [s.request_id for _, s in world.sent]
        assert len(sent_ids) == len(set(sent_ids)), f"seed {seed}: a request sent twice"
        for chat, starts in plan:
            bounds = [*starts, float("inf")]
            for lo, hi in zip(bounds, bounds[1:], strict=False):
                in_window = {r for r, (t, c) in world.intents.items() if c == chat and lo <= t < hi}
                done = {s.request_id for t, s in world.sent if s.chat == chat and lo <= t < hi}
                assert len(done) <= 1, f"seed {seed}: {chat} answered twice after {lo - T0:.0f}s"
                assert done or in_window & world.unknown, (
                    f"seed {seed} ({crashes} crashes): obligation in {chat} at {lo - T0:.0f}s "
                    f"neither answered nor reported: {world.codes(chat)}"
                )
    finally:
        await world.store.close()
