"""The model error taxonomy: one exception type per kind the core and the operator care about.

`classify(status, body, ...)` turns an HTTP answer (Cloudflare's envelope, an OpenAI-style
`{"error": ...}`, Ollama's `{"error": "..."}`, vLLM's `{"object": "error", ...}` or a plain
text / HTML page) into the right `ModelError`, matching on the error code, the message text
and the HTTP status, in that order, because codes are sometimes missing.

Kinds and what the adapter does with them:

| kind | retried | notes |
|---|---|---|
| auth | no | bad or revoked token, missing permission, malformed Authorization header; every later reply is refused at once (the lockout, `CredentialsRejectedError`) |
| bad_request | no | our request was refused as invalid |
| no_model | no | the model name does not exist (the fallback chain moves on) |
| model_access | no | this account may not use this model (5016 terms not accepted, 5018/3041 not allowed, 5035 Workers Paid only): that model is skipped, the others of the account are still tried |
| account_blocked | no | 3023 "Service unavailable for account": the account is blocked; the account's other models are skipped |
| bad_route | no | 7000/7003 "could not route": a wrong CLOUDFLARE_API_BASE or account id; the account's other models are skipped |
| context_too_long | once | retried once with the older half of the conversation dropped |
| rate_limited | yes | per-minute limit; exponential backoff with jitter, Retry-After honoured |
| capacity | yes | the model is overloaded; same backoff |
| daily_quota | no | free allocation used up: no more calls until 00:00 UTC |
| budget | no | our own daily neuron budget (AI_DAILY_NEURON_BUDGET) would be exceeded |
| server_error | yes | 5xx and internal errors |
| bad_response | yes | HTTP success without a usable text (empty, not a string, not JSON) |
| timeout | yes | no answer within AI_TIMEOUT, or the provider's own timeout (3007/408) |
| unreachable | yes | connection refused, DNS failure, TLS or network error |

`str()` of an error is one line: the kind, where and the provider's message; then, once the
provider or the fallback chain has given up, what was tried (every model in order, its
attempts, and the setting that stopped the retries); then what to do, including how to add a
fallback when none is configured and another model could have helped.

`bad_response` is a subclass of `ServerError` (an `except ServerError` catches it) with its own
kind, so metrics can tell "the API broke" from "the model said nothing".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, ClassVar

_MAX_DETAIL = 200

# Kinds another model or provider may get past: an error of these kinds with no fallback
# configured ends with how to configure one.
FALLBACK_HELPS = frozenset(
    {
        "capacity",
        "rate_limited",
        "server_error",
        "bad_response",
        "timeout",
        "unreachable",
        "no_model",
        "model_access",
    }
)
NO_FALLBACK = (
    "no fallback is configured: set AI_FALLBACK_MODELS (other Workers AI models) or "
    "OPENAI_BASE_URL and OPENAI_MODEL (another provider)"
)


@dataclass(frozen=True)
class Tried:
    """What one model of the chain was given: its attempts and how it ended."""

    provider: str
    model: str
    attempts: int  # 0: skipped or not reached
    outcome: str  # the error kind, "skipped" or "not tried"
    why: str = ""  # why the retries stopped (a setting reached), or why it was skipped

    def __str__(self) -> str:
        if self.attempts:
            count = f"{self.attempts} attempt{'s' if self.attempts != 1 else ''}, {self.outcome}"
        else:
            count = self.outcome
        why = f", {self.why}" if self.why else ""
        return f"{self.provider} {self.model} ({count}{why})"


class ModelError(Exception):
    """A model call failed. `kind` says how; `retryable` whether another attempt may help."""

    kind: ClassVar[str] = "model_error"
    retryable: ClassVar[bool] = False
    hint: ClassVar[str] = "check the logs"

    def __init__(
        self,
        detail: str = "",
        *,
        status: int | None = None,
        code: int | None = None,
        provider: str = "",
        model: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.detail = _short(detail)
        self.status = status
        self.code = code
        self.provider = provider
        self.model = model
        self.retry_after = retry_after
        self.chain: list[ModelError] = []  # set by the fallback chain: every provider's error
        self.attempts = 0  # HTTP attempts made before giving up (set by the provider)
        self.stopped = ""  # why the provider's retries stopped, e.g. "AI_MAX_ATTEMPTS=3 reached"
        self.tried: list[Tried] = []  # every model in order (set by the provider, then chain)
        self.fallbacks: int | None = None  # models configured after the primary (chain)
        # A 2xx answer without usable text is still billed: its (input, output) tokens from
        # `usage` (None each when absent); None when the provider did not answer at all.
        self.billed: tuple[int | None, int | None] | None = None
        super().__init__(str(self))

    def where(self) -> str:
        bits = [b for b in (self.provider, str(self.status) if self.status else "") if b]
        if self.code is not None:
            bits.append(f"code {self.code}")
        return ", ".join(bits)

    def __str__(self) -> str:
        """One line: what failed, what was tried (models in order, attempts), what to do."""
        where = self.where()
        head = f"{self.kind} ({where})" if where else self.kind
        detail = f": {self.detail.rstrip('.')}" if self.detail else ""
        tried = getattr(self, "tried", [])  # unset while the base class __init__ runs
        if not tried:
            model = f" [model {self.model}]" if self.model else ""
            return f"{head}{detail}{model}; {self.advice()}"
        order = "tried " if len(tried) == 1 else "tried in order: "
        return f"{head}{detail}; {order}{', then '.join(map(str, tried))}; {self.advice()}"

    def advice(self) -> str:
        """What the kind means and what to do; says how to add a fallback when none is
        configured and another model could have got past this kind."""
        hint = self.meaning()
        if getattr(self, "fallbacks", None) == 0 and self.kind in FALLBACK_HELPS:
            return f"{hint}; {NO_FALLBACK}"
        return hint

    def meaning(self) -> str:
        return self.hint

    def __reduce__(self) -> tuple[Any, ...]:  # picklable despite keyword-only arguments
        return (
            _rebuild,
            (
                type(self),
                self.detail,
                self.status,
                self.code,
                self.provider,
                self.model,
                self.retry_after,
            ),
            dict(self.__dict__),
        )


def _rebuild(cls: type[ModelError], *args: Any) -> ModelError:
    detail, status, code, provider, model, retry_after = args
    return cls(
        detail, status=status, code=code, provider=provider, model=model, retry_after=retry_after
    )


class AuthError(ModelError):
    kind = "auth"
    hint = (
        "check CLOUDFLARE_API_TOKEN (an API token with the Workers AI permission) and "
        "CLOUDFLARE_ACCOUNT_ID; not retried"
    )

    def meaning(self) -> str:
        if self.provider == "openai":
            return "check OPENAI_API_KEY and OPENAI_BASE_URL; not retried"
        return self.hint


AUTH_LOCKED = "model credentials rejected earlier; fix them and restart"


class CredentialsRejectedError(AuthError):
    """Refused without a request: an earlier reply failed with `auth`, and every later one
    fails at once (the auth lockout, `policy.AuthLockout`) until the process restarts. Its
    text is `AUTH_LOCKED`, as the operator reads it in `GenerationFailed.detail`."""

    def __str__(self) -> str:
        return AUTH_LOCKED


class BadRequestError(ModelError):
    kind = "bad_request"
    hint = "the provider refused the request as invalid (check AI_MAX_TOKENS, AI_TEMPERATURE); not retried"


class NoModelError(ModelError):
    kind = "no_model"
    hint = "check AI_MODEL_NAME / AI_FALLBACK_MODELS / OPENAI_MODEL against the provider's model list; not retried"


class ContextTooLongError(ModelError):
    kind = "context_too_long"
    hint = (
        "the prompt exceeds the model's context window; lower WAPA_MAX_CONTEXT or "
        "WAPA_PROMPT_TOKEN_BUDGET, or choose a model with a larger window"
    )

    def window(self) -> tuple[int, int] | None:
        """(input + max_tokens as Cloudflare estimated them, the model's window) from a 5021
        text like "The estimated number of input and maximum output tokens (61250) exceeded
        this model context window limit (60000)"; None when the text does not say."""
        found = _WINDOW.search(self.detail)
        return (int(found.group(1)), int(found.group(2))) if found else None


_WINDOW = re.compile(r"tokens \((\d+)\) exceeded this model context window limit \((\d+)\)")


class ModelAccessError(ModelError):
    """403 for one model, not for the account: the token is fine, this model is not open to
    this account (yet). The chain skips this model only."""

    kind = "model_access"
    hint = (
        "this account may not use this model; choose another model (AI_MODEL_NAME / "
        "AI_FALLBACK_MODELS); not retried"
    )

    def meaning(self) -> str:
        if self.code == 5016 or "agree" in self.detail.lower():
            return (
                "the model's license terms are not accepted on this account: accept them once "
                f'(`wapa ask --agree {self.model or "MODEL"}` sends {{"prompt": "agree"}}), '
                "or choose another model; not retried"
            )
        if self.code == 5035 or "paid" in self.detail.lower():
            return (
                "this model needs the Workers Paid plan: upgrade, or choose another model "
                "(AI_MODEL_NAME / AI_FALLBACK_MODELS); not retried"
            )
        return self.hint


class AccountBlockedError(ModelError):
    kind = "account_blocked"
    hint = (
        "Cloudflare has blocked Workers AI for this account (code 3023, 'Service unavailable "
        "for account'); check the dashboard or contact Cloudflare support; not retried"
    )


class RoutingError(ModelError):
    kind = "bad_route"
    hint = (
        "Cloudflare could not route the request: check CLOUDFLARE_API_BASE (it ends in "
        "/client/v4), CLOUDFLARE_AI_GATEWAY_URL and CLOUDFLARE_ACCOUNT_ID (the 32-character id "
        "on the Workers AI page); not retried"
    )


class RateLimitedError(ModelError):
    kind = "rate_limited"
    retryable = True
    hint = "too many requests per minute for this model; wait a minute and try again"


class CapacityError(ModelError):
    kind = "capacity"
    retryable = True
    hint = (
        "the model is overloaded at the provider; try again in a few minutes, or choose a "
        "less busy model (AI_MODEL_NAME)"
    )


class DailyQuotaError(ModelError):
    kind = "daily_quota"
    hint = (
        "the daily free allocation is used up: no more calls until 00:00 UTC; "
        "upgrade to Workers Paid or wait"
    )


class BudgetError(ModelError):
    kind = "budget"
    hint = "wapa's daily neuron budget (AI_DAILY_NEURON_BUDGET) is spent; calls resume at 00:00 UTC"


class ServerError(ModelError):
    kind = "server_error"
    retryable = True
    hint = "the provider failed internally; try again in a few minutes"


class BadResponseError(ServerError):
    kind = "bad_response"
    hint = "the provider answered without a usable text (never sent to a contact); try again"


class ModelTimeoutError(ModelError):
    kind = "timeout"
    retryable = True
    hint = (
        "no answer in time; for a slow model or server raise AI_TIMEOUT (per attempt) and "
        "AI_TOTAL_TIMEOUT (per reply)"
    )


class UnreachableError(ModelError):
    kind = "unreachable"
    retryable = True
    hint = "could not connect; check CLOUDFLARE_API_BASE / OPENAI_BASE_URL, proxies and the network"


ERRORS: dict[str, type[ModelError]] = {
    cls.kind: cls
    for cls in (
        AuthError,
        BadRequestError,
        NoModelError,
        ModelAccessError,
        AccountBlockedError,
        RoutingError,
        ContextTooLongError,
        RateLimitedError,
        CapacityError,
        DailyQuotaError,
        BudgetError,
        ServerError,
        BadResponseError,
        ModelTimeoutError,
        UnreachableError,
    )
}
KINDS: tuple[str, ...] = tuple(ERRORS)

# ------------------------------------------------------------------ classification

# Cloudflare API error codes (see DESIGN.md "External facts").
_BY_CODE: dict[int, type[ModelError]] = {
    10000: AuthError,
    10001: AuthError,
    9106: AuthError,
    9109: AuthError,
    6003: BadRequestError,
    6111: AuthError,
    7000: RoutingError,  # "No route for that URI"
    7003: RoutingError,  # "Could not route to ..., perhaps your object identifier is invalid?"
    5016: ModelAccessError,  # model terms not accepted (403)
    5018: ModelAccessError,  # account not allowed for this model (403)
    3041: ModelAccessError,  # the same, for a private model (403)
    5035: ModelAccessError,  # the model needs Workers Paid (403)
    3023: AccountBlockedError,  # "Service unavailable for account" (403): not a server error
    3042: NoModelError,  # invalid model id (404)
    3006: ContextTooLongError,  # request too large (413)
    3040: CapacityError,
    3021: RateLimitedError,
    3036: DailyQuotaError,
    4006: DailyQuotaError,
    3043: ServerError,
    3007: ModelTimeoutError,
    5007: NoModelError,
    5021: ContextTooLongError,
}
# 4006 means the daily allocation only when its text says so (else the status decides).
_QUOTA_ONLY_BY_TEXT = frozenset({4006})

# OpenAI-style string codes / types.
_BY_NAME: dict[str, type[ModelError]] = {
    "invalid_api_key": AuthError,
    "authentication_error": AuthError,
    "permission_error": AuthError,
    "permission_denied": AuthError,
    "insufficient_quota": DailyQuotaError,
    "rate_limit_exceeded": RateLimitedError,
    "rate_limit_error": RateLimitedError,
    "model_not_found": NoModelError,
    "not_found_error": NoModelError,
    "context_length_exceeded": ContextTooLongError,
    "exceed_context_size_error": ContextTooLongError,
    "server_error": ServerError,
    "overloaded_error": CapacityError,
    "api_error": ServerError,
    "invalid_request_error": BadRequestError,
}

# Message text, first match wins; the order matters (a daily-quota text mentions "rate" and
# "limit" words too, so it comes before the rate limit).
_BY_TEXT: tuple[tuple[re.Pattern[str], type[ModelError]], ...] = tuple(
    (re.compile(p, re.IGNORECASE), cls)
    for p, cls in (
        (r"unavailable for account|account (is )?(blocked|suspended)", AccountBlockedError),
        (
            r"not allowed to access this model|agreed to .{0,40}terms|model terms|"
            r"requires? (the )?workers paid",
            ModelAccessError,
        ),
        (r"could not route to|no route for that uri", RoutingError),
        (
            r"authorization header|authenticat|unauthori[sz]ed|invalid api key|incorrect api key|"
            r"invalid (api )?token|permission|forbidden|not entitled",
            AuthError,
        ),
        (
            r"daily (free )?allocation|used up your daily|neurons? (quota|limit)|"
            r"daily (quota|limit)|insufficient[_ ]quota",
            DailyQuotaError,
        ),
        (
            r"context (window|length|size)|maximum context|too many (input )?tokens|"
            r"input (is )?too long|exceeds? (the )?(available )?context|prompt is too long",
            ContextTooLongError,
        ),
        (
            r"no such model|model .{0,80}(not found|does not exist)|unknown model|"
            r"model_not_found|invalid model",
            NoModelError,
        ),
        (r"capacity|overloaded|out of capacity", CapacityError),
        (r"rate.?limit|too many requests|request per min", RateLimitedError),
        (r"timed? ?out|timeout|deadline exceeded", ModelTimeoutError),
        (r"internal (server )?error|service unavailable|bad gateway", ServerError),
    )
)


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def error_items(body: Any) -> list[tuple[int | None, str, str]]:
    """(numeric code, string code/type, message) for every error a response body carries,
    including Cloudflare's nested `error_chain`."""
    items: list[tuple[int | None, str, str]] = []

    def add(err: Any) -> None:
        if isinstance(err, str):
            items.append((None, "", err))
            return
        if not isinstance(err, dict):
            return
        raw_code = err.get("code")
        num = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
        name = raw_code if isinstance(raw_code, str) else ""
        if isinstance(raw_code, str) and raw_code.isdigit():
            num, name = int(raw_code), ""
        if not name and isinstance(err.get("type"), str):
            name = err["type"]
        message = err.get("message")
        items.append((num, name, message if isinstance(message, str) else ""))
        chain = err.get("error_chain")
        for sub in chain if isinstance(chain, list) else ():
            add(sub)

    if isinstance(body, dict):
        errors = body.get("errors")
        for err in errors if isinstance(errors, list) else ():
            add(err)
        if "error" in body:
            add(body["error"])
        if body.get("object") == "error" or ("message" in body and not items):
            add(body)
    elif isinstance(body, str) and body.strip():
        items.append((None, "", body))
    return items


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds only; an HTTP date is ignored)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 and seconds == seconds else None


def _by_status(status: int) -> type[ModelError]:
    if status in (401, 403):
        return AuthError
    if status == 404:
        return NoModelError
    if status in (408, 504, 524):
        return ModelTimeoutError
    if status == 413:
        return ContextTooLongError
    if status == 429:
        return RateLimitedError
    if status == 503:
        return CapacityError
    if status >= 500:
        return ServerError
    if 400 <= status < 500:
        return BadRequestError
    return BadResponseError


def classify(
    status: int,
    body: Any,
    *,
    provider: str = "",
    model: str = "",
    retry_after: str | None = None,
) -> ModelError:
    """The error for an HTTP answer that is not a usable success. `body` is the decoded JSON,
    or the raw text when the answer was not JSON."""
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            body = _strip_html(body)
    items = error_items(body)
    cls: type[ModelError] | None = None
    code = next((num for num, _, _ in items if num is not None), None)
    text = " | ".join(msg for _, _, msg in items if msg)
    for num, _, _ in reversed(items):  # the deepest cause in an error_chain is the most precise
        if num in _QUOTA_ONLY_BY_TEXT and _text_class(text) is not DailyQuotaError:
            continue
        if num in _BY_CODE:
            cls, code = _BY_CODE[num], num
            break
    if cls is None:
        for _, name, _ in items:
            if name.lower() in _BY_NAME:
                cls = _BY_NAME[name.lower()]
                break
    if cls is None:
        cls = _text_class(text)
    if cls is None:
        cls = _by_status(status)
    if cls is RateLimitedError and _text_class(text) is DailyQuotaError:
        cls = DailyQuotaError
    return cls(
        text or f"HTTP {status}",
        status=status or None,
        code=code,
        provider=provider,
        model=model,
        retry_after=parse_retry_after(retry_after),
    )


def _text_class(text: str) -> type[ModelError] | None:
    if not text:
        return None
    for pattern, cls in _BY_TEXT:
        if pattern.search(text):
            return cls
    return None


def _strip_html(text: str) -> str:
    if "<" not in text:
        return text
    title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    if title:
        return title.group(1)
    return re.sub(r"<[^>]+>", " ", text)
