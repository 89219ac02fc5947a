"""The simulator proves what runs live: one script, two worlds, the same decisions.

The same traffic, with model failures and a crash, goes (a) through the simulator on its
virtual clock and (b) through the production runner (`wapa run --transport console`, real
clock, real SQLite, real HTTP) against `wapa fake-cloudflare` failing the same way, killed with
SIGKILL mid-run and restarted on the same store. Both must send the same replies and make the
same decisions (reason codes, in order, per chat). Then the runner's own recording
(`WAPA_RECORD`) is replayed in the simulator: zero divergences.

Times are not compared: the runner's are wall-clock times (a second of delay, a restart that
takes as long as Python takes to start). The decisions and texts do not depend on them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import pytest
from wapa.adapters.recording import read_recording
from wapa.core import Decision, Message, Persona, Policy, Send
from wapa.sim.engine import Simulation
from wapa.sim.fake_cloudflare import FakeCloudflare
from wapa.sim.fake_model import FakeModel, ScheduledFailure
from wapa.sim.fake_whatsapp import FakeWhatsApp
from wapa.sim.replay import replay

from tests.support.console_process import ConsoleWapa, clean_env

T0 = 1_767_600_000.0
OWNER = Persona().owner_id  # the console's owner, as `wapa run` configures it by default
PERSONA = Persona(owner_id=OWNER, owner_name="Gilad")
# Three seconds of delay: the runner is killed while bob's reply waits for it, so the delay must
# outlast the moment between "[decision] bob scheduled" on the console and the SIGKILL, even on
# a loaded machine (with one second it once sent first, at load 6-7 on 2 cores). The decisions
# are the same whether the restart comes before or after the reply is due.
POLICY = Policy(response_delay=3.0, typing_min=0.2, typing_max=0.4)
SEED = 7
RETRY_AFTER = 1.0  # the fake provider's 429s ask for one second: production waits exactly that

Codes = dict[str, list[str]]
Texts = dict[str, list[str]]


def by_chat(decisions: Iterable[Decision], sends: Iterable[Send]) -> tuple[Codes, Texts]:
    codes: Codes = defaultdict(list)
    texts: Texts = defaultdict(list)
    for d in decisions:
        codes[d.chat or "-"].append(str(d.code))
    for s in sends:
        texts[s.chat].append(s.text)
    return dict(codes), dict(texts)


def simulated() -> tuple[Codes, Texts]:
    model = FakeModel(
        latency=0.05,
        seed=SEED,
        failures=[ScheduledFailure("rate_limited", 2, retry_after=RETRY_AFTER)],
    )
    sim = Simulation(
        policy=POLICY,
        persona=PERSONA,
        seed=SEED,
        start=T0,
        model=model,
        whatsapp=FakeWhatsApp(latency=0.01, echo_after=0.01, seed=SEED),
    )
    sim.add_message(T0, Message("alice", "alice", "a1", "hello there", sender_name="alice"))
    sim.add_message(
        T0 + 20, Message("bob", "bob", "b1", "are you free tomorrow?", sender_name="bob")
    )
    sim.add_crash(T0 + 20.5, down=2.0)  # bob's reply is due at +23: the restart resumes it
    sim.add_message(T0 + 40, Message("alice", "alice", "a2", "one more thing", sender_name="alice"))
    sim.add_message(T0 + 50, Message(OWNER, OWNER, "o1", "status", from_me=True))
    result = sim.run()
    sends = [Send(s.request_id, s.chat, s.text, s.quote_id) for s in result.sent]
    return by_chat(result.decisions, sends)


@pytest.mark.slow
def test_the_simulator_and_the_runner_decide_alike(tmp_path: Path) -> None:
    record = tmp_path / "live.jsonl"
    with FakeCloudflare(latency=0.05) as cloudflare:
        cloudflare.fail("rate_limit", times=2, retry_after=RETRY_AFTER)
        env = clean_env(
            **cloudflare.env(),
            WAPA_DB=str(tmp_path / "wapa.db"),
            WAPA_RECORD=str(record),
            WAPA_HTTP_PORT="0",
            WAPA_SEED=str(SEED),
            WAPA_RESPONSE_DELAY="3s",
            WAPA_TYPING_MIN="200ms",
            WAPA_TYPING_MAX="400ms",
            WAPA_OWNER_NAME="Gilad",
            WAPA_SHUTDOWN_TIMEOUT="5s",
        )
        first = ConsoleWapa(env)
        try:
            first.expect(r"^\[http\] ")
            first.say("alice: hello there")
            first.expect(r"^\[send\] alice: ")  # after two 429s and their Retry-After
            first.expect(r"^\[decision\] alice send_confirmed")  # no echo: like whatsmeow
            first.say("bob: are you free tomorrow?")
            first.expect(r"^\[decision\] bob scheduled")  # committed, then shown
            first.crash()  # SIGKILL while bob's reply waits for its delay
        finally:
            first.kill()
        second = ConsoleWapa(env)
        try:
            second.expect(r"^\[http\] ")
            second.expect(r"^\[send\] bob: ")
            second.expect(r"^\[decision\] bob send_confirmed")
            second.say("alice: one more thing")
            second.expect(r"^\[decision\] alice cooldown")
            second.say("/status")
            second.expect(r"^\[notice\] ")
            assert second.stop() == 0
        finally:
            second.kill()
        assert cloudflare.pending_failures() == []  # both 429s were served

    recording = read_recording(record)
    live_decisions = [i.obj for i in recording.items if isinstance(i.obj, Decision)]
    live_sends = [i.obj for i in recording.items if isinstance(i.obj, Send)]
    live = by_chat(live_decisions, live_sends)
    sim = simulated()
    assert live[1] == sim[1]  # the same replies, word for word
    assert live[0] == sim[0]  # the same decisions, in order, per chat
    assert "recovered" in live[0]["bob"] and len(recording.restarts) == 1
    assert live[0]["alice"].count("generation_failed") == 0

    report = replay(recording)
    assert report.divergences == []
    assert report.summary["recorded_decisions"] == report.summary["replayed_decisions"]
