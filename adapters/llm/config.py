"""Model settings from the environment, with errors that name the variable at fault.

Every variable, its default and its meaning is in docs/model.md. Secrets (tokens, keys) are
only ever read from the environment and never appear in `repr` or `describe()`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

DEFAULT_MODEL = "@cf/meta/llama-3.2-1b-instruct"
DEFAULT_API_BASE = "https://api.cloudflare.com/client/v4"


class ConfigError(ValueError):
    """A model setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class CloudflareSettings:
    account_id: str
    api_token: str = field(repr=False)
    api_base: str = DEFAULT_API_BASE
    gateway_url: str = ""
    models: tuple[str, ...] = (DEFAULT_MODEL,)  # primary first, then AI_FALLBACK_MODELS


@dataclass(frozen=True)
class OpenAISettings:
    base_url: str
    model: str
    api_key: str = field(default="", repr=False)


@dataclass(frozen=True)
class LLMSettings:
    cloudflare: CloudflareSettings | None
    openai: OpenAISettings | None
    max_tokens: int = 256
    temperature: float = 0.6
    timeout: float = 30.0  # per attempt
    total_timeout: float = 90.0  # per reply, all attempts, backoff and fallbacks included
    max_attempts: int = 3  # per model
    max_retry_after: float = 30.0  # a longer Retry-After is not waited for
    daily_neuron_budget: float | None = 10_000.0  # None: no budget (Workers Paid)
    neurons_per_m_input: float | None = None  # overrides the published rate
    neurons_per_m_output: float | None = None
    health_interval: float = 60.0  # health() answers from cache within this

    def describe(self) -> dict[str, object]:
        """The settings without secrets, for `wapa ask --json`, logs and the status page."""
        cf = self.cloudflare
        oa = self.openai
        return {
            "cloudflare": None
            if cf is None
            else {
                "account_id": cf.account_id,
                "api_base": cf.api_base,
                "gateway_url": cf.gateway_url,
                "models": list(cf.models),
            },
            "openai": None if oa is None else {"base_url": oa.base_url, "model": oa.model},
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "timeout": self.timeout,
            "total_timeout": self.total_timeout,
            "max_attempts": self.max_attempts,
            "daily_neuron_budget": self.daily_neuron_budget,
        }


_ACCOUNT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MODEL = re.compile(r"^[A-Za-z0-9@._:/-]{1,200}$")


def _get(env: Mapping[str, str], name: str) -> str:
    return (env.get(name) or "").strip()


def _url(env: Mapping[str, str], name: str, default: str = "") -> str:
    value = _get(env, name) or default
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name}: {value!r} is not an http(s) URL")
    return value.rstrip("/")


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = _get(env, name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}: {raw!r} is not a number") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise ConfigError(f"{name}: {raw} is outside {low:g}..{high:g}")
    return value


def _integer(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = _get(env, name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}: {raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}: {value} is outside {low}..{high}")
    return value


def _model(name: str, value: str) -> str:
    if not _MODEL.match(value):
        raise ConfigError(f"{name}: {value!r} is not a model name (e.g. {DEFAULT_MODEL})")
    return value


def _secret(env: Mapping[str, str], name: str) -> str:
    value = _get(env, name)
    if any(c.isspace() for c in value) or not value.isprintable():
        raise ConfigError(f"{name}: contains spaces or control characters (a pasting accident?)")
    return value


def settings_from_env(env: Mapping[str, str]) -> LLMSettings:
    """Read and check every model variable. Raises ConfigError naming the variable."""
    token = _secret(env, "CLOUDFLARE_API_TOKEN")
    account = _get(env, "CLOUDFLARE_ACCOUNT_ID")
    openai_base = _url(env, "OPENAI_BASE_URL")

    cloudflare: CloudflareSettings | None = None
    if token or account:
        if not token:
            raise ConfigError(
                "CLOUDFLARE_API_TOKEN: not set (CLOUDFLARE_ACCOUNT_ID is); create an API token "
                "with the 'Workers AI' permission in the Cloudflare dashboard"
            )
        if not account:
            raise ConfigError(
                "CLOUDFLARE_ACCOUNT_ID: not set (CLOUDFLARE_API_TOKEN is); it is the 32-character "
                "id on the Cloudflare dashboard's Workers AI page"
            )
        if not _ACCOUNT.match(account):
            raise ConfigError(f"CLOUDFLARE_ACCOUNT_ID: {account!r} is not an account id")
        primary = _model("AI_MODEL_NAME", _get(env, "AI_MODEL_NAME") or DEFAULT_MODEL)
        fallbacks = [
            _model("AI_FALLBACK_MODELS", m.strip())
            for m in _get(env, "AI_FALLBACK_MODELS").split(",")
            if m.strip()
        ]
        models = tuple(dict.fromkeys([primary, *fallbacks]))
        cloudflare = CloudflareSettings(
            account_id=account,
            api_token=token,
            api_base=_url(env, "CLOUDFLARE_API_BASE", DEFAULT_API_BASE),
            gateway_url=_url(env, "CLOUDFLARE_AI_GATEWAY_URL"),
            models=models,
        )
    elif _get(env, "AI_FALLBACK_MODELS"):
        raise ConfigError("AI_FALLBACK_MODELS: set, but CLOUDFLARE_API_TOKEN is not")

    openai: OpenAISettings | None = None
    if openai_base:
        model = _get(env, "OPENAI_MODEL")
        if not model:
            raise ConfigError("OPENAI_MODEL: not set (OPENAI_BASE_URL is); name the model to use")
        openai = OpenAISettings(
            base_url=openai_base,
            model=_model("OPENAI_MODEL", model),
            api_key=_secret(env, "OPENAI_API_KEY"),
        )
    elif _get(env, "OPENAI_MODEL") or _get(env, "OPENAI_API_KEY"):
        raise ConfigError(
            "OPENAI_BASE_URL: not set (OPENAI_MODEL or OPENAI_API_KEY is); e.g. "
            "http://localhost:11434/v1 for Ollama or https://api.openai.com/v1"
        )

    if cloudflare is None and openai is None:
        raise ConfigError(
            "CLOUDFLARE_API_TOKEN: not set; set CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID "
            "(Workers AI), or OPENAI_BASE_URL and OPENAI_MODEL (any OpenAI-compatible server)"
        )

    budget_raw = _get(env, "AI_DAILY_NEURON_BUDGET").lower()
    budget: float | None
    if budget_raw in ("off", "none", "unlimited"):
        budget = None
    else:
        budget = _number(env, "AI_DAILY_NEURON_BUDGET", 10_000.0, 1.0, 1e12)

    def rate(name: str) -> float | None:
        return _number(env, name, 0.0, 0.0, 1e9) if _get(env, name) else None

    timeout = _number(env, "AI_TIMEOUT", 30.0, 0.1, 600.0)
    total = _number(env, "AI_TOTAL_TIMEOUT", max(90.0, timeout), 0.1, 3600.0)
    if total < timeout:
        raise ConfigError(f"AI_TOTAL_TIMEOUT: {total:g} is shorter than AI_TIMEOUT ({timeout:g})")
    return LLMSettings(
        cloudflare=cloudflare,
        openai=openai,
        max_tokens=_integer(env, "AI_MAX_TOKENS", 256, 1, 32_768),
        temperature=_number(env, "AI_TEMPERATURE", 0.6, 0.0, 5.0),
        timeout=timeout,
        total_timeout=total,
        max_attempts=_integer(env, "AI_MAX_ATTEMPTS", 3, 1, 10),
        max_retry_after=_number(env, "AI_MAX_RETRY_AFTER", 30.0, 0.0, 3600.0),
        daily_neuron_budget=budget,
        neurons_per_m_input=rate("AI_NEURONS_PER_M_INPUT"),
        neurons_per_m_output=rate("AI_NEURONS_PER_M_OUTPUT"),
        health_interval=_number(env, "AI_HEALTH_INTERVAL", 60.0, 0.0, 86_400.0),
    )
