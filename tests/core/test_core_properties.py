"""Properties over random traffic: the invariants of sim/invariants.py hold for the real core,
the checker catches broken cores, same seed gives the same effects, and export/restore at any
point changes nothing that follows.

A small world drives the core on a virtual clock: two direct chats and a group, the owner
writing, model answers and failures in any order, send confirmations, failures and echoes
(before or after the confirmation), redelivered ids, pause/resume, and crashes (export, JSON,
restore, recover).

Hypothesis runs derandomized: CI sees the same examples every time, so a failure is
reproducible and the suite's duration is stable. Open-ended random exploration is the
simulator's fuzzer's job.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from wapa.core import (
    Assistant,
    Command,
    Effect,
    Event,
    Generate,
    Generated,
    GenerationFailed,
    Message,
    Persona,
    Policy,
    Send,
    SendConfirmed,
    SendFailed,
)
from wapa.core.machine import Chat
from wapa.sim.invariants import InvariantChecker, Violation

from tests.support.compiled import PATCHES_THE_CORE
from tests.support.core_run import Run

T0 = 1_711_836_000.0  # 2024-03-30 22:00 UTC: the Berlin DST night is inside the runs
OWNER = "owner@s.whatsapp.net"
PERSONA = Persona(owner_id=OWNER, owner_name="Gilad", assistant_name="Dana")
CHATS = ("alice@s.whatsapp.net", "bob@s.whatsapp.net", "family@g.us")
MEMBERS = ("carol@s.whatsapp.net", "dave@s.whatsapp.net")
TEXTS = (
    "hello",
    "are you there?",
    "urgent: call me",
    "URGENT!!!",
    "I know the network is slow",
    "",
    "ok",
    "WHERE ARE YOU GILAD",
    "@Gilad dinner?",
    "x" * 3000,
    "help me asap",
    "fine \ud800",
)
REPLIES = (
    "Gilad is busy, I'll pass it on.",
    "As an AI, I can't. He will call back later.",
    "[placeholder]",
    "",
    "I promise he'll be there.",
    "Ok!",
)
AUTO_REPLIES = (0, 5, 0, 1, 0, 5, 0, 2)  # mostly good answers, one refused by hygiene
WAITS = (0.5, 3.0, 14.0, 30.0, 119.0, 121.0, 400.0, 601.0, 3600.0, 18000.0, 18030.0, 86400.0)

POLICIES = {
    "small_caps": Policy.from_mapping(
        {"caps": {"per_chat_per_day": 3, "per_hour": 2, "per_day": 5}}
    ),
    "quiet_holding": Policy.from_mapping(
        {
            "quiet_hours": {"start": "22:00", "end": "07:00", "tz": "Europe/Berlin"},
            "holding_message": "Gilad will get back to you soon.",
            "cooldown": "1h",
        }
    ),
    "fast": Policy.from_mapping(
        {
            "response_delay": 20,
            "max_wait": 60,
            "cooldown": "10m",
            "urgent_delay": 5,
            "generation_timeout": 60,
            "caps": {"per_hour": 4},
        }
    ),
}

# ---------------------------------------------------------------- actions

wait = st.tuples(st.just("wait"), st.sampled_from(WAITS))
contact = st.tuples(
    st.just("msg"), st.integers(0, 2), st.integers(0, len(TEXTS) - 1), st.integers(0, 3)
)
owner = st.tuples(st.just("owner"), st.integers(0, 2), st.integers(0, 2))
model = st.tuples(st.just("model"), st.integers(0, 3), st.integers(-2, len(REPLIES) - 1))
send_result = st.tuples(st.just("send"), st.integers(0, 3), st.integers(0, 4))
redeliver = st.tuples(st.just("redeliver"), st.integers(0, 50))
crash = st.tuples(st.just("crash"), st.sampled_from((0.0, 30.0, 7200.0)))
command = st.tuples(st.just("cmd"), st.sampled_from(("pause", "resume", "resume", "status")))
_KINDS = {
    "msg": contact,
    "wait": wait,
    "model": model,
    "send": send_result,
    "owner": owner,
    "redeliver": redeliver,
    "crash": crash,
    "cmd": command,
}
_WEIGHTS = (
    ["msg"] * 6 + ["wait"] * 5 + ["model", "send"] * 2 + ["owner", "redeliver", "crash", "cmd"]
)
ACTION = st.sampled_from(_WEIGHTS).flatmap(lambda kind: _KINDS[kind])
STEPS = st.lists(ACTION, min_size=8, max_size=40)
# (model latency, WhatsApp latency, steps): with a latency the world answers by itself
SCENARIO = st.tuples(st.sampled_from((None, 2.0, 40.0)), st.sampled_from((None, 1.0)), STEPS)
Scenario = tuple[float | None, float | None, list[tuple[Any, ...]]]


@dataclass
class _Out:
    send: Send
    wa_id: str
    confirmed: bool = False
    echoed: bool = False


@dataclass
class World:
    """Drives one assistant through a list of actions on a `Run` (its clock, its deadlines,
    its log of every effect with its time), adding the contacts, the owner, the model and
    WhatsApp around it."""

    policy: Policy
    seed: int = 1
    model_latency: float | None = None  # answer every generation by itself after this long
    wa_latency: float | None = None  # confirm and echo every send by itself after this long
    restore_at: int | None = None  # clean export/restore (no crash) before this step
    checker: InvariantChecker | None = None
    generates: list[Generate] = field(default_factory=list)
    sends: list[_Out] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    n: int = 0

    def __post_init__(self) -> None:
        self.core = Run(self.policy, PERSONA, self.seed, t0=T0)
        self.core.watch = self._effects

    @property
    def t(self) -> float:
        return self.core.t

    @property
    def log(self) -> list[tuple[float, Effect]]:
        return self.core.log

    def _effects(self, t: float, effects: list[Effect]) -> None:
        if self.checker:
            self.checker.observe_effects(t, effects)
        for e in effects:
            if isinstance(e, Generate):
                self.generates.append(e)
                if self.model_latency is not None:
                    self.n += 1
                    self.core.at(t + self.model_latency, partial(self._auto_answer, e))
            elif isinstance(e, Send):
                self.n += 1
                out = _Out(e, f"wa{self.n}")
                self.sends.append(out)
                if self.wa_latency is not None:
                    self.n += 1
                    self.core.at(t + self.wa_latency, partial(self._auto_deliver, out))

    def _auto_answer(self, g: Generate) -> None:
        if g in self.generates:
            self.generates.remove(g)
            self.feed(Generated(g.request_id, REPLIES[AUTO_REPLIES[self.n % len(AUTO_REPLIES)]]))

    def _auto_deliver(self, out: _Out) -> None:
        if out in self.sends and not out.confirmed:
            self.step(("send", self.sends.index(out), self.n % 2))

    def feed(self, event: Event) -> None:
        if self.checker:
            self.checker.observe_input(self.t, event)
        self.core.handle(event)

    def restore(self, crash: bool) -> None:
        state = json.loads(json.dumps(self.core.a.export(), allow_nan=False))
        self.core.a = Assistant.restore(state, self.policy, PERSONA)
        if crash:
            if self.checker:
                self.checker.observe_crash(self.t)
            self.core.recover()

    def step(self, action: tuple[Any, ...]) -> None:
        kind = action[0]
        if kind == "wait":
            self.core.advance(action[1])
        elif kind == "msg":
            _, c, ti, flag = action
            chat = CHATS[c]
            self.n += 1
            kw: dict[str, Any] = {"sender": chat, "sender_name": chat[:5].title()}
            if chat.endswith("@g.us"):
                kw = {
                    "sender": MEMBERS[flag % 2],
                    "sender_name": "M",
                    "is_group": True,
                    "group_title": "Family",
                    "participants": 4,
                }
                if flag == 1:
                    kw["mentions"] = (OWNER,)
                elif flag == 2:
                    ours = [o.wa_id for o in self.sends if o.send.chat == chat]
                    kw["quoted_id"] = ours[-1] if ours else "nope"
            media = "voice" if TEXTS[ti] == "" and flag == 3 else ""
            m = Message(chat=chat, id=f"m{self.n}", text=TEXTS[ti], media=media, **kw)
            self.messages.append(m)
            self.feed(m)
        elif kind == "owner":
            self.n += 1
            chat = CHATS[action[1]]
            text = ("I'll call you later", "on my way", "ok")[action[2]]
            self.feed(
                Message(
                    chat=chat,
                    sender=OWNER,
                    id=f"o{self.n}",
                    text=text,
                    from_me=True,
                    is_group=chat.endswith("@g.us"),
                )
            )
        elif kind == "model" and self.generates:
            g = self.generates.pop(action[1] % len(self.generates))
            if action[2] < 0:
                self.feed(GenerationFailed(g.request_id, ("capacity", "timeout")[action[2] + 2]))
            else:
                self.feed(Generated(g.request_id, REPLIES[action[2]]))
        elif kind == "send" and self.sends:
            out = self.sends[action[1] % len(self.sends)]
            what = action[2]
            if what in (0, 1) and not out.confirmed:  # confirm, with the echo before or after
                if what == 0:
                    self._echo(out)
                out.confirmed = True
                self.feed(SendConfirmed(out.send.request_id, out.wa_id))
                if what == 1:
                    self._echo(out)
            elif what == 2 and not out.confirmed and not out.echoed:
                self.sends.remove(out)
                self.feed(SendFailed(out.send.request_id, "refused"))
            elif what == 3:
                self._echo(out)  # an echo, possibly a repeated one
        elif kind == "redeliver" and self.messages:
            self.feed(self.messages[action[1] % len(self.messages)])
        elif kind == "crash":
            self.core.t += action[1]  # down: no deadline fires meanwhile
            self.restore(crash=True)
        elif kind == "cmd":
            self.n += 1
            if action[1] == "status":
                self.feed(
                    Message(chat=OWNER, sender=OWNER, id=f"c{self.n}", text="status", from_me=True)
                )
            else:
                self.feed(Command(action[1]))

    def _echo(self, out: _Out) -> None:
        s = out.send
        out.echoed = True
        self.feed(
            Message(
                chat=s.chat,
                sender=OWNER,
                id=out.wa_id,
                text=s.text,
                from_me=True,
                is_group=s.chat.endswith("@g.us"),
                own_device=True,  # an echo can only come from this device (rule 3)
            )
        )

    def run(self, steps: list[tuple[Any, ...]]) -> World:
        for i, action in enumerate(steps):
            if i == self.restore_at:
                self.restore(crash=False)
            self.step(action)
        self.core.advance(3 * 86400)  # drain: every pending reply concludes (timeouts included)
        return self


def _check(policy: Policy, steps: list[tuple[Any, ...]], **kw: Any) -> list[Violation]:
    checker = InvariantChecker(policy, PERSONA)
    world = World(policy, checker=checker, **kw).run(steps)
    return checker.finish(world.t + checker.horizon + 1)


PROPERTY = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ---------------------------------------------------------------- the real core keeps its promises


def _world(policy: str, scenario: Scenario, **kw: Any) -> World:
    model, wa, _ = scenario
    return World(POLICIES[policy], model_latency=model, wa_latency=wa, **kw)


@PROPERTY
@given(policy=st.sampled_from(sorted(POLICIES)), scenario=SCENARIO)
def test_invariants_hold(policy: str, scenario: Scenario) -> None:
    model, wa, steps = scenario
    assert _check(POLICIES[policy], steps, model_latency=model, wa_latency=wa) == []


@settings(PROPERTY, max_examples=60)
@given(policy=st.sampled_from(sorted(POLICIES)), scenario=SCENARIO, seed=st.integers(0, 2**32))
def test_same_seed_same_effects(policy: str, scenario: Scenario, seed: int) -> None:
    first = _world(policy, scenario, seed=seed).run(scenario[2]).log
    assert _world(policy, scenario, seed=seed).run(scenario[2]).log == first


@settings(PROPERTY, max_examples=100)
@given(policy=st.sampled_from(sorted(POLICIES)), scenario=SCENARIO, data=st.data())
def test_export_restore_anywhere_changes_nothing(
    policy: str, scenario: Scenario, data: st.DataObject
) -> None:
    steps = scenario[2]
    at = data.draw(st.integers(0, len(steps)))
    plain = _world(policy, scenario, seed=5).run(steps).log
    assert _world(policy, scenario, seed=5, restore_at=at).run(steps).log == plain


def test_the_world_exercises_the_rules() -> None:
    """Guard against a vacuous generator: a fixed busy script reaches replies, cooldowns,
    breakthroughs, owner takeovers, echoes and caps."""
    steps: list[tuple[Any, ...]] = []
    for _ in range(3):
        steps += [
            ("msg", 0, 0, 0),
            ("msg", 2, 8, 0),
            ("wait", 121.0),
            ("model", 0, 0),
            ("model", 0, 0),
            ("wait", 30.0),
            ("send", 0, 1),
            ("send", 1, 0),
            ("msg", 0, 2, 0),
            ("wait", 14.0),
            ("wait", 3.0),
            ("model", 0, 5),
            ("wait", 30.0),
            ("owner", 1, 0),
            ("msg", 1, 0, 0),
            ("wait", 18030.0),
        ]
    world = World(POLICIES["small_caps"]).run(steps)
    codes = {e.code for _, e in world.log if hasattr(e, "code")}
    assert {"sent", "cooldown", "breakthrough", "owner_takeover", "echo", "capped"} <= codes
    assert _check(POLICIES["small_caps"], steps) == []


# ---------------------------------------------------------------- broken cores are caught


@contextmanager
def _broken(mp: pytest.MonkeyPatch, what: str) -> Iterator[None]:
    original_send = Assistant._send

    def send_without_cooldown(self: Assistant, chat: Chat, now: float, out: list[Effect]) -> None:
        original_send(self, chat, now, out)
        chat.cooldown_until = 0.0

    def send_twice(self: Assistant, chat: Chat, now: float, out: list[Effect]) -> None:
        original_send(self, chat, now, out)
        out.extend(e for e in list(out) if isinstance(e, Send) and e.chat == chat.id)

    def breakthrough_always(self: Assistant, m: Message, now: float, out: list[Effect]) -> None:
        chat = self.chats.get(m.chat)
        if chat is not None and not m.from_me:
            chat.breakthrough_used = False
        original_message(self, m, now, out)

    original_message = Assistant._on_message
    patches: dict[str, tuple[str, Any]] = {
        "cooldown": ("_send", send_without_cooldown),
        "double": ("_send", send_twice),
        "owner": ("_owner_wrote", lambda *a, **k: None),
        "echo": ("_is_echo", lambda *a, **k: False),
        "group": ("_addressed", lambda *a, **k: True),
        "caps": ("_cap_reached", lambda *a, **k: ""),
        "lost": ("_fire_reply", lambda self, chat, now, out: setattr(chat, "timer_seq", 0)),
        "breakthrough": ("_on_message", breakthrough_always),
    }
    name, fn = patches[what]
    mp.setattr(Assistant, name, fn)
    yield


SCRIPTS: dict[str, tuple[str, list[tuple[Any, ...]], str]] = {
    "cooldown": (
        "small_caps",
        [
            ("msg", 0, 0, 0),
            ("wait", 121.0),
            ("model", 0, 0),
            ("wait", 3600.0),
            ("msg", 0, 1, 0),
            ("wait", 121.0),
            ("model", 0, 0),
        ],
        "cooldown",
    ),
    "double": ("small_caps", [("msg", 0, 0, 0), ("wait", 121.0), ("model", 0, 0)], "double_reply"),
    "owner": (
        "small_caps",
        [("owner", 0, 0), ("msg", 0, 0, 0), ("wait", 121.0), ("model", 0, 0)],
        "owner_cooldown",
    ),
    "echo": (
        "small_caps",
        [("msg", 0, 0, 0), ("wait", 121.0), ("model", 0, 0), ("wait", 30.0), ("send", 0, 1)],
        "echo_as_owner",
    ),
    "group": (
        "small_caps",
        [("msg", 2, 0, 0), ("wait", 121.0), ("model", 0, 0)],
        "group_not_addressed",
    ),
    "caps": (
        "small_caps",
        [
            a
            for c in (0, 1, 2)
            for a in (("msg", c, 8, 1), ("wait", 121.0), ("model", 0, 0), ("wait", 601.0))
        ],
        "caps",
    ),
    "lost": ("small_caps", [("msg", 0, 0, 0)], "never_concluded"),
    "breakthrough": (
        "fast",
        [
            ("msg", 0, 0, 0),
            ("wait", 30.0),
            ("model", 0, 0),
            ("wait", 60.0),
            ("msg", 0, 2, 0),
            ("wait", 30.0),
            ("model", 0, 0),
            ("wait", 60.0),
            ("msg", 0, 2, 0),
            ("wait", 30.0),
            ("model", 0, 0),
        ],
        "breakthrough",
    ),
}


@PATCHES_THE_CORE
@pytest.mark.parametrize("what", sorted(SCRIPTS))
def test_the_checker_catches_a_broken_core(monkeypatch: pytest.MonkeyPatch, what: str) -> None:
    policy_name, steps, rule = SCRIPTS[what]
    policy = POLICIES[policy_name]
    assert _check(policy, steps) == []  # the real core passes the script...
    with _broken(monkeypatch, what):
        rules = {v.rule for v in _check(policy, steps)}
    assert rule in rules  # ...and the broken one is caught


def test_the_checker_catches_a_debounce_that_ignores_the_delay() -> None:
    checker = InvariantChecker(POLICIES["small_caps"], PERSONA)
    hasty = Policy.from_mapping({"response_delay": 1, "urgent_delay": 1, "max_wait": 1})
    world = World(hasty, checker=checker).run([("msg", 0, 0, 0), ("wait", 3.0)])
    assert "too_early" in {v.rule for v in checker.finish(world.t)}


@PATCHES_THE_CORE
def test_random_traffic_finds_a_removed_cooldown(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not just the hand-written script: the random generator reaches the fault by itself."""
    with _broken(monkeypatch, "cooldown"):
        found = find(
            SCENARIO,
            lambda sc: any(
                v.rule == "cooldown"
                for v in _check(POLICIES["fast"], sc[2], model_latency=sc[0], wa_latency=sc[1])
            ),
            settings=settings(
                max_examples=400,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.generate],  # the first hit is enough: no shrinking
            ),
        )
    assert found
