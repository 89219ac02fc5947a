"""What every model client offers, and what one provider does: one request, parsed.

`LLMClient` is the interface the runner's model service and `wapa ask` use (`client_from_env`
returns a `fallback.ModelChain`). `Provider` is one model at one provider: `send` makes exactly
one HTTP request and returns a `Reply` or raises a `ModelError`; it neither retries nor waits
(the retries, backoff, fallbacks and budget are the sans-IO `policy.ChainPolicy`, which the
chain drives). The parsing of an answer is pure (`parse(status, body, headers)`, and the
module functions `http_error`, `reply_text`, `bad_response`, `transport_timeout`), so the
simulator classifies its fake Cloudflare answers with exactly this code.
"""

from __future__ import annotations

import json
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from wapa.adapters.llm.config import LLMSettings
from wapa.adapters.llm.errors import (
    BadResponseError,
    ModelError,
    ModelTimeoutError,
    UnreachableError,
    classify,
)
from wapa.adapters.llm.policy import (
    GenerationResult,
    ProviderId,
    Reply,
    shorten,
    validate_messages,
)
from wapa.adapters.llm.usage import LLMStats
from wapa.core.events import ChatMessage

if TYPE_CHECKING:
    import httpx

__all__ = [
    "GenerationResult",
    "LLMClient",
    "Provider",
    "Reply",
    "bad_response",
    "billed_text",
    "header",
    "http_error",
    "reply_text",
    "shorten",
    "transport_timeout",
    "validate_messages",
]


@runtime_checkable
class LLMClient(Protocol):
    stats: LLMStats

    async def generate(self, messages: Sequence[ChatMessage]) -> GenerationResult: ...

    async def health(self) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


# ---------------------------------------------------------------------- pure parsing helpers


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, whatever the case of its name (httpx.Headers or a plain dict)."""
    # httpx and asyncio are imported where a request is made (`Provider._request`), not here:
    # the simulator parses its fake answers with this module and never loads them. An
    # httpx.Headers can only exist once httpx is imported.
    httpx = sys.modules.get("httpx")
    if httpx is not None and isinstance(headers, httpx.Headers):
        return headers.get(name)
    name = name.lower()
    return next((v for k, v in headers.items() if k.lower() == name), None)


def http_error(
    status: int, body: Any, headers: Mapping[str, str], *, provider: str, model: str
) -> ModelError:
    """The classified error of an answer that is not a usable success."""
    return classify(
        status,
        body,
        provider=provider,
        model=model,
        retry_after=header(headers, "retry-after"),
    )


def bad_response(detail: str, status: int, *, provider: str, model: str) -> BadResponseError:
    return BadResponseError(detail, status=status, provider=provider, model=model)


def billed_text(
    text: Any, status: int, tokens: tuple[int | None, int | None], *, provider: str, model: str
) -> str:
    """`reply_text` for an answer the provider bills: a BadResponseError carries the answer's
    `tokens` in `.billed`, so the policy meters it although it is retried."""
    try:
        return reply_text(text, status, provider=provider, model=model)
    except BadResponseError as exc:
        exc.billed = tokens
        raise


def reply_text(text: Any, status: int, *, provider: str, model: str) -> str:
    """The model's text, or BadResponseError: never an empty or non-text success."""
    if not isinstance(text, str):
        raise bad_response(
            f"response is {type(text).__name__}, not text", status, provider=provider, model=model
        )
    text = text.strip()
    if not text or not any(c.isalnum() for c in text):
        raise bad_response(
            "the model returned an empty response", status, provider=provider, model=model
        )
    return text


def transport_timeout(
    timeout: float, *, provider: str, model: str, cause: str = "TimeoutError"
) -> ModelTimeoutError:
    """The error of a request that got no answer within the client's own timeout."""
    return ModelTimeoutError(
        f"no answer within {timeout:g}s ({cause})", provider=provider, model=model
    )


def usage_tokens(usage: Any) -> tuple[int | None, int | None]:
    """(prompt_tokens, completion_tokens) of a usage object; None when absent or nonsense."""
    if not isinstance(usage, dict):
        return None, None
    return _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


# ---------------------------------------------------------------------- one provider


class Provider(ABC):
    """One model at one provider: one request per `send`, parsed by `parse`."""

    name = "provider"

    def __init__(
        self,
        *,
        model: str,
        settings: LLMSettings,
        http: httpx.AsyncClient,
        stats: LLMStats,
        metered: bool = False,
        group: str = "",
    ) -> None:
        self.model = model
        self.settings = settings
        self.http = http
        self.stats = stats
        self.metered = metered  # counted on the neuron meter
        self.group = group or self.name  # the fallback chain skips a group after auth/quota
        self._urls: dict[str, httpx.URL] = {}  # each URL parsed once (httpx checks every char)

    @property
    def identity(self) -> ProviderId:
        return ProviderId(self.name, self.model, self.group, self.metered)

    # ------------------------------------------------------------------ subclass API

    @abstractmethod
    async def send(
        self, messages: tuple[ChatMessage, ...], timeout: float, max_tokens: int | None = None
    ) -> Reply:
        """One request (`max_tokens` None: AI_MAX_TOKENS). Returns a non-empty reply or raises
        a ModelError."""

    @abstractmethod
    def parse(self, status: int, body: Any, headers: Mapping[str, str]) -> Reply:
        """A decoded answer (JSON, or the raw text when it was not JSON) as a Reply, or the
        ModelError it means. Pure."""

    @abstractmethod
    async def health(self) -> dict[str, Any]:
        """A check that costs no generation. Never raises."""

    # ------------------------------------------------------------------ shared HTTP

    async def _request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        timeout: float,
        body: dict[str, Any] | None = None,
    ) -> tuple[int, Any, httpx.Headers]:
        """Send, map transport failures to ModelErrors, decode JSON (or keep the text). `body`
        goes out as the compact JSON httpx's `json=` writes (json.dumps with ensure_ascii=False
        and no spaces, UTF-8), encoded with orjson: the same bytes, but for a float below 1e-4
        written 1e-5 where Python writes 1e-05."""
        import asyncio  # loaded with the client that calls this (see `header`)

        import httpx
        import orjson

        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) >= 16:  # a provider asks a handful of URLs; never grows
                self._urls.clear()
            parsed = self._urls[url] = httpx.URL(url)
        content = None
        if body is not None:  # the bytes httpx's `json=` sends, encoded 10-30x faster
            content = orjson.dumps(body)
            headers = {**headers, "Content-Type": "application/json"}
        try:
            async with asyncio.timeout(timeout):
                response = await self.http.request(
                    method, parsed, headers=headers, content=content, timeout=timeout
                )
                raw = await response.aread()
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise transport_timeout(
                timeout, provider=self.name, model=self.model, cause=type(exc).__name__
            ) from None
        except httpx.TransportError as exc:
            raise UnreachableError(
                f"{type(exc).__name__}: {exc}".split("\n")[0],
                provider=self.name,
                model=self.model,
            ) from None
        except httpx.HTTPError as exc:  # undecodable body, redirect loop...
            raise BadResponseError(
                f"{type(exc).__name__}: {exc}".split("\n")[0],
                provider=self.name,
                model=self.model,
            ) from None
        try:
            decoded: Any = json.loads(raw) if raw else None
        except ValueError:
            decoded = raw.decode("utf-8", "replace")
        return response.status_code, decoded, response.headers

    def _error(self, status: int, body: Any, headers: Mapping[str, str]) -> ModelError:
        return http_error(status, body, headers, provider=self.name, model=self.model)

    async def aclose(self) -> None:
        await self.http.aclose()
