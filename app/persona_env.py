"""The persona from the environment, shared by `wapa ask` and the production runner.

| variable | default |
|---|---|
| WAPA_OWNER_ID | owner |
| WAPA_OWNER_NAME | the owner |
| WAPA_ASSISTANT_NAME | the assistant |
| WAPA_INTRODUCTION | (none) |
| WAPA_LANGUAGES | (none; comma-separated, e.g. "English, Hebrew") |
| WAPA_EXTRA_INSTRUCTIONS | (none) |
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from core.policy import Persona, PolicyError

MAX_TEXT = 2000


def _text(env: Mapping[str, str], name: str, default: str, *, required: bool = False) -> str:
    raw = env.get(name)
    value = default if raw is None else raw.strip()
    if required and not value:
        raise PolicyError(f"{name}: must not be empty (unset it for the default {default!r})")
    if len(value) > MAX_TEXT:
        raise PolicyError(f"{name}: {len(value)} characters; at most {MAX_TEXT}")
    if any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise PolicyError(f"{name}: contains control characters")
    return value


def persona_from_env(env: Mapping[str, str] | None = None) -> Persona:
    """Raises core.PolicyError naming the variable when a value cannot be used."""
    env = os.environ if env is None else env
    languages = tuple(
        lang.strip() for lang in _text(env, "WAPA_LANGUAGES", "").split(",") if lang.strip()
    )
    return Persona(
        owner_id=_text(env, "WAPA_OWNER_ID", "owner", required=True),
        owner_name=_text(env, "WAPA_OWNER_NAME", "the owner", required=True),
        assistant_name=_text(env, "WAPA_ASSISTANT_NAME", "the assistant", required=True),
        introduction=_text(env, "WAPA_INTRODUCTION", ""),
        languages=languages,
        extra_instructions=_text(env, "WAPA_EXTRA_INSTRUCTIONS", ""),
    )
