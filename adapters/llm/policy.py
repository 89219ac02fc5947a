"""The model's policy as a sans-IO decision object: retries, backoff, fallbacks, budget, lockout.

One reply is one run of `ChainPolicy`: the policy says what to do next, the driver does it
and reports back. The policy never awaits, never reads a clock and never does I/O (like h11
or aioquic): `now` is passed in with every report, and the jitter of its backoff comes from a
`random.Random(seed)` it owns, so the same reports with the same times give the same steps,
bit for bit. Two drivers run it:

- the async client (`fallback.ModelChain.generate`): `Call` -> one HTTP request
  (`provider.send`), `Wait` -> `await sleep(seconds)`;
- the simulator (`sim.fake_model.FakeModel`): `Call` -> a Cloudflare-shaped fake answer after
  a simulated latency, parsed by the real provider parsing; `Wait` -> a callback on the
  virtual clock.

So what the scenarios and the fuzzer prove about retries and fallbacks is what production
does. (The other design, a fake HTTP transport below the real client sleeping on virtual
time, would need an event loop inside the discrete-event simulator.)

    policy = ChainPolicy(provider_ids(settings), settings, meter=meter, stats=stats, seed=1)
    run = policy.begin(messages, now)          # ValueError / TypeError for bad messages
    step = run.step
    while True:
        if isinstance(step, Call):             # send one request, at most step.timeout long
            try:
                reply = await providers[step.provider].send(step.messages, step.timeout)
            except ModelError as exc:
                step = run.on_error(exc, clock())
            else:
                step = run.on_reply(reply, clock())
        elif isinstance(step, Wait):
            await sleep(step.seconds)
            step = run.resume(clock())
        elif isinstance(step, Answer):
            return step.result
        else:                                   # GiveUp
            raise step.error
    # (and `run.close()` in a `finally`, so a cancelled call releases its budget reservation)

The rules, each as it was in the async client before (same outcomes, same error texts):

1. **Order.** The providers are tried in order (primary model, `AI_FALLBACK_MODELS`, the
   OpenAI-compatible provider), all within one deadline per reply (`AI_TOTAL_TIMEOUT`). A
   model that fails hands over to the next whatever the kind, except that after `auth`,
   `daily_quota`, `budget`, `account_blocked` or `bad_route` the other models of the same
   account (group) are skipped. `model_access` (a 403 for one model: terms not accepted, not
   allowed, Workers Paid only) skips that model only. When
   the deadline has passed before a fallback is reached, the rest are "not tried".
2. **Retries per model.** A retryable kind (rate_limited, capacity, server_error,
   bad_response, timeout, unreachable) is retried up to `AI_MAX_ATTEMPTS` attempts, after an
   exponential backoff with jitter: tenacity's `wait_exponential` curve (1, 2, 4, 8 s, at most
   10 s) plus a uniform 0..1 s drawn from the policy's own seeded generator, capped at 10 s.
   The curve is computed here in one line (`backoff`), not imported: tenacity's import cost
   13 ms of every start of `wapa simulate` for one expression, and its own retry loop
   (`AsyncRetrying`) cannot be used anyway (it owns the sleeping and the clock, which a
   sans-IO policy hands to its driver); a test checks the line against tenacity's
   `wait_exponential` for every attempt number. A `Retry-After` of at most
   `AI_MAX_RETRY_AFTER` replaces the backoff; a longer one ends this model's retries (the
   fallbacks take over). No wait is started that would end at or past the deadline. Each
   attempt's timeout is `AI_TIMEOUT`, or what is left of the deadline when that is less.
3. **Shorter context.** `context_too_long` is retried once, at once, with the older half of
   the conversation dropped (`shorten`); the retry count of that model starts again. When the
   error says the window (Cloudflare's 5021: "input and maximum output tokens (N) exceeded
   this model context window limit (W)"), `max_tokens` of the retry is lowered too when the
   shorter input plus `AI_MAX_TOKENS` would still not fit (`Call.max_tokens`); a single
   message with nothing to drop is retried with the lower `max_tokens` alone.
4. **Neurons.** Before each attempt to a metered (Cloudflare) model the worst case (estimated
   input + all of `AI_MAX_TOKENS`) is reserved on the `NeuronMeter`, so concurrent calls cannot
   overrun `AI_DAILY_NEURON_BUDGET` (`budget`, not retried); the reservation is released when
   the attempt ends, and the real cost (from `usage`, estimated when absent) recorded. A
   `daily_quota` answer blocks every metered call until 00:00 UTC, without a request. A 2xx answer without usable text (`bad_response` with `.billed`) is billed by
   Cloudflare all the same, so it is recorded too before it is retried. A client-side
   timeout may be billed too (Cloudflare may finish the work); it cannot be known, so it is
   not recorded.
5. **The error given up with** is the primary model's, with `.chain` (every model's error),
   `.attempts` (all of them), `.tried` (every model in order: attempts, outcome, the setting
   that stopped its retries, skipped or not reached) and `.fallbacks`.
6. **Auth lockout.** Once a reply has failed with `auth`, every later reply fails at once
   with kind `auth` and the text "model credentials rejected earlier; fix them and restart",
   without a request (`AuthLockout`; a restart of the process clears it).

The policy keeps the `LLMStats` counters and logs to `wapa.llm`; nothing else leaves it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from wapa.adapters.llm.config import LLMSettings
from wapa.adapters.llm.errors import (
    ContextTooLongError,
    CredentialsRejectedError,
    ModelError,
    ModelTimeoutError,
    Tried,
)
from wapa.adapters.llm.usage import (
    LLMStats,
    NeuronMeter,
    estimate_input_tokens,
    estimate_output_tokens,
)
from wapa.core.events import ChatMessage, Generated, GenerationFailed
from wapa.core.records import Record

log = logging.getLogger("wapa.llm")
log.addHandler(logging.NullHandler())  # a library: the application configures logging

ACCOUNT_WIDE = frozenset({"auth", "daily_quota", "budget", "account_blocked", "bad_route"})
BACKOFF_MAX = 10.0  # seconds, jitter included
JITTER = 1.0  # seconds, uniform, added to the exponential curve
CLOUDFLARE_HOSTS = ("api.cloudflare.com", "gateway.ai.cloudflare.com")
DETAIL_CHARS = 200  # GenerationFailed.detail is the error's text cut to this


# ---------------------------------------------------------------------- what flows in and out


@dataclass(frozen=True, eq=False, repr=False)
class Reply(Record):
    """One successful answer of one request, parsed (tokens None: the provider sent none)."""

    text: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    neurons: float = 0.0
    usage_estimated: bool = False


@dataclass(frozen=True, eq=False, repr=False)
class GenerationResult(Record):
    """A reply's answer: its text, the model that gave it, the tokens and neurons it cost."""

    text: str  # never empty
    model: str
    input_tokens: int
    output_tokens: int
    neurons: float  # 0 for providers that are not metered in neurons
    attempts: int  # requests across retries, the shorter-context retry and fallbacks
    latency_s: float
    provider: str = ""
    usage_estimated: bool = False  # the provider sent no usage; tokens are our estimate


@dataclass(frozen=True, eq=False, repr=False)
class ProviderId(Record):
    """Who one model of the chain is, as far as the policy cares."""

    name: str  # "cloudflare" or "openai"
    model: str
    group: str = ""  # the account or server; "" means `name`. Account-wide errors skip it
    metered: bool = False  # counted on the neuron meter (Cloudflare, also its /ai/v1)

    def __post_init__(self) -> None:
        if not self.group:
            object.__setattr__(self, "group", self.name)


@dataclass(frozen=True, eq=False, repr=False)
class Call(Record):
    """Send one request to `provider` (an index into the chain); give up after `timeout` s.
    `max_tokens`: None for `AI_MAX_TOKENS`, lower after a context-window error (rule 3)."""

    provider: int
    messages: tuple[ChatMessage, ...]
    timeout: float
    max_tokens: int | None = None


@dataclass(frozen=True, eq=False, repr=False)
class Wait(Record):
    """Back off for `seconds`, then `resume`."""

    seconds: float


@dataclass(frozen=True, eq=False, repr=False)
class Answer(Record):
    """The last step of a run that got an answer."""

    result: GenerationResult


@dataclass(frozen=True, eq=False, repr=False)
class GiveUp(Record):
    """The last step of a run that failed: `error` is the error given up with (rule 5)."""

    error: ModelError


Step = Call | Wait | Answer | GiveUp


# ---------------------------------------------------------------------- pure helpers


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


def is_cloudflare(url: str) -> bool:
    return (urlsplit(url).hostname or "") in CLOUDFLARE_HOSTS


def provider_ids(settings: LLMSettings) -> list[ProviderId]:
    """The chain the settings configure, in order: every Cloudflare model (primary first),
    then the OpenAI-compatible provider (metered, and in the Cloudflare account's group, when
    its URL is Cloudflare's own /ai/v1)."""
    ids: list[ProviderId] = []
    cf = settings.cloudflare
    if cf is not None:
        group = f"cloudflare:{cf.account_id}"
        ids += [ProviderId("cloudflare", m, group, metered=True) for m in cf.models]
    oa = settings.openai
    if oa is not None:
        metered = is_cloudflare(oa.base_url)
        group = (
            f"cloudflare:{cf.account_id}" if metered and cf is not None else f"openai:{oa.base_url}"
        )
        ids.append(ProviderId("openai", oa.model, group, metered=metered))
    return ids


def backoff(attempt: int, rng: random.Random) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): tenacity's
    `wait_exponential(multiplier=1, max=BACKOFF_MAX)` curve, 2 ** (attempt - 1) capped at
    BACKOFF_MAX (the exponent bounded so that no attempt number overflows), plus seeded
    jitter, at most BACKOFF_MAX."""
    curve = min(2.0 ** min(attempt - 1, 64), BACKOFF_MAX)
    return max(0.0, min(curve + rng.uniform(0.0, JITTER), BACKOFF_MAX))


def outcome_event(
    request_id: str, step: Answer | GiveUp, budget_left: float | None = None
) -> Generated | GenerationFailed:
    """The core's event for how a reply ended (the runner's model service and the simulator
    both use it, so the kind and the detail text are the same in both worlds)."""
    if isinstance(step, Answer):
        return Generated(request_id, step.result.text, budget_left=budget_left)
    error = step.error
    return GenerationFailed(
        request_id, error.kind, str(error)[:DETAIL_CHARS], budget_left=budget_left
    )


def crash_event(
    request_id: str, exc: BaseException, budget_left: float | None = None
) -> GenerationFailed:
    """An unexpected exception around a generation (a bug, a malformed prompt): kind
    `internal`, never a crash of the caller."""
    detail = f"{type(exc).__name__}: {exc}"[:DETAIL_CHARS]
    return GenerationFailed(request_id, "internal", detail, budget_left=budget_left)


class AuthLockout:
    """After a reply failed with `auth`, every later one fails at once (no request): the
    credentials will not fix themselves, and hammering the API with a revoked token helps
    nobody. Only a restart (a new process, a new lockout) clears it."""

    def __init__(self) -> None:
        self.tripped = False

    def observe(self, error: BaseException) -> None:
        if getattr(error, "kind", None) == "auth":
            self.tripped = True

    def refusal(self) -> ModelError | None:
        return CredentialsRejectedError("") if self.tripped else None


# ---------------------------------------------------------------------- the policy


class ChainPolicy:
    """The decisions for every reply of one model chain. Shared state across replies: the
    neuron meter (budget, reservations, quota block), the auth lockout and the counters."""

    def __init__(
        self,
        providers: Sequence[ProviderId],
        settings: LLMSettings,
        *,
        meter: NeuronMeter | None = None,
        stats: LLMStats | None = None,
        seed: int | None = None,
        lockout: AuthLockout | None = None,
    ) -> None:
        if not providers:
            raise ValueError("providers: at least one model provider is needed")
        self.providers = tuple(providers)
        self.settings = settings
        self.stats = stats if stats is not None else (meter.stats if meter else LLMStats())
        self.meter = meter
        self.rng = random.Random(seed)  # None: seeded from the OS (production)
        self.lockout = lockout or AuthLockout()

    def begin(self, messages: Sequence[ChatMessage], now: float) -> ChainRun:
        """A new reply. Raises ValueError / TypeError for malformed messages (before any
        step); its first step is in `.step`."""
        return ChainRun(self, validate_messages(messages), now)

    def budget_left(self, now: float) -> float | None:
        return self.meter.left(now) if self.meter is not None else None


class ChainRun:
    """One reply's way through the chain. `step` is what the driver must do now; report the
    outcome with `on_reply` / `on_error` (after a `Call`) or `resume` (after a `Wait`), each
    of which returns the next step (also left in `step`). `Answer` and `GiveUp` end it."""

    def __init__(self, policy: ChainPolicy, msgs: tuple[ChatMessage, ...], now: float) -> None:
        self.policy = policy
        self.settings = policy.settings
        self.stats = policy.stats
        self.msgs = msgs
        self.start = now
        self.deadline = now + self.settings.total_timeout
        self.errors: list[ModelError] = []
        self.tried: list[Tried] = []
        self.skipped: dict[str, str] = {}  # group -> the account-wide kind that skips it
        self.attempts = 0  # requests, all models
        self.index = -1  # the provider under way
        # the provider under way
        self._msgs = msgs  # shortened once after context_too_long
        self._shortened = False
        self._max_tokens: int | None = None  # lowered once after context_too_long
        self._p_start = now
        self._p_attempts = 0  # requests to this provider
        self._tries = 0  # attempt number within the current retry loop (tenacity's count)
        self._reserved = 0.0
        refusal = policy.lockout.refusal()
        if refusal is not None:
            self.stats.count(self.stats.failures, refusal.kind)
            self.step: Step = GiveUp(refusal)
        else:
            self.step = self._next_provider(now)

    @property
    def done(self) -> bool:
        return isinstance(self.step, Answer | GiveUp)

    @property
    def provider(self) -> ProviderId:
        return self.policy.providers[self.index]

    # ------------------------------------------------------------------ the driver's reports

    def on_reply(self, reply: Reply, now: float) -> Step:
        """The request of the last `Call` answered with a usable text."""
        self._expect(Call, "on_reply")
        self._release()
        p = self.provider
        estimated = reply.input_tokens is None or reply.output_tokens is None
        tokens_in = (
            reply.input_tokens
            if reply.input_tokens is not None
            else estimate_input_tokens(self._msgs)
        )
        tokens_out = (
            reply.output_tokens
            if reply.output_tokens is not None
            else estimate_output_tokens(reply.text)
        )
        meter = self.policy.meter if p.metered else None
        used = meter.record(p.model, tokens_in, tokens_out, now) if meter is not None else 0.0
        self.stats.input_tokens += tokens_in
        self.stats.output_tokens += tokens_out
        self.attempts += self._p_attempts
        latency = max(0.0, now - self.start)
        self.stats.successes += 1
        self.stats.observe_latency(latency)
        result = GenerationResult(
            text=reply.text,
            model=p.model,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            neurons=used,
            attempts=self.attempts,
            latency_s=latency,
            provider=p.name,
            usage_estimated=estimated,
        )
        self.step = Answer(result)
        return self.step

    def on_error(self, error: ModelError, now: float) -> Step:
        """The request of the last `Call` failed (a classified answer, a timeout, no
        connection...)."""
        self._expect(Call, "on_error")
        self._release()
        p = self.provider
        self.stats.count(self.stats.attempt_errors, error.kind)
        if error.kind == "daily_quota" and p.metered and self.policy.meter is not None:
            self.policy.meter.block_until_midnight(now)
        if error.billed is not None and p.metered and self.policy.meter is not None:
            tokens_in, tokens_out = error.billed  # answered without text, billed all the same
            tokens_in = tokens_in if tokens_in is not None else estimate_input_tokens(self._msgs)
            self.policy.meter.record(p.model, tokens_in, tokens_out or 0, now)
            self.stats.input_tokens += tokens_in
            self.stats.output_tokens += tokens_out or 0
        log.warning(
            "model %s attempt %d failed: %s", p.model, self._p_attempts, error.where() or error.kind
        )
        self.step = self._failed(error, now)
        return self.step

    def resume(self, now: float) -> Step:
        """The `Wait` is over."""
        self._expect(Wait, "resume")
        self.step = self._attempt(now)
        return self.step

    def close(self) -> None:
        """The driver stops early (cancelled, crashed): give back a reservation in flight."""
        self._release()

    # ------------------------------------------------------------------ the rules

    def _expect(self, kind: type, what: str) -> None:
        if not isinstance(self.step, kind):
            raise RuntimeError(f"{what}() while the step is {type(self.step).__name__}")

    def _release(self) -> None:
        if self._reserved and self.policy.meter is not None:
            self.policy.meter.release(self._reserved)
        self._reserved = 0.0

    def _next_provider(self, now: float) -> Step:
        providers = self.policy.providers
        while True:
            self.index += 1
            if self.index >= len(providers):
                return self._give_up()
            p = providers[self.index]
            if p.group in self.skipped:
                why = f"same account as a model that failed with {self.skipped[p.group]}"
                self.tried.append(Tried(p.name, p.model, 0, "skipped", why))
                continue
            if self.index and self.errors:
                total = self.settings.total_timeout
                if now >= self.deadline:
                    self.errors.append(
                        ModelTimeoutError(
                            f"total time bound of {total:g}s used up before trying {p.model}",
                            provider=p.name,
                            model=p.model,
                        )
                    )
                    why = f"AI_TOTAL_TIMEOUT={total:g}s used up first"
                    self.tried += [
                        Tried(q.name, q.model, 0, "not tried", why) for q in providers[self.index :]
                    ]
                    return self._give_up()
                self.stats.fallbacks += 1
                log.warning(
                    "model %s failed (%s); falling back to %s:%s",
                    self.errors[-1].model,
                    self.errors[-1].kind,
                    p.name,
                    p.model,
                )
            self._msgs, self._shortened, self._max_tokens = self.msgs, False, None
            self._p_start, self._p_attempts, self._tries = now, 0, 0
            return self._attempt(now)

    def _attempt(self, now: float) -> Step:
        """One attempt of the provider under way, unless the deadline or the meter forbids."""
        p, s = self.provider, self.settings
        self._tries += 1
        remaining = self.deadline - now
        if remaining <= 0:
            error: ModelError = ModelTimeoutError(
                f"total time bound of {s.total_timeout:g}s used up", provider=p.name, model=p.model
            )
            return self._failed(error, now)
        meter = self.policy.meter if p.metered else None
        if meter is not None:
            try:
                self._reserved = meter.reserve(p.model, self._msgs, self._limit(), now)
            except ModelError as exc:  # quota block or budget: not an attempt
                return self._failed(exc, now)
        self._p_attempts += 1
        self.stats.requests += 1
        return Call(self.index, self._msgs, min(s.timeout, remaining), self._max_tokens)

    def _limit(self) -> int:
        return self._max_tokens if self._max_tokens is not None else self.settings.max_tokens

    def _failed(self, error: ModelError, now: float) -> Step:
        """After a failed attempt: wait and retry, retry shorter, or end this provider."""
        s = self.settings
        if error.retryable:
            ra = error.retry_after
            sleep = (
                float(ra)
                if ra is not None and ra <= s.max_retry_after
                else backoff(self._tries, self.policy.rng)
            )
            if ra is not None and ra > s.max_retry_after:
                # told to come back much later: give up here, let fallbacks try
                why = f"Retry-After {ra:g}s is over AI_MAX_RETRY_AFTER={s.max_retry_after:g}s"
            elif self._tries >= s.max_attempts:
                why = f"AI_MAX_ATTEMPTS={s.max_attempts} reached"
            elif now + sleep >= self.deadline:
                why = f"AI_TOTAL_TIMEOUT={s.total_timeout:g}s reached"
            else:
                self.stats.retries += 1
                log.info(
                    "model %s: retrying after %s in %.1fs", self.provider.model, error.kind, sleep
                )
                return Wait(sleep)
            return self._provider_failed(error, now, why)
        if isinstance(error, ContextTooLongError):
            shorter = None if self._shortened else shorten(self._msgs)
            limit = None if self._shortened else self._fitting_max_tokens(error, shorter)
            if shorter is None and limit is None:
                why = "also with a shorter context" if self._shortened else "nothing to drop"
                return self._provider_failed(error, now, why)
            log.warning(
                "model %s: context too long with %d messages; retrying once with %d%s",
                self.provider.model,
                len(self._msgs),
                len(shorter or self._msgs),
                f" and max_tokens {limit}" if limit is not None else "",
            )
            self._msgs, self._shortened, self._tries = shorter or self._msgs, True, 0
            self._max_tokens = limit
            return self._attempt(now)
        return self._provider_failed(error, now, "")

    def _fitting_max_tokens(
        self, error: ContextTooLongError, shorter: tuple[ChatMessage, ...] | None
    ) -> int | None:
        """A lower max_tokens for the retry when the error names the window and the (shorter)
        input plus max_tokens would still not fit it; None when it fits or is not known.
        Cloudflare's own input estimate is scaled by ours (shorter / current)."""
        found = error.window()
        if found is None:
            return None
        requested, window = found
        limit = self._limit()
        theirs = max(0, requested - limit)  # Cloudflare's estimate of the input
        ours = estimate_input_tokens(self._msgs)
        after = (
            theirs if shorter is None else theirs * estimate_input_tokens(shorter) // max(1, ours)
        )
        if after + limit <= window:
            return None
        fitting = window - after - 16  # a margin: the estimates differ a little
        return fitting if 16 <= fitting < limit else None

    def _provider_failed(self, error: ModelError, now: float, why: str) -> Step:
        """The provider under way is done with `error`: note what it was given, move on."""
        p = self.provider
        error.attempts, error.stopped = self._p_attempts, why
        error.tried = [Tried(p.name, p.model, self._p_attempts, error.kind, why)]
        self.attempts += error.attempts
        self.errors.append(error)
        self.tried += error.tried
        if error.kind in ACCOUNT_WIDE:
            self.skipped.setdefault(p.group, error.kind)
        return self._next_provider(now)

    def _give_up(self) -> Step:
        first = self.errors[0]
        first.chain = list(self.errors)
        first.attempts = self.attempts
        first.tried = self.tried
        first.fallbacks = len(self.policy.providers) - 1
        self.stats.count(self.stats.failures, first.kind)
        self.policy.lockout.observe(first)
        return GiveUp(first)


__all__ = [
    "ACCOUNT_WIDE",
    "Answer",
    "AuthLockout",
    "Call",
    "ChainPolicy",
    "ChainRun",
    "GenerationResult",
    "GiveUp",
    "ProviderId",
    "Reply",
    "Step",
    "Wait",
    "backoff",
    "crash_event",
    "outcome_event",
    "provider_ids",
    "shorten",
    "validate_messages",
]
