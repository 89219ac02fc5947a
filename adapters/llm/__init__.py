"""Model adapters: Cloudflare Workers AI, an OpenAI-compatible fallback, the model chain.

The runner turns a core `Generate` effect into `await client.generate(messages)` and maps the
outcome to `Generated(request_id, result.text)` or `GenerationFailed(request_id, exc.kind,
str(exc))`. See docs/model.md for every variable.
"""

from wapa.adapters.llm.base import GenerationResult, LLMClient, Provider
from wapa.adapters.llm.cloudflare import CloudflareClient
from wapa.adapters.llm.config import ConfigError, LLMSettings, settings_from_env
from wapa.adapters.llm.errors import (
    ERRORS,
    KINDS,
    AuthError,
    BadRequestError,
    BadResponseError,
    BudgetError,
    CapacityError,
    ContextTooLongError,
    DailyQuotaError,
    ModelError,
    ModelTimeoutError,
    NoModelError,
    RateLimitedError,
    ServerError,
    UnreachableError,
    classify,
)
from wapa.adapters.llm.factory import client_from_env, client_from_settings
from wapa.adapters.llm.fallback import ModelChain
from wapa.adapters.llm.openai_compat import OpenAICompatClient
from wapa.adapters.llm.usage import LLMStats, NeuronMeter

__all__ = [
    "ERRORS",
    "KINDS",
    "AuthError",
    "BadRequestError",
    "BadResponseError",
    "BudgetError",
    "CapacityError",
    "CloudflareClient",
    "ConfigError",
    "ContextTooLongError",
    "DailyQuotaError",
    "GenerationResult",
    "LLMClient",
    "LLMSettings",
    "LLMStats",
    "ModelChain",
    "ModelError",
    "ModelTimeoutError",
    "NeuronMeter",
    "NoModelError",
    "OpenAICompatClient",
    "Provider",
    "RateLimitedError",
    "ServerError",
    "UnreachableError",
    "classify",
    "client_from_env",
    "client_from_settings",
    "settings_from_env",
]
