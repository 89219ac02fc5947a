"""A fake Cloudflare Workers AI server: a real local HTTP server for end-to-end tests,
benchmarks and users checking their setup without an account (`wapa fake-cloudflare`).

It speaks what wapa uses of the API, under `/client/v4` (so `CLOUDFLARE_API_BASE` is
`http://HOST:PORT/client/v4`), and nothing Cloudflare does not have:

- `POST /accounts/{id}/ai/run/{model}`: a deterministic reply built from the last user
  message, in the success envelope with `usage`;
- `POST /accounts/{id}/ai/v1/chat/completions`: the OpenAI-compatible endpoint (like
  Cloudflare's, it has no `GET .../ai/v1/models`: 405, code 7001);
- `GET /user/tokens/verify` and `GET /accounts/{id}/tokens/verify`: the token check.

Connections are kept alive between requests as Cloudflare keeps them (HTTP/1.1 keep-alive):
an idle connection is closed after `keep_alive` seconds, 400 by default, the limit Cloudflare
documents between a client and its edge ("Connection Keep-Alive HTTP/1.1: 400 s, TCP
connection closed": developers.cloudflare.com/fundamentals/reference/connection-limits/),
and a burst of new connections waits in a listen backlog of 128 (http.server's default of 5
resets the sixth connection made at once, which Cloudflare's edge does not).

Failures are scripted (`server.fail("capacity", times=2)`) and answered with the bodies
Cloudflare sends (tests/fixtures/cloudflare/). Optional: a required token (else 401), a list of
known models (else 5007), a context window (else 413 / 5021), latency per generation.

Every generation answer, success or failure, is built by one pure function,
`cloudflare_response(kind, text=..., usage=..., retry_after=...)` -> (status, body, headers);
the simulator's fake model (`sim.fake_model`) answers its requests with it too, and parses
them with the real client's parsing, so both fakes fail exactly as Cloudflare does.

    with FakeCloudflare(latency=0.05) as server:
        env = server.env()          # CLOUDFLARE_API_BASE, CLOUDFLARE_API_TOKEN, ACCOUNT_ID
        server.fail("rate_limit", retry_after=1)
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wapa.core.events import ChatMessage

if TYPE_CHECKING:
    from http.server import ThreadingHTTPServer

PREFIX = "/client/v4"
KEEP_ALIVE = 400.0  # seconds Cloudflare keeps an idle HTTP/1.1 client connection open
BACKLOG = 128  # connections waiting to be accepted
DEFAULT_TOKEN = "fake-token"
DEFAULT_ACCOUNT = "0123456789abcdef0123456789abcdef"


def _envelope_error(code: int, message: str, **extra: Any) -> dict[str, Any]:
    return {
        "result": None,
        "success": False,
        "errors": [{"code": code, "message": message, **extra}],
        "messages": [],
    }


# kind -> (HTTP status, body). The bodies match tests/fixtures/cloudflare/run_*.json.
FAILURES: dict[str, tuple[int, Any]] = {
    "auth": (
        401,
        {"success": False, "errors": [{"code": 10000, "message": "Authentication error"}]},
    ),
    "bad_header": (
        400,
        {
            "success": False,
            "errors": [
                {
                    "code": 6003,
                    "message": "Invalid request headers",
                    "error_chain": [
                        {"code": 6111, "message": "Invalid format for Authorization header"}
                    ],
                }
            ],
            "messages": [],
            "result": None,
        },
    ),
    "capacity": (429, _envelope_error(3040, "Capacity temporarily exceeded, please try again.")),
    "rate_limit": (
        429,
        _envelope_error(
            3021,
            "AiError: rate limiting: inference request per min rate reached (4f1c2a7e-0b5d-4c1e-9a57-2d3f0e6b8c11)",
        ),
    ),
    "daily_quota": (
        429,
        {
            "result": {},
            "success": False,
            "errors": [
                {
                    "code": 4006,
                    "message": "AiError: AiError: you have used up your daily free allocation of 10,000 neurons, please upgrade to Cloudflare's Workers Paid plan if you would like to continue usage. (8a2e5b61-7c3d-4f90-b1a2-5e6f7a8b9c0d)",
                }
            ],
            "messages": [],
        },
    ),
    "internal": (
        500,
        _envelope_error(
            3043, "AiError: AiError: Internal server error (0c9d8e7f-6a5b-4c3d-2e1f-0a9b8c7d6e5f)"
        ),
    ),
    "no_model": (400, _envelope_error(5007, "No such model @cf/meta/llama-9-1b-instruct or task")),
    "context": (
        413,
        _envelope_error(
            5021,
            "AiError: AiError: The estimated number of input and maximum output tokens (61250) exceeded this model context window limit (60000). (1b2c3d4e-5f60-4718-92a3-b4c5d6e7f809)",
        ),
    ),
    "timeout": (408, _envelope_error(3007, "AiError: AiError: Request timeout")),
    "bad_request": (
        400,
        _envelope_error(5006, "AiError: Type mismatch of '/max_tokens', 'string' not in 'integer'"),
    ),
    "empty": (
        200,
        {
            "result": {
                "response": "",
                "usage": {"prompt_tokens": 10, "completion_tokens": 0, "total_tokens": 10},
            },
            "success": True,
            "errors": [],
            "messages": [],
        },
    ),
    "bad_gateway": (
        502,
        "<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>",
    ),
    "hang": (200, None),  # answers normally, but only after `delay` seconds
}
NOT_ANSWERS = frozenset({"hang"})  # script entries that change the timing, not the answer
NO_ROUTE = (404, _envelope_error(7000, "No route for that URI"))
NO_METHOD = (405, _envelope_error(7001, "Method not allowed"))  # e.g. GET .../ai/v1/models


def cloudflare_response(
    kind: str = "ok",
    *,
    text: str = "",
    usage: tuple[int, int] | None = None,
    retry_after: float | None = None,
    chat: bool = False,
    model: str = "",
    message: str | None = None,
) -> tuple[int, Any, dict[str, str]]:
    """What Cloudflare answers to one generation: (HTTP status, decoded body, headers).

    `kind` "ok": the success envelope of `/ai/run` with `text` and `usage` (prompt,
    completion tokens; omitted when None), or with `chat` the chat-completions shape of
    `/ai/v1`. Any other kind is a key of `FAILURES` (auth, bad_header, capacity, rate_limit,
    daily_quota, internal, no_model, context, timeout, bad_request, empty, bad_gateway), with
    the captured body (`message` replaces the first error's text). `retry_after` adds a
    Retry-After header (seconds). Pure: the same arguments give the same answer."""
    headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
    if kind == "ok":
        counts: dict[str, int] = {}
        if usage is not None:
            counts = {
                "prompt_tokens": usage[0],
                "completion_tokens": usage[1],
                "total_tokens": usage[0] + usage[1],
            }
        if chat:
            body: dict[str, Any] = {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
            }
            if counts:
                body["usage"] = counts
            return 200, body, headers
        result: dict[str, Any] = {"response": text}
        if counts:
            result["usage"] = counts
        return 200, {"result": result, "success": True, "errors": [], "messages": []}, headers
    if kind not in FAILURES or kind in NOT_ANSWERS:
        raise ValueError(f"kind: {kind!r} is not an answer ({', '.join(sorted(FAILURES))})")
    status, canned = FAILURES[kind]
    payload = copy.deepcopy(canned)
    if message is not None and isinstance(payload, dict) and payload.get("errors"):
        payload["errors"][0]["message"] = message
    return status, payload, headers


@dataclass
class Failure:
    """A failure the fake Cloudflare API answers with (`kind` from `FAILURES`), for one model
    or any, `delay` seconds later than its usual latency, with `Retry-After` if given."""

    kind: str
    model: str | None = None  # only requests for this model; None: any
    retry_after: float | None = None
    delay: float = 0.0


@dataclass
class Recorded:
    """One request the fake Cloudflare API received, and its answer's status."""

    method: str
    path: str
    model: str
    body: Any
    authorization: bool  # whether a bearer token came (the token itself is not kept)
    status: int = 0
    endpoint: str = ""  # run | chat | verify | models


_OWNER = re.compile(r"personal assistant of (.+?), answering")
_CHAT_LINE = re.compile(r'^\[(?:Chat with "(.*)"|Group(?: "(.*?)")?(?: with \d+ participants)?)\]$')
_GROUP_LINE = re.compile(r"^([^:\n]{1,60}): (.*)$", re.DOTALL)


def reply_for(messages: Sequence[ChatMessage]) -> str:
    """The fake model's answer: greets the contact (by the name the chat's first user turn,
    `[Chat with "Alice"]`, quotes, or in a group by the speaker of the last line), names the
    owner, quotes the last message."""
    system = messages[0].content if messages and messages[0].role == "system" else ""
    m = _OWNER.search(system)
    owner = m.group(1) if m else "The owner"
    said = [x.content for x in messages if x.role == "user"]
    head = _CHAT_LINE.match(said[0]) if said else None
    if head:
        said = said[1:]
    name = (head.group(1) or "") if head else ""
    last = said[-1] if said else ""
    g = _GROUP_LINE.match(last) if head is None or head.group(1) is None else None
    if g:
        name, last = g.group(1), g.group(2)
    words = " ".join(last.replace("'", "").split()[:6])
    greeting = f"Hi {name}!" if name else "Hi!"
    if not words:
        return f"{greeting} {owner} is busy right now and will answer personally."
    return f"{greeting} {owner} is busy right now; I'll pass on your message about '{words}'."


def default_reply(messages: Sequence[Any]) -> str:
    """The fake provider's answer to a request body's messages (dicts): `reply_for`, the same
    text the simulator's model service builds, so a run against this server and a simulation
    send the same replies. Deterministic: the same prompt gives the same reply."""
    chat = tuple(
        ChatMessage(str(m.get("role", "")), str(m.get("content", "")))
        for m in messages
        if isinstance(m, dict)
    )
    return reply_for(chat)


def estimate_tokens(text: str) -> int:
    return len(text) // 4 + 1


class FakeCloudflare:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency: float = 0.0,
        token: str | None = DEFAULT_TOKEN,  # None: any bearer token is accepted
        account_id: str | None = None,  # None: any account id is accepted
        models: Sequence[str] | None = None,  # None: any model name is accepted
        context_window: int | None = None,  # tokens (input estimate + max_tokens)
        reply: Callable[[Sequence[Any]], str] = default_reply,
        keep_alive: float = KEEP_ALIVE,  # seconds an idle connection stays open
    ) -> None:
        self.host = host
        self.port = port
        self.latency = latency
        self.token = token
        self.account_id = account_id
        self.models = None if models is None else set(models)
        self.context_window = context_window
        self.reply = reply
        if not keep_alive > 0:
            raise ValueError(f"keep_alive: expected seconds > 0, got {keep_alive!r}")
        self.keep_alive = keep_alive
        self.requests: list[Recorded] = []
        self._script: list[Failure] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ control

    def start(self) -> FakeCloudflare:
        # http.server (and with it http.client, email, socketserver) is loaded only for the
        # real server: the simulator's fake model imports this module for the answers alone.
        from http.server import ThreadingHTTPServer

        from wapa.sim.cloudflare_http import CloudflareHandler

        # `timeout`: an idle connection's next request line is waited for this long, then
        # http.server closes the connection (the keep-alive limit).
        handler = type("Handler", (CloudflareHandler,), {"fake": self, "timeout": self.keep_alive})
        listener = type("Listener", (ThreadingHTTPServer,), {"request_queue_size": BACKLOG})
        server = listener((self.host, self.port), handler)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self.port = server.server_address[1]
        self._stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-cloudflare",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeCloudflare:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}{PREFIX}"

    @property
    def account(self) -> str:
        return self.account_id or DEFAULT_ACCOUNT

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/accounts/{self.account}/ai/v1"

    def env(self, **extra: str) -> dict[str, str]:
        """Variables that point wapa's Cloudflare client at this server."""
        return {
            "CLOUDFLARE_API_BASE": self.base_url,
            "CLOUDFLARE_API_TOKEN": self.token or DEFAULT_TOKEN,
            "CLOUDFLARE_ACCOUNT_ID": self.account,
            **extra,
        }

    def fail(
        self,
        kind: str,
        *,
        times: int = 1,
        model: str | None = None,
        retry_after: float | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer the next `times` generations (for `model`, or any) with failure `kind`."""
        if kind not in FAILURES:
            raise ValueError(f"kind: {kind!r} is not one of {', '.join(sorted(FAILURES))}")
        with self._lock:
            self._script.extend(Failure(kind, model, retry_after, delay) for _ in range(times))

    def pending_failures(self) -> list[str]:
        with self._lock:
            return [f.kind for f in self._script]

    def generations(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.endpoint in ("run", "chat")]

    # ------------------------------------------------------------------ behaviour

    def _next_failure(self, model: str) -> Failure | None:
        with self._lock:
            for i, failure in enumerate(self._script):
                if failure.model in (None, model):
                    return self._script.pop(i)
        return None

    def _check_auth(self, header: str) -> tuple[int, Any] | None:
        scheme, _, token = header.partition(" ")
        if scheme != "Bearer" or not token or " " in token.strip():
            return FAILURES["bad_header"]
        if self.token is not None and token != self.token:
            return FAILURES["auth"]
        return None

    def _check_account(self, account: str, path: str) -> tuple[int, Any] | None:
        if self.account_id is not None and account != self.account_id:
            return 404, _envelope_error(
                7003, f"Could not route to {path}, perhaps your object identifier is invalid?"
            )
        return None

    def _generate(self, model: str, body: Any, chat: bool) -> tuple[int, Any, dict[str, str]]:
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return cloudflare_response(
                "bad_request", message="Error: required properties at '/' are 'messages'"
            )
        failure = self._next_failure(model)
        wait = (failure.delay if failure is not None else 0.0) + self.latency
        if wait > 0:
            self._stopping.wait(wait)
        if failure is not None and failure.kind not in NOT_ANSWERS:
            return cloudflare_response(failure.kind, retry_after=failure.retry_after)
        if self.models is not None and model not in self.models:
            return cloudflare_response("no_model", message=f"No such model {model} or task")
        messages = body["messages"]
        prompt_tokens = sum(
            estimate_tokens(str(m.get("content", ""))) + 4 for m in messages if isinstance(m, dict)
        )
        raw_max = body.get("max_tokens")
        max_tokens = raw_max if isinstance(raw_max, int) else 256
        if self.context_window is not None and prompt_tokens + max_tokens > self.context_window:
            return cloudflare_response(
                "context",
                message="AiError: AiError: The estimated number of input and maximum output "
                f"tokens ({prompt_tokens + max_tokens}) exceeded this model context window "
                f"limit ({self.context_window}).",
            )
        text = self.reply(messages)
        usage = (prompt_tokens, estimate_tokens(text))
        return cloudflare_response(text=text, usage=usage, chat=chat, model=model)

    def handle(
        self, method: str, path: str, auth: str, body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        record = Recorded(method, path, "", body, authorization=auth.startswith("Bearer "))
        with self._lock:
            self.requests.append(record)
        status, payload, headers = self._route(method, path, auth, body, record)
        record.status = status
        return status, payload, headers

    def _route(
        self, method: str, path: str, auth: str, body: Any, record: Recorded
    ) -> tuple[int, Any, dict[str, str]]:
        if not path.startswith(PREFIX + "/"):
            return (*NO_ROUTE, {})
        parts = path[len(PREFIX) + 1 :].split("/")
        if method == "GET" and (
            parts == ["user", "tokens", "verify"]
            or (len(parts) == 4 and parts[0] == "accounts" and parts[2:] == ["tokens", "verify"])
        ):
            record.endpoint = "verify"
            denied = self._check_auth(auth)
            if denied is not None:
                return 401, _envelope_error(1000, "Invalid API Token"), {}
            return (
                200,
                {
                    "result": {"id": "fake-token-id", "status": "active"},
                    "success": True,
                    "errors": [],
                    "messages": [
                        {
                            "code": 10000,
                            "message": "This API Token is valid and active",
                            "type": None,
                        }
                    ],
                },
                {},
            )
        if len(parts) >= 4 and parts[0] == "accounts" and parts[2] == "ai":
            denied = self._check_auth(auth) or self._check_account(parts[1], path)
            if method == "POST" and parts[3] == "run" and len(parts) > 4:
                record.endpoint, record.model = "run", "/".join(parts[4:])
                if denied:
                    return (*denied, {})
                return self._generate(record.model, body, chat=False)
            if method == "POST" and parts[3:] == ["v1", "chat", "completions"]:
                record.endpoint = "chat"
                record.model = str(body.get("model", "")) if isinstance(body, dict) else ""
                if denied:
                    return (*denied, {})
                return self._generate(record.model, body, chat=True)
            if method == "GET" and parts[3:] == ["v1", "models"]:
                record.endpoint = "models"  # Cloudflare's /ai/v1 has no model list
                return (*NO_METHOD, {})
        return (*NO_ROUTE, {})
