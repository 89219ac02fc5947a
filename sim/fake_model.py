"""The simulated model service: production's model policy on the virtual clock.

`FakeModel` stands where the runner's model service stands: it receives the core's `Generate`
effects (`start_generation(g, now)`) and delivers `Generated` / `GenerationFailed` through the
`sim.scheduler.Scheduler`. Between the two it runs the SAME `ChainPolicy` as the production
client (`wapa.adapters.llm.policy`: bounded retries with backoff and seeded jitter,
Retry-After, the total deadline, the shorter-context retry, the fallback models with the
account-wide skip, the neuron budget, the daily-quota block until 00:00 UTC, the auth
lockout), with the production settings (`LLMSettings`, defaults from
`wapa.adapters.llm.config`). What is fake is only the provider: each `Call` of the policy is
a request to a fake Cloudflare that answers after `latency` seconds with a body built by
`sim.fake_cloudflare.cloudflare_response` (the captured Cloudflare bodies), which the real
provider parsing (`parse_run`, `parse_chat`, `errors.classify`) turns into a reply or a
`ModelError`; backoffs are `Scheduler.call_at` on the virtual clock. Anything scheduled is
lost when the simulated process crashes; `restarted(now)` then drops the runs in flight.

The reply text names the contact and quotes the first words of the last contact message
(`reply_for`), so a reader can trace every sent text back to the context the core built.

Failure kinds (scheduled with `ScheduledFailure`, or drawn per request from `failure_rates`
with `random.Random(seed)`) say *what the provider answers to one request*, not how the
reply ends: `{kind: rate_limited, count: 2}` then a success gives ONE reply after two
backoffs, exactly as in production; it takes `AI_MAX_ATTEMPTS` (3) failures in a row to give
up (`GenerationFailed`, the core's `generation_failed` trace), and fallback models, when
configured, get their turn first.

| kind | the fake provider answers | the policy |
|---|---|---|
| rate_limited | 429, code 3021 (Retry-After when the failure sets one) | backoff, retry |
| capacity | 429, code 3040 | backoff, retry; then the fallbacks |
| server_error | 500, code 3043 | backoff, retry |
| bad_response | 200 with an empty text | backoff, retry |
| timeout | nothing: the request runs into the client's own per-attempt timeout (`AI_TIMEOUT`, or `timeout_after`) | retry after a backoff |
| no_answer | the same as `timeout` (see below) | the same |
| auth | 401, code 10000 | no retry; the account's other models skipped; every later reply refused at once (lockout) |
| daily_quota | 429, code 4006 | no retry; no Cloudflare call until 00:00 UTC |
| bad_request | 400, code 5006 | no retry; the next model |
| no_model | 400, code 5007 | no retry; the next model |
| context_too_long | 413, code 5021 | once more at once with half the conversation |

`no_answer` used to mean "the request hangs and only the core's generation_timeout ends it".
Production cannot do that: every request is bounded by the client's `AI_TIMEOUT` and every
reply by `AI_TOTAL_TIMEOUT`, so a provider that never answers is a `timeout` to the client.
`no_answer` is now the same as `timeout` (kept so old scenarios load). The core's own
`generation_timeout` is still reached when the client's retries outlast it (e.g. three
hanging requests of 30 s plus backoffs against a generation_timeout of 90 s).

`answer(g, now)` is a shim for a driver that has not moved to `start_generation` and a
`Scheduler` yet: it runs the generation to its end at once, on a private clock starting at
`now`, and returns the outcome as [(delay, event)].
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

from wapa.adapters.llm.base import transport_timeout
from wapa.adapters.llm.cloudflare import parse_run
from wapa.adapters.llm.config import CloudflareSettings, LLMSettings
from wapa.adapters.llm.errors import ModelError
from wapa.adapters.llm.openai_compat import parse_chat
from wapa.adapters.llm.policy import (
    Answer,
    Call,
    ChainPolicy,
    ChainRun,
    GiveUp,
    ProviderId,
    Reply,
    Step,
    Wait,
    crash_event,
    outcome_event,
    provider_ids,
)
from wapa.adapters.llm.usage import (
    LLMStats,
    NeuronMeter,
    estimate_input_tokens,
    estimate_output_tokens,
)
from wapa.core.events import Generate
from wapa.sim.fake_cloudflare import cloudflare_response, reply_for
from wapa.sim.scheduler import Scheduler

# What the fake provider can answer to one request (see the module's table).
FAILURE_KINDS = (
    "rate_limited",
    "capacity",
    "timeout",
    "server_error",
    "auth",
    "daily_quota",
    "bad_request",
    "no_answer",
    "no_model",
    "context_too_long",
    "bad_response",
)
HANGS = frozenset({"timeout", "no_answer"})  # the client's own timeout ends the request
# kind -> the fake Cloudflare answer (a key of sim.fake_cloudflare.FAILURES)
ANSWERS = {
    "rate_limited": "rate_limit",
    "capacity": "capacity",
    "server_error": "internal",
    "auth": "auth",
    "daily_quota": "daily_quota",
    "bad_request": "bad_request",
    "no_model": "no_model",
    "context_too_long": "context",
    "bad_response": "empty",
}
SIM_ACCOUNT = "0123456789abcdef0123456789abcdef"
PARSERS: dict[str, Callable[..., Reply]] = {"cloudflare": parse_run, "openai": parse_chat}


@dataclass
class ScheduledFailure:
    """`count` requests made at or after `after` (epoch seconds), to `model` (None: any), are
    answered with `kind` (with a Retry-After header of `retry_after` seconds when set)."""

    kind: str
    count: int = 1
    after: float = float("-inf")
    retry_after: float | None = None
    model: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAILURE_KINDS:
            raise ValueError(
                f"model failure kind {self.kind!r} is unknown (known: {', '.join(FAILURE_KINDS)})"
            )
        if self.count < 1:
            raise ValueError(f"model failure count must be >= 1, got {self.count}")


def default_settings() -> LLMSettings:
    """The production defaults (config.py), for one simulated Cloudflare account."""
    return LLMSettings(
        cloudflare=CloudflareSettings(account_id=SIM_ACCOUNT, api_token=""), openai=None
    )


@dataclass
class FakeModel:
    """The simulated model service (see the module docstring).

    - `latency`: seconds before the fake provider answers a request (success or failure); a
      latency at or over the request's timeout is a timeout.
    - `timeout_after`: the client's per-attempt timeout (AI_TIMEOUT); None: `settings.timeout`.
    - `failures`: scheduled answers, used up in order of the list, one per request.
    - `replies`: canned texts for the next successful answers, in order (to test reply
      hygiene); after they run out the built reply (`reply_for`) is used.
    - `failure_rates`: kind -> probability per request, drawn from `random.Random(seed)`.
    - `seed`: the failure draws and (derived) the policy's backoff jitter.
    - `settings`: the model settings (None: the production defaults, one Cloudflare model);
      `fallback_models`: more Cloudflare models after those of `settings`.
    - `requests`: requests the fake provider received; `generations`: `Generate`s started.
    """

    latency: float = 0.8
    timeout_after: float | None = None
    failures: list[ScheduledFailure] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    failure_rates: Mapping[str, float] = field(default_factory=dict)
    seed: int = 0
    requests: int = 0
    settings: LLMSettings | None = None
    fallback_models: Sequence[str] = ()
    scheduler: Scheduler | None = None
    generations: int = 0

    def __post_init__(self) -> None:
        self._replies = list(self.replies)
        for kind in self.failure_rates:
            if kind not in FAILURE_KINDS:
                raise ValueError(f"model failure kind {kind!r} is unknown")
        if self.latency < 0:
            raise ValueError(f"model latency must be >= 0, got {self.latency}")
        settings = self.settings or default_settings()
        if self.timeout_after is not None:
            settings = replace(
                settings,
                timeout=self.timeout_after,
                total_timeout=max(settings.total_timeout, self.timeout_after),
            )
        if self.fallback_models:
            if settings.cloudflare is None:
                raise ValueError("fallback_models: the settings have no Cloudflare account")
            models = tuple(dict.fromkeys([*settings.cloudflare.models, *self.fallback_models]))
            settings = replace(settings, cloudflare=replace(settings.cloudflare, models=models))
        self.model_settings = settings
        self.providers: tuple[ProviderId, ...] = tuple(provider_ids(settings))
        self.stats = LLMStats()
        self.meter = NeuronMeter(
            settings.daily_neuron_budget if any(p.metered for p in self.providers) else None,
            None,  # no clock: the policy passes the virtual `now` to every call
            self.stats,
            settings.neurons_per_m_input,
            settings.neurons_per_m_output,
        )
        self.policy = ChainPolicy(
            self.providers,
            settings,
            meter=self.meter,
            stats=self.stats,
            seed=self.seed * 1_000_003 + 7,  # its own stream, apart from the failure draws
        )
        self._runs: dict[int, ChainRun] = {}  # in flight, for restarted()

    # ------------------------------------------------------------------ the driver's side

    def bind(self, scheduler: Scheduler) -> None:
        """The simulated world that runs the callbacks and delivers the outcomes (the engine
        binds itself when it is built)."""
        self.scheduler = scheduler

    def start_generation(self, g: Generate, now: float) -> None:
        """Start answering `g`; its `Generated` / `GenerationFailed` comes through the
        scheduler's `deliver_at` (at `now` already when the policy refuses at once)."""
        if self.scheduler is None:
            raise RuntimeError("FakeModel.start_generation: bind(scheduler) first")
        self._start(g, now, self.scheduler)

    def restarted(self, now: float) -> None:
        """The simulated process crashed and restarted at `now`: the generations in flight are gone
        (the scheduler dropped their callbacks), their budget reservations with them, and the
        auth lockout is cleared (a restart is how the operator clears it). The day's spend
        and the quota block stay, as the runner keeps them in its store."""
        for run in self._runs.values():
            run.close()
        self._runs.clear()
        self.policy.lockout.tripped = False

    def budget_left(self, now: float) -> float | None:
        return self.policy.budget_left(now)

    # ------------------------------------------------------------------ the policy, driven

    def _start(self, g: Generate, now: float, sched: Scheduler) -> None:
        self.generations += 1
        try:
            run = self.policy.begin(g.messages, now)
        except (TypeError, ValueError) as exc:  # a malformed prompt: what the service does
            sched.deliver_at(now, crash_event(g.request_id, exc, self.budget_left(now)))
            return
        self._runs[id(run)] = run
        self._drive(g, run, run.step, now, sched)

    def _drive(self, g: Generate, run: ChainRun, step: Step, now: float, sched: Scheduler) -> None:
        if isinstance(step, Call):
            self._request(g, run, step, now, sched)
        elif isinstance(step, Wait):
            sched.call_at(
                now + step.seconds, lambda t: self._drive(g, run, run.resume(t), t, sched)
            )
        else:
            assert isinstance(step, Answer | GiveUp)
            self._runs.pop(id(run), None)
            sched.deliver_at(now, outcome_event(g.request_id, step, self.budget_left(now)))

    def _request(
        self, g: Generate, run: ChainRun, call: Call, now: float, sched: Scheduler
    ) -> None:
        """One request to the fake provider: its answer arrives after `latency`, or the
        client's timeout ends it."""
        self.requests += 1
        p = self.providers[call.provider]
        kind, retry_after = self._failure(now, p.model)
        if kind in HANGS or self.latency >= call.timeout:

            def timed_out(t: float) -> None:
                error = transport_timeout(call.timeout, provider=p.name, model=p.model)
                self._drive(g, run, run.on_error(error, t), t, sched)

            sched.call_at(now + call.timeout, timed_out)
            return
        if kind:
            status, body, headers = cloudflare_response(ANSWERS[kind], retry_after=retry_after)
        else:
            text = self._replies.pop(0) if self._replies else reply_for(call.messages)
            usage = (estimate_input_tokens(call.messages), estimate_output_tokens(text))
            status, body, headers = cloudflare_response(
                text=text, usage=usage, chat=p.name == "openai", model=p.model
            )
        parse = PARSERS[p.name]

        def arrived(t: float) -> None:
            try:
                reply = parse(status, body, headers, model=p.model, provider=p.name)
            except ModelError as exc:
                step = run.on_error(exc, t)
            else:
                step = run.on_reply(reply, t)
            self._drive(g, run, step, t, sched)

        sched.call_at(now + self.latency, arrived)

    @cached_property
    def _rng(self) -> random.Random:
        """The `failure_rates` draws' generator, seeded at its first draw (most runs never
        draw, and seeding one costs about 6 µs)."""
        return random.Random(self.seed)

    def _failure(self, now: float, model: str) -> tuple[str, float | None]:
        """What the provider answers to a request for `model` made at `now`: (kind or "",
        Retry-After)."""
        for rule in self.failures:
            if rule.count > 0 and now >= rule.after and rule.model in (None, model):
                rule.count -= 1
                return rule.kind, rule.retry_after
        if self.failure_rates:
            draw = self._rng.random()
            for kind, rate in sorted(self.failure_rates.items()):
                if draw < rate:
                    return kind, None
                draw -= rate
        return "", None


__all__ = [
    "ANSWERS",
    "FAILURE_KINDS",
    "FakeModel",
    "ScheduledFailure",
    "default_settings",
    "reply_for",
]
