"""End to end against a real local HTTP server (sim/fake_cloudflare.py): the client, the
prompt on the wire, scripted failures, the OpenAI-compatible endpoint, `wapa fake-cloudflare`."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from wapa.adapters.llm import (
    AuthError,
    CapacityError,
    DailyQuotaError,
    ModelError,
    ModelTimeoutError,
    RoutingError,
    client_from_env,
    client_from_settings,
    settings_from_env,
)
from wapa.adapters.llm.cloudflare import parse_run
from wapa.adapters.llm.openai_compat import parse_chat
from wapa.core.context import ASSISTANT as BOT
from wapa.core.context import CONTACT, OWNER, Entry, build_prompt, prompt_tokens
from wapa.core.events import ChatMessage
from wapa.core.policy import Persona, Policy
from wapa.sim.fake_cloudflare import FAILURES, FakeCloudflare, cloudflare_response, default_reply

from tests.support.llm import VirtualTime, fixture

ROOT = Path(__file__).resolve().parents[2]
PERSONA = Persona(owner_id="owner", owner_name="Gilad", assistant_name="Dana")


@pytest.fixture
def server() -> Iterator[FakeCloudflare]:
    with FakeCloudflare(latency=0.0) as fake:
        yield fake


def ten_message_context() -> list[Entry]:
    """10 messages of 80 characters: contact, assistant and owner turns."""
    who = [CONTACT, CONTACT, BOT, CONTACT, OWNER, CONTACT, BOT, CONTACT, CONTACT, CONTACT]
    entries = []
    for i, w in enumerate(who):
        text = f"Message {i:02d} from {w}: " + "about the quarterly report and the invoice"
        text = (text + " " + "x" * 80)[:80]
        entries.append(Entry(float(i), w, "Ruth" if w == CONTACT else "", text, f"id{i}"))
    return entries


def test_failure_bodies_match_the_fixtures() -> None:
    names = {
        "auth": ("run_auth_401.json", 401),
        "bad_header": ("run_bad_header_400.json", 400),
        "capacity": ("run_capacity_429.json", 429),
        "rate_limit": ("run_rate_limit_429.json", 429),
        "daily_quota": ("run_daily_quota_429.json", 429),
        "internal": ("run_internal_500.json", 500),
        "no_model": ("run_no_model_400.json", 400),
        "context": ("run_context_413.json", 413),
    }
    for kind, (name, status) in names.items():
        assert FAILURES[kind] == (status, fixture(name)), kind


def test_one_pure_function_builds_every_answer() -> None:
    for kind, (status, body) in FAILURES.items():
        if kind != "hang":
            assert cloudflare_response(kind) == (status, body, {}), kind
    status, body, headers = cloudflare_response("rate_limit", retry_after=7)
    assert headers == {"Retry-After": "7"}
    with pytest.raises(ModelError) as info:
        parse_run(status, body, headers, model="m")
    assert info.value.kind == "rate_limited" and info.value.retry_after == 7
    status, body, headers = cloudflare_response("no_model", message="No such model x or task")
    assert body["errors"][0]["message"] == "No such model x or task"
    assert FAILURES["no_model"][1]["errors"][0]["message"] != "No such model x or task"  # a copy
    ok = cloudflare_response(text="Noted.", usage=(10, 2))
    assert ok == (200, fixture_shaped("Noted.", 10, 2), {})
    reply = parse_run(*ok, model="m")
    assert (reply.text, reply.input_tokens, reply.output_tokens) == ("Noted.", 10, 2)
    chat = parse_chat(*cloudflare_response(text="Noted.", usage=(10, 2), chat=True), model="m")
    assert chat == reply
    with pytest.raises(ValueError, match="not an answer"):
        cloudflare_response("hang")


def fixture_shaped(text: str, prompt: int, completion: int) -> dict[str, object]:
    usage = {"prompt_tokens": prompt, "completion_tokens": completion}
    return {
        "result": {"response": text, "usage": {**usage, "total_tokens": prompt + completion}},
        "success": True,
        "errors": [],
        "messages": [],
    }


def test_default_reply_is_deterministic_and_from_the_last_user_message() -> None:
    messages = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "x"},
        {"role": "user", "content": "Where is the invoice?"},
    ]
    assert default_reply(messages) == default_reply(list(messages))
    assert "Where is the invoice?" in default_reply(messages)
    assert "first" not in default_reply(messages)


async def test_end_to_end_generation(server: FakeCloudflare) -> None:
    client = client_from_env(server.env())
    prompt = (ChatMessage("system", "You are Dana."), ChatMessage("user", "Is Gilad in today?"))
    result = await client.generate(prompt)
    await client.aclose()
    assert result.text == default_reply([{"role": "user", "content": "Is Gilad in today?"}])
    assert result.attempts == 1 and not result.usage_estimated and result.neurons > 0
    (recorded,) = server.generations()
    assert recorded.model == "@cf/meta/llama-3.2-1b-instruct" and recorded.authorization
    assert recorded.body["messages"][1] == {"role": "user", "content": "Is Gilad in today?"}


async def test_prompt_on_the_wire_states_each_message_once(server: FakeCloudflare) -> None:
    policy = Policy()
    context = ten_message_context()
    prompt = build_prompt(context, PERSONA, policy, is_group=False, contact_name="Ruth")
    client = client_from_env(server.env())
    await client.generate(prompt)
    await client.aclose()
    body = server.generations()[0].body
    wire = json.dumps(body, ensure_ascii=False)
    messages = body["messages"]
    roles = [m["role"] for m in messages]
    assert roles == [
        "system",
        "user",  # [Chat with "Ruth"]: the name is user content
        "user",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "user",
        "user",
    ]
    for entry in context:
        assert wire.count(json.dumps(entry.text)[1:-1]) == 1, entry.text
        assert entry.text not in messages[0]["content"]
    assert messages[6]["content"].startswith("[Gilad wrote] ")  # the owner, labelled
    tokens = prompt_tokens(prompt)
    assert tokens <= policy.prompt_token_budget
    assert tokens < 600  # 10 x 80 characters is ~200 tokens, plus a persona of ~150
    assert body["max_tokens"] == 256


async def test_scripted_failures_then_success(server: FakeCloudflare) -> None:
    server.fail("capacity", times=2, retry_after=0)
    vt = VirtualTime()
    client = client_from_env(server.env(), clock=vt.clock, sleep=vt.sleep)
    result = await client.generate((ChatMessage("user", "hello"),))
    await client.aclose()
    assert result.attempts == 3 and vt.sleeps == [0.0, 0.0]
    assert [r.status for r in server.generations()] == [429, 429, 200]


async def test_scripted_failure_for_one_model_moves_to_the_fallback(server: FakeCloudflare) -> None:
    server.fail("capacity", times=5, model="@cf/meta/llama-3.2-1b-instruct")
    vt = VirtualTime()
    env = server.env(AI_FALLBACK_MODELS="@cf/meta/llama-3.2-3b-instruct")
    client = client_from_env(env, clock=vt.clock, sleep=vt.sleep)
    result = await client.generate((ChatMessage("user", "hello"),))
    await client.aclose()
    assert result.model == "@cf/meta/llama-3.2-3b-instruct"
    assert server.pending_failures() == ["capacity", "capacity"]


async def test_context_window_shortens_once_on_the_wire() -> None:
    context = ten_message_context()
    prompt = build_prompt(context, PERSONA, Policy(), is_group=False, contact_name="Ruth")
    limit = prompt_tokens(prompt) + 256 - 50  # too small for all ten, enough for half
    with FakeCloudflare(context_window=limit) as fake:
        client = client_from_env(fake.env())
        result = await client.generate(prompt)
        await client.aclose()
        first, second = fake.generations()
    assert result.attempts == 2 and (first.status, second.status) == (413, 200)
    assert len(second.body["messages"]) == 1 + 5
    assert second.body["messages"][-1] == first.body["messages"][-1]


async def test_unknown_model_wrong_token_and_unknown_account() -> None:
    with FakeCloudflare(models=["@cf/meta/llama-3.2-1b-instruct"], account_id="acct1") as fake:
        env = fake.env(AI_MODEL_NAME="@cf/meta/llama-9-1b-instruct")
        client = client_from_env(env)
        with pytest.raises(ModelError) as info:
            await client.generate((ChatMessage("user", "hi"),))
        assert info.value.kind == "no_model" and info.value.code == 5007
        with pytest.raises(AuthError) as auth:
            await client_from_env(fake.env(CLOUDFLARE_API_TOKEN="wrong")).generate(
                (ChatMessage("user", "hi"),)
            )
        assert auth.value.code == 10000
        with pytest.raises(RoutingError) as account:
            await client_from_env(fake.env(CLOUDFLARE_ACCOUNT_ID="acct2")).generate(
                (ChatMessage("user", "hi"),)
            )
        assert account.value.code == 7003 and "CLOUDFLARE_ACCOUNT_ID" in str(account.value)


async def test_daily_quota_from_the_server_stops_further_requests(server: FakeCloudflare) -> None:
    server.fail("daily_quota")
    client = client_from_env(server.env())
    for _ in range(3):
        with pytest.raises(DailyQuotaError):
            await client.generate((ChatMessage("user", "hi"),))
    assert len(server.generations()) == 1


async def test_client_timeout_against_a_hanging_server(server: FakeCloudflare) -> None:
    server.fail("hang", delay=5)
    client = client_from_env(server.env(AI_TIMEOUT="0.2", AI_MAX_ATTEMPTS="1"))
    with pytest.raises(ModelTimeoutError):
        await client.generate((ChatMessage("user", "hi"),))
    await client.aclose()


async def test_exhausted_retries_report_the_kind(server: FakeCloudflare) -> None:
    server.fail("capacity", times=3, retry_after=0)
    client = client_from_env(server.env(), sleep=VirtualTime().sleep)
    with pytest.raises(CapacityError) as info:
        await client.generate((ChatMessage("user", "hi"),))
    assert info.value.attempts == 3


async def test_health_against_the_server(server: FakeCloudflare) -> None:
    client = client_from_env(server.env())
    report = await client.health()
    assert report["ok"] and report["providers"][0]["detail"] == "token active"
    bad = await client_from_env(server.env(CLOUDFLARE_API_TOKEN="wrong")).health()
    assert not bad["ok"] and bad["providers"][0]["kind"] == "auth"
    assert server.generations() == []


async def test_openai_compatible_endpoint_of_the_fake(server: FakeCloudflare) -> None:
    env = {
        "OPENAI_BASE_URL": server.openai_base_url,
        "OPENAI_MODEL": "@cf/meta/llama-3.2-1b-instruct",
        "OPENAI_API_KEY": server.token or "",
    }
    client = client_from_env(env)
    result = await client.generate((ChatMessage("user", "Any news?"),))
    health = await client.health()
    await client.aclose()
    assert result.provider == "openai" and "Any news?" in result.text
    # Cloudflare's /ai/v1 has no model list (405, code 7001), nor has the fake: reachable
    assert health["ok"] and health["providers"][0]["detail"] == "reachable (no /models endpoint)"
    assert [r.status for r in server.requests if r.endpoint == "models"] == [405]


def test_fail_rejects_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="kind: 'nope'"):
        FakeCloudflare().fail("nope")


def test_wapa_fake_cloudflare_serves_until_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "wapa", "fake-cloudflare", "--port", "0", "--latency", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("fake Cloudflare Workers AI on http://127.0.0.1:")
        base = first.split(" on ")[1].strip()
        verify = httpx.get(
            f"{base}/user/tokens/verify", headers={"Authorization": "Bearer fake-token"}
        )
        assert verify.json()["result"]["status"] == "active"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _verify_request(fake: FakeCloudflare) -> bytes:
    return (
        f"GET /client/v4/user/tokens/verify HTTP/1.1\r\nHost: {fake.host}\r\n"
        f"Authorization: Bearer {fake.token}\r\n\r\n"
    ).encode()


def _answer(sock: socket.socket) -> bytes:
    """One whole HTTP answer (headers and Content-Length body) from `sock`."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += sock.recv(4096)
    return head


def test_connections_are_kept_alive_then_closed_when_idle_as_cloudflare_does() -> None:
    """Cloudflare keeps an idle HTTP/1.1 connection for 400 s, then closes it: one connection
    answers request after request, and after `keep_alive` idle seconds the server closes it
    (here 0.2 s; the recv below waits for the close, at most 10 s)."""
    assert FakeCloudflare().keep_alive == 400.0
    with (
        FakeCloudflare(keep_alive=0.2) as fake,
        socket.create_connection((fake.host, fake.port), timeout=10.0) as sock,
    ):
        for _ in range(3):
            sock.sendall(_verify_request(fake))
            assert _answer(sock).startswith(b"HTTP/1.1 200")
        assert sock.recv(4096) == b""  # closed by the server once idle


def test_an_answer_goes_out_in_one_send_with_nagle_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Head and body together, as a web server sends a small answer: written apart, Nagle held
    the body until the client acknowledged the head (a delayed ACK: ~40 ms more an answer)."""
    sent: list[tuple[bytes, int]] = []  # what the server's sockets sent, and TCP_NODELAY then
    port = 0

    def spy(real: Any) -> Any:
        def send(self: socket.socket, data: bytes, *args: Any) -> Any:
            if self.getsockname()[1] == port:  # the server's side of a connection
                nodelay = self.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                sent.append((bytes(data), nodelay))
            return real(self, data, *args)

        return send

    for name in ("send", "sendall"):
        monkeypatch.setattr(socket.socket, name, spy(getattr(socket.socket, name)))
    with FakeCloudflare() as fake:
        port = fake.port
        with socket.create_connection((fake.host, fake.port), timeout=10.0) as sock:
            for _ in range(2):
                sock.sendall(_verify_request(fake))
                answer = _answer(sock)
    assert len(sent) == 2  # one send an answer, the whole of it:
    head, _, body = sent[-1][0].partition(b"\r\n\r\n")
    assert head == answer and answer.startswith(b"HTTP/1.1 200")
    assert b"Content-Length: %d" % len(body) in head and json.loads(body)["success"] is True
    assert all(nodelay for _, nodelay in sent)


async def test_a_burst_of_connections_is_accepted() -> None:
    """32 generations at once on 32 new connections (http.server's default listen backlog of 5
    reset some of them) all answer, each connection kept for the next burst."""
    with FakeCloudflare() as fake:
        settings = settings_from_env(fake.env(AI_DAILY_NEURON_BUDGET="off"))
        chain = client_from_settings(settings, connections=32)
        prompt = (ChatMessage("user", "hello"),)
        try:
            for _ in range(2):
                results = await asyncio.gather(*(chain.generate(prompt) for _ in range(32)))
                assert all(r.text for r in results)
            assert chain.stats.attempt_errors == {} and chain.stats.requests == 64
        finally:
            await chain.aclose()


def test_keep_alive_must_be_positive() -> None:
    with pytest.raises(ValueError, match="keep_alive"):
        FakeCloudflare(keep_alive=0)
