"""Issue 13, part A: Cloudflare errors as a real account meets them, each from a real-shaped
body (tests/fixtures/cloudflare, built from Cloudflare's errors table) through respx and the
whole chain (policy, fallbacks, meter)."""

from __future__ import annotations

import json

import httpx
import pytest
import respx
from wapa.adapters.llm import client_from_env
from wapa.adapters.llm.errors import ModelError, classify
from wapa.adapters.llm.fallback import ModelChain
from wapa.adapters.llm.usage import neurons
from wapa.core.events import ChatMessage

from tests.support.llm import ACCOUNT, BASE, MODEL, RUN_URL, VirtualTime, cf_env, reply, success

PROMPT = (
    ChatMessage("system", "You are Dana, the assistant of Gilad."),
    ChatMessage("user", "Hi, is Gilad around?"),
    ChatMessage("assistant", "He is in a meeting."),
    ChatMessage("user", "Please ask him to call me."),
)
VISION = "@cf/meta/llama-3.2-11b-vision-instruct"
SECOND = "@cf/meta/llama-3.2-3b-instruct"
THIRD = "@cf/meta/llama-3.1-8b-instruct-fp8-fast"


def url(model: str) -> str:
    return f"{BASE}/accounts/{ACCOUNT}/ai/run/{model}"


def make(vt: VirtualTime, **env: str) -> ModelChain:
    return client_from_env(cf_env(**env), clock=vt.clock, sleep=vt.sleep)


async def fails(client: ModelChain) -> ModelError:
    with pytest.raises(ModelError) as info:
        await client.generate(PROMPT)
    return info.value


# ---------------------------------------------------------------- 1. model-scoped 403s


@pytest.mark.parametrize(
    ("name", "code", "words"),
    [
        ("run_model_terms_403.json", 5016, ["license terms", '{"prompt": "agree"}', "wapa ask"]),
        ("run_not_allowed_403.json", 5018, ["may not use this model", "AI_FALLBACK_MODELS"]),
        ("run_private_model_403.json", 3041, ["may not use this model"]),
        ("run_paid_only_403.json", 5035, ["Workers Paid", "choose another model"]),
    ],
)
@respx.mock
async def test_a_model_scoped_403_skips_that_model_only(
    name: str, code: int, words: list[str]
) -> None:
    first = respx.post(url(VISION)).mock(return_value=reply(name, 403))
    second = respx.post(url(SECOND)).mock(return_value=success("Gilad will call you back."))
    vt = VirtualTime()
    client = make(vt, AI_MODEL_NAME=VISION, AI_FALLBACK_MODELS=SECOND)
    result = await client.generate(PROMPT)
    assert result.model == SECOND and result.text == "Gilad will call you back."
    assert first.call_count == 1 and second.call_count == 1  # not retried, not account-wide
    assert vt.sleeps == []
    assert not client.lockout.tripped  # the token is fine: no auth lockout

    alone = make(VirtualTime(), AI_MODEL_NAME=VISION)
    error = await fails(alone)
    assert (error.kind, error.code, error.retryable) == ("model_access", code, False)
    text = str(error)
    for word in words:
        assert word in text
    assert "CLOUDFLARE_API_TOKEN" not in text  # it does not send the user to fix the token
    assert not alone.lockout.tripped


# ---------------------------------------------------------------- 2. account blocked


@respx.mock
async def test_account_blocked_is_not_retried_and_skips_the_account() -> None:
    first = respx.post(RUN_URL).mock(return_value=reply("run_account_blocked_403.json", 403))
    second = respx.post(url(SECOND)).mock(return_value=success())
    vt = VirtualTime()
    error = await fails(make(vt, AI_FALLBACK_MODELS=SECOND))
    assert (error.kind, error.code, error.retryable) == ("account_blocked", 3023, False)
    assert first.call_count == 1 and second.call_count == 0 and vt.sleeps == []
    assert "contact Cloudflare support" in str(error)
    assert "same account" in str(error)  # the fallback says why it was skipped
    # the text alone (no code) is not a server error either
    assert classify(403, {"errors": [{"message": "Service unavailable for account"}]}).kind == (
        "account_blocked"
    )


# ---------------------------------------------------------------- 3. /ai/v1 health


@respx.mock
async def test_health_of_cloudflares_openai_endpoint_is_reachable_on_405_7001() -> None:
    base = f"https://api.cloudflare.com/client/v4/accounts/{ACCOUNT}/ai/v1"
    models = respx.get(f"{base}/models").mock(
        return_value=httpx.Response(
            405,
            json={
                "success": False,
                "errors": [{"code": 7001, "message": "Method not allowed"}],
                "messages": [],
                "result": None,
            },
        )
    )
    chat = respx.post(f"{base}/chat/completions")
    env = {"OPENAI_BASE_URL": base, "OPENAI_MODEL": MODEL, "OPENAI_API_KEY": "cf-token"}
    report = await client_from_env(env).health()
    assert report["ok"] and report["status"] == "ok"
    assert report["providers"][0]["detail"] == "reachable (no /models endpoint)"
    assert models.call_count == 1 and chat.call_count == 0  # no generation, no neurons


# ---------------------------------------------------------------- 4. billed answers are metered


@respx.mock
async def test_an_empty_billed_answer_is_metered_then_retried() -> None:
    route = respx.post(RUN_URL).mock(
        side_effect=[reply("run_empty_200.json", 200), reply("run_success.json", 200)]
    )
    vt = VirtualTime()
    client = make(vt)
    result = await client.generate(PROMPT)
    assert route.call_count == 2 and result.attempts == 2
    empty = neurons(MODEL, 318, 0)  # the empty answer's own usage
    assert result.neurons == pytest.approx(neurons(MODEL, 312, 31))
    assert client.stats.neurons_today == pytest.approx(empty + result.neurons)
    assert client.stats.input_tokens == 318 + 312


@respx.mock
async def test_an_empty_answer_without_usage_is_metered_on_the_estimate() -> None:
    empty = httpx.Response(200, json={"result": {"response": " "}, "success": True, "errors": []})
    respx.post(RUN_URL).mock(side_effect=[empty, empty, empty])
    vt = VirtualTime()
    client = make(vt)
    error = await fails(client)
    assert error.kind == "bad_response"
    assert client.stats.neurons_today > 0  # three billed answers, estimated input
    assert client.stats.budget_left == pytest.approx(10_000 - client.stats.neurons_today)


# ---------------------------------------------------------------- 5. 4006 and the daily block


@respx.mock
async def test_4006_blocks_until_midnight_only_when_it_is_about_the_daily_allocation() -> None:
    route = respx.post(RUN_URL).mock(
        side_effect=[reply("run_4006_not_quota_429.json", 429), reply("run_success.json", 200)]
    )
    vt = VirtualTime()
    client = make(vt)
    result = await client.generate(PROMPT)  # a rate limit: retried after a backoff
    assert route.call_count == 2 and result.attempts == 2 and len(vt.sleeps) == 1
    assert client.stats.quota_blocked_until == 0.0

    route.mock(return_value=reply("run_daily_quota_429.json", 429))
    error = await fails(client)
    assert error.kind == "daily_quota" and client.stats.quota_blocked_until > vt.now


# ---------------------------------------------------------------- 6. routing errors


@respx.mock
async def test_a_routing_404_names_the_setting_and_does_not_walk_the_chain() -> None:
    first = respx.post(RUN_URL).mock(return_value=reply("run_no_route_404.json", 404))
    second = respx.post(url(SECOND)).mock(return_value=success())
    vt = VirtualTime()
    client = make(vt, AI_FALLBACK_MODELS=SECOND)
    error = await fails(client)
    assert (error.kind, error.retryable) == ("bad_route", False)
    assert error.code in (7000, 7003)
    text = str(error)
    assert "CLOUDFLARE_API_BASE" in text and "CLOUDFLARE_ACCOUNT_ID" in text
    assert "unknown model" not in text and "AI_MODEL_NAME" not in text
    assert first.call_count == 1 and second.call_count == 0  # the same account fails alike
    assert not client.lockout.tripped


@respx.mock
async def test_an_invalid_model_id_404_moves_on_down_the_chain() -> None:
    respx.post(RUN_URL).mock(return_value=reply("run_invalid_model_404.json", 404))
    respx.post(url(SECOND)).mock(return_value=success())
    result = await make(VirtualTime(), AI_FALLBACK_MODELS=SECOND).generate(PROMPT)
    assert result.model == SECOND


# ---------------------------------------------------------------- 7. 5021 and rejectIfBusy


def window_error(requested: int, window: int) -> httpx.Response:
    message = (
        "AiError: AiError: The estimated number of input and maximum output tokens "
        f"({requested}) exceeded this model context window limit ({window}). "
        "(1b2c3d4e-5f60-4718-92a3-b4c5d6e7f809)"
    )
    return httpx.Response(
        413,
        json={
            "result": None,
            "success": False,
            "errors": [{"code": 5021, "message": message}],
            "messages": [],
        },
    )


@respx.mock
async def test_the_shorter_context_retry_also_lowers_max_tokens_when_needed() -> None:
    route = respx.post(RUN_URL).mock(
        side_effect=[window_error(4000 + 3000, 4000), reply("run_success.json", 200)]
    )
    client = make(VirtualTime(), AI_MAX_TOKENS="4000")
    result = await client.generate(PROMPT)
    assert result.attempts == 2
    first, second = (json.loads(c.request.content) for c in route.calls)
    assert first["max_tokens"] == 4000
    assert len(second["messages"]) < len(first["messages"])  # older half dropped
    assert second["max_tokens"] < 4000  # and the output lowered to fit the window
    assert second["max_tokens"] >= 16


@respx.mock
async def test_one_message_too_long_for_its_max_tokens_is_retried_with_a_lower_one() -> None:
    alone = (ChatMessage("user", "Please ask him to call me."),)
    route = respx.post(RUN_URL).mock(
        side_effect=[window_error(2000 + 20, 1024), reply("run_success.json", 200)]
    )
    client = make(VirtualTime(), AI_MAX_TOKENS="2000")
    result = await client.generate(alone)
    bodies = [json.loads(c.request.content) for c in route.calls]
    assert result.attempts == 2
    assert bodies[1]["messages"] == bodies[0]["messages"]  # nothing to drop
    assert bodies[1]["max_tokens"] == 1024 - 20 - 16


@respx.mock
async def test_a_window_that_fits_after_shortening_keeps_max_tokens() -> None:
    route = respx.post(RUN_URL).mock(
        side_effect=[reply("run_context_413.json", 413), reply("run_success.json", 200)]
    )
    await make(VirtualTime(), AI_MAX_TOKENS="256").generate(PROMPT)
    bodies = [json.loads(c.request.content) for c in route.calls]
    # 61250 - 256 input halved is well under 60000 - 256: only the context shrinks
    assert bodies[1]["max_tokens"] == 256


@respx.mock
async def test_reject_if_busy_is_asked_for_and_a_busy_model_hands_over() -> None:
    first = respx.post(RUN_URL).mock(return_value=reply("run_capacity_429.json", 429))
    third = respx.post(url(THIRD)).mock(return_value=success())
    vt = VirtualTime()
    result = await make(vt, AI_FALLBACK_MODELS=THIRD, AI_MAX_ATTEMPTS="2").generate(PROMPT)
    assert result.model == THIRD and first.call_count == 2 and third.call_count == 1
    assert json.loads(first.calls[0].request.content)["options"] == {"rejectIfBusy": True}

    off = respx.post(url(SECOND)).mock(return_value=success())
    await make(VirtualTime(), AI_MODEL_NAME=SECOND, AI_REJECT_IF_BUSY="0").generate(PROMPT)
    assert "options" not in json.loads(off.calls[0].request.content)
