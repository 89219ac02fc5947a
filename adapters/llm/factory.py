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

__all__ = [
    "CLOUDFLARE_HOSTS",
    "ModelHTTPClient",
    "client_from_env",
    "client_from_settings",
    "keep_alive_limits",
]


class _NoCookies(httpx.Cookies):
    """Cookies that are never kept: `extract_cookies` (which httpx calls on every response,
    wrapping it and its request in urllib's classes and parsing the headers into an email
    message, about a tenth of a model call's CPU) does nothing."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class ModelHTTPClient(httpx.AsyncClient):
    """httpx's client for the model APIs, without a cookie jar: Cloudflare's and the
    OpenAI-compatible APIs authenticate with a bearer token on every request, and a cookie a
    response sets (Cloudflare's edge may set `__cf_bm` or `__cfruid`) is not sent back, as
    curl does not without a jar."""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: object) -> None:  # httpx's __init__ sets `_cookies`, not this
        raise AttributeError("the model client keeps no cookies")


_NO_COOKIES = _NoCookies()


def client_from_settings(
    settings: LLMSettings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    connections: int | None = None,
) -> ModelChain:
    """The model chain of `settings`. `connections`: how many generations may run at once
    (the runner's `WAPA_MAX_CONCURRENT_GENERATIONS`): the pool then keeps that many
    connections alive, plus one for a health check, so a burst never closes a connection it
    will want again at once (`keep_alive_limits`); None: httpx's default limits."""
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
        # httpx's transport, cheaper pool checks (transport.py, pool.py)
        transport = pooled_transport(keep_alive_limits(connections))
    http = ModelHTTPClient(
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


# Seconds an idle connection to the model is kept. Under Cloudflare's 400 s idle limit for
# HTTP/1.1 (docs/model.md), so the client closes first and a request never races the server's
# close; a connection another provider closed sooner reads as at its end, and httpcore drops
# it before reuse (`has_expired`: our asyncio backend answers `is_readable`).
KEEPALIVE_EXPIRY = 300.0


def keep_alive_limits(connections: int | None) -> httpx.Limits | None:
    """Pool limits for `connections` concurrent generations: as many connections, plus one
    for a health check, all kept alive while idle for up to KEEPALIVE_EXPIRY. httpx's defaults
    keep 20 idle connections, fewer than a burst of 32 generations uses, for 5 s, so a runner
    answering a message every minute made a new TLS connection for each generation. None:
    httpx's defaults."""
    if connections is None:
        return None
    if connections < 1:
        raise ValueError(f"connections must be >= 1, got {connections}")
    return httpx.Limits(
        max_connections=connections + 1,
        max_keepalive_connections=connections + 1,
        keepalive_expiry=KEEPALIVE_EXPIRY,
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
