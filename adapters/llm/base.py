"""What every model client offers, and the retry loop the providers share.

`LLMClient` is the interface the runner and `wapa ask` use (`client_from_env` returns one).
`Provider` is one model at one provider: subclasses send one HTTP request and parse it; the
base class adds the bounded retries (tenacity: exponential backoff with jitter, a sane
Retry-After honoured, a total deadline), the single shorter-context retry, the neuron checks
and the counters.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter
from wapa.adapters.llm.config import LLMSettings
from wapa.adapters.llm.errors import (
    BadResponseError,
    ContextTooLongError,
    ModelError,
    ModelTimeoutError,
    Tried,
    UnreachableError,
    classify,
)
from wapa.adapters.llm.usage import (
    LLMStats,
    NeuronMeter,
    estimate_input_tokens,
    estimate_output_tokens,
)
from wapa.core.events import ChatMessage

log = logging.getLogger("wapa.llm")
log.addHandler(logging.NullHandler())  # a library: the application configures logging

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class GenerationResult:
    text: str  # never empty
    model: str
    input_tokens: int
    output_tokens: int
    neurons: float  # 0 for providers that are not metered in neurons
    attempts: int  # HTTP attempts across retries, the shorter-context retry and fallbacks
    latency_s: float
    provider: str = ""
    usage_estimated: bool = False  # the provider sent no usage; tokens are our estimate


@runtime_checkable
class LLMClient(Protocol):
    stats: LLMStats

    async def generate(self, messages: Sequence[ChatMessage]) -> GenerationResult: ...

    async def health(self) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class Reply:
    """One successful HTTP answer, parsed."""

    text: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    neurons: float = 0.0
    usage_estimated: bool = False


def validate_messages(messages: Sequence[ChatMessage]) -> tuple[ChatMessage, ...]:
    msgs = tuple(messages)
    if not msgs:
        raise ValueError("messages: empty; a prompt needs at least one message")
    for i, m in enumerate(msgs):
        if not isinstance(m, ChatMessage):
            raise TypeError(f"messages[{i}]: expected core.ChatMessage, got {type(m).__name__}")
        if m.role not in ("system", "user", "assistant"):
            raise ValueError(f"messages[{i}].role: {m.role!r} is not system, user or assistant")
        if not isinstance(m.content, str):
            raise TypeError(f"messages[{i}].content: expected str")
    return tuple(_encodable(m) for m in msgs)


def _encodable(m: ChatMessage) -> ChatMessage:
    """Lone surrogates (from broken input) would make the JSON body unencodable."""
    try:
        m.content.encode("utf-8")
        return m
    except UnicodeEncodeError:
        return ChatMessage(m.role, m.content.encode("utf-8", "replace").decode("utf-8"))


def shorten(messages: tuple[ChatMessage, ...]) -> tuple[ChatMessage, ...] | None:
    """Drop the older half of the non-system messages (the newest always stays); None when
    there is nothing left to drop."""
    system = [m for m in messages if m.role == "system"]
    turns = [m for m in messages if m.role != "system"]
    if len(turns) <= 1:
        return None
    keep = max(1, len(turns) // 2)
    return (*system, *turns[-keep:])


class Provider(ABC):
    """One model at one provider. `generate` retries; subclasses implement `_send`."""

    name = "provider"

    def __init__(
        self,
        *,
        model: str,
        settings: LLMSettings,
        http: httpx.AsyncClient,
        stats: LLMStats,
        clock: Clock,
        sleep: Sleep,
        meter: NeuronMeter | None = None,
        group: str = "",
    ) -> None:
        self.model = model
        self.settings = settings
        self.http = http
        self.stats = stats
        self.clock = clock
        self.sleep = sleep
        self.meter = meter
        self.group = group or self.name  # the fallback chain skips a group after auth/quota

    # ------------------------------------------------------------------ subclass API

    @abstractmethod
    async def _send(self, messages: tuple[ChatMessage, ...], timeout: float) -> Reply:
        """One request. Returns a non-empty reply or raises a ModelError."""

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
        """Send, map transport failures to ModelErrors, decode JSON (or keep the text)."""
        try:
            async with asyncio.timeout(timeout):
                response = await self.http.request(
                    method, url, headers=headers, json=body, timeout=timeout
                )
                raw = await response.aread()
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise ModelTimeoutError(
                f"no answer within {timeout:g}s ({type(exc).__name__})",
                provider=self.name,
                model=self.model,
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

    def _error(self, status: int, body: Any, headers: httpx.Headers) -> ModelError:
        return classify(
            status,
            body,
            provider=self.name,
            model=self.model,
            retry_after=headers.get("retry-after"),
        )

    def _bad(self, detail: str, status: int) -> BadResponseError:
        return BadResponseError(detail, status=status, provider=self.name, model=self.model)

    # ------------------------------------------------------------------ generation

    async def generate(
        self, messages: Sequence[ChatMessage], *, deadline: float | None = None
    ) -> GenerationResult:
        start = self.clock()
        if deadline is None:
            deadline = start + self.settings.total_timeout
        msgs = validate_messages(messages)
        attempts = [0]
        shortened = False
        while True:
            stopped: list[str] = []  # why tenacity stopped, when it did
            try:
                reply = await self._with_retries(msgs, deadline, attempts, stopped)
                break
            except ContextTooLongError as exc:
                shorter = None if shortened else shorten(msgs)
                if shorter is None:
                    why = "also with a shorter context" if shortened else "nothing to drop"
                    self._gave_up(exc, attempts[0], why)
                    raise
                log.warning(
                    "model %s: context too long with %d messages; retrying once with %d",
                    self.model,
                    len(msgs),
                    len(shorter),
                )
                msgs, shortened = shorter, True
            except ModelError as exc:
                self._gave_up(exc, attempts[0], stopped[0] if stopped else "")
                raise
        assert reply.input_tokens is not None and reply.output_tokens is not None
        return GenerationResult(
            text=reply.text,
            model=self.model,
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
            neurons=reply.neurons,
            attempts=attempts[0],
            latency_s=max(0.0, self.clock() - start),
            provider=self.name,
            usage_estimated=reply.usage_estimated,
        )

    def _gave_up(self, exc: ModelError, attempts: int, why: str) -> None:
        """Mark the error this model ends with: how many attempts it had and why no more."""
        exc.attempts, exc.stopped = attempts, why
        exc.tried = [Tried(self.name, self.model, attempts, exc.kind, why)]

    async def _with_retries(
        self,
        msgs: tuple[ChatMessage, ...],
        deadline: float,
        attempts: list[int],
        stopped: list[str],
    ) -> Reply:
        retrying = AsyncRetrying(
            sleep=self.sleep,
            stop=self._stop(deadline, stopped),
            wait=self._wait,
            retry=retry_if_exception(lambda e: isinstance(e, ModelError) and e.retryable),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        reply: Reply | None = None
        async for attempt in retrying:
            with attempt:
                reply = await self._attempt(msgs, deadline, attempts)
        assert reply is not None  # tenacity either returned a result or re-raised
        return reply

    async def _attempt(
        self, msgs: tuple[ChatMessage, ...], deadline: float, attempts: list[int]
    ) -> Reply:
        remaining = deadline - self.clock()
        if remaining <= 0:
            raise ModelTimeoutError(
                f"total time bound of {self.settings.total_timeout:g}s used up",
                provider=self.name,
                model=self.model,
            )
        # the worst case is reserved for the call, so concurrent calls cannot overrun the budget
        reserved = (
            self.meter.reserve(self.model, msgs, self.settings.max_tokens) if self.meter else 0.0
        )
        attempts[0] += 1
        self.stats.requests += 1
        try:
            reply = await self._send(msgs, min(self.settings.timeout, remaining))
            return self._account(msgs, reply)
        except ModelError as exc:
            self.stats.count(self.stats.attempt_errors, exc.kind)
            if exc.kind == "daily_quota" and self.meter is not None:
                self.meter.block_until_midnight()
            log.warning(
                "model %s attempt %d failed: %s", self.model, attempts[0], exc.where() or exc.kind
            )
            raise
        finally:
            if self.meter is not None:
                self.meter.release(reserved)

    def _account(self, msgs: tuple[ChatMessage, ...], reply: Reply) -> Reply:
        """Tokens (estimated when the provider sent none), neurons, counters."""
        estimated = reply.input_tokens is None or reply.output_tokens is None
        tokens_in = (
            reply.input_tokens if reply.input_tokens is not None else estimate_input_tokens(msgs)
        )
        tokens_out = (
            reply.output_tokens
            if reply.output_tokens is not None
            else estimate_output_tokens(reply.text)
        )
        used = self.meter.record(self.model, tokens_in, tokens_out) if self.meter else 0.0
        self.stats.input_tokens += tokens_in
        self.stats.output_tokens += tokens_out
        return dataclasses.replace(
            reply,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            neurons=used,
            usage_estimated=estimated,
        )

    def _stop(self, deadline: float, stopped: list[str]) -> Callable[[RetryCallState], bool]:
        """Tenacity's stop condition; the reason it stops goes into `stopped`, naming the
        setting, for the error message."""
        s = self.settings

        def stop(rs: RetryCallState) -> bool:
            exc = rs.outcome.exception() if rs.outcome else None
            ra = getattr(exc, "retry_after", None)
            if ra is not None and ra > s.max_retry_after:
                # told to come back much later: give up here, let fallbacks try
                stopped.append(
                    f"Retry-After {ra:g}s is over AI_MAX_RETRY_AFTER={s.max_retry_after:g}s"
                )
                return True
            if rs.attempt_number >= s.max_attempts:
                stopped.append(f"AI_MAX_ATTEMPTS={s.max_attempts} reached")
                return True
            if self.clock() + rs.upcoming_sleep >= deadline:
                stopped.append(f"AI_TOTAL_TIMEOUT={s.total_timeout:g}s reached")
                return True
            return False

        return stop

    _backoff = wait_exponential_jitter(initial=1.0, max=10.0, jitter=1.0)

    def _wait(self, rs: RetryCallState) -> float:
        exc = rs.outcome.exception() if rs.outcome else None
        ra = getattr(exc, "retry_after", None)
        if ra is not None and ra <= self.settings.max_retry_after:
            return float(ra)
        return float(self._backoff(rs))

    def _before_sleep(self, rs: RetryCallState) -> None:
        self.stats.retries += 1
        exc = rs.outcome.exception() if rs.outcome else None
        log.info(
            "model %s: retrying after %s in %.1fs",
            self.model,
            getattr(exc, "kind", "error"),
            rs.upcoming_sleep,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    def reply_text(self, text: Any, status: int) -> str:
        """The model's text, or BadResponseError: never an empty or non-text success."""
        if not isinstance(text, str):
            raise self._bad(f"response is {type(text).__name__}, not text", status)
        text = text.strip()
        if not text or not any(c.isalnum() for c in text):
            raise self._bad("the model returned an empty response", status)
        return text
