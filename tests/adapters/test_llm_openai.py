"""The OpenAI-compatible provider, the fallback order, and the health check (no generation)."""

from __future__ import annotations

import json

import httpx
import pytest
import respx
from wapa.adapters.llm import AuthError, CapacityError, ModelError, client_from_env
from wapa.core.events import ChatMessage

from tests.support.llm import ACCOUNT, BASE, RUN_URL, VirtualTime, cf_env, fixture, reply

PROMPT = (ChatMessage("system", "You are the assistant."), ChatMessage("user", "Hi there"))
OLLAMA = "http://localhost:11434/v1"
FALLBACK = "@cf/meta/llama-3.2-3b-instruct"
FALLBACK_URL = f"{BASE}/accounts/{ACCOUNT}/ai/run/{FALLBACK}"


def openai_env(**extra: str) -> dict[str, str]:
    return {"OPENAI_BASE_URL": OLLAMA, "OPENAI_MODEL": "llama3.2:1b", **extra}


def make(env: dict[str, str], vt: VirtualTime | None = None):  # noqa: ANN201
    vt = vt or VirtualTime()
    return client_from_env(env, clock=vt.clock, sleep=vt.sleep)


@respx.mock
async def test_openai_compatible_request_and_result() -> None:
    route = respx.post(f"{OLLAMA}/chat/completions").mock(
        return_value=httpx.Response(200, json=fixture("openai_chat_completion.json"))
    )
    result = await make(openai_env(OPENAI_API_KEY="sk-test")).generate(PROMPT)
    assert result.text == "Thanks, I have passed this on to Gilad."
    assert (result.provider, result.model) == ("openai", "llama3.2:1b")
    assert (result.input_tokens, result.output_tokens, result.neurons) == (120, 11, 0.0)
    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer sk-test"
    body = json.loads(request.content)
    assert body["model"] == "llama3.2:1b" and body["stream"] is False
    assert body["messages"] == [{"role": m.role, "content": m.content} for m in PROMPT]


@respx.mock
async def test_no_key_no_authorization_header() -> None:
    route = respx.post(f"{OLLAMA}/chat/completions").mock(
        return_value=httpx.Response(200, json=fixture("openai_chat_completion.json"))
    )
    await make(openai_env()).generate(PROMPT)
    assert "authorization" not in route.calls.last.request.headers


@pytest.mark.parametrize(
    "body",
    [
        {"choices": []},
        {"choices": [{"message": {"role": "assistant", "content": ""}}]},
        {"choices": [{"message": {"role": "assistant", "content": None}}]},
        {"error": {"message": "boom"}},
    ],
)
@respx.mock
async def test_openai_empty_or_error_200_is_not_success(body: dict[str, object]) -> None:
    respx.post(f"{OLLAMA}/chat/completions").mock(return_value=httpx.Response(200, json=body))
    with pytest.raises(ModelError) as info:
        await make(openai_env()).generate(PROMPT)
    assert info.value.kind in ("bad_response", "server_error")


@respx.mock
async def test_openai_auth_error_is_not_retried() -> None:
    body = {
        "error": {
            "message": "Incorrect API key",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
    }
    route = respx.post(f"{OLLAMA}/chat/completions").mock(
        return_value=httpx.Response(401, json=body)
    )
    with pytest.raises(AuthError) as info:
        await make(openai_env(OPENAI_API_KEY="sk-bad")).generate(PROMPT)
    assert route.call_count == 1 and "OPENAI_API_KEY" in str(info.value)


@respx.mock
async def test_fallback_order_primary_then_models_then_second_provider() -> None:
    calls: list[str] = []

    def record(name: str, response: httpx.Response):  # noqa: ANN202
        def side_effect(request: httpx.Request) -> httpx.Response:
            calls.append(name)
            return response

        return side_effect

    respx.post(RUN_URL).mock(side_effect=record("primary", reply("run_capacity_429.json", 429)))
    respx.post(FALLBACK_URL).mock(
        side_effect=record("fallback", reply("run_no_model_400.json", 400))
    )
    respx.post(f"{OLLAMA}/chat/completions").mock(
        side_effect=record(
            "openai", httpx.Response(200, json=fixture("openai_chat_completion.json"))
        )
    )
    env = {**cf_env(AI_FALLBACK_MODELS=f" {FALLBACK} ,"), **openai_env()}
    client = make(env)
    result = await client.generate(PROMPT)
    assert calls == ["primary"] * 3 + ["fallback", "openai"]
    assert result.provider == "openai" and result.attempts == 5
    assert client.stats.fallbacks == 2 and client.stats.successes == 1
    assert client.stats.failures == {}
    assert client.stats.attempt_errors == {"capacity": 3, "no_model": 1}


@respx.mock
async def test_fallback_model_takes_over_when_primary_is_overloaded() -> None:
    respx.post(RUN_URL).mock(return_value=reply("run_capacity_429.json", 429))
    respx.post(FALLBACK_URL).mock(return_value=reply("run_success.json", 200))
    result = await make(cf_env(AI_FALLBACK_MODELS=FALLBACK)).generate(PROMPT)
    assert result.model == FALLBACK
    assert result.neurons == pytest.approx((312 * 4625 + 31 * 30475) / 1e6)


@pytest.mark.parametrize(
    ("name", "status", "kind"),
    [("run_auth_401.json", 401, "auth"), ("run_daily_quota_429.json", 429, "daily_quota")],
)
@respx.mock
async def test_account_wide_errors_skip_the_other_cloudflare_models(
    name: str, status: int, kind: str
) -> None:
    primary = respx.post(RUN_URL).mock(return_value=reply(name, status))
    fallback = respx.post(FALLBACK_URL).mock(return_value=reply("run_success.json", 200))
    other = respx.post(f"{OLLAMA}/chat/completions").mock(
        return_value=httpx.Response(200, json=fixture("openai_chat_completion.json"))
    )
    env = {**cf_env(AI_FALLBACK_MODELS=FALLBACK), **openai_env()}
    result = await make(env).generate(PROMPT)
    assert primary.call_count == 1 and fallback.call_count == 0 and other.call_count == 1
    assert result.provider == "openai"


@respx.mock
async def test_budget_stop_moves_on_to_an_unmetered_provider() -> None:
    primary = respx.post(RUN_URL).mock(return_value=reply("run_success.json", 200))
    respx.post(f"{OLLAMA}/chat/completions").mock(
        return_value=httpx.Response(200, json=fixture("openai_chat_completion.json"))
    )
    env = {**cf_env(AI_DAILY_NEURON_BUDGET="1"), **openai_env()}
    result = await make(env).generate(PROMPT)
    assert primary.call_count == 0 and result.provider == "openai"


@respx.mock
async def test_when_everything_fails_the_primary_error_is_raised_with_the_chain() -> None:
    respx.post(RUN_URL).mock(return_value=reply("run_capacity_429.json", 429))
    respx.post(FALLBACK_URL).mock(return_value=reply("run_no_model_400.json", 400))
    respx.post(f"{OLLAMA}/chat/completions").mock(side_effect=httpx.ConnectError("refused"))
    env = {**cf_env(AI_FALLBACK_MODELS=FALLBACK), **openai_env()}
    client = make(env)
    with pytest.raises(CapacityError) as info:
        await client.generate(PROMPT)
    assert [e.kind for e in info.value.chain] == ["capacity", "no_model", "unreachable"]
    assert info.value.attempts == 3 + 1 + 3
    assert client.stats.failures == {"capacity": 1}


@respx.mock
async def test_the_total_deadline_covers_the_whole_chain() -> None:
    respx.post(RUN_URL).mock(return_value=reply("run_capacity_429.json", 429, {"Retry-After": "5"}))
    fallback = respx.post(FALLBACK_URL).mock(return_value=reply("run_success.json", 200))
    vt = VirtualTime()
    env = cf_env(
        AI_FALLBACK_MODELS=FALLBACK, AI_TIMEOUT="1", AI_TOTAL_TIMEOUT="9", AI_MAX_ATTEMPTS="10"
    )
    client = make(env, vt)
    result = await client.generate(PROMPT)  # 5 s + 5 s would pass 9 s: move on after one wait
    assert vt.sleeps == [5.0] and fallback.call_count == 1 and result.model == FALLBACK


@respx.mock
async def test_cloudflare_openai_endpoint_is_metered() -> None:
    base = f"https://api.cloudflare.com/client/v4/accounts/{ACCOUNT}/ai/v1"
    respx.post(f"{base}/chat/completions").mock(
        return_value=httpx.Response(200, json=fixture("openai_chat_completion.json"))
    )
    env = {
        "OPENAI_BASE_URL": base,
        "OPENAI_MODEL": "@cf/meta/llama-3.2-1b-instruct",
        "OPENAI_API_KEY": "cf-token",
    }
    result = await make(env).generate(PROMPT)
    assert result.neurons == pytest.approx((120 * 2457 + 11 * 18252) / 1e6)


# ---------------------------------------------------------------- health


@respx.mock
async def test_health_costs_no_generation_and_is_cached() -> None:
    run = respx.post(RUN_URL).mock(return_value=reply("run_success.json", 200))
    verify = respx.get(f"{BASE}/user/tokens/verify").mock(
        return_value=httpx.Response(
            200, json={"success": True, "result": {"id": "x", "status": "active"}}
        )
    )
    models = respx.get(f"{OLLAMA}/models").mock(
        return_value=httpx.Response(200, json={"data": [{"id": "llama3.2:1b"}]})
    )
    vt = VirtualTime()
    client = make({**cf_env(AI_FALLBACK_MODELS=FALLBACK), **openai_env()}, vt)
    report = await client.health()
    assert report["ok"] and report["status"] == "ok" and not report["cached"]
    assert [p["provider"] for p in report["providers"]] == ["cloudflare", "openai"]
    assert report["providers"][1]["model_listed"] is True
    assert verify.call_count == 1 and models.call_count == 1  # one check per account
    vt.now += 30
    assert (await client.health())["cached"]
    assert verify.call_count == 1
    vt.now += 31
    assert not (await client.health())["cached"]
    assert verify.call_count == 2
    assert run.call_count == 0 and client.stats.requests == 0 and client.stats.neurons_today == 0


@respx.mock
async def test_health_account_token_and_failures() -> None:
    respx.get(f"{BASE}/user/tokens/verify").mock(
        return_value=httpx.Response(
            401, json={"success": False, "errors": [{"code": 1000, "message": "Invalid API Token"}]}
        )
    )
    account = respx.get(f"{BASE}/accounts/{ACCOUNT}/tokens/verify").mock(
        return_value=httpx.Response(
            200, json={"success": True, "result": {"id": "x", "status": "active"}}
        )
    )
    report = await make(cf_env()).health()
    assert report["ok"] and account.call_count == 1

    account.mock(
        return_value=httpx.Response(200, json={"success": True, "result": {"status": "expired"}})
    )
    report = await make(cf_env()).health()
    assert not report["ok"] and report["status"] == "down"
    assert report["providers"][0]["kind"] == "auth"


@respx.mock
async def test_health_never_raises() -> None:
    respx.get(f"{BASE}/user/tokens/verify").mock(side_effect=httpx.ConnectError("refused"))
    respx.get(f"{OLLAMA}/models").mock(return_value=httpx.Response(404, text="404 page not found"))
    report = await make({**cf_env(), **openai_env()}).health()
    assert report["status"] == "degraded"
    assert report["providers"][0]["kind"] == "unreachable"
    assert report["providers"][1]["ok"]


def test_no_neuron_budget_without_cloudflare() -> None:
    assert make(openai_env()).stats.budget_left is None
    assert make(cf_env()).stats.budget_left == 10_000
