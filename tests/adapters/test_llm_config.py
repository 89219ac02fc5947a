"""Settings from the environment: defaults, and errors that name the variable at fault."""

from __future__ import annotations

import pytest
from wapa.adapters.llm import ConfigError, settings_from_env
from wapa.adapters.llm.config import DEFAULT_API_BASE, DEFAULT_MODEL

from tests.support.llm import ACCOUNT, cf_env


def test_defaults() -> None:
    s = settings_from_env({"CLOUDFLARE_API_TOKEN": "t", "CLOUDFLARE_ACCOUNT_ID": ACCOUNT})
    assert s.cloudflare is not None and s.openai is None
    assert s.cloudflare.models == (DEFAULT_MODEL,)
    assert s.cloudflare.api_base == DEFAULT_API_BASE and s.cloudflare.gateway_url == ""
    assert (s.max_tokens, s.temperature, s.timeout, s.total_timeout, s.max_attempts) == (
        256,
        0.6,
        30.0,
        90.0,
        3,
    )
    assert s.daily_neuron_budget == 10_000 and s.health_interval == 60.0


def test_secrets_stay_out_of_repr_and_describe() -> None:
    s = settings_from_env(
        {
            **cf_env(CLOUDFLARE_API_TOKEN="s3cret-token"),
            "OPENAI_BASE_URL": "http://x/v1",
            "OPENAI_MODEL": "m",
            "OPENAI_API_KEY": "sk-s3cret",
        }
    )
    assert "s3cret" not in repr(s) and "s3cret" not in str(s.describe())


def test_fallback_models_are_ordered_and_deduplicated() -> None:
    s = settings_from_env(
        cf_env(AI_MODEL_NAME="@cf/a/b", AI_FALLBACK_MODELS="@cf/c/d, @cf/a/b,,@cf/e/f")
    )
    assert s.cloudflare is not None and s.cloudflare.models == ("@cf/a/b", "@cf/c/d", "@cf/e/f")


def test_openai_only() -> None:
    s = settings_from_env(
        {"OPENAI_BASE_URL": "http://localhost:11434/v1/", "OPENAI_MODEL": "llama3"}
    )
    assert s.cloudflare is None and s.openai is not None
    assert s.openai.base_url == "http://localhost:11434/v1" and s.openai.api_key == ""


def test_budget_off() -> None:
    assert settings_from_env(cf_env(AI_DAILY_NEURON_BUDGET="off")).daily_neuron_budget is None


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "CLOUDFLARE_API_TOKEN"),
        ({"CLOUDFLARE_ACCOUNT_ID": ACCOUNT}, "CLOUDFLARE_API_TOKEN"),
        ({"CLOUDFLARE_API_TOKEN": "t"}, "CLOUDFLARE_ACCOUNT_ID"),
        (cf_env(CLOUDFLARE_ACCOUNT_ID="../etc"), "CLOUDFLARE_ACCOUNT_ID"),
        (cf_env(CLOUDFLARE_API_TOKEN="abc def"), "CLOUDFLARE_API_TOKEN"),
        (cf_env(CLOUDFLARE_API_BASE="api.cloudflare.com"), "CLOUDFLARE_API_BASE"),
        (cf_env(CLOUDFLARE_AI_GATEWAY_URL="ftp://x"), "CLOUDFLARE_AI_GATEWAY_URL"),
        (cf_env(AI_MODEL_NAME="llama 3"), "AI_MODEL_NAME"),
        (cf_env(AI_FALLBACK_MODELS="ok/model, bad model"), "AI_FALLBACK_MODELS"),
        (cf_env(AI_MAX_TOKENS="0"), "AI_MAX_TOKENS"),
        (cf_env(AI_MAX_TOKENS="12.5"), "AI_MAX_TOKENS"),
        (cf_env(AI_TEMPERATURE="hot"), "AI_TEMPERATURE"),
        (cf_env(AI_TEMPERATURE="nan"), "AI_TEMPERATURE"),
        (cf_env(AI_TEMPERATURE="9"), "AI_TEMPERATURE"),
        (cf_env(AI_TIMEOUT="-1"), "AI_TIMEOUT"),
        (cf_env(AI_TIMEOUT="60", AI_TOTAL_TIMEOUT="30"), "AI_TOTAL_TIMEOUT"),
        (cf_env(AI_MAX_ATTEMPTS="0"), "AI_MAX_ATTEMPTS"),
        (cf_env(AI_DAILY_NEURON_BUDGET="0"), "AI_DAILY_NEURON_BUDGET"),
        (cf_env(AI_DAILY_NEURON_BUDGET="lots"), "AI_DAILY_NEURON_BUDGET"),
        (cf_env(AI_NEURONS_PER_M_INPUT="-5"), "AI_NEURONS_PER_M_INPUT"),
        ({"AI_FALLBACK_MODELS": "@cf/a/b"}, "AI_FALLBACK_MODELS"),
        ({"OPENAI_BASE_URL": "http://x/v1"}, "OPENAI_MODEL"),
        ({"OPENAI_MODEL": "m"}, "OPENAI_BASE_URL"),
        ({"OPENAI_BASE_URL": "localhost:11434", "OPENAI_MODEL": "m"}, "OPENAI_BASE_URL"),
        (
            {"OPENAI_BASE_URL": "http://x/v1", "OPENAI_MODEL": "m", "OPENAI_API_KEY": "a\nb"},
            "OPENAI_API_KEY",
        ),
    ],
)
def test_errors_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_env(env)
    message = str(info.value)
    assert message.startswith(f"{variable}:")
    assert "\n" not in message


def test_total_timeout_defaults_to_at_least_the_attempt_timeout() -> None:
    assert settings_from_env(cf_env(AI_TIMEOUT="120")).total_timeout == 120
    with pytest.raises(ConfigError) as info:
        settings_from_env(cf_env(AI_TIMEOUT="1m", AI_TOTAL_TIMEOUT="30"))
    assert str(info.value) == "AI_TOTAL_TIMEOUT: 30s is shorter than AI_TIMEOUT (1m)"


def test_times_are_durations() -> None:
    """The times take the one duration syntax of wapa (plain seconds still work)."""
    s = settings_from_env(
        cf_env(
            AI_TIMEOUT="500ms",
            AI_TOTAL_TIMEOUT="2m",
            AI_MAX_RETRY_AFTER="45",
            AI_HEALTH_INTERVAL="1h",
        )
    )
    assert (s.timeout, s.total_timeout, s.max_retry_after, s.health_interval) == (
        0.5,
        120.0,
        45.0,
        3600.0,
    )


def test_empty_values_count_as_unset() -> None:
    env = cf_env(AI_MODEL_NAME=" ", AI_TIMEOUT="", OPENAI_API_KEY="", AI_FALLBACK_MODELS="")
    assert settings_from_env(env) == settings_from_env(cf_env())


def test_the_variables_are_in_the_one_table() -> None:
    from wapa.adapters.llm.config import VARIABLES
    from wapa.adapters.variables import ConfigError as TheConfigError
    from wapa.config import BY_NAME

    assert ConfigError is TheConfigError
    assert all(BY_NAME[v.name] is v for v in VARIABLES)
    assert BY_NAME["AI_MODEL_NAME"].default == DEFAULT_MODEL
    assert BY_NAME["CLOUDFLARE_API_BASE"].default == DEFAULT_API_BASE
