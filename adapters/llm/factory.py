"""`client_from_env`: the configured model chain, from environment variables."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping

import httpx
from wapa.adapters.llm.base import Provider
from wapa.adapters.llm.cloudflare import CloudflareClient
from wapa.adapters.llm.config import LLMSettings, settings_from_env
from wapa.adapters.llm.fallback import ModelChain
from wapa.adapters.llm.openai_compat import OpenAICompatClient
from wapa.adapters.llm.policy import CLOUDFLARE_HOSTS, provider_ids
from wapa.adapters.llm.transport import pooled_transport, wants_default_transport
from wapa.adapters.llm.usage import LLMStats, NeuronMeter

__all__ = ["CLOUDFLARE_HOSTS", "client_from_env", "client_from_settings"]


def client_from_settings(
    settings: LLMSettings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> ModelChain:
    clock = clock or (lambda: time.time())  # looked up at call time: freezegun can patch it
    sleep = sleep or asyncio.sleep
    stats = LLMStats()
    ids = provider_ids(settings)  # the chain's order, groups and metering: policy.py
    meter = NeuronMeter(
        settings.daily_neuron_budget if any(p.metered for p in ids) else None,
        clock,
        stats,
        settings.neurons_per_m_input,
        settings.neurons_per_m_output,
    )
    if transport is None and not wants_default_transport():
        transport = pooled_transport()  # httpx's transport, cheaper pool checks (transport.py)
    http = httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(settings.timeout),
        headers={"User-Agent": "wapa"},
        follow_redirects=False,
    )
    providers: list[Provider] = []
    for p in ids:
        common = {"settings": settings, "http": http, "stats": stats}
        if p.name == "cloudflare" and settings.cloudflare is not None:
            providers.append(
                CloudflareClient(
                    cloudflare=settings.cloudflare,
                    model=p.model,
                    group=p.group,
                    metered=p.metered,
                    **common,
                )
            )
        elif p.name == "openai" and settings.openai is not None:
            providers.append(
                OpenAICompatClient(
                    openai=settings.openai, group=p.group, metered=p.metered, **common
                )
            )
    return ModelChain(
        providers, settings=settings, stats=stats, clock=clock, sleep=sleep, meter=meter
    )


def client_from_env(
    env: Mapping[str, str] | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> ModelChain:
    """The model chain configured by the environment (os.environ when `env` is None).
    Raises ConfigError naming the variable when a setting is missing or malformed."""
    settings = settings_from_env(os.environ if env is None else env)
    return client_from_settings(settings, transport=transport, clock=clock, sleep=sleep)
