"""Model settings: the model's configuration variables, and `settings_from_env`.

The variables (`CLOUDFLARE_*`, `AI_*`, `OPENAI_*`) are declared here, in `VARIABLES`, with the
parsers of `wapa.adapters.variables`; they are part of wapa's one configuration table
(`wapa.config.VARIABLES`), so `wapa config --check`, `.env.example` and docs/runner.md know
them. Every default is written once, in the dataclasses below (and `DEFAULT_MODEL`,
`DEFAULT_API_BASE`); the table's defaults are rendered from them.

`settings_from_env` parses the variables through that table, then checks what involves more
than one of them (a token needs an account id, ...). Every error is a `ConfigError` (the one
of `wapa.adapters.variables`) whose message starts with the variable at fault. Secrets (tokens,
keys) never appear in `repr` or `describe()`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wapa.adapters.variables import (
    ConfigError,
    Var,
    boolean,
    duration,
    format_duration,
    integer,
    listing,
    number,
    read,
    secret,
    text,
    url,
)

__all__ = [
    "DEFAULT_API_BASE",
    "DEFAULT_MODEL",
    "VARIABLES",
    "CloudflareSettings",
    "ConfigError",
    "LLMSettings",
    "MediaSettings",
    "OpenAISettings",
    "media_settings_from_env",
    "settings_from_env",
]

DEFAULT_MODEL = "@cf/meta/llama-3.2-1b-instruct"
DEFAULT_API_BASE = "https://api.cloudflare.com/client/v4"


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
    reject_if_busy: bool = True  # Cloudflare: fail at once when the model is busy (capacity)

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


_LANGUAGES = {
    "english": "en",
    "hebrew": "he",
    "arabic": "ar",
    "russian": "ru",
    "french": "fr",
    "german": "de",
    "spanish": "es",
    "italian": "it",
    "portuguese": "pt",
    "dutch": "nl",
}


@dataclass(frozen=True)
class MediaSettings:
    """Voice notes and images (adapters/llm/media.py); every default written once here."""

    transcribe: bool = False
    describe_images: bool = False
    transcribe_models: tuple[str, ...] = (
        "@cf/openai/whisper-large-v3-turbo",
        "@cf/openai/whisper",
    )
    describe_model: str = "@cf/llava-hf/llava-1.5-7b-hf"
    max_audio_seconds: float = 300.0
    max_audio_bytes: int = 3_000_000
    max_image_bytes: int = 1_500_000
    timeout: float = 60.0  # per voice note or image, every attempt and model included
    language: str = ""  # ISO 639-1 hint for Whisper; "" lets it detect


def language_hint(languages: str) -> str:
    """The first of the persona's languages (`WAPA_LANGUAGES`, "English, Hebrew") as an ISO
    639-1 code for Whisper; "" when unknown (Whisper then detects it)."""
    first = languages.split(",")[0].strip().casefold()
    if len(first) == 2 and first.isalpha():
        return first
    return _LANGUAGES.get(first, "")


# ---------------------------------------------------------------- value parsers

_ACCOUNT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MODEL = re.compile(r"^[A-Za-z0-9@._:/-]{1,200}$")
_NO_BUDGET = ("off", "none", "unlimited")


def _account(value: Any, name: str) -> str:
    raw = text(value, name)
    if not _ACCOUNT.match(raw):
        raise ConfigError(
            f"{name}: expected the account id of the dashboard's Workers AI page, got {raw!r}"
        )
    return raw


def _model(value: Any, name: str) -> str:
    raw = text(value, name)
    if not _MODEL.match(raw):
        raise ConfigError(f"{name}: expected a model name like {DEFAULT_MODEL}, got {raw!r}")
    return raw


def _models(value: Any, name: str) -> tuple[str, ...]:
    return tuple(_model(m, name) for m in listing(value, name))


_BUDGET = number(1.0, 1e12)


def _budget(value: Any, name: str) -> float | None:
    if text(value, name).casefold() in _NO_BUDGET:
        return None
    try:
        return float(_BUDGET(value, name))
    except ConfigError:
        raise ConfigError(
            f"{name}: expected a number of neurons >= 1, or off, got {text(value, name)!r}"
        ) from None


_RATE = number(0.0, 1e9)

# ---------------------------------------------------------------- the variables

_D = LLMSettings(cloudflare=None, openai=None)  # the defaults, as written above, for the table


def _n(x: float | None) -> str:
    return "" if x is None else f"{x:g}"


# `target`: the LLMSettings field ("timeout"), or "cloudflare."/"openai." and the field of
# CloudflareSettings/OpenAISettings; AI_MODEL_NAME and AI_FALLBACK_MODELS make `models`.
VARIABLES: tuple[Var, ...] = (
    Var(
        "CLOUDFLARE_API_TOKEN",
        "",
        "Cloudflare API token with the Workers AI permission; required unless only the "
        "OpenAI-compatible provider is used",
        "model",
        "cloudflare.api_token",
        secret,
        secret=True,
    ),
    Var(
        "CLOUDFLARE_ACCOUNT_ID",
        "",
        "Cloudflare account id (dashboard, Workers AI page); required with the token",
        "model",
        "cloudflare.account_id",
        _account,
    ),
    Var("AI_MODEL_NAME", DEFAULT_MODEL, "Workers AI model", "model", "cloudflare.models", _model),
    Var(
        "AI_FALLBACK_MODELS",
        "",
        "Comma-separated Workers AI models tried in order after AI_MODEL_NAME fails",
        "model",
        "cloudflare.models",
        _models,
    ),
    Var(
        "CLOUDFLARE_API_BASE",
        DEFAULT_API_BASE,
        "Cloudflare API base URL (point it at `wapa fake-cloudflare` for tests)",
        "model",
        "cloudflare.api_base",
        url,
    ),
    Var(
        "CLOUDFLARE_AI_GATEWAY_URL",
        "",
        "An AI Gateway URL that replaces the API base for generations",
        "model",
        "cloudflare.gateway_url",
        url,
    ),
    Var(
        "OPENAI_BASE_URL",
        "",
        "An OpenAI-compatible server (second provider), like http://localhost:11434/v1",
        "model",
        "openai.base_url",
        url,
    ),
    Var(
        "OPENAI_MODEL",
        "",
        "Model name on the OpenAI-compatible server; required with OPENAI_BASE_URL",
        "model",
        "openai.model",
        _model,
    ),
    Var(
        "OPENAI_API_KEY",
        "",
        "API key of the OpenAI-compatible server (local servers usually need none)",
        "model",
        "openai.api_key",
        secret,
        secret=True,
    ),
    Var(
        "AI_MAX_TOKENS",
        str(_D.max_tokens),
        "Longest reply in tokens (1 to 32768)",
        "model",
        "max_tokens",
        integer(1, 32_768),
    ),
    Var(
        "AI_TEMPERATURE",
        _n(_D.temperature),
        "Sampling temperature, 0 to 5 (at most 2 is sent to the OpenAI-compatible provider)",
        "model",
        "temperature",
        number(0.0, 5.0),
    ),
    Var(
        "AI_TIMEOUT",
        format_duration(_D.timeout),
        "Time per model request (attempt)",
        "model",
        "timeout",
        duration(0.1, 600.0),
    ),
    Var(
        "AI_TOTAL_TIMEOUT",
        format_duration(_D.total_timeout),
        "Time per reply, retries, waits and fallbacks included (at least AI_TIMEOUT); keep it "
        "below WAPA_GENERATION_TIMEOUT",
        "model",
        "total_timeout",
        duration(0.1, 3600.0),
    ),
    Var(
        "AI_MAX_ATTEMPTS",
        str(_D.max_attempts),
        "Attempts per model for retryable errors (1 to 10)",
        "model",
        "max_attempts",
        integer(1, 10),
    ),
    Var(
        "AI_MAX_RETRY_AFTER",
        format_duration(_D.max_retry_after),
        "A longer Retry-After is not waited for (the fallbacks take over)",
        "model",
        "max_retry_after",
        duration(0.0, 3600.0),
    ),
    Var(
        "AI_DAILY_NEURON_BUDGET",
        _n(_D.daily_neuron_budget),
        "Neurons a day (UTC) wapa may spend on Cloudflare; off = no budget (Workers Paid)",
        "model",
        "daily_neuron_budget",
        _budget,
    ),
    Var(
        "AI_NEURONS_PER_M_INPUT",
        _n(_D.neurons_per_m_input),
        "Override the model's neurons per million input tokens",
        "model",
        "neurons_per_m_input",
        _RATE,
    ),
    Var(
        "AI_NEURONS_PER_M_OUTPUT",
        _n(_D.neurons_per_m_output),
        "Override the model's neurons per million output tokens",
        "model",
        "neurons_per_m_output",
        _RATE,
    ),
    Var(
        "AI_REJECT_IF_BUSY",
        "1" if _D.reject_if_busy else "0",
        "Ask Cloudflare to fail at once when the model is busy (options.rejectIfBusy), so "
        "a busy model does not eat AI_TIMEOUT: the retries and fallbacks take over",
        "model",
        "reject_if_busy",
        boolean,
    ),
    Var(
        "AI_HEALTH_INTERVAL",
        format_duration(_D.health_interval),
        "A model health check is cached this long",
        "model",
        "health_interval",
        duration(0.0, 86_400.0),
    ),
)


_M = MediaSettings()  # the media defaults, written once in media.py

MEDIA_VARIABLES: tuple[Var, ...] = (
    Var(
        "WAPA_TRANSCRIBE",
        "1" if _M.transcribe else "0",
        "Transcribe voice notes with Workers AI speech-to-text (metered on the neuron budget)",
        "model",
        "media.transcribe",
        boolean,
    ),
    Var(
        "WAPA_DESCRIBE_IMAGES",
        "1" if _M.describe_images else "0",
        "Describe images (not stickers) with a Workers AI vision model",
        "model",
        "media.describe_images",
        boolean,
    ),
    Var(
        "WAPA_TRANSCRIBE_MODELS",
        ",".join(_M.transcribe_models),
        "Speech-to-text models, tried in order",
        "model",
        "media.transcribe_models",
        _models,
    ),
    Var(
        "WAPA_DESCRIBE_MODEL",
        _M.describe_model,
        "Image description model (input: image bytes and a prompt)",
        "model",
        "media.describe_model",
        _model,
    ),
    Var(
        "WAPA_MAX_AUDIO_SECONDS",
        format_duration(_M.max_audio_seconds),
        "A longer voice note keeps its placeholder (no request)",
        "model",
        "media.max_audio_seconds",
        duration(1.0, 3600.0),
    ),
    Var(
        "WAPA_MAX_AUDIO_BYTES",
        str(_M.max_audio_bytes),
        "A larger voice note keeps its placeholder (no request)",
        "model",
        "media.max_audio_bytes",
        integer(1_000, 25_000_000),
    ),
    Var(
        "WAPA_MAX_IMAGE_BYTES",
        str(_M.max_image_bytes),
        "A larger image keeps its placeholder (no request)",
        "model",
        "media.max_image_bytes",
        integer(1_000, 10_000_000),
    ),
    Var(
        "WAPA_MEDIA_TIMEOUT",
        format_duration(_M.timeout),
        "Time per voice note or image, retries and the fallback model included",
        "model",
        "media.timeout",
        duration(1.0, 600.0),
    ),
)
VARIABLES += MEDIA_VARIABLES


def media_settings_from_env(env: Mapping[str, str], languages: str = "") -> MediaSettings:
    """The media variables (all optional; off by default). `languages`: the persona's
    WAPA_LANGUAGES, whose first one is Whisper's language hint."""
    v = read(MEDIA_VARIABLES, env)
    given = {var.target[len("media.") :]: v[var.name] for var in MEDIA_VARIABLES if var.name in v}
    return MediaSettings(language=language_hint(languages), **given)


# ---------------------------------------------------------------- settings


def settings_from_env(env: Mapping[str, str]) -> LLMSettings:
    """Read and check every model variable. Raises ConfigError naming the variable."""
    v = read(VARIABLES, env)
    token: str = v.get("CLOUDFLARE_API_TOKEN", "")
    account: str = v.get("CLOUDFLARE_ACCOUNT_ID", "")

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
        primary = v.get("AI_MODEL_NAME", DEFAULT_MODEL)
        models = tuple(dict.fromkeys([primary, *v.get("AI_FALLBACK_MODELS", ())]))
        cloudflare = CloudflareSettings(
            account_id=account, api_token=token, models=models, **_given(v, "cloudflare.")
        )
    elif "AI_FALLBACK_MODELS" in v:
        raise ConfigError("AI_FALLBACK_MODELS: set, but CLOUDFLARE_API_TOKEN is not")

    openai: OpenAISettings | None = None
    if "OPENAI_BASE_URL" in v:
        if "OPENAI_MODEL" not in v:
            raise ConfigError("OPENAI_MODEL: not set (OPENAI_BASE_URL is); name the model to use")
        openai = OpenAISettings(**_given(v, "openai."))
    elif "OPENAI_MODEL" in v or "OPENAI_API_KEY" in v:
        raise ConfigError(
            "OPENAI_BASE_URL: not set (OPENAI_MODEL or OPENAI_API_KEY is); e.g. "
            "http://localhost:11434/v1 for Ollama or https://api.openai.com/v1"
        )

    if cloudflare is None and openai is None:
        raise ConfigError(
            "CLOUDFLARE_API_TOKEN: not set; set CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID "
            "(Workers AI), or OPENAI_BASE_URL and OPENAI_MODEL (any OpenAI-compatible server)"
        )

    knobs = _given(v, "")
    timeout: float = knobs.get("timeout", _D.timeout)
    total: float = knobs.setdefault("total_timeout", max(_D.total_timeout, timeout))
    if total < timeout:
        raise ConfigError(
            f"AI_TOTAL_TIMEOUT: {format_duration(total)} is shorter than AI_TIMEOUT "
            f"({format_duration(timeout)})"
        )
    return LLMSettings(cloudflare=cloudflare, openai=openai, **knobs)


_SKIP = {"cloudflare.models", "cloudflare.api_token", "cloudflare.account_id"}


def _given(values: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The set variables whose target starts with `prefix` ("" = LLMSettings' own fields),
    as keyword arguments."""
    out: dict[str, Any] = {}
    for var in VARIABLES:
        if var.name not in values or var.target in _SKIP:
            continue
        if prefix and var.target.startswith(prefix):
            out[var.target[len(prefix) :]] = values[var.name]
        elif not prefix and "." not in var.target:
            out[var.target] = values[var.name]
    return out
