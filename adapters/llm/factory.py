"""`client_from_env`: the configured model chain, from environment variables."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlsplit

import httpx
from wapa.adapters.llm.cloudflare import CloudflareClient
from wapa.adapters.llm.config import LLMSettings, settings_from_env
from wapa.adapters.llm.fallback import ModelChain
from wapa.adapters.llm.openai_compat import OpenAICompatClient
from wapa.adapters.llm.usage import LLMStats, NeuronMeter

CLOUDFLARE_HOSTS = ("api.cloudflare.com", "gateway.ai.cloudflare.com")


def _is_cloudflare(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in CLOUDFLARE_HOSTS


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
    metered = settings.cloudflare is not None or (
        settings.openai is not None and _is_cloudflare(settings.openai.base_url)
    )
    meter = NeuronMeter(
        settings.daily_neuron_budget if metered else None,
        clock,
        stats,
        settings.neurons_per_m_input,
        settings.neurons_per_m_output,
    )
    http = httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(settings.timeout),
        headers={"User-Agent": "wapa"},
        follow_redirects=False,
    )
    common = {"settings": settings, "http": http, "stats": stats, "clock": clock, "sleep": sleep}
    providers: list[CloudflareClient | OpenAICompatClient] = []
    if settings.cloudflare is not None:
        for model in settings.cloudflare.models:
            providers.append(
                CloudflareClient(cloudflare=settings.cloudflare, model=model, meter=meter, **common)
            )
    if settings.openai is not None:
        metered = _is_cloudflare(settings.openai.base_url)  # Cloudflare's own /ai/v1
        providers.append(
            OpenAICompatClient(
                openai=settings.openai,
                meter=meter if metered else None,
                group=f"cloudflare:{settings.cloudflare.account_id}"
                if metered and settings.cloudflare is not None
                else "",
                **common,
            )
        )
    return ModelChain(
        providers,
        stats=stats,
        clock=clock,
        total_timeout=settings.total_timeout,
        health_interval=settings.health_interval,
        meter=meter,
        settings=settings,
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
