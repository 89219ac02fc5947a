"""Model adapters: Cloudflare Workers AI, an OpenAI-compatible fallback, the model chain.

- `policy.ChainPolicy`: the sans-IO rules (retries, backoff, fallbacks, budget, quota block,
  auth lockout), driven by the async `ModelChain` and by the simulator's fake model alike;
- `ModelChain` (`client_from_env`): the `LLMClient` over the providers (`CloudflareClient`,
  `OpenAICompatClient`: one request each, parsed by pure functions);
- `service.ModelService`: what the runner wraps around a client (a bound on concurrent
  generations, `Generate` -> `Generated | GenerationFailed`, metrics, health state, the saved
  daily usage).

See docs/model.md for every variable.
"""

from wapa.adapters.llm.base import LLMClient, Provider
from wapa.adapters.llm.cloudflare import CloudflareClient
from wapa.adapters.llm.config import ConfigError, LLMSettings, settings_from_env
from wapa.adapters.llm.errors import (
    AUTH_LOCKED,
    ERRORS,
    KINDS,
    AccountBlockedError,
    AuthError,
    BadRequestError,
    BadResponseError,
    BudgetError,
    CapacityError,
    ContextTooLongError,
    CredentialsRejectedError,
    DailyQuotaError,
    ModelAccessError,
    ModelError,
    ModelTimeoutError,
    NoModelError,
    RateLimitedError,
    RoutingError,
    ServerError,
    UnreachableError,
    classify,
)
from wapa.adapters.llm.factory import client_from_env, client_from_settings
from wapa.adapters.llm.fallback import ModelChain
from wapa.adapters.llm.openai_compat import OpenAICompatClient
from wapa.adapters.llm.policy import (
    Answer,
    AuthLockout,
    Call,
    ChainPolicy,
    ChainRun,
    GenerationResult,
    GiveUp,
    ProviderId,
    Reply,
    Wait,
    provider_ids,
)
from wapa.adapters.llm.service import ModelService
from wapa.adapters.llm.usage import LLMStats, NeuronMeter

__all__ = [
    "AUTH_LOCKED",
    "ERRORS",
    "KINDS",
    "AccountBlockedError",
    "Answer",
    "AuthError",
    "AuthLockout",
    "BadRequestError",
    "BadResponseError",
    "BudgetError",
    "Call",
    "CapacityError",
    "ChainPolicy",
    "ChainRun",
    "CloudflareClient",
    "ConfigError",
    "ContextTooLongError",
    "CredentialsRejectedError",
    "DailyQuotaError",
    "GenerationResult",
    "GiveUp",
    "LLMClient",
    "LLMSettings",
    "LLMStats",
    "ModelAccessError",
    "ModelChain",
    "ModelError",
    "ModelService",
    "ModelTimeoutError",
    "NeuronMeter",
    "NoModelError",
    "OpenAICompatClient",
    "Provider",
    "ProviderId",
    "RateLimitedError",
    "Reply",
    "RoutingError",
    "ServerError",
    "UnreachableError",
    "Wait",
    "classify",
    "client_from_env",
    "client_from_settings",
    "provider_ids",
    "settings_from_env",
]
