"""The daily-quota stop until 00:00 UTC (freezegun), the neuron budget, the day rollover."""

from __future__ import annotations

import httpx
import pytest
import respx
from freezegun import freeze_time
from wapa.adapters.llm import BudgetError, DailyQuotaError, ServerError, client_from_env
from wapa.adapters.llm.usage import (
    UNKNOWN_RATE,
    estimate_input_tokens,
    neuron_rate,
    neurons,
    next_utc_midnight,
)
from wapa.core.events import ChatMessage

from tests.support.llm import RUN_URL, VirtualTime, cf_env, reply

PROMPT = (ChatMessage("system", "You are the assistant."), ChatMessage("user", "Hi there"))


async def _noop_sleep(seconds: float) -> None:
    return None


@respx.mock
async def test_daily_quota_stops_calls_until_midnight_utc() -> None:
    route = respx.post(RUN_URL).mock(
        side_effect=[reply("run_daily_quota_429.json", 429), reply("run_success.json", 200)]
    )
    with freeze_time("2025-03-10 21:30:00", tz_offset=0) as frozen:
        client = client_from_env(cf_env(), sleep=_noop_sleep)  # the default clock: time.time
        with pytest.raises(DailyQuotaError) as first:
            await client.generate(PROMPT)
        assert route.call_count == 1 and first.value.code == 4006
        assert client.stats.quota_blocked_until == next_utc_midnight(frozen().timestamp())

        with pytest.raises(DailyQuotaError) as refused:
            await client.generate(PROMPT)
        assert route.call_count == 1  # refused without asking
        assert "00:00 UTC (in 2h30m)" in str(refused.value)

        frozen.move_to("2025-03-10 23:59:59")
        with pytest.raises(DailyQuotaError):
            await client.generate(PROMPT)
        assert route.call_count == 1

        frozen.move_to("2025-03-11 00:00:00")
        result = await client.generate(PROMPT)
        assert result.text and route.call_count == 2
        assert client.stats.quota_blocked_until == 0.0
        assert client.stats.failures == {"daily_quota": 3}


@respx.mock
async def test_daily_quota_is_not_retried() -> None:
    route = respx.post(RUN_URL).mock(return_value=reply("run_daily_quota_429.json", 429))
    vt = VirtualTime()
    with pytest.raises(DailyQuotaError):
        await client_from_env(cf_env(), clock=vt.clock, sleep=vt.sleep).generate(PROMPT)
    assert route.call_count == 1 and vt.sleeps == []


@respx.mock
async def test_budget_stops_before_the_allocation_is_exceeded() -> None:
    route = respx.post(RUN_URL).mock(return_value=reply("run_success.json", 200))
    with freeze_time("2025-03-10 12:00:00") as frozen:
        client = client_from_env(cf_env(AI_DAILY_NEURON_BUDGET="20"), sleep=_noop_sleep)
        per_call = neurons("@cf/meta/llama-3.2-1b-instruct", 312, 31)
        done = 0
        with pytest.raises(BudgetError) as info:
            for _ in range(100):
                await client.generate(PROMPT)
                done += 1
        assert route.call_count == done
        spent = client.stats.neurons_today
        assert spent == pytest.approx(done * per_call)
        assert spent <= 20
        # it stopped because the worst case of one more call (all of max_tokens) would pass
        # 20, and not earlier: the call before was still within it
        worst = neurons("@cf/meta/llama-3.2-1b-instruct", estimate_input_tokens(PROMPT), 256)
        assert spent + worst > 20 >= spent - per_call + worst
        assert info.value.kind == "budget" and not info.value.retryable
        assert "AI_DAILY_NEURON_BUDGET" in str(info.value) and "00:00 UTC" in str(info.value)
        assert client.stats.budget_left == pytest.approx(20 - spent)

        frozen.move_to("2025-03-11 00:00:01")  # a new UTC day: the budget is back
        await client.generate(PROMPT)
        assert client.stats.neurons_today == pytest.approx(per_call)


@respx.mock
async def test_budget_off() -> None:
    respx.post(RUN_URL).mock(return_value=reply("run_success.json", 200))
    vt = VirtualTime()
    client = client_from_env(cf_env(AI_DAILY_NEURON_BUDGET="off"), clock=vt.clock, sleep=vt.sleep)
    for _ in range(3):
        await client.generate(PROMPT)
    assert client.stats.budget_left is None and client.stats.neurons_today > 0


def test_rates() -> None:
    assert neuron_rate("@cf/meta/llama-3.2-1b-instruct") == (2457, 18252)
    assert neuron_rate("@cf/someone/new-model") == UNKNOWN_RATE
    assert neuron_rate("@cf/someone/new-model", 100, 200) == (100, 200)
    assert neurons("@cf/meta/llama-3.2-1b-instruct", 1_000_000, 0) == pytest.approx(2457)


@respx.mock
async def test_rate_overrides_from_env() -> None:
    respx.post(RUN_URL).mock(return_value=reply("run_success.json", 200))
    vt = VirtualTime()
    env = cf_env(AI_NEURONS_PER_M_INPUT="1000000", AI_NEURONS_PER_M_OUTPUT="0")
    result = await client_from_env(env, clock=vt.clock, sleep=vt.sleep).generate(PROMPT)
    assert result.neurons == pytest.approx(312)


def test_next_utc_midnight() -> None:
    with freeze_time("2025-12-31 23:59:59"):
        import time

        assert next_utc_midnight(time.time()) == 1767225600.0  # 2026-01-01T00:00:00Z


@respx.mock
async def test_unmetered_failures_cost_nothing() -> None:
    respx.post(RUN_URL).mock(return_value=httpx.Response(500, json={"errors": []}))
    vt = VirtualTime()
    client = client_from_env(cf_env(), clock=vt.clock, sleep=vt.sleep)
    with pytest.raises(ServerError):
        await client.generate(PROMPT)
    assert client.stats.neurons_today == 0


@respx.mock
async def test_concurrent_calls_cannot_overrun_the_budget() -> None:
    import asyncio

    gate = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        await gate.wait()  # every admitted call is in flight at the same time
        return httpx.Response(
            200,
            json={
                "success": True,
                "result": {
                    "response": "Noted, thanks.",
                    "usage": {"prompt_tokens": 100, "completion_tokens": 256},
                },
            },
        )

    route = respx.post(RUN_URL).mock(side_effect=slow)
    vt = VirtualTime()
    client = client_from_env(cf_env(AI_DAILY_NEURON_BUDGET="12"), clock=vt.clock, sleep=vt.sleep)
    worst = neurons("@cf/meta/llama-3.2-1b-instruct", estimate_input_tokens(PROMPT), 256)
    tasks = [asyncio.create_task(client.generate(PROMPT)) for _ in range(5)]
    for _ in range(10):
        await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    admitted = int(12 // worst)
    assert route.call_count == admitted == 2
    assert sum(isinstance(r, BudgetError) for r in results) == 5 - admitted
    assert client.stats.neurons_today <= 12


def test_meter_export_and_restore_across_a_restart() -> None:
    from wapa.adapters.llm.usage import LLMStats, NeuronMeter

    vt = VirtualTime(1_741_642_200.0)  # 2025-03-10 21:30 UTC
    first = NeuronMeter(100.0, vt.clock, LLMStats())
    first.record("@cf/meta/llama-3.2-1b-instruct", 1000, 100)
    first.block_until_midnight()
    saved = first.export()
    midnight = next_utc_midnight(vt.now)
    assert saved == {"day": "2025-03-10", "spent": round(first.spent, 6), "blocked_until": midnight}

    vt.now += 60
    stats = LLMStats()
    again = NeuronMeter(100.0, vt.clock, stats)
    again.restore(saved)
    assert stats.neurons_today == pytest.approx(first.spent)
    assert stats.budget_left == pytest.approx(100.0 - first.spent)
    assert stats.quota_blocked_until == midnight
    with pytest.raises(DailyQuotaError):
        again.check("@cf/meta/llama-3.2-1b-instruct", PROMPT, 16)

    vt.now = midnight + 1  # a new UTC day: yesterday's spend and block are gone
    fresh = NeuronMeter(100.0, vt.clock, LLMStats())
    fresh.restore(saved)
    assert fresh.export() == {"day": "2025-03-11", "spent": 0.0, "blocked_until": 0.0}


def test_meter_restore_caps_a_block_at_the_next_midnight_and_refuses_bad_state() -> None:
    from wapa.adapters.llm.usage import LLMStats, NeuronMeter

    vt = VirtualTime(1_741_642_200.0)
    meter = NeuronMeter(100.0, vt.clock, LLMStats())
    meter.restore({"day": "2025-03-10", "spent": 1.0, "blocked_until": vt.now + 30 * 86400})
    assert meter.blocked_until == next_utc_midnight(vt.now)  # Cloudflare resets at 00:00 UTC
    for bad, field in (
        ({"day": 20250310, "spent": 1.0}, "'day'"),
        ({"day": "2025-03-10", "spent": "lots"}, "'spent'"),
        ({"day": "2025-03-10", "spent": float("nan")}, "'spent'"),
        ({"day": "2025-03-10", "spent": 1.0, "blocked_until": -5}, "'blocked_until'"),
        ([1, 2], "object"),
    ):
        with pytest.raises(ValueError, match=field):
            meter.restore(bad)  # type: ignore[arg-type]
    assert meter.spent == 1.0  # unchanged by the refused ones
