"""Usage accounting: tokens, neurons, the daily neuron budget, the daily-quota stop, counters.

Cloudflare bills Workers AI in neurons, per model, per million input and output tokens, with
10,000 free neurons a day; all limits reset at 00:00 UTC. `NeuronMeter` keeps today's spend
(from `result.usage`, estimated when absent), refuses a call that would take the day past the
budget, and refuses every call after the API said the daily allocation is used up, until the
next 00:00 UTC. `export` / `restore` carry the spend and the block across restarts (the runner
keeps them in the store). `LLMStats` holds plain counters a Prometheus exporter can read.

`NeuronMeter` reads no clock of its own when every call passes `now` (the model policy does,
and the simulator runs it on virtual time); the optional `clock` is only the default for a
call without `now`. Same calls, same `now`: same answers.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from wapa.adapters.llm.errors import BudgetError, DailyQuotaError
from wapa.core.context import prompt_tokens
from wapa.core.events import ChatMessage

# Published rates: neurons per million (input, output) tokens. developers.cloudflare.com,
# workers-ai/platform/pricing (2025).
NEURON_RATES: dict[str, tuple[float, float]] = {
    "@cf/meta/llama-3.2-1b-instruct": (2457, 18252),
    "@cf/meta/llama-3.2-3b-instruct": (4625, 30475),
    "@cf/meta/llama-3.1-8b-instruct-fp8-fast": (4119, 34868),
    "@cf/meta/llama-3.2-11b-vision-instruct": (4410, 61493),
    "@cf/meta/llama-3.1-70b-instruct-fp8-fast": (26668, 204805),
    "@cf/meta/llama-3.3-70b-instruct-fp8-fast": (26668, 204805),
    "@cf/deepseek-ai/deepseek-r1-distill-qwen-32b": (45170, 443756),
    "@cf/mistral/mistral-7b-instruct-v0.1": (10000, 17300),
    "@cf/meta/llama-3.1-8b-instruct": (25608, 75147),
    "@cf/meta/llama-3.1-8b-instruct-fp8": (13778, 26128),
    "@cf/meta/llama-3.1-8b-instruct-awq": (11161, 24215),
    "@cf/meta/llama-3-8b-instruct": (25608, 75147),
    "@cf/meta/llama-3-8b-instruct-awq": (11161, 24215),
    "@cf/meta/llama-2-7b-chat-fp16": (50505, 606061),
}
# A model missing from the table is charged at the dearest published rate, so the budget
# stops early rather than late; AI_NEURONS_PER_M_INPUT / _OUTPUT set the real rate.
UNKNOWN_RATE: tuple[float, float] = (
    max(r[0] for r in NEURON_RATES.values()),
    max(r[1] for r in NEURON_RATES.values()),
)
DAY = 86_400.0


def neuron_rate(
    model: str, input_override: float | None = None, output_override: float | None = None
) -> tuple[float, float]:
    rate_in, rate_out = NEURON_RATES.get(model, UNKNOWN_RATE)
    return (
        rate_in if input_override is None else input_override,
        rate_out if output_override is None else output_override,
    )


def neurons(
    model: str,
    input_tokens: int,
    output_tokens: int,
    input_override: float | None = None,
    output_override: float | None = None,
) -> float:
    rate_in, rate_out = neuron_rate(model, input_override, output_override)
    return (input_tokens * rate_in + output_tokens * rate_out) / 1_000_000


def estimate_input_tokens(messages: Sequence[ChatMessage]) -> int:
    """The same estimate the core budgets the prompt with (about 4 characters a token)."""
    return prompt_tokens(tuple(messages))


def estimate_output_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def next_utc_midnight(now: float) -> float:
    day = datetime.fromtimestamp(now, UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def utc_day(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).date().isoformat()


def _in(seconds: float) -> str:
    minutes = max(0, math.ceil(seconds / 60))
    return f"{minutes // 60}h{minutes % 60:02d}m"


@dataclass
class LLMStats:
    """Plain counters, one object per client chain, read by the metrics endpoint."""

    requests: int = 0  # HTTP requests sent to a provider
    retries: int = 0  # attempts after the first, within a model
    fallbacks: int = 0  # moves to the next model or provider
    successes: int = 0  # generations that returned text
    failures: dict[str, int] = field(default_factory=dict)  # final failures by kind
    attempt_errors: dict[str, int] = field(default_factory=dict)  # every failed attempt by kind
    latency_sum: float = 0.0  # seconds, successful generations, all attempts included
    latency_count: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=1000))
    input_tokens: int = 0
    output_tokens: int = 0
    neurons_today: float = 0.0
    neuron_budget: float | None = None
    budget_left: float | None = None
    quota_blocked_until: float = 0.0  # epoch seconds; 0 when not blocked
    health_checks: int = 0

    def count(self, table: dict[str, int], kind: str) -> None:
        table[kind] = table.get(kind, 0) + 1

    def observe_latency(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.latency_sum += seconds
        self.latency_count += 1
        self.latencies.append(seconds)

    def snapshot(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "retries": self.retries,
            "fallbacks": self.fallbacks,
            "successes": self.successes,
            "failures": dict(self.failures),
            "attempt_errors": dict(self.attempt_errors),
            "latency_sum": round(self.latency_sum, 6),
            "latency_count": self.latency_count,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "neurons_today": round(self.neurons_today, 4),
            "neuron_budget": self.neuron_budget,
            "budget_left": None if self.budget_left is None else round(self.budget_left, 4),
            "quota_blocked_until": self.quota_blocked_until,
            "health_checks": self.health_checks,
        }


class NeuronMeter:
    """Today's neuron spend for one Cloudflare account, the budget stop and the quota stop."""

    def __init__(
        self,
        budget: float | None,
        clock: Callable[[], float] | None,
        stats: LLMStats,
        input_override: float | None = None,
        output_override: float | None = None,
    ) -> None:
        self.budget = budget
        self.clock = clock  # only the default for calls made without `now`
        self.stats = stats
        self.input_override = input_override
        self.output_override = output_override
        self.day = utc_day(clock()) if clock is not None else ""  # "": set by the first call
        self._day_start = self._day_end = 0.0  # the UTC day `day` spans (set by _roll)
        self.spent = 0.0
        self.reserved = 0.0  # worst-case cost of the calls in flight
        self.blocked_until = 0.0
        self._publish()

    def _now(self, now: float | None) -> float:
        if now is not None:
            return now
        if self.clock is None:
            raise ValueError("NeuronMeter: no clock given; pass `now`")
        return self.clock()

    def _roll(self, now: float) -> None:
        if not self._day_start <= now < self._day_end:  # (dates only at a day's edge)
            today = utc_day(now)
            self._day_end = next_utc_midnight(now)
            self._day_start = self._day_end - DAY
            if today != self.day:
                self.day, self.spent = today, 0.0
        if self.blocked_until and now >= self.blocked_until:
            self.blocked_until = 0.0
        self._publish()

    def _publish(self) -> None:
        self.stats.neurons_today = self.spent
        self.stats.neuron_budget = self.budget
        self.stats.budget_left = None if self.budget is None else max(0.0, self.budget - self.spent)
        self.stats.quota_blocked_until = self.blocked_until

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> float:
        return neurons(
            model, input_tokens, output_tokens, self.input_override, self.output_override
        )

    def reserve(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        max_tokens: int,
        now: float | None = None,
    ) -> float:
        """Check a call may be made and hold its worst-case cost until `release`; raises
        DailyQuotaError (quota stop) or BudgetError (the budget could be exceeded)."""
        worst = self.check(model, messages, max_tokens, now)
        self.reserved += worst
        return worst

    def release(self, amount: float) -> None:
        self.reserved = max(0.0, self.reserved - amount)

    def check(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        max_tokens: int,
        now: float | None = None,
    ) -> float:
        """Raise before a call that may not be made: quota stop, or budget would be exceeded.
        Returns the call's worst-case cost."""
        now = self._now(now)
        self._roll(now)
        return self._allow(
            model, self.cost(model, estimate_input_tokens(messages), max_tokens), now
        )

    def reserve_cost(self, model: str, worst: float, now: float | None = None) -> float:
        """`reserve` for a call priced per unit, not per token (an audio minute, an image):
        hold `worst` neurons, or raise DailyQuotaError / BudgetError."""
        now = self._now(now)
        self._roll(now)
        self.reserved += self._allow(model, worst, now)
        return worst

    def record_cost(self, model: str, amount: float, now: float | None = None) -> float:
        """`record` for a call priced per unit: `amount` neurons spent."""
        self._roll(self._now(now))
        self.spent += max(0.0, amount)
        self._publish()
        return amount

    def _allow(self, model: str, worst: float, now: float) -> float:
        if self.blocked_until:
            raise DailyQuotaError(
                f"refusing calls until 00:00 UTC (in {_in(self.blocked_until - now)}) after the "
                "API reported the daily allocation used up",
                provider="cloudflare",
                model=model,
            )
        if self.budget is None:
            return worst
        if self.spent + self.reserved + worst > self.budget:
            raise BudgetError(
                f"{self.spent:.1f} of {self.budget:g} neurons spent today"
                + (f" ({self.reserved:.1f} held by calls in flight)" if self.reserved else "")
                + f"; this call may cost "
                f"up to {worst:.1f}; resuming at 00:00 UTC (in {_in(next_utc_midnight(now) - now)})",
                provider="cloudflare",
                model=model,
            )
        return worst

    def record(
        self, model: str, input_tokens: int, output_tokens: int, now: float | None = None
    ) -> float:
        self._roll(self._now(now))
        used = self.cost(model, input_tokens, output_tokens)
        self.spent += used
        self._publish()
        return used

    def block_until_midnight(self, now: float | None = None) -> float:
        self.blocked_until = next_utc_midnight(self._now(now))
        self._publish()
        return self.blocked_until

    def refresh(self, now: float | None = None) -> None:
        self._roll(self._now(now))

    def left(self, now: float | None = None) -> float | None:
        """What is left of today's budget (None without a budget)."""
        self._roll(self._now(now))
        return self.stats.budget_left

    def export(self, now: float | None = None) -> dict[str, Any]:
        """Today's spend and the quota block as plain JSON values, for the store (the runner
        saves them with the commit after each generation and restores them at start)."""
        self._roll(self._now(now))
        return {"day": self.day, "spent": round(self.spent, 6), "blocked_until": self.blocked_until}

    def restore(self, state: Mapping[str, Any], now: float | None = None) -> None:
        """Take back what `export` gave before a restart: a restart loop must not hand the
        day's budget out again, nor call again after the API said the allocation is used up.
        A spend from an earlier UTC day is dropped (the budget is daily); a quota block is
        kept until it ends, never past the next 00:00 UTC. Raises ValueError naming the field
        when `state` is malformed (then nothing is changed)."""
        if not isinstance(state, Mapping):
            raise ValueError(f"model usage: expected an object, got {type(state).__name__}")
        day = state.get("day")
        if not isinstance(day, str):
            raise ValueError(f"model usage: 'day' must be a YYYY-MM-DD text, got {day!r}")
        spent = _amount(state, "spent")
        blocked = _amount(state, "blocked_until")
        now = self._now(now)
        self._roll(now)
        if day == self.day:
            self.spent = max(self.spent, spent)
        if blocked > now:
            self.blocked_until = max(self.blocked_until, min(blocked, next_utc_midnight(now)))
        self._publish()


def _amount(state: Mapping[str, Any], name: str) -> float:
    value = state.get(name, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"model usage: {name!r} must be a finite number, got {value!r}")
    if value < 0:
        raise ValueError(f"model usage: {name!r} must be >= 0, got {value!r}")
    return float(value)
