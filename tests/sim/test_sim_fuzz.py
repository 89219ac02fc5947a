"""Seeded traffic generation and fuzzing."""

from __future__ import annotations

from wapa.sim.fuzz import build_simulation, generate_traffic, run_fuzz


def test_traffic_is_deterministic_and_varied() -> None:
    a = generate_traffic(30, 2, seed=4)
    b = generate_traffic(30, 2, seed=4)
    assert a.messages == b.messages and a.crashes == b.crashes
    assert a.messages != generate_traffic(30, 2, seed=5).messages
    msgs = [m for _, m in a.messages]
    assert any(m.is_group for m in msgs) and any(not m.is_group for m in msgs)
    assert any(m.from_me and m.chat != a.persona.owner_id for m in msgs)  # owner replies
    assert any(m.chat == a.persona.owner_id for m in msgs)  # owner commands
    assert any(m.media and not m.text for m in msgs)
    assert any(m.kind != "message" for m in msgs)
    assert any("urgent" in m.text.casefold() or "!!!" in m.text for m in msgs)
    ids = [m.id for m in msgs]
    assert len(ids) > len(set(ids))  # redeliveries
    assert [t for t, _ in a.messages] == sorted(t for t, _ in a.messages)


def test_fuzz_run_is_clean_and_repeatable() -> None:
    first = run_fuzz(60, 2, seed=9)
    assert first.ok, first.violations[:5]
    again = run_fuzz(60, 2, seed=9)
    assert (first.sent, first.decisions, first.crashes) == (
        again.sent,
        again.decisions,
        again.crashes,
    )
    assert first.sent > 0 and first.crashes > 0


def test_simulation_without_faults_sends_and_never_fails() -> None:
    traffic = generate_traffic(20, 1, seed=1)
    result = build_simulation(traffic, faults=False).run()
    assert result.sent and not result.send_failures and not result.crashes


def test_a_day_of_traffic_does_not_depend_on_the_days_before() -> None:
    """Each chat draws from its own generator: the run is made one day at a time, and the
    whole-run traffic is those days put together."""
    from wapa.sim.fuzz import TrafficSource

    source = TrafficSource(20, 3, seed=4)
    days = [source.day(d) for d in range(3)]
    joined = sorted((m for day in days for m in day), key=lambda item: item[0])
    assert joined == generate_traffic(20, 3, seed=4).messages
    for d, day in enumerate(days):
        assert day and all(t >= source.day_start(d) for t, _ in day)


def test_a_long_fuzz_run_keeps_one_day_of_results() -> None:
    """`run_fuzz` counts each day's decisions and sends and drops them: the report has the
    counts, the result lists stay at most one day long."""
    longest: list[int] = []
    report = run_fuzz(40, 3, seed=2, on_decisions=lambda ds: longest.append(len(ds)))
    assert report.ok and report.decisions == sum(longest)
    assert max(longest) < report.decisions  # no day held the whole run
