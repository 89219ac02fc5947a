"""The model policy alone (adapters/llm/policy.py): a sans-IO decision object, driven here by
hand with explicit times. No HTTP, no clock, no event loop."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import pytest
from wapa.adapters.llm import (
    AUTH_LOCKED,
    Answer,
    Call,
    ChainPolicy,
    ChainRun,
    GiveUp,
    LLMStats,
    ModelError,
    NeuronMeter,
    ProviderId,
    Reply,
    Wait,
    classify,
    provider_ids,
)
from wapa.adapters.llm.config import CloudflareSettings, LLMSettings, OpenAISettings
from wapa.adapters.llm.errors import Tried
from wapa.adapters.llm.policy import backoff, outcome_event
from wapa.adapters.llm.usage import estimate_input_tokens, neurons, next_utc_midnight
from wapa.core.events import ChatMessage, GenerationFailed

from tests.support.llm import ACCOUNT, MODEL, T0, fixture

FALLBACK = "@cf/meta/llama-3.2-3b-instruct"
PROMPT = (
    ChatMessage("system", "You are Dana."),
    ChatMessage("user", "Hi, is Gilad around?"),
    ChatMessage("assistant", "He is in a meeting."),
    ChatMessage("user", "Please ask him to call me."),
)
OK = Reply("Noted, I will tell him.", 312, 31)


def settings(*models: str, openai: bool = False, **changes: object) -> LLMSettings:
    s = LLMSettings(
        cloudflare=CloudflareSettings(ACCOUNT, "token", models=models or (MODEL,)),
        openai=OpenAISettings("http://localhost:11434/v1", "llama3.2:1b") if openai else None,
    )
    return replace(s, **changes)  # type: ignore[arg-type]


def make(
    s: LLMSettings | None = None, *, budget: float | None = 10_000.0, seed: int = 1
) -> ChainPolicy:
    s = s or settings()
    stats = LLMStats()
    meter = NeuronMeter(budget, None, stats)  # no clock: every call passes `now`
    return ChainPolicy(provider_ids(s), s, meter=meter, stats=stats, seed=seed)


def error(name: str, status: int, model: str = MODEL, retry_after: str | None = None) -> ModelError:
    return classify(
        status, fixture(name), provider="cloudflare", model=model, retry_after=retry_after
    )


def capacity(model: str = MODEL) -> ModelError:
    return error("run_capacity_429.json", 429, model)


def call(run: ChainRun) -> Call:
    assert isinstance(run.step, Call), run.step
    return run.step


# ---------------------------------------------------------------- the shape of it


def test_one_request_one_answer() -> None:
    policy = make()
    run = policy.begin(PROMPT, T0)
    first = call(run)
    assert (first.provider, first.messages, first.timeout) == (0, PROMPT, 30.0)
    step = run.on_reply(OK, T0 + 0.8)
    assert isinstance(step, Answer) and run.done and step is run.step
    r = step.result
    assert (r.text, r.model, r.provider, r.attempts) == (OK.text, MODEL, "cloudflare", 1)
    assert r.latency_s == pytest.approx(0.8)
    assert r.neurons == pytest.approx(neurons(MODEL, 312, 31)) and not r.usage_estimated
    assert policy.stats.requests == 1 and policy.stats.successes == 1
    assert policy.meter is not None and policy.meter.reserved == 0  # released
    assert policy.budget_left(T0) == pytest.approx(10_000 - r.neurons)


def test_usage_missing_is_estimated() -> None:
    run = make().begin(PROMPT, T0)
    step = run.on_reply(Reply("Hello there, thanks."), T0 + 1)
    assert isinstance(step, Answer) and step.result.usage_estimated
    assert step.result.input_tokens == estimate_input_tokens(PROMPT)
    assert step.result.output_tokens == 5


def test_reports_out_of_turn_are_refused() -> None:
    run = make().begin(PROMPT, T0)
    with pytest.raises(RuntimeError, match=r"resume\(\) while the step is Call"):
        run.resume(T0)
    assert isinstance(run.on_error(capacity(), T0 + 1), Wait)
    with pytest.raises(RuntimeError, match=r"on_reply\(\) while the step is Wait"):
        run.on_reply(OK, T0 + 1)


def test_bad_messages_are_refused_before_any_step() -> None:
    policy = make()
    with pytest.raises(ValueError, match="messages: empty"):
        policy.begin([], T0)
    with pytest.raises(ValueError, match=r"messages\[0\].role"):
        policy.begin([ChatMessage("tool", "x")], T0)
    assert policy.stats.requests == 0


def test_the_policy_module_reads_no_clock_and_does_no_io() -> None:
    source = Path(__file__).resolve().parents[2] / "adapters" / "llm" / "policy.py"
    tree = ast.parse(source.read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert not imported & {"asyncio", "httpx", "time", "socket", "datetime", "os"}
    assert "await" not in {type(n).__name__.lower() for n in ast.walk(tree)}


# ---------------------------------------------------------------- retries and backoff


def test_backoff_is_the_exponential_curve_plus_seeded_jitter() -> None:
    import random

    rng = random.Random(3)
    waits = [backoff(n, rng) for n in range(1, 7)]
    for n, w in enumerate(waits, start=1):
        low = min(2.0 ** (n - 1), 10.0)
        assert low <= w <= min(low + 1.0, 10.0), (n, w)
    assert waits[-1] == 10.0  # capped
    again = random.Random(3)
    assert [backoff(n, again) for n in range(1, 7)] == waits  # the same seed, the same waits


def test_backoff_curve_is_tenacitys_wait_exponential() -> None:
    """The curve is computed in the policy (no import of tenacity at start-up, issue 18), and
    it is tenacity's `wait_exponential(multiplier=1, max=BACKOFF_MAX)`, float for float, for
    every attempt number (zero jitter: a generator whose uniform() always gives its low end)."""
    import random
    from dataclasses import dataclass
    from typing import cast

    from tenacity import RetryCallState
    from tenacity.wait import wait_exponential
    from wapa.adapters.llm.policy import BACKOFF_MAX

    @dataclass(frozen=True)
    class Attempt:  # the one attribute the curve reads
        attempt_number: int

    class NoJitter(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return a

    curve = wait_exponential(multiplier=1.0, max=BACKOFF_MAX)
    for n in [*range(-3, 70), 1023, 1024, 1025, 10**6]:
        expected = max(0.0, min(curve(cast(RetryCallState, Attempt(n))), BACKOFF_MAX))
        assert backoff(n, NoJitter()) == expected, n


def test_retry_after_a_backoff_then_answer() -> None:
    policy = make()
    run = policy.begin(PROMPT, T0)
    wait = run.on_error(capacity(), T0 + 1)
    assert isinstance(wait, Wait) and 1.0 <= wait.seconds <= 2.0
    again = run.resume(T0 + 1 + wait.seconds)
    assert isinstance(again, Call) and again.messages == PROMPT
    step = run.on_reply(OK, T0 + 3 + wait.seconds)
    assert isinstance(step, Answer) and step.result.attempts == 2
    assert step.result.latency_s == pytest.approx(3 + wait.seconds)
    assert (policy.stats.retries, policy.stats.attempt_errors) == (1, {"capacity": 1})


def _waits(seed: int) -> list[float]:
    run = make(settings(max_attempts=5), seed=seed).begin(PROMPT, T0)
    now, waits = T0, list[float]()
    while True:
        step = run.on_error(capacity(), now)
        if not isinstance(step, Wait):
            return waits
        waits.append(step.seconds)
        now += step.seconds
        run.resume(now)


def test_same_seed_same_waits_other_seed_other_waits() -> None:
    assert _waits(7) == _waits(7)
    assert _waits(7) != _waits(8)
    assert len(_waits(7)) == 4  # five attempts, four waits


def test_attempts_are_bounded_and_the_setting_named() -> None:
    policy = make()
    run = policy.begin(PROMPT, T0)
    now = T0
    for _ in range(2):
        wait = run.on_error(capacity(), now)
        assert isinstance(wait, Wait)
        now += wait.seconds
        run.resume(now)
    step = run.on_error(capacity(), now)
    assert isinstance(step, GiveUp) and step.error.kind == "capacity"
    assert step.error.attempts == 3 and step.error.fallbacks == 0
    assert step.error.tried == [
        Tried("cloudflare", MODEL, 3, "capacity", "AI_MAX_ATTEMPTS=3 reached")
    ]
    assert policy.stats.failures == {"capacity": 1}


def test_sane_retry_after_replaces_the_backoff_a_long_one_gives_up() -> None:
    run = make().begin(PROMPT, T0)
    wait = run.on_error(error("run_rate_limit_429.json", 429, retry_after="7"), T0)
    assert wait == Wait(7.0)
    run.resume(T0 + 7)
    step = run.on_error(error("run_rate_limit_429.json", 429, retry_after="600"), T0 + 8)
    assert isinstance(step, GiveUp)
    assert step.error.tried[0].why == "Retry-After 600s is over AI_MAX_RETRY_AFTER=30s"


def test_no_wait_ends_past_the_deadline_and_timeouts_shrink_to_it() -> None:
    s = settings(max_attempts=10, timeout=5.0, total_timeout=12.0)
    run = make(s).begin(PROMPT, T0)
    assert call(run).timeout == 5.0
    wait = run.on_error(error("run_rate_limit_429.json", 429, retry_after="4"), T0 + 5)
    assert wait == Wait(4.0)
    assert call_after(run, T0 + 9).timeout == pytest.approx(3.0)  # what is left of 12 s
    step = run.on_error(error("run_rate_limit_429.json", 429, retry_after="4"), T0 + 10)
    assert isinstance(step, GiveUp)  # 10 + 4 would pass 12
    assert step.error.tried[0].why == "AI_TOTAL_TIMEOUT=12s reached"


def call_after(run: ChainRun, now: float) -> Call:
    step = run.resume(now)
    assert isinstance(step, Call)
    return step


def test_context_too_long_retries_once_at_once_with_half_the_turns() -> None:
    run = make().begin(PROMPT, T0)
    step = run.on_error(error("run_context_413.json", 413), T0 + 1)
    assert isinstance(step, Call)
    assert step.messages == (PROMPT[0], PROMPT[-1])  # the persona and the newest message
    final = run.on_error(error("run_context_413.json", 413), T0 + 2)
    assert isinstance(final, GiveUp)
    assert final.error.tried == [
        Tried("cloudflare", MODEL, 2, "context_too_long", "also with a shorter context")
    ]


# ---------------------------------------------------------------- the chain


def test_the_fallback_model_answers_when_the_primary_is_at_capacity() -> None:
    policy = make(settings(MODEL, FALLBACK, max_attempts=1))
    run = policy.begin(PROMPT, T0)
    step = run.on_error(capacity(), T0 + 1)
    assert isinstance(step, Call) and step.provider == 1 and step.messages == PROMPT
    done = run.on_reply(OK, T0 + 2)
    assert isinstance(done, Answer) and done.result.model == FALLBACK
    assert done.result.attempts == 2 and policy.stats.fallbacks == 1


def test_account_wide_errors_skip_the_account_not_the_other_provider() -> None:
    policy = make(settings(MODEL, FALLBACK, openai=True))
    run = policy.begin(PROMPT, T0)
    step = run.on_error(error("run_auth_401.json", 401), T0 + 1)
    assert isinstance(step, Call) and policy.providers[step.provider].name == "openai"
    failed = run.on_error(classify(500, {"error": "boom"}, provider="openai"), T0 + 2)
    assert isinstance(failed, Wait)


def test_everything_failing_gives_the_primary_error_with_what_was_tried() -> None:
    policy = make(settings(MODEL, FALLBACK, max_attempts=1))
    run = policy.begin(PROMPT, T0)
    run.on_error(capacity(), T0 + 1)
    step = run.on_error(error("run_no_model_400.json", 400, FALLBACK), T0 + 2)
    assert isinstance(step, GiveUp)
    e = step.error
    assert e.kind == "capacity" and [x.kind for x in e.chain] == ["capacity", "no_model"]
    assert e.attempts == 2 and e.fallbacks == 1
    assert str(e).startswith("capacity (cloudflare, 429, code 3040): ")
    assert (
        f"tried in order: cloudflare {MODEL} (1 attempt, capacity, AI_MAX_ATTEMPTS=1 reached), "
        f"then cloudflare {FALLBACK} (1 attempt, no_model)"
    ) in str(e)


def test_a_deadline_used_up_leaves_the_fallbacks_not_tried() -> None:
    policy = make(settings(MODEL, FALLBACK, timeout=2.0, total_timeout=8.0))
    run = policy.begin(PROMPT, T0)
    step = run.on_error(capacity(), T0 + 9)
    assert isinstance(step, GiveUp)
    assert step.error.tried == [
        Tried("cloudflare", MODEL, 1, "capacity", "AI_TOTAL_TIMEOUT=8s reached"),
        Tried("cloudflare", FALLBACK, 0, "not tried", "AI_TOTAL_TIMEOUT=8s used up first"),
    ]


# ---------------------------------------------------------------- budget, quota, lockout


def test_budget_refuses_without_a_request_and_reservations_are_released() -> None:
    worst = neurons(MODEL, estimate_input_tokens(PROMPT), 256)
    policy = make(budget=worst * 2.5)
    first, second = policy.begin(PROMPT, T0), policy.begin(PROMPT, T0)
    assert isinstance(first.step, Call) and isinstance(second.step, Call)
    third = policy.begin(PROMPT, T0)
    assert isinstance(third.step, GiveUp) and third.step.error.kind == "budget"
    assert third.step.error.attempts == 0 and "AI_DAILY_NEURON_BUDGET" in str(third.step.error)
    assert policy.stats.requests == 2
    first.on_reply(OK, T0 + 1)
    second.close()  # the driver stopped (cancelled): its reservation is given back
    assert policy.meter is not None and policy.meter.reserved == 0
    assert isinstance(policy.begin(PROMPT, T0 + 2).step, Call)


def test_daily_quota_blocks_until_midnight_utc() -> None:
    policy = make()
    run = policy.begin(PROMPT, T0)
    step = run.on_error(error("run_daily_quota_429.json", 429), T0 + 1)
    assert isinstance(step, GiveUp) and step.error.kind == "daily_quota"
    midnight = next_utc_midnight(T0)
    refused = policy.begin(PROMPT, midnight - 1).step
    assert isinstance(refused, GiveUp) and refused.error.kind == "daily_quota"
    assert "00:00 UTC (in 0h01m)" in str(refused.error)
    assert isinstance(policy.begin(PROMPT, midnight).step, Call)
    assert policy.stats.requests == 2


def test_auth_locks_out_every_later_reply_without_a_request() -> None:
    policy = make(settings(MODEL, FALLBACK))
    run = policy.begin(PROMPT, T0)
    step = run.on_error(error("run_auth_401.json", 401), T0 + 1)
    assert isinstance(step, GiveUp) and step.error.kind == "auth"
    assert policy.lockout.tripped
    later = policy.begin(PROMPT, T0 + 3600).step
    assert isinstance(later, GiveUp) and later.error.kind == "auth"
    assert str(later.error) == AUTH_LOCKED
    assert policy.stats.requests == 1
    event = outcome_event("r9", later, None)
    assert event == GenerationFailed("r9", "auth", AUTH_LOCKED)


def test_auth_with_an_answering_fallback_provider_is_no_lockout() -> None:
    policy = make(settings(MODEL, openai=True))
    run = policy.begin(PROMPT, T0)
    run.on_error(error("run_auth_401.json", 401), T0 + 1)
    assert isinstance(run.on_reply(OK, T0 + 2), Answer)
    assert not policy.lockout.tripped


def test_provider_ids_order_groups_and_metering() -> None:
    s = replace(
        settings(MODEL, FALLBACK),
        openai=OpenAISettings(
            f"https://api.cloudflare.com/client/v4/accounts/{ACCOUNT}/ai/v1", MODEL
        ),
    )
    group = f"cloudflare:{ACCOUNT}"
    assert provider_ids(s) == [
        ProviderId("cloudflare", MODEL, group, True),
        ProviderId("cloudflare", FALLBACK, group, True),
        ProviderId("openai", MODEL, group, True),
    ]
    assert provider_ids(settings(openai=True))[1] == ProviderId(
        "openai", "llama3.2:1b", "openai:http://localhost:11434/v1", False
    )
