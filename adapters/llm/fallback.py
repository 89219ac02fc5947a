"""The model chain: the async shell around the sans-IO `policy.ChainPolicy`.

`ModelChain` is the `LLMClient` that `wapa ask`, `wapa doctor` and the runner's model service
use (`client_from_env` builds one). `generate` holds no rule of its own: it asks the policy
what to do and does it, `Call` -> one request (`provider.send`), `Wait` -> `await sleep`,
until the policy answers or gives up. The rules (bounded retries with backoff and jitter,
Retry-After, the total deadline, the shorter-context retry, the fallback order with the
account-wide skip, the neuron budget, the daily-quota block, the auth lockout) and the error
text that says what was tried are in `policy.py`, where the simulator runs them too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from wapa.adapters.llm.base import Provider
from wapa.adapters.llm.config import LLMSettings
from wapa.adapters.llm.errors import ModelError
from wapa.adapters.llm.policy import (
    ACCOUNT_WIDE,
    Answer,
    AuthLockout,
    Call,
    ChainPolicy,
    GenerationResult,
    Wait,
)
from wapa.adapters.llm.usage import LLMStats, NeuronMeter
from wapa.core.events import ChatMessage

__all__ = ["ACCOUNT_WIDE", "ModelChain"]


class ModelChain:
    """An `LLMClient` over ordered providers, driven by one `ChainPolicy`."""

    def __init__(
        self,
        providers: Sequence[Provider],
        *,
        settings: LLMSettings,
        stats: LLMStats,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        meter: NeuronMeter | None = None,
        seed: int | None = None,
    ) -> None:
        if not providers:
            raise ValueError("providers: at least one model provider is needed")
        self.providers = tuple(providers)
        self.settings = settings
        self.stats = stats
        self.clock = clock
        self.sleep = sleep
        self.meter = meter
        self.policy = ChainPolicy(
            [p.identity for p in self.providers], settings, meter=meter, stats=stats, seed=seed
        )
        self.health_interval = settings.health_interval
        self._health: dict[str, Any] | None = None
        self._health_at = 0.0

    @property
    def models(self) -> list[str]:
        return [f"{p.name}:{p.model}" for p in self.providers]

    @property
    def lockout(self) -> AuthLockout:
        return self.policy.lockout

    async def generate(self, messages: Sequence[ChatMessage]) -> GenerationResult:
        """One reply. Raises ModelError (the primary's, with what was tried) when the chain
        gives up, ValueError / TypeError for malformed messages."""
        run = self.policy.begin(messages, self.clock())
        step = run.step
        try:
            while True:
                if isinstance(step, Call):
                    provider = self.providers[step.provider]
                    try:
                        reply = await provider.send(step.messages, step.timeout, step.max_tokens)
                    except ModelError as exc:
                        step = run.on_error(exc, self.clock())
                    else:
                        step = run.on_reply(reply, self.clock())
                elif isinstance(step, Wait):
                    await self.sleep(step.seconds)
                    step = run.resume(self.clock())
                elif isinstance(step, Answer):
                    return step.result
                else:
                    raise step.error
        finally:
            run.close()  # cancelled mid-call: the budget reservation is given back

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
            self.meter.refresh(now)
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
