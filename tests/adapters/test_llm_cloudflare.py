"""The Cloudflare client at the transport level (respx): the request, the parsed result, and
every retry path, with a virtual clock whose sleep never waits."""

from __future__ import annotations

import json

import httpx
import pytest
import respx
from wapa.adapters.llm import (
    AuthError,
    BadResponseError,
    CapacityError,
    ContextTooLongError,
    ModelError,
    ModelTimeoutError,
    NoModelError,
    RateLimitedError,
    ServerError,
    UnreachableError,
    client_from_env,
)
from wapa.adapters.llm.fallback import ModelChain
from wapa.adapters.llm.usage import neurons
from wapa.core.events import ChatMessage

from tests.support.llm import (
    ACCOUNT,
    MODEL,
    RUN_URL,
    VirtualTime,
    cf_env,
    reply,
    success,
)

PROMPT = (
    ChatMessage("system", "You are Dana, the assistant of Gilad."),
    ChatMessage("user", "Hi, is Gilad around?"),
    ChatMessage("assistant", "He is in a meeting."),
    ChatMessage("user", "Please ask him to call me."),
)


def make(vt: VirtualTime, **env: str) -> ModelChain:
    return client_from_env(cf_env(**env), clock=vt.clock, sleep=vt.sleep)


@respx.mock
async def test_success_request_and_result() -> None:
    route = respx.post(RUN_URL).mock(return_value=reply("run_success.json", 200))
    vt = VirtualTime()
    client = make(vt, AI_MAX_TOKENS="200", AI_TEMPERATURE="0.3")
    result = await client.generate(PROMPT)
    await client.aclose()
    assert result.text.startswith("Hi Dana, thanks for your message.")
    assert (result.model, result.provider, result.attempts) == (MODEL, "cloudflare", 1)
    assert (result.input_tokens, result.output_tokens, result.usage_estimated) == (312, 31, False)
    assert result.neurons == pytest.approx((312 * 2457 + 31 * 18252) / 1e6)
    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer test-token"
    body = json.loads(request.content)
    assert body == {
        "messages": [{"role": m.role, "content": m.content} for m in PROMPT],
        "max_tokens": 200,
        "temperature": 0.3,
        "options": {"rejectIfBusy": True},  # AI_REJECT_IF_BUSY, on by default
    }
    stats = client.stats
    assert (stats.requests, stats.retries, stats.successes, stats.failures) == (1, 0, 1, {})
    assert stats.neurons_today == pytest.approx(result.neurons)
    assert stats.budget_left == pytest.approx(10_000 - result.neurons)
    assert vt.sleeps == []


@respx.mock
async def test_usage_absent_is_estimated() -> None:
    respx.post(RUN_URL).mock(return_value=success("Hello there, thanks.", usage=False))
    client = make(VirtualTime())
    result = await client.generate(PROMPT)
    assert result.usage_estimated
    assert result.input_tokens > 0 and result.output_tokens == 5
    assert result.neurons == pytest.approx(neurons(MODEL, result.input_tokens, 5))


@respx.mock
async def test_chat_completion_shaped_result_is_accepted() -> None:
    body = {
        "result": {"choices": [{"message": {"role": "assistant", "content": "Hi, noted."}}]},
        "success": True,
        "errors": [],
    }
    respx.post(RUN_URL).mock(return_value=httpx.Response(200, json=body))
    assert (await make(VirtualTime()).generate(PROMPT)).text == "Hi, noted."


@respx.mock
async def test_gateway_url_replaces_the_base() -> None:
    gateway = f"https://gateway.ai.cloudflare.com/v1/{ACCOUNT}/wapa/workers-ai"
    route = respx.post(f"{gateway}/{MODEL}").mock(return_value=reply("run_success.json", 200))
    client = make(VirtualTime(), CLOUDFLARE_AI_GATEWAY_URL=gateway + "/")
    await client.generate(PROMPT)
    assert route.call_count == 1


@respx.mock
async def test_capacity_then_success_backs_off_with_jitter() -> None:
    route = respx.post(RUN_URL).mock(
        side_effect=[reply("run_capacity_429.json", 429), reply("run_success.json", 200)]
    )
    vt = VirtualTime()
    client = make(vt)
    result = await client.generate(PROMPT)
    assert route.call_count == 2 and result.attempts == 2
    assert len(vt.sleeps) == 1 and 1.0 <= vt.sleeps[0] <= 2.0
    assert client.stats.retries == 1
    assert client.stats.attempt_errors == {"capacity": 1}
    assert result.latency_s == pytest.approx(vt.sleeps[0])


@respx.mock
async def test_retry_after_is_honoured() -> None:
    respx.post(RUN_URL).mock(
        side_effect=[
            reply("run_rate_limit_429.json", 429, {"Retry-After": "7"}),
            reply("run_success.json", 200),
        ]
    )
    vt = VirtualTime()
    await make(vt).generate(PROMPT)
    assert vt.sleeps == [7.0]


@respx.mock
async def test_insane_retry_after_is_not_waited_for() -> None:
    route = respx.post(RUN_URL).mock(
        return_value=reply("run_rate_limit_429.json", 429, {"Retry-After": "3600"})
    )
    vt = VirtualTime()
    with pytest.raises(RateLimitedError) as info:
        await make(vt).generate(PROMPT)
    assert route.call_count == 1 and vt.sleeps == []
    assert info.value.retry_after == 3600


@respx.mock
async def test_unparseable_retry_after_falls_back_to_backoff() -> None:
    respx.post(RUN_URL).mock(
        side_effect=[
            reply("run_rate_limit_429.json", 429, {"Retry-After": "soon"}),
            reply("run_success.json", 200),
        ]
    )
    vt = VirtualTime()
    await make(vt).generate(PROMPT)
    assert len(vt.sleeps) == 1 and 1.0 <= vt.sleeps[0] <= 2.0


@respx.mock
async def test_server_errors_are_retried_a_bounded_number_of_times() -> None:
    route = respx.post(RUN_URL).mock(return_value=reply("run_internal_500.json", 500))
    vt = VirtualTime()
    client = make(vt)
    with pytest.raises(ServerError) as info:
        await client.generate(PROMPT)
    assert route.call_count == 3 and info.value.attempts == 3
    assert len(vt.sleeps) == 2
    assert 1.0 <= vt.sleeps[0] <= 2.0 and 2.0 <= vt.sleeps[1] <= 3.0  # exponential
    assert client.stats.failures == {"server_error": 1}
    assert client.stats.attempt_errors == {"server_error": 3}


@respx.mock
async def test_attempts_setting() -> None:
    route = respx.post(RUN_URL).mock(return_value=reply("run_capacity_429.json", 429))
    with pytest.raises(CapacityError):
        await make(VirtualTime(), AI_MAX_ATTEMPTS="5").generate(PROMPT)
    assert route.call_count == 5


@respx.mock
async def test_total_time_bound() -> None:
    route = respx.post(RUN_URL).mock(return_value=reply("run_capacity_429.json", 429))
    vt = VirtualTime()
    start = vt.now
    with pytest.raises(CapacityError):
        await make(vt, AI_MAX_ATTEMPTS="10", AI_TIMEOUT="5", AI_TOTAL_TIMEOUT="12").generate(PROMPT)
    assert vt.now - start < 12
    assert 2 <= route.call_count < 10


@respx.mock
async def test_timeouts_are_retried() -> None:
    route = respx.post(RUN_URL).mock(
        side_effect=[httpx.ReadTimeout("slow"), reply("run_success.json", 200)]
    )
    result = await make(VirtualTime()).generate(PROMPT)
    assert route.call_count == 2 and result.attempts == 2


@respx.mock
async def test_provider_timeout_code_is_retried_then_reported() -> None:
    body = {"success": False, "errors": [{"code": 3007, "message": "AiError: Request timeout"}]}
    respx.post(RUN_URL).mock(return_value=httpx.Response(408, json=body))
    with pytest.raises(ModelTimeoutError) as info:
        await make(VirtualTime()).generate(PROMPT)
    assert info.value.code == 3007 and info.value.attempts == 3


@respx.mock
async def test_unreachable_is_retried_then_reported() -> None:
    route = respx.post(RUN_URL).mock(side_effect=httpx.ConnectError("connection refused"))
    client = make(VirtualTime())
    with pytest.raises(UnreachableError) as info:
        await client.generate(PROMPT)
    assert route.call_count == 3
    assert "CLOUDFLARE_API_BASE" in str(info.value)
    assert client.stats.failures == {"unreachable": 1}


@pytest.mark.parametrize(
    ("name", "status", "error"),
    [
        ("run_auth_401.json", 401, AuthError),
        ("run_bad_header_400.json", 400, AuthError),
        ("run_no_model_400.json", 400, NoModelError),
    ],
)
@respx.mock
async def test_never_retried(name: str, status: int, error: type[Exception]) -> None:
    route = respx.post(RUN_URL).mock(return_value=reply(name, status))
    vt = VirtualTime()
    with pytest.raises(error):
        await make(vt).generate(PROMPT)
    assert route.call_count == 1 and vt.sleeps == []


@respx.mock
async def test_bad_request_is_not_retried() -> None:
    body = {
        "success": False,
        "errors": [{"code": 5006, "message": "Type mismatch of '/max_tokens'"}],
    }
    route = respx.post(RUN_URL).mock(return_value=httpx.Response(400, json=body))
    with pytest.raises(ModelError) as info:
        await make(VirtualTime()).generate(PROMPT)
    assert info.value.kind == "bad_request" and route.call_count == 1


@respx.mock
async def test_context_too_long_retries_once_with_a_shorter_context() -> None:
    route = respx.post(RUN_URL).mock(
        side_effect=[reply("run_context_413.json", 413), reply("run_success.json", 200)]
    )
    vt = VirtualTime()
    result = await make(vt).generate(PROMPT)
    assert route.call_count == 2 and result.attempts == 2 and vt.sleeps == []
    first = json.loads(route.calls[0].request.content)["messages"]
    second = json.loads(route.calls[1].request.content)["messages"]
    assert len(second) < len(first)
    assert second[0] == first[0] and second[0]["role"] == "system"  # the persona stays
    assert second[-1] == first[-1]  # the newest message stays
    assert [m["content"] for m in second[1:]] == [m["content"] for m in first[-(len(second) - 1) :]]


@respx.mock
async def test_context_too_long_twice_gives_up() -> None:
    route = respx.post(RUN_URL).mock(return_value=reply("run_context_413.json", 413))
    with pytest.raises(ContextTooLongError) as info:
        await make(VirtualTime()).generate(PROMPT)
    assert route.call_count == 2 and info.value.attempts == 2


@respx.mock
async def test_context_too_long_with_nothing_to_drop_gives_up_at_once() -> None:
    route = respx.post(RUN_URL).mock(return_value=reply("run_context_413.json", 413))
    with pytest.raises(ContextTooLongError):
        await make(VirtualTime()).generate(PROMPT[:2])
    assert route.call_count == 1


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, json={"result": {"response": ""}, "success": True}),
        httpx.Response(200, json={"result": {"response": "   \n "}, "success": True}),
        httpx.Response(200, json={"result": {"response": "..."}, "success": True}),
        httpx.Response(200, json={"result": {"response": None}, "success": True}),
        httpx.Response(200, json={"result": {"response": 42}, "success": True}),
        httpx.Response(200, json={"result": None, "success": True}),
        httpx.Response(200, json=["not", "an", "object"]),
        httpx.Response(200, text="<html>oops</html>"),
    ],
)
@respx.mock
async def test_no_empty_or_non_text_success(response: httpx.Response) -> None:
    route = respx.post(RUN_URL).mock(return_value=response)
    client = make(VirtualTime())
    with pytest.raises(BadResponseError) as info:
        await client.generate(PROMPT)
    assert info.value.kind == "bad_response" and info.value.retryable
    assert route.call_count == 3
    assert client.stats.successes == 0 and client.stats.failures == {"bad_response": 1}


@respx.mock
async def test_empty_then_real_text() -> None:
    respx.post(RUN_URL).mock(
        side_effect=[
            httpx.Response(200, json={"result": {"response": ""}, "success": True}),
            reply("run_success.json", 200),
        ]
    )
    result = await make(VirtualTime()).generate(PROMPT)
    assert result.text and result.attempts == 2


@respx.mock
async def test_success_false_with_200_is_an_error() -> None:
    body = {
        "success": False,
        "errors": [{"code": 3040, "message": "Capacity temporarily exceeded"}],
    }
    respx.post(RUN_URL).mock(return_value=httpx.Response(200, json=body))
    with pytest.raises(CapacityError):
        await make(VirtualTime()).generate(PROMPT)


async def test_bad_messages_are_refused_before_any_call() -> None:
    client = make(VirtualTime())
    with pytest.raises(ValueError, match="messages: empty"):
        await client.generate([])
    with pytest.raises(ValueError, match=r"messages\[0\].role"):
        await client.generate([ChatMessage("tool", "x")])
    with pytest.raises(TypeError, match=r"messages\[0\]"):
        await client.generate([{"role": "user", "content": "x"}])  # type: ignore[list-item]
    assert client.stats.requests == 0


@respx.mock
async def test_lone_surrogates_do_not_break_the_request() -> None:
    route = respx.post(RUN_URL).mock(return_value=reply("run_success.json", 200))
    await make(VirtualTime()).generate((ChatMessage("user", "broken \ud800 text"),))
    assert json.loads(route.calls.last.request.content)["messages"][0]["content"] == "broken ? text"


@respx.mock
async def test_undecodable_body_is_a_bad_response() -> None:
    respx.post(RUN_URL).mock(
        side_effect=lambda request: httpx.Response(
            200, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(b"\x00garbage")
        )
    )
    with pytest.raises(BadResponseError):
        await make(VirtualTime()).generate(PROMPT)
