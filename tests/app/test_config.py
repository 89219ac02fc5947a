"""app/config.py: every setting has a variable, errors name it, one table (the model's and the
store's variables included) parses them all and feeds the docs, defaults are written once."""

from __future__ import annotations

import re
from dataclasses import fields, replace
from pathlib import Path

import pytest
from wapa.adapters import variables
from wapa.adapters.llm import ConfigError as ModelConfigError
from wapa.adapters.llm import LLMSettings, settings_from_env
from wapa.adapters.llm.config import VARIABLES as MODEL_VARIABLES
from wapa.adapters.store import StoreSettings
from wapa.adapters.store.settings import VARIABLES as STORE_VARIABLES
from wapa.adapters.store.settings import ConfigError as StoreConfigError
from wapa.config import (
    BY_NAME,
    VARIABLES,
    ConfigError,
    Settings,
    docs_table,
    env_example,
    load_settings,
)
from wapa.core import Caps, Persona, Policy

from tests.support.llm import cf_env

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_match_the_core() -> None:
    s = load_settings({})
    assert s.policy == Policy()
    assert s.persona == Persona()
    assert (s.db, s.session_db, s.http_host, s.http_port) == (
        "data/wapa.db",
        "data/session.db",
        "127.0.0.1",
        8080,
    )
    assert s.log_content is False and s.seed is None and s.transport == "whatsapp"


def test_every_policy_field_has_a_variable() -> None:
    targets = {v.target for v in VARIABLES}
    for f in fields(Policy):
        if f.name == "caps":
            for c in fields(Caps):
                assert f"caps.{c.name}" in targets
        elif f.name == "quiet_hours":
            assert {"quiet.hours", "quiet.tz"} <= targets
        elif f.name in ("profiles", "profile_rules", "default_profile"):
            assert "profiles.file" in targets  # WAPA_PROFILES: one file holds all three
        else:
            assert f"policy.{f.name}" in targets, f.name
    for f in fields(Persona):
        assert f"persona.{f.name}" in targets, f.name


def test_values_are_parsed() -> None:
    s = load_settings(
        {
            "WAPA_RESPONSE_DELAY": "90s",
            "WAPA_COOLDOWN": "2h",
            "WAPA_TYPING_MIN": "500ms",
            "WAPA_ALLOW": "a, b,,c",
            "WAPA_QUIET_HOURS": "22:00-7:30",
            "WAPA_QUIET_TZ": "Europe/Berlin",
            "WAPA_CAPS_PER_HOUR": "0",
            "WAPA_QUOTE_IN_GROUPS": "off",
            "WAPA_LOG_CONTENT": "yes",
            "WAPA_HTTP_PORT": "0",
            "WAPA_SEED": "42",
            "WAPA_LANGUAGES": "English,Hebrew",
            "WAPA_DB_KEY": "",  # empty = unset
        }
    )
    p = s.policy
    assert (p.response_delay, p.cooldown, p.typing_min) == (90.0, 7200.0, 0.5)
    assert p.allow == ("a", "b", "c") and p.caps.per_hour == 0 and p.quote_in_groups is False
    assert p.quiet_hours is not None and (p.quiet_hours.start, p.quiet_hours.end) == (
        "22:00",
        "07:30",
    )
    assert p.quiet_hours.tz == "Europe/Berlin"
    assert s.log_content and s.http_port == 0 and s.seed == 42 and s.db_key == ""
    assert s.persona.languages == ("English", "Hebrew")


def test_original_names_work_and_wapa_names_win() -> None:
    s = load_settings(
        {"RESPONSE_DELAY_MS": "30000", "COOLDOWN_PERIOD_MS": "60000", "MAX_CONTEXT_MESSAGES": "4"}
    )
    assert (s.policy.response_delay, s.policy.cooldown, s.policy.max_context) == (30.0, 60.0, 4)
    s = load_settings({"RESPONSE_DELAY_MS": "30000", "WAPA_RESPONSE_DELAY": "45s"})
    assert s.policy.response_delay == 45.0


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"WAPA_RESPONSE_DELAY": "soon"}, "WAPA_RESPONSE_DELAY"),
        ({"RESPONSE_DELAY_MS": "2m"}, "RESPONSE_DELAY_MS"),
        ({"MAX_CONTEXT_MESSAGES": "0"}, "MAX_CONTEXT_MESSAGES"),
        ({"WAPA_MAX_WAIT": "1s"}, "WAPA_MAX_WAIT"),
        ({"WAPA_RESPONSE_DELAY": "1h"}, "WAPA_RESPONSE_DELAY"),  # breaks max_wait >= delay
        ({"WAPA_QUIET_HOURS": "late"}, "WAPA_QUIET_HOURS"),
        ({"WAPA_QUIET_HOURS": "22:00-07:00", "WAPA_QUIET_TZ": "Mars/Base"}, "WAPA_QUIET_TZ"),
        ({"WAPA_QUIET_TZ": "Nowhere"}, "WAPA_QUIET_TZ"),
        ({"WAPA_HTTP_PORT": "70000"}, "WAPA_HTTP_PORT"),
        ({"WAPA_LOG_CONTENT": "maybe"}, "WAPA_LOG_CONTENT"),
        ({"WAPA_GROUP_REPLY": "always"}, "WAPA_GROUP_REPLY"),
        ({"WAPA_TYPING_JITTER": "1.5"}, "WAPA_TYPING_JITTER"),
        ({"WAPA_TYPING_MIN": "1m"}, "WAPA_TYPING_MIN"),
        ({"WAPA_ALIASES": "(unclosed"}, "WAPA_ALIASES"),
        ({"WAPA_CAPS_PER_DAY": "-1"}, "WAPA_CAPS_PER_DAY"),
        ({"WAPA_MAX_CONCURRENT_GENERATIONS": "0"}, "WAPA_MAX_CONCURRENT_GENERATIONS"),
        ({"WAPA_TRANSPORT": "telegram"}, "WAPA_TRANSPORT"),
    ],
)
def test_a_wrong_value_gives_one_line_naming_the_variable(
    env: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    message = str(info.value)
    assert message.startswith(variable + ":"), message
    assert "\n" not in message


def test_config_file_same_keys_and_env_wins(tmp_path: Path) -> None:
    f = tmp_path / "wapa.yaml"
    f.write_text("response_delay: 30s\nWAPA_COOLDOWN: 1h\nallow: [a, b]\nowner_name: Gilad\n")
    s = load_settings({"WAPA_COOLDOWN": "2h"}, str(f))
    assert s.policy.response_delay == 30.0 and s.policy.cooldown == 7200.0
    assert s.policy.allow == ("a", "b") and s.persona.owner_name == "Gilad"
    f.write_text("response_delay: nope\n")
    with pytest.raises(ConfigError, match=rf"^WAPA_RESPONSE_DELAY \(in {re.escape(str(f))}\): "):
        load_settings({}, str(f))
    f.write_text("- just a list\n")
    with pytest.raises(ConfigError, match="^--config: "):
        load_settings({}, str(f))
    with pytest.raises(ConfigError, match="^--config: cannot read"):
        load_settings({}, str(tmp_path / "missing.yaml"))


def test_env_example_and_docs_list_every_variable() -> None:
    example, table = env_example(), docs_table()
    for v in VARIABLES:
        assert re.search(rf"^{v.name}=", example, re.M), v.name
        assert f"`{v.name}`" in table
    assert "CLOUDFLARE_API_TOKEN=\n" in example  # secrets are never given a value


def test_the_other_adapters_variables_are_in_the_table() -> None:
    """Variables read by the model adapter and the store appear in the one table."""
    names = {v.name for v in VARIABLES}
    assert set(MODEL_VARIABLES) <= set(VARIABLES) and set(STORE_VARIABLES) <= set(VARIABLES)
    assert len(BY_NAME) == len(VARIABLES), "a variable is declared twice"
    for source in ("adapters/llm/config.py", "adapters/store/settings.py"):
        text = (ROOT / source).read_text()
        read = set(re.findall(r'"((?:WAPA|CLOUDFLARE|AI|OPENAI)_[A-Z_]+)"', text))
        assert read and read <= names, (source, read - names)


def test_runner_docs_hold_the_generated_table() -> None:
    assert docs_table() in (ROOT / "docs" / "runner.md").read_text(encoding="utf-8")


def test_one_config_error() -> None:
    """Every part raises the same class, so any `except ConfigError` catches them all."""
    assert ConfigError is variables.ConfigError
    assert ModelConfigError is ConfigError and StoreConfigError is ConfigError
    assert issubclass(ConfigError, ValueError)  # older `except ValueError` sites still work
    with pytest.raises(ConfigError, match="^AI_TEMPERATURE: "):
        settings_from_env(cf_env(AI_TEMPERATURE="hot"))
    with pytest.raises(ConfigError, match="^WAPA_DB_SYNC: "):
        StoreSettings.from_env({"WAPA_DB_SYNC": "off"})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AI_TIMEOUT": "soon"}, "AI_TIMEOUT: expected a duration like 500ms, 90s"),
        ({"AI_TIMEOUT": "20m"}, "AI_TIMEOUT: expected a duration >= 100ms and <= 10m, got '20m'"),
        ({"AI_MAX_TOKENS": "12.5"}, "AI_MAX_TOKENS: expected a whole number >= 1 and <= 32768"),
        ({"AI_TEMPERATURE": "nan"}, "AI_TEMPERATURE: expected a number >= 0 and <= 5, got 'nan'"),
        ({"AI_DAILY_NEURON_BUDGET": "lots"}, "AI_DAILY_NEURON_BUDGET: expected a number of"),
        ({"OPENAI_BASE_URL": "localhost:11434"}, "OPENAI_BASE_URL: expected an http(s) URL"),
        ({"CLOUDFLARE_API_TOKEN": "abc def"}, "CLOUDFLARE_API_TOKEN: contains spaces"),
        ({"WAPA_TRACE_DAYS": "forever"}, "WAPA_TRACE_DAYS: expected a number > 0"),
        ({"WAPA_BACKUP_KEEP": "-1"}, "WAPA_BACKUP_KEEP: expected a whole number >= 0"),
    ],
)
def test_the_table_parses_the_model_and_store_variables_too(
    env: dict[str, str], message: str
) -> None:
    """`wapa run`, `wapa config --check` and `wapa doctor` stop on them like on any other."""
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert str(info.value).startswith(message), str(info.value)


def test_a_model_variable_in_the_config_file_is_placed(tmp_path: Path) -> None:
    f = tmp_path / "wapa.yaml"
    f.write_text("ai_timeout: forever\n")
    with pytest.raises(ConfigError, match=rf"^AI_TIMEOUT \(in {re.escape(str(f))}\): expected"):
        load_settings({}, str(f))
    f.write_text("ai_timeout: 2m\nai_total_timeout: 5m\n")
    settings = settings_from_env({**cf_env(), **load_settings({}, str(f)).env})
    assert (settings.timeout, settings.total_timeout) == (120.0, 300.0)


def test_every_default_is_written_once() -> None:
    """The table's defaults are rendered from the settings objects: setting every variable
    to its documented default changes nothing anywhere."""
    defaults = {v.name: v.default for v in VARIABLES if v.default and v.section != "legacy"}
    assert replace(load_settings(defaults), env={}) == load_settings({})
    assert settings_from_env({**defaults, **cf_env()}) == settings_from_env(cf_env())
    assert StoreSettings.from_env(defaults) == StoreSettings.from_env({})
    model = LLMSettings(cloudflare=None, openai=None)
    assert BY_NAME["AI_MAX_TOKENS"].default == str(model.max_tokens)
    assert BY_NAME["AI_TIMEOUT"].default == "30s" and model.timeout == 30.0
    settings = Settings(policy=Policy(), persona=Persona())
    assert (settings.db, BY_NAME["WAPA_DB"].default) == (StoreSettings().db, StoreSettings().db)


def test_durations_go_through_the_core_parser() -> None:
    assert BY_NAME["WAPA_COOLDOWN"].parse("1.5h", "WAPA_COOLDOWN") == 5400.0
    assert BY_NAME["AI_MAX_RETRY_AFTER"].parse("500ms", "AI_MAX_RETRY_AFTER") == 0.5
    assert BY_NAME["AI_TIMEOUT"].parse("45", "AI_TIMEOUT") == 45.0  # plain seconds, as before
    assert BY_NAME["COOLDOWN_PERIOD_MS"].parse("1500", "COOLDOWN_PERIOD_MS") == 1.5
    for value in ("5 minutes", "-3s", "1e3"):
        with pytest.raises(ConfigError, match="^WAPA_COOLDOWN: expected a duration like"):
            BY_NAME["WAPA_COOLDOWN"].parse(value, "WAPA_COOLDOWN")


def test_every_variable_has_a_documented_section() -> None:
    sections = {line[4:] for line in docs_table().splitlines() if line.startswith("### ")}
    assert len(sections) == len({v.section for v in VARIABLES})
    rows = [line for line in docs_table().splitlines() if line.startswith("| `")]
    assert len(rows) == len(VARIABLES)


PROFILES_FILE = """\
profiles:
  work:    {tone: "brief and formal", whereabouts: "at the office", delay: 5m}
  family:  {tone: "warm and informal", delay: 1m, cooldown: 1h}
profile_rules:
  - {name: "^(mom|dad)$", profile: family}
default_profile: work
"""


def test_the_owner_reports_and_profiles_come_from_variables(tmp_path: Path) -> None:
    f = tmp_path / "profiles.yaml"
    f.write_text(PROFILES_FILE)
    policy = load_settings(
        {
            "WAPA_ESCALATE": "off",
            "WAPA_ESCALATE_PER_DAY": "3",
            "WAPA_DIGEST_AT": "18:00",
            "WAPA_DIGEST_DETAIL": "names",
            "WAPA_PROFILES": str(f),
        }
    ).policy
    assert (policy.escalate, policy.escalate_per_day) == (False, 3)
    assert (policy.digest_at, policy.digest_detail) == ("18:00", "names")
    assert [p.name for p in policy.profiles] == ["work", "family"]
    assert policy.default_profile == "work" and len(policy.profile_rules) == 1
    assert load_settings({"WAPA_DIGEST_AT": "off"}).policy.digest_at is None


def test_the_quiet_hours_zone_is_the_owners_zone_with_quiet_hours_off() -> None:
    """One time zone for the owner: the digest and the calendar use WAPA_QUIET_TZ even when
    there are no quiet hours, unless WAPA_DIGEST_TZ names another."""
    assert load_settings({"WAPA_QUIET_TZ": "Europe/Berlin"}).policy.local_zone().key == (
        "Europe/Berlin"
    )
    both = {"WAPA_QUIET_TZ": "Europe/Berlin", "WAPA_DIGEST_TZ": "Asia/Jerusalem"}
    assert load_settings(both).policy.local_zone().key == "Asia/Jerusalem"
    assert load_settings({}).policy.local_zone().key == "UTC"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("profile: {}\n", r"unknown key 'profile' \(did you mean profiles\?\)"),
        ("- a list\n", "must hold a mapping"),
        ("profiles: {work: {tone: 1}}\n", "tone"),
        ("default_profile: nobody\n", "no profile called 'nobody'"),
        ("a: &a [*a]\n", "WAPA_PROFILES: "),
    ],
)
def test_a_bad_profiles_file_is_named(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "profiles.yaml"
    f.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_settings({"WAPA_PROFILES": str(f)})
    with pytest.raises(ConfigError, match="WAPA_PROFILES: cannot read"):
        load_settings({"WAPA_PROFILES": str(tmp_path / "missing.yaml")})
