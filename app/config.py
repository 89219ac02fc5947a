"""The configuration: ONE table of variables (name, default, meaning, parser), parsed with one
`ConfigError` whose message names the variable.

The table is `VARIABLES` below. The runner's, the policy's and the persona's variables are
declared in this file; the model's (`CLOUDFLARE_*`, `AI_*`, `OPENAI_*`) in
`wapa.adapters.llm.config` and the store's in `wapa.adapters.store.settings`, next to the
settings they fill, with the same `Var` record and parsers (`wapa.adapters.variables`, where
`ConfigError` lives; `wapa.config.ConfigError`, `wapa.adapters.llm.ConfigError` and the
store's are that one class). `load_settings` parses every variable of the table, so a wrong
`AI_TIMEOUT` stops `wapa run` and fails `wapa config --check` like a wrong `WAPA_COOLDOWN`.
Defaults are written once, in the settings objects (`Policy`, `Persona`, `Settings` below,
`LLMSettings`, `StoreSettings`); the table renders them.

Sources, later wins: the defaults, an optional YAML file (`--config FILE`: a flat mapping
whose keys are the variable names; the `WAPA_` prefix and case are optional), the environment.
An empty value counts as unset (Docker `env_file` lines like `WAPA_DB_KEY=`).

Durations accept `500ms`, `90s`, `2m`, `5h`, `1d` or plain seconds (the core's
`parse_duration`, the one duration syntax); lists are comma-separated in the environment (or
YAML lists in the file); booleans are 1/0, true/false, yes/no, on/off. The original
assistant's names keep working: `RESPONSE_DELAY_MS`, `COOLDOWN_PERIOD_MS` (milliseconds) and
`MAX_CONTEXT_MESSAGES`; the `WAPA_*` name wins when both are set.

A name the table does not know is reported with the closest known one: an environment variable
starting with `WAPA_`, or one with a model prefix (`CLOUDFLARE_`, `AI_`, `OPENAI_`) that is
nearly a model variable's name (a typo: those prefixes are shared with other tools), lands in
`Settings.unknown` (the runner warns and starts; `wapa config --check` and `wapa doctor`
fail); a key of the `--config` file is a `ConfigError` (the file is wapa's alone, so an unknown
key there is certainly a mistake, like a wrong value).

`env_example()` renders the table as a commented `.env` file; `docs_table()` as Markdown.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wapa.adapters.calendar.source import location as calendar_location
from wapa.adapters.llm.config import VARIABLES as MODEL_VARIABLES
from wapa.adapters.store.settings import DEFAULT_DB
from wapa.adapters.store.settings import VARIABLES as STORE_VARIABLES
from wapa.adapters.variables import (
    ConfigError,
    Var,
    boolean,
    choice,
    duration,
    format_duration,
    integer,
    listing,
    milliseconds,
    number,
    present,
    read,
    text,
)
from wapa.core import Persona, Policy, PolicyError, QuietHours

__all__ = [
    "BY_NAME",
    "VARIABLES",
    "ConfigError",
    "Settings",
    "UnknownName",
    "Var",
    "all_variables",
    "closest_name",
    "docs_table",
    "env_example",
    "load_settings",
    "read_config_file",
    "unknown_environment",
]


# ---------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    policy: Policy
    persona: Persona
    transport: str = "whatsapp"
    db: str = DEFAULT_DB  # WAPA_DB, the store's variable
    db_key: str = ""  # WAPA_DB_KEY, the store's variable
    session_db: str = "data/session.db"
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    log_level: str = "info"
    log_content: bool = False
    record: str = ""
    record_redact: bool = False
    seed: int | None = None
    max_concurrent_generations: int = 2
    shutdown_timeout: float = 10.0
    memory_warn_mb: int = 256
    calendar_ics: str = field(default="", repr=False)  # a path or URL (a URL holds a token)
    calendar_refresh: float = 900.0
    calendar_timeout: float = 20.0
    env: dict[str, str] = field(default_factory=dict, repr=False)  # merged, for other adapters
    unknown: tuple[UnknownName, ...] = ()  # unknown variables set in the environment


# ---------------------------------------------------------------- app-specific parsers


def _quiet_hours(value: Any, name: str) -> tuple[str, str] | None:
    raw = text(value, name)
    if raw.casefold() in ("off", "none", "0", "false", "no"):
        return None
    m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-3]):([0-5]\d)", raw)
    if not m:
        raise ConfigError(f"{name}: expected HH:MM-HH:MM (like 22:00-07:00) or off, got {raw!r}")
    return f"{int(m[1]):02d}:{m[2]}", f"{int(m[3]):02d}:{m[4]}"


PERSONA_MAX_CHARS = 2000  # a persona text goes into every prompt


def _persona_text(value: Any, name: str) -> str:
    raw = text(value, name)
    if len(raw) > PERSONA_MAX_CHARS:
        raise ConfigError(f"{name}: {len(raw)} characters; at most {PERSONA_MAX_CHARS}")
    if any(ord(c) < 32 and c not in "\n\t" for c in raw):
        raise ConfigError(f"{name}: contains control characters")
    return raw


def _digest_at(value: Any, name: str) -> str | None:
    """HH:MM, or off/empty for no daily digest (the core checks the time itself)."""
    word = text(value, name).strip()
    return None if word.lower() in ("", "off", "none", "no") else word


_PROFILE_KEYS = ("profiles", "profile_rules", "default_profile")


def _profiles_file(value: Any, name: str) -> dict[str, Any]:
    """The profiles file: a YAML mapping with `profiles`, `profile_rules`, `default_profile`
    (read bounded, like every YAML wapa reads; the core checks what they say)."""
    from wapa.adapters.safe_yaml import SafeYAMLError, load_yaml_file

    path = text(value, name).strip()
    if not path:
        return {}
    try:
        data = load_yaml_file(path, max_bytes=1_000_000)  # a settings file is small
    except SafeYAMLError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: {path} must hold a mapping with {', '.join(_PROFILE_KEYS)}")
    unknown = [str(k) for k in data if k not in _PROFILE_KEYS]
    if unknown:
        guess = closest_name(unknown[0], [k.upper() for k in _PROFILE_KEYS]).lower()
        hint = f" (did you mean {guess}?)" if guess else ""
        raise ConfigError(
            f"{name}: {path}: unknown key {unknown[0]!r}{hint}; known: {', '.join(_PROFILE_KEYS)}"
        )
    try:  # checked here, so that the error names this file
        Policy.from_mapping(data)
    except PolicyError as exc:
        raise ConfigError(f"{name}: {path}: {exc}") from None
    return dict(data)


def _flag(on: bool) -> str:
    return "1" if on else "0"


def _or_empty(x: object) -> str:
    return "" if x is None else str(x)


# ---------------------------------------------------------------- the table

# The defaults, as their owners write them, for the table.
_P = Policy()
_QUIET = QuietHours()
_PERSONA = Persona()
_S = Settings(policy=_P, persona=_PERSONA)
_DUR = duration()

# `target` of this file's variables: "policy.<Policy field>", "caps.<Caps field>",
# "quiet.hours|tz", "persona.<Persona field>", "run.<Settings field>".
_APP_VARIABLES: tuple[Var, ...] = (
    # --- policy: timing
    # --- policy: timing
    Var(
        "WAPA_RESPONSE_DELAY",
        format_duration(_P.response_delay),
        "Reply this long after the latest unanswered message (rule 1)",
        "policy",
        "policy.response_delay",
        _DUR,
    ),
    Var(
        "WAPA_MAX_WAIT",
        format_duration(_P.max_wait),
        "...but never later than this after the first one (rule 1)",
        "policy",
        "policy.max_wait",
        _DUR,
    ),
    Var(
        "WAPA_COOLDOWN",
        format_duration(_P.cooldown),
        "Quiet time in a chat after a reply or after the owner wrote (rules 2, 3)",
        "policy",
        "policy.cooldown",
        _DUR,
    ),
    Var(
        "WAPA_URGENT_DELAY",
        format_duration(_P.urgent_delay),
        "Delay for urgent messages (rule 4)",
        "policy",
        "policy.urgent_delay",
        _DUR,
    ),
    Var(
        "WAPA_URGENT_THRESHOLD",
        str(_P.urgent_threshold),
        "Urgency score at which a message is urgent (a keyword scores 2)",
        "policy",
        "policy.urgent_threshold",
        integer(1),
    ),
    Var(
        "WAPA_URGENT_KEYWORDS",
        "",
        "Comma-separated urgent words/phrases; empty = the built-in list in several languages",
        "policy",
        "policy.urgent_keywords",
        listing,
    ),
    Var(
        "WAPA_BURST_COUNT",
        str(_P.burst_count),
        "This many messages...",
        "policy",
        "policy.burst_count",
        integer(1),
    ),
    Var(
        "WAPA_BURST_WINDOW",
        format_duration(_P.burst_window),
        "...within this window add 1 to the urgency score",
        "policy",
        "policy.burst_window",
        _DUR,
    ),
    Var(
        "WAPA_GROUP_REPLY",
        _P.group_reply,
        "Groups: 'mention' (only when addressed) or 'never' (rule 5)",
        "policy",
        "policy.group_reply",
        choice("mention", "never"),
    ),
    Var(
        "WAPA_QUOTE_IN_GROUPS",
        _flag(_P.quote_in_groups),
        "A group reply quotes the message that addressed the owner",
        "policy",
        "policy.quote_in_groups",
        boolean,
    ),
    Var(
        "WAPA_ALIASES",
        "",
        "Comma-separated extra regexes that address the owner in a group (use the config file for patterns with commas)",
        "policy",
        "policy.aliases",
        listing,
    ),
    Var(
        "WAPA_ALLOW",
        "",
        "Comma-separated chat/sender ids; when set, only these get replies",
        "policy",
        "policy.allow",
        listing,
    ),
    Var(
        "WAPA_DENY",
        "",
        "Comma-separated chat/sender ids that never get replies",
        "policy",
        "policy.deny",
        listing,
    ),
    Var(
        "WAPA_REMEMBERED_IDS",
        str(_P.remembered_ids),
        "Message ids remembered per chat to drop redeliveries",
        "policy",
        "policy.remembered_ids",
        integer(1),
    ),
    Var(
        "WAPA_QUIET_HOURS",
        "off",
        "Quiet hours HH:MM-HH:MM (may cross midnight, like 22:00-07:00) or off (rule 7)",
        "policy",
        "quiet.hours",
        _quiet_hours,
    ),
    Var(
        "WAPA_QUIET_TZ",
        _QUIET.tz,
        "IANA time zone of the quiet hours, like Europe/Berlin",
        "policy",
        "quiet.tz",
        text,
    ),
    Var(
        "WAPA_CAPS_PER_CHAT_PER_DAY",
        str(_P.caps.per_chat_per_day),
        "At most this many replies per chat per rolling day; 0 = no cap (rule 8)",
        "policy",
        "caps.per_chat_per_day",
        integer(0),
    ),
    Var(
        "WAPA_CAPS_PER_HOUR",
        str(_P.caps.per_hour),
        "At most this many replies in all chats per rolling hour; 0 = no cap",
        "policy",
        "caps.per_hour",
        integer(0),
    ),
    Var(
        "WAPA_CAPS_PER_DAY",
        str(_P.caps.per_day),
        "At most this many replies in all chats per rolling day; 0 = no cap",
        "policy",
        "caps.per_day",
        integer(0),
    ),
    Var(
        "WAPA_TYPING_CHARS_PER_SECOND",
        f"{_P.typing_chars_per_second:g}",
        "Simulated typing speed (rule 9)",
        "policy",
        "policy.typing_chars_per_second",
        number(0, 1e6, lo_open=True),
    ),
    Var(
        "WAPA_TYPING_MIN",
        format_duration(_P.typing_min),
        "Shortest typing time",
        "policy",
        "policy.typing_min",
        _DUR,
    ),
    Var(
        "WAPA_TYPING_MAX",
        format_duration(_P.typing_max),
        "Longest typing time",
        "policy",
        "policy.typing_max",
        _DUR,
    ),
    Var(
        "WAPA_TYPING_JITTER",
        f"{_P.typing_jitter:g}",
        "Random +- fraction of the typing time (0 <= x < 1)",
        "policy",
        "policy.typing_jitter",
        number(0, 0.999),
    ),
    Var(
        "WAPA_GENERATION_TIMEOUT",
        format_duration(_P.generation_timeout),
        "A generation with no answer after this is abandoned",
        "policy",
        "policy.generation_timeout",
        _DUR,
    ),
    Var(
        "WAPA_MAX_CONTEXT",
        str(_P.max_context),
        "Messages of context given to the model (rule 10)",
        "policy",
        "policy.max_context",
        integer(1),
    ),
    Var(
        "WAPA_CONTEXT_TTL",
        format_duration(_P.context_ttl),
        "...younger than this",
        "policy",
        "policy.context_ttl",
        _DUR,
    ),
    Var(
        "WAPA_MAX_MESSAGE_CHARS",
        str(_P.max_message_chars),
        "A longer message is cut in the prompt",
        "policy",
        "policy.max_message_chars",
        integer(1),
    ),
    Var(
        "WAPA_PROMPT_TOKEN_BUDGET",
        str(_P.prompt_token_budget),
        "The whole prompt stays within this many (estimated) tokens",
        "policy",
        "policy.prompt_token_budget",
        integer(1),
    ),
    Var(
        "WAPA_MAX_REPLY_CHARS",
        str(_P.max_reply_chars),
        "Replies are cut to this length (rule 11)",
        "policy",
        "policy.max_reply_chars",
        integer(1),
    ),
    Var(
        "WAPA_HOLDING_MESSAGE",
        "",
        "Sent when the model fails; empty = send nothing",
        "policy",
        "policy.holding_message",
        text,
    ),
    Var(
        "WAPA_STALE_AFTER",
        format_duration(_P.stale_after),
        "After a restart, a reply overdue by more than this is dropped; a message written this long before it arrived (a backlog) gets no reply",
        "policy",
        "policy.stale_after",
        _DUR,
    ),
    # --- the original assistant's names
    Var(
        "RESPONSE_DELAY_MS",
        "",
        "Old name of WAPA_RESPONSE_DELAY, in milliseconds",
        "legacy",
        "policy.response_delay",
        milliseconds,
    ),
    Var(
        "COOLDOWN_PERIOD_MS",
        "",
        "Old name of WAPA_COOLDOWN, in milliseconds",
        "legacy",
        "policy.cooldown",
        milliseconds,
    ),
    Var(
        "MAX_CONTEXT_MESSAGES",
        "",
        "Old name of WAPA_MAX_CONTEXT",
        "legacy",
        "policy.max_context",
        integer(1),
    ),
    # --- persona
    Var(
        "WAPA_OWNER_ID",
        _PERSONA.owner_id,
        "The owner's own chat id (WhatsApp: his JID, like 15551234567@s.whatsapp.net); owner commands are read there",
        "persona",
        "persona.owner_id",
        _persona_text,
    ),
    Var(
        "WAPA_OWNER_NAME",
        _PERSONA.owner_name,
        "The owner's name, as the assistant speaks of him; @Name in a group addresses him",
        "persona",
        "persona.owner_name",
        _persona_text,
    ),
    Var(
        "WAPA_ASSISTANT_NAME",
        _PERSONA.assistant_name,
        "The assistant's own name",
        "persona",
        "persona.assistant_name",
        _persona_text,
    ),
    Var(
        "WAPA_INTRODUCTION",
        "",
        "How the assistant introduces itself, like: I'm Dana, Gilad's assistant.",
        "persona",
        "persona.introduction",
        _persona_text,
    ),
    Var(
        "WAPA_LANGUAGES",
        "",
        "Comma-separated languages the assistant may answer in",
        "persona",
        "persona.languages",
        listing,
    ),
    Var(
        "WAPA_EXTRA_INSTRUCTIONS",
        "",
        "Extra instructions appended to the system prompt",
        "persona",
        "persona.extra_instructions",
        _persona_text,
    ),
    # --- the runner
    Var(
        "WAPA_TRANSPORT",
        _S.transport,
        "whatsapp or console (same as `wapa run --transport`)",
        "runner",
        "run.transport",
        choice("whatsapp", "console"),
    ),
    Var(
        "WAPA_SESSION_DB",
        _S.session_db,
        "The WhatsApp session (SQLite path or postgres:// URL); created by `wapa pair`",
        "runner",
        "run.session_db",
        text,
    ),
    Var(
        "WAPA_HTTP_HOST",
        _S.http_host,
        "Address of the health/metrics HTTP server (0.0.0.0 in a container)",
        "runner",
        "run.http_host",
        text,
    ),
    Var(
        "WAPA_HTTP_PORT",
        str(_S.http_port),
        "Port of the health/metrics HTTP server; 0 = any free port (printed at start)",
        "runner",
        "run.http_port",
        integer(0, 65535),
    ),
    Var(
        "WAPA_LOG_LEVEL",
        _S.log_level,
        "debug, info, warning or error",
        "runner",
        "run.log_level",
        choice("debug", "info", "warning", "error"),
    ),
    Var(
        "WAPA_LOG_CONTENT",
        _flag(_S.log_content),
        "1 = show message text and phone numbers in logs (debugging only)",
        "runner",
        "run.log_content",
        boolean,
    ),
    Var(
        "WAPA_RECORD",
        _S.record,
        "Record inbound events and effects as JSON lines to this file (for `wapa replay`)",
        "runner",
        "run.record",
        text,
    ),
    Var(
        "WAPA_RECORD_REDACT",
        _flag(_S.record_redact),
        "1 = redact text and phone numbers in the recording",
        "runner",
        "run.record_redact",
        boolean,
    ),
    Var(
        "WAPA_SEED",
        _or_empty(_S.seed),
        "Seed of the typing jitter for a new database; empty = random",
        "runner",
        "run.seed",
        integer(0),
    ),
    Var(
        "WAPA_MAX_CONCURRENT_GENERATIONS",
        str(_S.max_concurrent_generations),
        "Model calls under way at once",
        "runner",
        "run.max_concurrent_generations",
        integer(1, 64),
    ),
    Var(
        "WAPA_SHUTDOWN_TIMEOUT",
        format_duration(_S.shutdown_timeout),
        "On SIGTERM, wait this long for sends under way before stopping",
        "runner",
        "run.shutdown_timeout",
        _DUR,
    ),
    Var(
        "WAPA_MEMORY_WARN_MB",
        str(_S.memory_warn_mb),
        "Warn once (with the top allocation sites) above this resident memory; 0 = never",
        "runner",
        "run.memory_warn_mb",
        integer(0),
    ),
    # --- reports to the owner (rules 13-15; docs/owner.md)
    Var(
        "WAPA_ESCALATE",
        _flag(_P.escalate),
        "Tell the owner at once, in his own chat, of an urgent contact message (rule 14)",
        "owner",
        "policy.escalate",
        boolean,
    ),
    Var(
        "WAPA_ESCALATE_PER_DAY",
        str(_P.escalate_per_day),
        "At most this many escalations a rolling day (0 to 1000)",
        "owner",
        "policy.escalate_per_day",
        integer(0, 1000),
    ),
    Var(
        "WAPA_ESCALATE_IN_QUIET_HOURS",
        _flag(_P.escalate_in_quiet_hours),
        "Escalate during quiet hours too; off = held and told when they end",
        "owner",
        "policy.escalate_in_quiet_hours",
        boolean,
    ),
    Var(
        "WAPA_DIGEST_AT",
        "off",
        "The daily digest's local time HH:MM, or off (rule 15; 'digest' asks for one any time)",
        "owner",
        "policy.digest_at",
        _digest_at,
    ),
    Var(
        "WAPA_DIGEST_TZ",
        "",
        "The owner's IANA time zone for the digest and the calendar; empty = WAPA_QUIET_TZ",
        "owner",
        "policy.digest_tz",
        text,
    ),
    Var(
        "WAPA_DIGEST_DETAIL",
        _P.digest_detail,
        "text = the digest quotes the start of each message; names = never message text",
        "owner",
        "policy.digest_detail",
        choice("text", "names"),
    ),
    Var(
        "WAPA_DIGEST_MAX_CHARS",
        str(_P.digest_max_chars),
        "The digest's length at most (200 to 60000); more chats end in '... and N more chats'",
        "owner",
        "policy.digest_max_chars",
        integer(200, 60_000),
    ),
    Var(
        "WAPA_PROFILES",
        "",
        "A YAML file of profiles (profiles, profile_rules, default_profile: rule 13, "
        "docs/owner.md); empty = no profiles",
        "owner",
        "profiles.file",
        _profiles_file,
    ),
    # --- the calendar (app/calendar.py, adapters/calendar)
    Var(
        "WAPA_CALENDAR_ICS",
        "",
        "The owner's calendar: an .ics file path or an https:// URL (http:// only to "
        "localhost), for his busy times; empty = no calendar",
        "calendar",
        "run.calendar_ics",
        calendar_location,
        secret=True,  # a calendar URL carries a private token
    ),
    Var(
        "WAPA_CALENDAR_DETAILS",
        _P.calendar_details,
        "What the assistant may know of the calendar: busy (free/busy only) or titles "
        "(event titles too, never in the system prompt)",
        "calendar",
        "policy.calendar_details",
        choice("busy", "titles"),
    ),
    Var(
        "WAPA_CALENDAR_DAYS",
        str(_P.calendar_days),
        "Days of free/busy the assistant knows, today first (1 to 14)",
        "calendar",
        "policy.calendar_days",
        integer(1, 14),
    ),
    Var(
        "WAPA_CALENDAR_REFRESH",
        format_duration(_S.calendar_refresh),
        "Load the calendar again this often (1m to 1d)",
        "calendar",
        "run.calendar_refresh",
        duration(60.0, 86400.0),
    ),
    Var(
        "WAPA_CALENDAR_TIMEOUT",
        format_duration(_S.calendar_timeout),
        "A calendar URL that has not answered in full after this is a failed load (1s to 2m)",
        "calendar",
        "run.calendar_timeout",
        duration(1.0, 120.0),
    ),
    # --- read by the WhatsApp adapter (adapters/whatsapp), which applies it at import
    Var(
        "NEONIZE_BOT_TAG",
        "off",
        "on = let neonize mark every one-to-one message as sent by a business bot (its "
        "default); anything else = off",
        "whatsapp",
    ),
)

# The whole table: this file's variables, then the model's and the store's.
VARIABLES: tuple[Var, ...] = _APP_VARIABLES + MODEL_VARIABLES + STORE_VARIABLES

BY_NAME: dict[str, Var] = {v.name: v for v in VARIABLES}

_SECTIONS = (
    ("policy", "Policy: when and how the assistant answers"),
    ("legacy", "Names of the original assistant (still accepted)"),
    ("persona", "Persona: who the assistant speaks for"),
    ("runner", "Runner"),
    ("owner", "Reports to the owner and profiles (see docs/owner.md)"),
    ("calendar", 'Calendar: the owner\'s busy times (see docs/runner.md, "Calendar")'),
    ("whatsapp", "WhatsApp (read by the WhatsApp adapter; see docs/whatsapp.md)"),
    ("model", "Model (declared in adapters/llm/config.py; see docs/model.md)"),
    ("store", "Store (declared in adapters/store/settings.py; see docs/store.md)"),
)


def all_variables() -> tuple[Var, ...]:
    """Every variable wapa reads (the table)."""
    return VARIABLES


# Variables of other parts that also fill a `Settings` field.
_SETTINGS_FIELD = {"WAPA_DB": "db", "WAPA_DB_KEY": "db_key"}

# ---------------------------------------------------------------- unknown names

ENV_PREFIX = "WAPA_"
MODEL_PREFIXES = ("CLOUDFLARE_", "AI_", "OPENAI_")
_TYPO_EDITS = 2  # a model-prefixed name this close to a model variable is a typo


@dataclass(frozen=True)
class UnknownName:
    """A variable name that is not in the table, and the known name closest to it."""

    name: str  # as written
    suggestion: str = ""  # in the style it was written in (file keys: prefix and case)
    where: str = ""  # " (in FILE)" for a config file key

    def __str__(self) -> str:
        hint = (
            f"did you mean {self.suggestion}?"
            if self.suggestion
            else "`wapa config --markdown` lists every variable"
        )
        ignored = "" if self.where else ", ignored"  # a config file's key stops the start
        return f"{self.name}{self.where}: unknown variable{ignored}; {hint}"


def closest_name(name: str, known: Iterable[str] | None = None) -> str:
    """The known variable closest to `name` (`difflib.get_close_matches`), or "".

    The `WAPA_` prefix is compared apart, so that every `WAPA_*` name is not "close" to
    every other one just by sharing it."""
    names = [v.name for v in VARIABLES] if known is None else list(known)
    stems: dict[str, str] = {}
    for known_name in names:  # a later exact stem never hides an earlier one
        stems.setdefault(_stem(known_name), known_name)
    match = difflib.get_close_matches(_stem(name.strip().upper()), list(stems), n=1)
    return stems[match[0]] if match else ""


def _stem(name: str) -> str:
    return name[len(ENV_PREFIX) :] if name.startswith(ENV_PREFIX) else name


def _model_typo(name: str) -> str:
    """The model variable that `name` (with a model prefix) is nearly, or "".

    Other tools use these prefixes too (a Cloudflare zone id, a DNS token, an OpenAI
    organisation), so only a near miss counts: the name in the wrong case, a misspelling (at
    most two letters missing, extra, wrong or swapped), or the name cut short at an
    underscore (the model name variable without its last word)."""
    upper = name.strip().upper()
    prefix = next((p for p in MODEL_PREFIXES if upper.startswith(p)), None)
    if prefix is None:
        return ""
    family = [v.name for v in MODEL_VARIABLES if v.name.startswith(prefix)]
    if upper in family:
        return upper
    cut = [known for known in family if known.startswith(upper + "_")]
    if len(cut) == 1:
        return cut[0]
    near = sorted((_edits(upper, known), known) for known in family)
    return near[0][1] if near and near[0][0] <= _TYPO_EDITS else ""


def _edits(a: str, b: str) -> int:
    """Letters inserted, deleted, replaced or swapped to turn `a` into `b` (optimal string
    alignment distance)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[len(b)]


def unknown_environment(environ: Mapping[str, str]) -> tuple[UnknownName, ...]:
    """Set variables that look like wapa's but that the table does not know, sorted: every
    `WAPA_*` name (any case), and model-prefixed names that are nearly a model variable's.

    Only the `WAPA_` names are wapa's alone; the environment holds everybody's variables."""
    out: list[UnknownName] = []
    for name in sorted(environ):
        if name in BY_NAME:
            continue
        upper = name.upper()
        if upper.startswith(ENV_PREFIX):
            out.append(UnknownName(name, closest_name(name)))
        elif upper.startswith(MODEL_PREFIXES) and (meant := _model_typo(name)):
            out.append(UnknownName(name, meant))
    return tuple(out)


def _unknown_key(key: str, path: str) -> UnknownName:
    """A config-file key the table lacks; the suggestion is written the way the key was."""
    suggestion = closest_name(key)
    if suggestion and not key.upper().startswith(ENV_PREFIX):
        suggestion = _stem(suggestion)
    if suggestion and key == key.lower():
        suggestion = suggestion.lower()
    return UnknownName(key, suggestion, f" (in {path})")


# ---------------------------------------------------------------- loading


def read_config_file(path: str) -> dict[str, Any]:
    """A flat YAML mapping of variable names (prefix `WAPA_` and case optional) to values."""
    from wapa.adapters.safe_yaml import SafeYAMLError, load_yaml_file

    try:  # a settings file is small; aliases, depth, numbers bounded
        data = load_yaml_file(path, max_bytes=1_000_000)
    except SafeYAMLError as exc:
        raise ConfigError(f"--config: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config: {path} must hold a mapping of VARIABLE: value")
    out: dict[str, Any] = {}
    unknown: list[UnknownName] = []
    for key, value in data.items():
        name = str(key).strip().upper()
        if name not in BY_NAME and f"{ENV_PREFIX}{name}" in BY_NAME:
            name = f"{ENV_PREFIX}{name}"
        if name not in BY_NAME:
            unknown.append(_unknown_key(str(key).strip(), path))
            continue
        if isinstance(value, dict):
            raise ConfigError(f"{name} (in {path}): expected a value or a list, got a mapping")
        out[name] = value
    if unknown:  # all of them in the one line, so that one edit fixes the file
        more = [
            u.name + (f" (did you mean {u.suggestion}?)" if u.suggestion else "")
            for u in unknown[1:]
        ]
        also = f" Also unknown: {', '.join(more)}." if more else ""
        raise ConfigError(f"{unknown[0]}{also}")
    return out


# legacy names first, so that the WAPA_* names win
_PARSE_ORDER = tuple(sorted(VARIABLES, key=lambda v: v.section != "legacy"))


def load_settings(
    environ: Mapping[str, str] | None = None,
    config_file: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings, parsing every variable of the table; raises `ConfigError` with one
    line naming the variable.

    The model's and the store's variables are checked here one by one; what involves several
    of them (a token needs an account id) is checked where their settings are built
    (`settings_from_env(settings.env)`, `StoreSettings.from_env(settings.env)`)."""
    env = dict(os.environ if environ is None else environ)
    file_values = read_config_file(config_file) if config_file else {}
    where: dict[str, str] = {}
    merged: dict[str, Any] = {}
    for name, value in file_values.items():
        merged[name], where[name] = value, f" (in {config_file})"
    for name, value in env.items():
        if present(value) or name not in merged:
            merged[name], where[name] = value, ""
    for name, value in (overrides or {}).items():
        merged[name], where[name] = value, " (command line)"

    values = read(_PARSE_ORDER, merged, where)
    policy_changes: dict[str, Any] = {}
    caps: dict[str, int] = {}
    quiet: dict[str, Any] = {}
    persona: dict[str, Any] = {}
    run: dict[str, Any] = {}
    origin: dict[str, str] = {}  # target -> variable name, for errors from the core
    for var in _PARSE_ORDER:
        if var.name not in values:
            continue
        value = values[var.name]
        if var.name in _SETTINGS_FIELD:
            run[_SETTINGS_FIELD[var.name]] = value
            continue
        kind, _, attr = var.target.partition(".")
        if kind == "profiles":  # one file, three policy settings
            for key in value:
                origin[key] = var.name
            policy_changes.update(value)
            continue
        if kind not in ("policy", "caps", "quiet", "persona", "run"):
            continue  # another part's variable: checked above, used by its owner
        origin[attr if kind == "policy" else var.target] = var.name
        if kind == "policy":
            policy_changes[attr] = value
        elif kind == "caps":
            caps[attr] = value
        elif kind == "quiet":
            quiet[attr] = value
        elif kind == "persona":
            persona[attr] = value
        else:
            run[attr] = value
    if caps:
        policy_changes["caps"] = caps
    hours = quiet.get("hours")
    if hours:
        policy_changes["quiet_hours"] = {
            "start": hours[0],
            "end": hours[1],
            "tz": quiet.get("tz", _QUIET.tz),
        }
    elif "tz" in quiet:
        _check_tz(quiet["tz"])
    if quiet.get("tz", _QUIET.tz) != _QUIET.tz and not policy_changes.get("digest_tz"):
        # the owner's one time zone: the digest and the calendar use it with quiet hours off too
        policy_changes["digest_tz"] = quiet["tz"]
    try:
        policy = Policy.from_mapping(policy_changes)
    except (PolicyError, TypeError) as exc:
        raise ConfigError(_core_error(str(exc), origin, where)) from None
    try:
        persona_obj = Persona(**persona)
    except (PolicyError, TypeError) as exc:
        msg = str(exc)
        attr = msg.split(":", 1)[0]
        name = origin.get(f"persona.{attr}", f"WAPA_{attr.upper()}")
        raise ConfigError(f"{name}: {msg.split(':', 1)[-1].strip()}") from None
    env_out = {
        k: str(v) if not isinstance(v, list | tuple) else ",".join(map(str, v))
        for k, v in merged.items()
        if present(v)
    }
    unknown = unknown_environment(env)
    return Settings(policy=policy, persona=persona_obj, env=env_out, unknown=unknown, **run)


def _check_tz(tz: str) -> None:
    try:
        QuietHours(tz=tz).zone()
    except PolicyError:
        raise ConfigError(
            f"WAPA_QUIET_TZ: unknown time zone {tz!r} (use an IANA name like Europe/Berlin)"
        ) from None


_CORE_FIELD = {
    "quiet_hours.tz": "quiet.tz",
    "quiet_hours.start": "quiet.hours",
    "quiet_hours.end": "quiet.hours",
}


def _core_error(message: str, origin: Mapping[str, str], where: Mapping[str, str]) -> str:
    """Rename the core's field in a PolicyError ("max_wait: ...") to the variable."""
    fieldname, _, rest = message.partition(":")
    key = _CORE_FIELD.get(fieldname, fieldname)
    if key.startswith("caps."):
        name = origin.get(key, "WAPA_CAPS_" + key[5:].upper())
    elif key.startswith("quiet."):
        name = origin.get(key, "WAPA_QUIET_TZ" if key == "quiet.tz" else "WAPA_QUIET_HOURS")
    else:
        name = origin.get(key, f"WAPA_{key.upper()}")
    if key not in origin:  # a cross-field rule broken by another variable the user did set
        for other, var in origin.items():
            if other.split(".")[-1] in rest:
                return f"{var}{where.get(var, '')}: {message} (adjust {name} as well)"
    return f"{name}{where.get(name, '')}:{rest}" if rest else f"{name}: {message}"


# ---------------------------------------------------------------- documentation


def env_example() -> str:
    """Every variable with its default and help, as a commented `.env` file."""
    lines = [
        "# wapa configuration. Generated from the table in app/config.py (`wapa config --env-example`).",
        "# An empty value means the default. Durations: 500ms, 90s, 2m, 5h, 1d or seconds.",
    ]
    for section, title in _SECTIONS:
        chosen = [v for v in VARIABLES if v.section == section]
        if not chosen:
            continue
        lines += ["", f"# ---- {title}"]
        for v in chosen:
            lines.append(f"# {v.help}")
            lines.append(
                f"{v.name}=" if v.secret or v.section == "legacy" else f"{v.name}={v.default}"
            )
    return "\n".join(lines) + "\n"


def docs_table() -> str:
    """The variables as Markdown tables, one per section."""
    out: list[str] = []
    for section, title in _SECTIONS:
        chosen = [v for v in VARIABLES if v.section == section]
        if not chosen:
            continue
        out += [f"### {title}", "", "| variable | default | meaning |", "|---|---|---|"]
        for v in chosen:
            default = f"`{v.default}`" if v.default else "(empty)"
            out.append(f"| `{v.name}` | {default} | {v.help.replace('|', '/')} |")
        out.append("")
    return "\n".join(out)
