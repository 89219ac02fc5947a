"""The simulated model service (sim/fake_model.py) runs the production model policy on virtual
time: driven here through a tiny heap-based Scheduler, as the simulation engine drives it."""

from __future__ import annotations

from dataclasses import replace

import pytest
from wapa.adapters.llm import AUTH_LOCKED
from wapa.adapters.llm.usage import estimate_input_tokens, neurons, next_utc_midnight
from wapa.core.events import ChatMessage, Event, Generate, Generated, GenerationFailed
from wapa.sim.fake_model import FakeModel, ScheduledFailure, default_settings, reply_for
from wapa.sim.scheduler import Scheduler

from tests.support.heap_scheduler import HeapScheduler

T0 = 1_741_600_000.0  # 2025-03-10 09:46:40 UTC
PRIMARY = "@cf/meta/llama-3.2-1b-instruct"
FALLBACK = "@cf/meta/llama-3.2-3b-instruct"
PROMPT = (
    ChatMessage(
        "system",
        "You are Dana, the personal assistant of Gilad, answering his WhatsApp messages. "
        "You are writing to Ann.",
    ),
    ChatMessage("user", "can we meet on friday"),
)


def sim(**knobs: object) -> tuple[FakeModel, HeapScheduler]:
    model = FakeModel(**knobs)  # type: ignore[arg-type]
    sched = HeapScheduler(T0)
    model.bind(sched)
    return model, sched


def ask(model: FakeModel, sched: HeapScheduler, request_id: str, at: float) -> Event:
    """One generation started at `at`, run to its end; its one outcome."""
    before = len(sched.delivered)
    sched.run(until=at)
    model.start_generation(Generate(request_id, "ann", PROMPT), at)
    sched.run()
    (out,) = sched.delivered[before:]
    return out[1]


def test_the_scheduler_of_the_test_is_a_scheduler() -> None:
    scheduler: Scheduler = HeapScheduler(T0)
    assert scheduler.now == T0


def test_rate_limited_twice_then_one_answer_after_the_backoff() -> None:
    model, sched = sim(failures=[ScheduledFailure("rate_limited", 2)], seed=3)
    model.start_generation(Generate("r1", "ann", PROMPT), T0)
    assert sched.delivered == []
    [(t, event)] = sched.run()
    assert isinstance(event, Generated) and event.text == reply_for(PROMPT)
    assert model.requests == 3 and model.stats.retries == 2
    waits = t - T0 - 3 * 0.8  # three requests of 0.8 s, two backoffs
    assert 1.0 + 2.0 <= waits <= 2.0 + 3.0
    spent = neurons(PRIMARY, estimate_input_tokens(PROMPT), 0)  # at least the input
    assert event.budget_left is not None and event.budget_left < 10_000 - spent

    again, sched2 = sim(failures=[ScheduledFailure("rate_limited", 2)], seed=3)
    again.start_generation(Generate("r1", "ann", PROMPT), T0)
    assert sched2.run() == [(t, event)]  # same seed: the same time, bit for bit
    other, sched3 = sim(failures=[ScheduledFailure("rate_limited", 2)], seed=4)
    other.start_generation(Generate("r1", "ann", PROMPT), T0)
    assert sched3.run()[0][0] != t


def test_failures_up_to_max_attempts_give_generation_failed() -> None:
    model, sched = sim(failures=[ScheduledFailure("rate_limited", 3)])
    event = ask(model, sched, "r1", T0)
    assert isinstance(event, GenerationFailed) and event.kind == "rate_limited"
    assert event.detail.startswith("rate_limited (cloudflare, 429, code 3021)")
    assert "tried cloudflare" in event.detail and model.requests == 3  # (cut at 200 chars)
    assert isinstance(ask(model, sched, "r2", T0 + 60), Generated)  # the schedule is used up


def test_max_attempts_comes_from_the_settings() -> None:
    settings = replace(default_settings(), max_attempts=5)
    model, sched = sim(failures=[ScheduledFailure("capacity", 4)], settings=settings)
    assert isinstance(ask(model, sched, "r1", T0), Generated) and model.requests == 5


def test_a_sane_retry_after_is_the_wait() -> None:
    model, sched = sim(failures=[ScheduledFailure("rate_limited", 1, retry_after=7)])
    model.start_generation(Generate("r1", "ann", PROMPT), T0)
    [(t, event)] = sched.run()
    assert isinstance(event, Generated) and t == pytest.approx(T0 + 0.8 + 7 + 0.8)


def test_auth_locks_out_later_requests_until_a_restart() -> None:
    model, sched = sim(failures=[ScheduledFailure("auth")])
    first = ask(model, sched, "r1", T0)
    assert isinstance(first, GenerationFailed) and first.kind == "auth"
    assert "(cloudflare, 401, code 10000)" in first.detail
    sched.run(until=T0 + 3600)
    model.start_generation(Generate("r2", "ann", PROMPT), T0 + 3600)
    assert sched.delivered[-1] == (
        T0 + 3600,  # at once
        GenerationFailed("r2", "auth", AUTH_LOCKED, budget_left=10_000.0),
    )
    assert model.requests == 1  # no request for the second
    model.restarted(T0 + 7000)  # the operator fixed the token and restarted
    assert isinstance(ask(model, sched, "r3", T0 + 7200), Generated)


def test_daily_quota_blocks_until_midnight_utc() -> None:
    model, sched = sim(failures=[ScheduledFailure("daily_quota")])
    assert ask(model, sched, "r1", T0).kind == "daily_quota"  # type: ignore[union-attr]
    midnight = next_utc_midnight(T0)
    blocked = ask(model, sched, "r2", midnight - 60)
    assert isinstance(blocked, GenerationFailed) and blocked.kind == "daily_quota"
    assert "00:00 UTC (in 0h01m)" in blocked.detail
    assert model.requests == 1
    assert isinstance(ask(model, sched, "r3", midnight), Generated)
    assert model.requests == 2


def test_budget_exhaustion_refuses_before_asking_and_comes_back_the_next_day() -> None:
    worst = neurons(PRIMARY, estimate_input_tokens(PROMPT), 256)
    settings = replace(default_settings(), daily_neuron_budget=worst * 3)
    model, sched = sim(settings=settings)
    outcomes = [ask(model, sched, f"r{i}", T0 + i * 60) for i in range(60)]
    answered = [e for e in outcomes if isinstance(e, Generated)]
    refused = [e for e in outcomes if isinstance(e, GenerationFailed)]
    assert answered and refused and all(e.kind == "budget" for e in refused)
    assert model.requests == len(answered)  # refused without a request
    assert refused[0].budget_left is not None and refused[0].budget_left < worst
    assert isinstance(ask(model, sched, "next-day", next_utc_midnight(T0) + 1), Generated)


def test_the_fallback_model_answers_when_the_primary_is_at_capacity() -> None:
    model, sched = sim(
        failures=[ScheduledFailure("capacity", 10, model=PRIMARY)], fallback_models=[FALLBACK]
    )
    event = ask(model, sched, "r1", T0)
    assert isinstance(event, Generated) and model.stats.fallbacks == 1
    assert model.requests == 4  # three to the primary, one to the fallback
    assert model.meter.spent == pytest.approx(
        neurons(FALLBACK, estimate_input_tokens(PROMPT), model.stats.output_tokens)
    )


def test_timeout_is_the_clients_own_timeout_and_is_retried() -> None:
    for kind in ("timeout", "no_answer"):  # no_answer: the same, as in production
        model, sched = sim(failures=[ScheduledFailure(kind)], timeout_after=5.0, seed=1)
        model.start_generation(Generate("r1", "ann", PROMPT), T0)
        [(t, event)] = sched.run()
        assert isinstance(event, Generated)
        assert T0 + 5 + 1 + 0.8 <= t <= T0 + 5 + 2 + 0.8  # the timeout, a backoff, an answer


def test_a_latency_past_the_timeout_is_a_timeout_within_the_total_bound() -> None:
    model, sched = sim(latency=40.0)  # AI_TIMEOUT is 30 s, AI_TOTAL_TIMEOUT 90 s
    model.start_generation(Generate("r1", "ann", PROMPT), T0)
    [(t, event)] = sched.run()
    assert isinstance(event, GenerationFailed) and event.kind == "timeout"
    assert event.detail.startswith("timeout (cloudflare): no answer within ")
    assert model.requests == 3 and t <= T0 + 90  # the last attempt gets what is left


def test_replies_are_parsed_by_the_real_client_code() -> None:
    model, sched = sim(replies=["", "   ", "Gilad will call you back."])
    event = ask(model, sched, "r1", T0)  # two empty answers: bad_response, retried
    assert event == Generated("r1", "Gilad will call you back.", budget_left=event.budget_left)  # type: ignore[union-attr]
    assert model.stats.attempt_errors == {"bad_response": 2}


def test_a_crash_loses_what_was_under_way_and_restart_releases_its_budget() -> None:
    model, sched = sim(latency=20.0)
    model.start_generation(Generate("r1", "ann", PROMPT), T0)
    assert model.meter.reserved > 0
    sched.crash()
    model.restarted(T0 + 5)
    assert model.meter.reserved == 0 and sched.run() == []
    assert isinstance(ask(model, sched, "r2", T0 + 60), Generated)


def test_a_malformed_prompt_is_an_internal_failure_not_a_crash() -> None:
    model, sched = sim()
    model.start_generation(Generate("r1", "ann", ()), T0)
    [(t, event)] = sched.delivered
    assert t == T0 and isinstance(event, GenerationFailed) and event.kind == "internal"


def test_start_generation_needs_a_scheduler() -> None:
    with pytest.raises(RuntimeError, match="bind"):
        FakeModel().start_generation(Generate("r1", "ann", PROMPT), T0)


def test_unknown_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown"):
        ScheduledFailure("meltdown")
    with pytest.raises(ValueError, match="unknown"):
        FakeModel(failure_rates={"meltdown": 0.1})
