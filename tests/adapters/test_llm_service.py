"""The model service the runner wraps around its client (adapters/llm/service.py): Generate ->
Generated | GenerationFailed (never an exception), the auth lockout, the concurrency bound,
metrics and log events, health state, and the saved daily usage. The real client underneath,
with respx at the transport answering real-shaped Cloudflare bodies; virtual time."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
import respx
from wapa.adapters.llm import (
    AUTH_LOCKED,
    AuthError,
    GenerationResult,
    LLMStats,
    ModelService,
    client_from_env,
)
from wapa.adapters.llm.fallback import ModelChain
from wapa.adapters.llm.usage import neurons
from wapa.adapters.metrics import Metrics
from wapa.core.events import ChatMessage, Generate, Generated, GenerationFailed

from tests.support.llm import MODEL, RUN_URL, VirtualTime, cf_env, reply

PROMPT = (ChatMessage("system", "You are Dana."), ChatMessage("user", "Hi, is Gilad around?"))


def gen(request_id: str = "r1") -> Generate:
    return Generate(request_id, "alice@s.whatsapp.net", PROMPT)


def make(vt: VirtualTime, **env: str) -> tuple[ModelService, ModelChain, Metrics]:
    client = client_from_env(cf_env(**env), clock=vt.clock, sleep=vt.sleep)
    metrics = Metrics()
    return ModelService(client, metrics=metrics, monotonic=vt.clock), client, metrics


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels or None)
    return 0.0 if value is None else value


def events(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "wapa.model"]


@respx.mock
async def test_an_answer_is_generated_with_the_budget_left_and_metered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "wapa.model")
    respx.post(RUN_URL).mock(
        side_effect=[reply("run_capacity_429.json", 429), reply("run_success.json", 200)]
    )
    vt = VirtualTime()
    service, client, m = make(vt)
    assert service.state == "unknown"
    event = await service.generate(gen())
    spent = neurons(MODEL, 312, 31)
    assert isinstance(event, Generated) and event.request_id == "r1"
    assert event.text.startswith("Hi Dana, thanks for your message.")
    assert event.budget_left == pytest.approx(10_000 - spent)
    assert service.state == "ok" and service.budget_left == pytest.approx(10_000 - spent)
    assert service.component() == {"state": "ok", "budget_left": round(10_000 - spent, 1)}
    assert sample(m, "wapa_model_requests_total") == 1
    assert sample(m, "wapa_model_retries_total") == 1
    assert sample(m, "wapa_model_neurons_total") == pytest.approx(spent)
    assert sample(m, "wapa_model_tokens_total", direction="input") == 312
    assert sample(m, "wapa_model_tokens_total", direction="output") == 31
    assert sample(m, "wapa_model_latency_seconds_count") == 1
    assert sample(m, "wapa_model_latency_seconds_sum") == pytest.approx(vt.sleeps[0])
    assert sample(m, "wapa_generations_in_flight") == 0
    assert events(caplog) == ["generated"]


@respx.mock
async def test_exhausted_retries_are_a_generation_failed_with_the_kind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    route = respx.post(RUN_URL).mock(return_value=reply("run_capacity_429.json", 429))
    service, client, m = make(VirtualTime())
    event = await service.generate(gen())
    assert isinstance(event, GenerationFailed) and event.kind == "capacity"
    assert event.detail.startswith("capacity (cloudflare, 429, code 3040): ")
    assert len(event.detail) <= 200 and event.budget_left == 10_000
    assert route.call_count == 3
    assert service.state == "failing (capacity)" and service.healthy
    assert sample(m, "wapa_model_failures_total", kind="capacity") == 1
    assert "model_failed" in events(caplog)
    respx.post(RUN_URL).mock(return_value=reply("run_success.json", 200))
    assert isinstance(await service.generate(gen("r2")), Generated)
    assert service.state == "ok"


@respx.mock
async def test_auth_locks_out_later_generations_without_a_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    route = respx.post(RUN_URL).mock(return_value=reply("run_auth_401.json", 401))
    service, client, m = make(VirtualTime())
    first = await service.generate(gen("r1"))
    assert isinstance(first, GenerationFailed) and first.kind == "auth"
    assert "CLOUDFLARE_API_TOKEN" in first.detail
    assert service.state == "auth_rejected" and not service.healthy
    second = await service.generate(gen("r2"))
    assert second == GenerationFailed("r2", "auth", AUTH_LOCKED, budget_left=10_000)
    assert route.call_count == 1  # no request for the second
    assert client.lockout is service.lockout  # one rule: the policy's lockout
    assert sample(m, "wapa_model_failures_total", kind="auth") == 2
    assert sample(m, "wapa_model_requests_total") == 1
    assert events(caplog) == ["model_auth_rejected"]


class _Client:
    """A client that is not a ModelChain (as the runner's tests use)."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.fail = fail
        self.calls = 0
        self.stats = LLMStats()

    async def generate(self, messages: Sequence[ChatMessage]) -> GenerationResult:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        return GenerationResult("Noted.", "m", 1, 1, 0.0, 1, 0.1)

    async def health(self) -> dict[str, Any]:
        return {"ok": True}

    async def aclose(self) -> None:
        return None


async def test_the_lockout_holds_for_any_client() -> None:
    client = _Client(AuthError("Authentication error", provider="cloudflare"))
    service = ModelService(client)
    assert (await service.generate(gen("r1"))).kind == "auth"  # type: ignore[union-attr]
    assert await service.generate(gen("r2")) == GenerationFailed("r2", "auth", AUTH_LOCKED)
    assert client.calls == 1


async def test_an_unexpected_exception_is_kind_internal_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = ModelService(_Client(RuntimeError("boom")))
    event = await service.generate(gen())
    assert event == GenerationFailed("r1", "internal", "RuntimeError: boom")
    assert service.state == "failing (internal)"
    assert sample(service.metrics, "wapa_model_failures_total", kind="internal") == 1
    assert "model_call_crashed" in events(caplog)
    assert sample(service.metrics, "wapa_generations_in_flight") == 0


async def test_cancellation_is_not_swallowed() -> None:
    service = ModelService(_Client(asyncio.CancelledError()))
    with pytest.raises(asyncio.CancelledError):
        await service.generate(gen())
    assert sample(service.metrics, "wapa_generations_in_flight") == 0


async def test_without_a_client_every_generation_is_unavailable() -> None:
    service = ModelService(None)
    assert service.state == "not_configured" and service.budget_left is None
    event = await service.generate(gen())
    assert event == GenerationFailed("r1", "unavailable", "no model configured")
    assert service.usage_json() is None and service.restore_usage("{}") is False


@respx.mock
async def test_concurrent_generations_are_bounded() -> None:
    gate = asyncio.Event()
    running = [0, 0]  # now, most

    async def slow(request: httpx.Request) -> httpx.Response:
        running[0] += 1
        running[1] = max(running)
        await gate.wait()
        running[0] -= 1
        return reply("run_success.json", 200)

    respx.post(RUN_URL).mock(side_effect=slow)
    client = client_from_env(cf_env(), clock=VirtualTime().clock)
    service = ModelService(client, max_concurrent=2)
    tasks = [asyncio.create_task(service.generate(gen(f"r{i}"))) for i in range(5)]
    for _ in range(20):
        await asyncio.sleep(0)
    assert running == [2, 2]
    assert sample(service.metrics, "wapa_generations_in_flight") == 2
    gate.set()
    results = await asyncio.gather(*tasks)
    assert all(isinstance(r, Generated) for r in results) and running[1] == 2


# ---------------------------------------------------------------- the saved daily usage


@respx.mock
async def test_usage_is_offered_when_it_changed_and_restored_after_a_restart() -> None:
    respx.post(RUN_URL).mock(return_value=reply("run_success.json", 200))
    vt = VirtualTime()
    service, _, _ = make(vt)
    first = service.usage_json()
    assert first is not None and json.loads(first)["spent"] == 0
    service.mark_saved(first)
    assert service.usage_json() is None  # unchanged since saved
    await service.generate(gen())
    saved = service.usage_json()
    assert saved is not None and json.loads(saved)["spent"] == pytest.approx(
        neurons(MODEL, 312, 31)
    )
    service.mark_saved(saved)

    again, _, _ = make(vt)  # a restart: a new process, the same day
    assert again.restore_usage(saved) is True
    assert again.budget_left == pytest.approx(10_000 - neurons(MODEL, 312, 31))
    assert again.usage_json() is None  # what was restored is what is saved


async def test_a_damaged_saved_usage_is_logged_and_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service, _, _ = make(VirtualTime())
    for damaged in ("{not json", '{"day": 5}', "[1, 2]"):
        assert service.restore_usage(damaged) is False
    assert events(caplog).count("model_usage_unreadable") == 3
    assert service.budget_left == 10_000
    assert service.restore_usage(None) is False  # nothing saved yet: nothing to say


@respx.mock
async def test_a_saved_quota_block_is_honoured_after_a_restart() -> None:
    route = respx.post(RUN_URL).mock(return_value=reply("run_daily_quota_429.json", 429))
    vt = VirtualTime()
    service, _, _ = make(vt)
    assert (await service.generate(gen())).kind == "daily_quota"  # type: ignore[union-attr]
    saved = service.usage_json()
    assert saved is not None
    again, _, _ = make(vt)
    again.restore_usage(saved)
    event = await again.generate(gen("r2"))
    assert isinstance(event, GenerationFailed) and event.kind == "daily_quota"
    assert route.call_count == 1
