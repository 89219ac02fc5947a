"""The model chain: the primary model, then `AI_FALLBACK_MODELS`, then the OpenAI-compatible
provider, each with its own bounded retries, all within one total deadline per reply.

A failed model hands over to the next one, whatever the kind, except that after `auth`,
`daily_quota` or `budget` the other models of the same account (group) are skipped, since
they would fail the same way. When every model fails, the primary's error is raised (the
others are in its `.chain`), so the operator sees the first cause, e.g. a bad token; its
`.tried` lists every configured model in order (attempts, outcome, why it stopped, skipped or
not reached) and its message says so.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any

from wapa.adapters.llm.base import GenerationResult, Provider, validate_messages
from wapa.adapters.llm.errors import ModelError, ModelTimeoutError, Tried
from wapa.adapters.llm.usage import LLMStats, NeuronMeter
from wapa.core.events import ChatMessage

log = logging.getLogger("wapa.llm")

ACCOUNT_WIDE = frozenset({"auth", "daily_quota", "budget"})


class ModelChain:
    """An `LLMClient` over ordered providers. `client_from_env` builds one."""

    def __init__(
        self,
        providers: Sequence[Provider],
        *,
        stats: LLMStats,
        clock: Callable[[], float],
        total_timeout: float,
        health_interval: float = 60.0,
        meter: NeuronMeter | None = None,
        settings: Any = None,
    ) -> None:
        if not providers:
            raise ValueError("providers: at least one model provider is needed")
        self.providers = tuple(providers)
        self.stats = stats
        self.clock = clock
        self.total_timeout = total_timeout
        self.health_interval = health_interval
        self.meter = meter
        self.settings = settings
        self._health: dict[str, Any] | None = None
        self._health_at = 0.0

    @property
    def models(self) -> list[str]:
        return [f"{p.name}:{p.model}" for p in self.providers]

    async def generate(self, messages: Sequence[ChatMessage]) -> GenerationResult:
        msgs = validate_messages(messages)
        start = self.clock()
        deadline = start + self.total_timeout
        errors: list[ModelError] = []
        tried: list[Tried] = []
        skipped: dict[str, str] = {}  # group -> the account-wide kind that skips it
        attempts = 0
        for index, provider in enumerate(self.providers):
            if provider.group in skipped:
                why = f"same account as a model that failed with {skipped[provider.group]}"
                tried.append(Tried(provider.name, provider.model, 0, "skipped", why))
                continue
            if index and errors:
                if self.clock() >= deadline:
                    errors.append(
                        ModelTimeoutError(
                            f"total time bound of {self.total_timeout:g}s used up before "
                            f"trying {provider.model}",
                            provider=provider.name,
                            model=provider.model,
                        )
                    )
                    why = f"AI_TOTAL_TIMEOUT={self.total_timeout:g}s used up first"
                    tried += [
                        Tried(p.name, p.model, 0, "not tried", why) for p in self.providers[index:]
                    ]
                    break
                self.stats.fallbacks += 1
                log.warning(
                    "model %s failed (%s); falling back to %s:%s",
                    errors[-1].model,
                    errors[-1].kind,
                    provider.name,
                    provider.model,
                )
            try:
                result = await provider.generate(msgs, deadline=deadline)
            except ModelError as exc:
                attempts += exc.attempts
                errors.append(exc)
                tried += exc.tried or [Tried(provider.name, provider.model, exc.attempts, exc.kind)]
                if exc.kind in ACCOUNT_WIDE:
                    skipped.setdefault(provider.group, exc.kind)
                continue
            attempts += result.attempts
            latency = max(0.0, self.clock() - start)
            self.stats.successes += 1
            self.stats.observe_latency(latency)
            return dataclasses.replace(result, attempts=attempts, latency_s=latency)
        first = errors[0]
        first.chain = list(errors)
        first.attempts = attempts
        first.tried = tried
        first.fallbacks = len(self.providers) - 1
        self.stats.count(self.stats.failures, first.kind)
        raise first

    async def health(self) -> dict[str, Any]:
        """One cheap check per account/server (never a generation), cached for
        `health_interval` seconds so a 30-second probe does not hammer the API."""
        now = self.clock()
        if self._health is not None and now - self._health_at < self.health_interval:
            return {**self._health, "cached": True}
        checks: list[dict[str, Any]] = []
        seen: set[str] = set()
        for provider in self.providers:
            if provider.group in seen:
                continue
            seen.add(provider.group)
            try:
                result = await provider.health()
            except Exception as exc:  # a health check never raises
                result = {"ok": False, "kind": "unreachable", "detail": type(exc).__name__}
            checks.append({"provider": provider.name, "model": provider.model, **result})
        if self.meter is not None:
            self.meter.refresh()
        oks = [c["ok"] for c in checks]
        status = "ok" if all(oks) else "degraded" if any(oks) else "down"
        if self.stats.quota_blocked_until and status == "ok":
            status = "degraded"
        report = {
            "ok": any(oks),
            "status": status,
            "providers": checks,
            "models": self.models,
            "neurons_today": round(self.stats.neurons_today, 4),
            "budget_left": self.stats.budget_left,
            "quota_blocked_until": self.stats.quota_blocked_until,
            "checked_at": now,
            "cached": False,
        }
        self._health, self._health_at = report, now
        return report

    async def aclose(self) -> None:
        closed: set[int] = set()
        for provider in self.providers:
            if id(provider.http) not in closed:
                closed.add(id(provider.http))
                await provider.http.aclose()
