"""The error the model client gives up with says what was actually tried (every model in order,
its attempts, the setting that stopped the retries, skipped or not reached) and what to do,
and never claims fallback models that are not configured."""

from __future__ import annotations

import argparse
import io
import pickle

import httpx
import pytest
import respx
from wapa.adapters.llm import (
    AuthError,
    CapacityError,
    ContextTooLongError,
    ModelError,
    RateLimitedError,
    client_from_env,
)
from wapa.adapters.llm.errors import NO_FALLBACK, Tried
from wapa.commands.ask import EXIT_MODEL, run
from wapa.core.events import ChatMessage
from wapa.sim.fake_cloudflare import FakeCloudflare

from tests.support.llm import ACCOUNT, BASE, MODEL, RUN_URL, VirtualTime, cf_env, reply

PROMPT = (ChatMessage("system", "You are Dana."), ChatMessage("user", "Hi, is Gilad around?"))
FALLBACK = "@cf/meta/llama-3.2-3b-instruct"
FALLBACK_URL = f"{BASE}/accounts/{ACCOUNT}/ai/run/{FALLBACK}"
OLLAMA = "http://localhost:11434/v1"


async def fail_with(env: dict[str, str]) -> ModelError:
    vt = VirtualTime()
    client = client_from_env(env, clock=vt.clock, sleep=vt.sleep)
    with pytest.raises(ModelError) as info:
        await client.generate(PROMPT)
    return info.value


@respx.mock
async def test_capacity_without_a_fallback_says_what_was_tried_and_how_to_add_one() -> None:
    respx.post(RUN_URL).mock(return_value=reply("run_capacity_429.json", 429))
    err = await fail_with(cf_env())
    assert isinstance(err, CapacityError)
    assert err.tried == [Tried("cloudflare", MODEL, 3, "capacity", "AI_MAX_ATTEMPTS=3 reached")]
    text = str(err)
    assert f"tried cloudflare {MODEL} (3 attempts, capacity, AI_MAX_ATTEMPTS=3 reached)" in text
    assert NO_FALLBACK in text and "try again in a few minutes" in text
    assert "then the fallback models" not in text and "\n" not in text


@respx.mock
async def test_every_model_of_the_chain_is_listed_in_order() -> None:
    respx.post(RUN_URL).mock(return_value=reply("run_capacity_429.json", 429))
    respx.post(FALLBACK_URL).mock(return_value=reply("run_no_model_400.json", 400))
    respx.post(f"{OLLAMA}/chat/completions").mock(side_effect=httpx.ConnectError("refused"))
    env = {
        **cf_env(AI_FALLBACK_MODELS=FALLBACK, AI_MAX_ATTEMPTS="2"),
        "OPENAI_BASE_URL": OLLAMA,
        "OPENAI_MODEL": "llama3.2:1b",
    }
    err = await fail_with(env)
    assert isinstance(err, CapacityError) and err.attempts == 2 + 1 + 2
    assert str(err).startswith("capacity (cloudflare, 429, code 3040): ")
    assert (
        f"; tried in order: cloudflare {MODEL} (2 attempts, capacity, AI_MAX_ATTEMPTS=2 reached), "
        f"then cloudflare {FALLBACK} (1 attempt, no_model), "
        "then openai llama3.2:1b (2 attempts, unreachable, AI_MAX_ATTEMPTS=2 reached); "
    ) in str(err)
    assert "no fallback is configured" not in str(err)


@respx.mock
async def test_models_skipped_after_an_account_wide_error_are_named() -> None:
    respx.post(RUN_URL).mock(return_value=reply("run_auth_401.json", 401))
    err = await fail_with(cf_env(AI_FALLBACK_MODELS=FALLBACK))
    assert isinstance(err, AuthError)
    assert err.tried == [
        Tried("cloudflare", MODEL, 1, "auth"),
        Tried(
            "cloudflare", FALLBACK, 0, "skipped", "same account as a model that failed with auth"
        ),
    ]
    assert f"then cloudflare {FALLBACK} (skipped, same account" in str(err)
    assert "CLOUDFLARE_API_TOKEN" in str(err)


@respx.mock
async def test_a_long_retry_after_is_named_as_the_reason_to_stop() -> None:
    respx.post(RUN_URL).mock(
        return_value=reply("run_rate_limit_429.json", 429, {"Retry-After": "600"})
    )
    err = await fail_with(cf_env())
    assert isinstance(err, RateLimitedError)
    assert "(1 attempt, rate_limited, Retry-After 600s is over AI_MAX_RETRY_AFTER=30s)" in str(err)


@respx.mock
async def test_the_total_time_bound_is_named_and_later_models_are_not_tried() -> None:
    env = cf_env(
        AI_FALLBACK_MODELS=FALLBACK, AI_TOTAL_TIMEOUT="8", AI_MAX_ATTEMPTS="10", AI_TIMEOUT="2"
    )
    vt = VirtualTime()
    client = client_from_env(env, clock=vt.clock, sleep=vt.sleep)

    def slow(request: httpx.Request) -> httpx.Response:
        vt.now += 9  # the attempt alone (on the virtual clock) passes the 8 s bound
        return reply("run_capacity_429.json", 429, {"Retry-After": "5"})

    respx.post(RUN_URL).mock(side_effect=slow)
    with pytest.raises(CapacityError) as info:
        await client.generate(PROMPT)
    assert info.value.tried == [
        Tried("cloudflare", MODEL, 1, "capacity", "AI_TOTAL_TIMEOUT=8s reached"),
        Tried("cloudflare", FALLBACK, 0, "not tried", "AI_TOTAL_TIMEOUT=8s used up first"),
    ]


@respx.mock
async def test_context_too_long_says_whether_a_shorter_context_was_tried() -> None:
    respx.post(RUN_URL).mock(return_value=reply("run_context_413.json", 413))
    err = await fail_with(cf_env())
    assert isinstance(err, ContextTooLongError)
    assert err.tried[0].why == "nothing to drop"  # one user message: nothing shorter to try
    longer = (*PROMPT, ChatMessage("assistant", "Not yet."), ChatMessage("user", "Now?"))
    vt = VirtualTime()
    with pytest.raises(ContextTooLongError) as info:
        await client_from_env(cf_env(), clock=vt.clock, sleep=vt.sleep).generate(longer)
    assert info.value.tried == [
        Tried("cloudflare", MODEL, 2, "context_too_long", "also with a shorter context")
    ]
    assert "WAPA_MAX_CONTEXT" in str(info.value)


@respx.mock
async def test_what_was_tried_survives_pickling() -> None:
    respx.post(RUN_URL).mock(return_value=reply("run_capacity_429.json", 429))
    err = await fail_with(cf_env(AI_MAX_ATTEMPTS="1"))
    copy = pickle.loads(pickle.dumps(err))
    assert copy.tried == err.tried and copy.fallbacks == 0 and str(copy) == str(err)


def test_wapa_ask_names_the_attempts_and_what_to_do() -> None:
    with FakeCloudflare() as server:
        server.fail("capacity", times=2, retry_after=0)  # Retry-After 0: no real waiting
        out, err = io.StringIO(), io.StringIO()
        args = argparse.Namespace(text="Hi", sender="", json=False, config=None)
        status = run(args, env=server.env(AI_MAX_ATTEMPTS="2"), out=out, err=err)
    message = err.getvalue()
    assert status == EXIT_MODEL
    assert message.startswith("wapa ask: error: capacity (cloudflare, 429")
    assert f"tried cloudflare {MODEL} (2 attempts, capacity, AI_MAX_ATTEMPTS=2 reached)" in message
    assert NO_FALLBACK in message and "then the fallback models" not in message
