"""Restarting from the real SQLite store: every step committed before its effects, a crash
rebuilt with Store.load + recover; fuzz traffic with store-backed crashes at random points keeps
every promise (no double send, no lost obligation) and agrees with the store's outbox."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
from wapa.adapters.store import Store
from wapa.core import Message, Persona, Policy
from wapa.sim.durable import DurableState, StoreInUseError
from wapa.sim.engine import Simulation
from wapa.sim.fuzz import build_simulation, generate_traffic, outbox_disagreements
from wapa.sim.invariants import InvariantChecker
from wapa.sim.scenario import load_file
from wapa.sim.suite import run_file, run_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
STORE_SCENARIOS = sorted(SCENARIOS.glob("store_*.yaml"))
T0 = 1_767_600_000.0


def test_restarting_from_the_store_behaves_exactly_like_restarting_from_the_export(
    tmp_path: Path,
) -> None:
    traffic = generate_traffic(12, 1, seed=4, crashes_per_day=10)
    exported = build_simulation(traffic, crash_rate=0.1).run()
    with build_simulation(traffic, crash_rate=0.1, store=tmp_path / "s.db") as sim:
        stored = sim.run()
        assert sim.store is not None and sim.store.restarts == len(stored.crashes) >= 10
        assert sim.store.commits > stored.inputs + len(stored.crashes)  # inputs, restarts, timers
    assert stored.crashes == exported.crashes
    assert stored.decisions == exported.decisions
    assert stored.sent == exported.sent


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_fuzz_with_store_backed_random_crashes_keeps_every_promise(
    tmp_path: Path, seed: int
) -> None:
    traffic = generate_traffic(8, 1, seed)
    checker = InvariantChecker(Policy(), traffic.persona)
    with build_simulation(
        traffic, observer=checker, store=tmp_path / "s.db", crash_rate=0.25
    ) as sim:
        result = sim.run()
    violations = checker.finish(result.end + checker.horizon + 1.0)
    assert violations == []  # double_reply, never_concluded, cooldown, ... none
    assert outbox_disagreements(result) == []
    assert len(result.crashes) >= 20 and result.sent  # about one step in four crashes
    codes = Counter(d.code for d in result.decisions)
    assert codes["recovered"] >= 5
    if result.unconfirmed:  # a crash between a send and its confirmation: reported, not repeated
        assert codes["send_unknown"] == len(result.unconfirmed)


def test_the_random_crashes_do_hit_sends_awaiting_confirmation(tmp_path: Path) -> None:
    unknown = 0
    for seed in range(1, 9):  # a send awaits its confirmation for only 0.3 s: few are hit
        with build_simulation(
            generate_traffic(8, 1, seed), store=tmp_path / f"{seed}.db", crash_rate=0.25
        ) as sim:
            unknown += len(sim.run().unconfirmed)
    assert unknown >= 2


def test_outbox_disagreements_are_reported() -> None:
    traffic = generate_traffic(3, 1, seed=1)
    result = build_simulation(traffic, faults=False).run()
    result.unconfirmed.append((T0, "r-ghost"))
    [v] = outbox_disagreements(result)
    assert v.rule == "store_outbox" and "r-ghost" in v.detail


@pytest.mark.parametrize("path", STORE_SCENARIOS, ids=[p.stem for p in STORE_SCENARIOS])
def test_store_scenarios_restart_from_the_file(path: Path) -> None:
    outcome = run_file(path)
    assert outcome.passed, "\n".join(outcome.failures)
    assert outcome.sim is not None and outcome.sim.store is not None
    assert outcome.sim.store.restarts == len(outcome.sim.result.crashes) >= 1


def test_store_scenarios_fail_when_the_store_stops_saving(monkeypatch: pytest.MonkeyPatch) -> None:
    """The restart really reads the file: a store left at the first state breaks them all."""
    original = DurableState.save

    def first_only(self: DurableState, *args: object) -> None:
        if self.commits == 0:
            original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(DurableState, "save", first_only)
    for path in STORE_SCENARIOS:
        assert not run_file(path).passed, path.stem


def test_the_unconfirmed_send_is_marked_unknown_in_the_outbox(tmp_path: Path) -> None:
    scenario = load_file(SCENARIOS / "store_crash_after_send_before_confirmation.yaml")
    db = tmp_path / "s.db"
    outcome = run_scenario(scenario, store=db)
    assert outcome.passed, outcome.failures
    assert outcome.sim is not None
    [(_, rid)] = outcome.sim.result.unconfirmed

    async def read() -> list[tuple[str, str | None]]:
        store = await Store.open(db)
        try:
            return [(e.request_id, e.outcome) for e in await store.outbox()]
        finally:
            await store.close()

    assert asyncio.run(read()) == [(rid, "unknown")]


def test_a_simulation_never_writes_over_a_store_that_holds_state(tmp_path: Path) -> None:
    db = tmp_path / "real.db"
    persona = Persona(owner_id="owner", owner_name="Gilad")
    with Simulation(policy=Policy(), persona=persona, seed=0, start=T0, store=db) as sim:
        sim.add_message(T0, Message("alice", "alice", "m1", "hi", sender_name="Alice"))
        sim.run()
    before = db.read_bytes()
    with pytest.raises(StoreInUseError, match=r"real\.db already holds an assistant's state"):
        Simulation(policy=Policy(), persona=persona, seed=0, start=T0, store=db)
    assert db.read_bytes() == before
    scenario = load_file(SCENARIOS / "store_crash_while_waiting_resumes_reply.yaml")
    outcome = run_scenario(scenario, store=db)  # reported as a failed scenario, not raised
    assert not outcome.passed and "already holds" in outcome.failures[0]


def test_a_bad_crash_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="crash_rate must be between 0 and 1"):
        Simulation(policy=Policy(), persona=Persona(owner_id="o"), seed=0, start=T0, crash_rate=1.5)
