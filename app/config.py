"""The runner's configuration: ONE table of variables (name, default, help), parsed with errors
that name the variable.

Sources, later wins: the defaults below, an optional YAML file (`--config FILE`: a flat mapping
whose keys are the variable names; the `WAPA_` prefix and case are optional), the environment.
An empty value counts as unset (Docker `env_file` lines like `WAPA_DB_KEY=`).

Durations accept `500ms`, `90s`, `2m`, `5h`, `1d` or plain seconds; lists are comma-separated
in the environment (or YAML lists in the file); booleans are 1/0, true/false, yes/no, on/off.
The original assistant's names keep working: `RESPONSE_DELAY_MS`, `COOLDOWN_PERIOD_MS`
(milliseconds) and `MAX_CONTEXT_MESSAGES`; the `WAPA_*` name wins when both are set.

A name the table does not know is reported with the closest known one: an environment variable
starting with `WAPA_` lands in `Settings.unknown` (the runner warns and starts; `wapa config
--check` and `wapa doctor` fail), a key of the `--config` file is a `ConfigError` (the file is
wapa's alone, so an unknown key there is certainly a mistake, like a wrong value).

`env_example()` renders the table as a commented `.env` file; `docs_table()` as Markdown.
Variables of the WhatsApp adapter (`NEONIZE_BOT_TAG`), the model adapter (`CLOUDFLARE_*`,
`AI_*`, `OPENAI_*`) and the store are read by those adapters; they appear in the table so that documentation and `.env.example`
come from one place.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wapa.core import Persona, Policy, PolicyError, parse_duration


class ConfigError(ValueError):
    """A setting is wrong; `str()` is one line starting with the variable's name."""


# ---------------------------------------------------------------- value parsers


def _text(value: Any, name: str) -> str:
    if isinstance(value, list | tuple | dict):
        raise ConfigError(f"{name}: expected a single value, got a {type(value).__name__}")
    return str(value).strip()


def _duration(value: Any, name: str) -> float:
    try:
        return parse_duration(value if isinstance(value, int | float) else _text(value, name), name)
    except PolicyError as exc:
        raise ConfigError(str(exc)) from None


def _ms(value: Any, name: str) -> float:
    text = _text(value, name)
    if not re.fullmatch(r"\d+(\.\d+)?", text):
        raise ConfigError(f"{name}: expected milliseconds as a number like 120000, got {text!r}")
    return float(text) / 1000.0


def _int(minimum: int, maximum: int | None = None) -> Callable[[Any, str], int]:
    def parse(value: Any, name: str) -> int:
        text = _text(value, name)
        ok = re.fullmatch(r"-?\d+", text) is not None
        n = int(text) if ok else 0
        if not ok or n < minimum or (maximum is not None and n > maximum):
            upper = f" and <= {maximum}" if maximum is not None else ""
            raise ConfigError(f"{name}: expected a whole number >= {minimum}{upper}, got {text!r}")
        return n

    return parse


def _float_between(lo: float, hi: float, lo_open: bool = False) -> Callable[[Any, str], float]:
    def parse(value: Any, name: str) -> float:
        text = _text(value, name)
        try:
            x = float(text)
        except ValueError:
            x = float("nan")
        if x != x or (x <= lo if lo_open else x < lo) or x > hi:
            bound = f"> {lo:g}" if lo_open else f">= {lo:g}"
            raise ConfigError(f"{name}: expected a number {bound} and <= {hi:g}, got {text!r}")
        return x

    return parse


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value, name).casefold()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{name}: expected 1/0, true/false, yes/no or on/off, got {text!r}")


def _list(value: Any, name: str) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        items = [str(v).strip() for v in value]
    else:
        items = [v.strip() for v in _text(value, name).split(",")]
    return tuple(v for v in items if v)


def _choice(*choices: str) -> Callable[[Any, str], str]:
    def parse(value: Any, name: str) -> str:
        text = _text(value, name).casefold()
        if text not in choices:
            raise ConfigError(f"{name}: expected one of {', '.join(choices)}, got {text!r}")
        return text

    return parse


def _quiet_hours(value: Any, name: str) -> tuple[str, str] | None:
    text = _text(value, name)
    if text.casefold() in ("off", "none", "0", "false", "no"):
        return None
    m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-3]):([0-5]\d)", text)
    if not m:
        raise ConfigError(f"{name}: expected HH:MM-HH:MM (like 22:00-07:00) or off, got {text!r}")
    return f"{int(m[1]):02d}:{m[2]}", f"{int(m[3]):02d}:{m[4]}"


def _port(value: Any, name: str) -> int:
    return _int(0, 65535)(value, name)


PERSONA_MAX_CHARS = 2000  # a persona text goes into every prompt


def _persona_text(value: Any, name: str) -> str:
    text = _text(value, name)
    if len(text) > PERSONA_MAX_CHARS:
        raise ConfigError(f"{name}: {len(text)} characters; at most {PERSONA_MAX_CHARS}")
    if any(ord(c) < 32 and c not in "\n\t" for c in text):
        raise ConfigError(f"{name}: contains control characters")
    return text


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Var:
    name: str
    default: str  # as written in an .env file; "" means unset
    help: str
    section: str
    target: str = ""  # "policy.<field>", "caps.<field>", "persona.<field>", "run.<field>"
    parse: Callable[[Any, str], Any] | None = None  # None: read by another adapter
    secret: bool = False


def _d(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(round(seconds * 1000))}ms"


_P = Policy()
_D = _duration

VARIABLES: tuple[Var, ...] = (
    # --- policy: timing
    Var(
        "WAPA_RESPONSE_DELAY",
        _d(_P.response_delay),
        "Reply this long after the latest unanswered message (rule 1)",
        "policy",
        "policy.response_delay",
        _D,
    ),
    Var(
        "WAPA_MAX_WAIT",
        _d(_P.max_wait),
        "...but never later than this after the first one (rule 1)",
        "policy",
        "policy.max_wait",
        _D,
    ),
    Var(
        "WAPA_COOLDOWN",
        _d(_P.cooldown),
        "Quiet time in a chat after a reply or after the owner wrote (rules 2, 3)",
        "policy",
        "policy.cooldown",
        _D,
    ),
    Var(
        "WAPA_URGENT_DELAY",
        _d(_P.urgent_delay),
        "Delay for urgent messages (rule 4)",
        "policy",
        "policy.urgent_delay",
        _D,
    ),
    Var(
        "WAPA_URGENT_THRESHOLD",
        str(_P.urgent_threshold),
        "Urgency score at which a message is urgent (a keyword scores 2)",
        "policy",
        "policy.urgent_threshold",
        _int(1),
    ),
    Var(
        "WAPA_URGENT_KEYWORDS",
        "",
        "Comma-separated urgent words/phrases; empty = the built-in list in several languages",
        "policy",
        "policy.urgent_keywords",
        _list,
    ),
    Var(
        "WAPA_BURST_COUNT",
        str(_P.burst_count),
        "This many messages...",
        "policy",
        "policy.burst_count",
        _int(1),
    ),
    Var(
        "WAPA_BURST_WINDOW",
        _d(_P.burst_window),
        "...within this window add 1 to the urgency score",
        "policy",
        "policy.burst_window",
        _D,
    ),
    Var(
        "WAPA_GROUP_REPLY",
        _P.group_reply,
        "Groups: 'mention' (only when addressed) or 'never' (rule 5)",
        "policy",
        "policy.group_reply",
        _choice("mention", "never"),
    ),
    Var(
        "WAPA_QUOTE_IN_GROUPS",
        "1",
        "A group reply quotes the message that addressed the owner",
        "policy",
        "policy.quote_in_groups",
        _bool,
    ),
    Var(
        "WAPA_ALIASES",
        "",
        "Comma-separated extra regexes that address the owner in a group (use the config file for patterns with commas)",
        "policy",
        "policy.aliases",
        _list,
    ),
    Var(
        "WAPA_ALLOW",
        "",
        "Comma-separated chat/sender ids; when set, only these get replies",
        "policy",
        "policy.allow",
        _list,
    ),
    Var(
        "WAPA_DENY",
        "",
        "Comma-separated chat/sender ids that never get replies",
        "policy",
        "policy.deny",
        _list,
    ),
    Var(
        "WAPA_REMEMBERED_IDS",
        str(_P.remembered_ids),
        "Message ids remembered per chat to drop redeliveries",
        "policy",
        "policy.remembered_ids",
        _int(1),
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
        "UTC",
        "IANA time zone of the quiet hours, like Europe/Berlin",
        "policy",
        "quiet.tz",
        _text,
    ),
    Var(
        "WAPA_CAPS_PER_CHAT_PER_DAY",
        str(_P.caps.per_chat_per_day),
        "At most this many replies per chat per rolling day; 0 = no cap (rule 8)",
        "policy",
        "caps.per_chat_per_day",
        _int(0),
    ),
    Var(
        "WAPA_CAPS_PER_HOUR",
        str(_P.caps.per_hour),
        "At most this many replies in all chats per rolling hour; 0 = no cap",
        "policy",
        "caps.per_hour",
        _int(0),
    ),
    Var(
        "WAPA_CAPS_PER_DAY",
        str(_P.caps.per_day),
        "At most this many replies in all chats per rolling day; 0 = no cap",
        "policy",
        "caps.per_day",
        _int(0),
    ),
    Var(
        "WAPA_TYPING_CHARS_PER_SECOND",
        f"{_P.typing_chars_per_second:g}",
        "Simulated typing speed (rule 9)",
        "policy",
        "policy.typing_chars_per_second",
        _float_between(0, 1e6, lo_open=True),
    ),
    Var(
        "WAPA_TYPING_MIN",
        _d(_P.typing_min),
        "Shortest typing time",
        "policy",
        "policy.typing_min",
        _D,
    ),
    Var(
        "WAPA_TYPING_MAX",
        _d(_P.typing_max),
        "Longest typing time",
        "policy",
        "policy.typing_max",
        _D,
    ),
    Var(
        "WAPA_TYPING_JITTER",
        f"{_P.typing_jitter:g}",
        "Random +- fraction of the typing time (0 <= x < 1)",
        "policy",
        "policy.typing_jitter",
        _float_between(0, 0.999),
    ),
    Var(
        "WAPA_GENERATION_TIMEOUT",
        _d(_P.generation_timeout),
        "A generation with no answer after this is abandoned",
        "policy",
        "policy.generation_timeout",
        _D,
    ),
    Var(
        "WAPA_MAX_CONTEXT",
        str(_P.max_context),
        "Messages of context given to the model (rule 10)",
        "policy",
        "policy.max_context",
        _int(1),
    ),
    Var(
        "WAPA_CONTEXT_TTL",
        _d(_P.context_ttl),
        "...younger than this",
        "policy",
        "policy.context_ttl",
        _D,
    ),
    Var(
        "WAPA_MAX_MESSAGE_CHARS",
        str(_P.max_message_chars),
        "A longer message is cut in the prompt",
        "policy",
        "policy.max_message_chars",
        _int(1),
    ),
    Var(
        "WAPA_PROMPT_TOKEN_BUDGET",
        str(_P.prompt_token_budget),
        "The whole prompt stays within this many (estimated) tokens",
        "policy",
        "policy.prompt_token_budget",
        _int(1),
    ),
    Var(
        "WAPA_MAX_REPLY_CHARS",
        str(_P.max_reply_chars),
        "Replies are cut to this length (rule 11)",
        "policy",
        "policy.max_reply_chars",
        _int(1),
    ),
    Var(
        "WAPA_HOLDING_MESSAGE",
        "",
        "Sent when the model fails; empty = send nothing",
        "policy",
        "policy.holding_message",
        _text,
    ),
    Var(
        "WAPA_STALE_AFTER",
        _d(_P.stale_after),
        "After a restart, a reply overdue by more than this is dropped; a message written this long before it arrived (a backlog) gets no reply",
        "policy",
        "policy.stale_after",
        _D,
    ),
    # --- the original assistant's names
    Var(
        "RESPONSE_DELAY_MS",
        "",
        "Old name of WAPA_RESPONSE_DELAY, in milliseconds",
        "legacy",
        "policy.response_delay",
        _ms,
    ),
    Var(
        "COOLDOWN_PERIOD_MS",
        "",
        "Old name of WAPA_COOLDOWN, in milliseconds",
        "legacy",
        "policy.cooldown",
        _ms,
    ),
    Var(
        "MAX_CONTEXT_MESSAGES",
        "",
        "Old name of WAPA_MAX_CONTEXT",
        "legacy",
        "policy.max_context",
        _int(1),
    ),
    # --- persona
    Var(
        "WAPA_OWNER_ID",
        "owner",
        "The owner's own chat id (WhatsApp: his JID, like 15551234567@s.whatsapp.net); owner commands are read there",
        "persona",
        "persona.owner_id",
        _persona_text,
    ),
    Var(
        "WAPA_OWNER_NAME",
        "the owner",
        "The owner's name, as the assistant speaks of him; @Name in a group addresses him",
        "persona",
        "persona.owner_name",
        _persona_text,
    ),
    Var(
        "WAPA_ASSISTANT_NAME",
        "the assistant",
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
        _list,
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
        "whatsapp",
        "whatsapp or console (same as `wapa run --transport`)",
        "runner",
        "run.transport",
        _choice("whatsapp", "console"),
    ),
    Var(
        "WAPA_DB",
        "data/wapa.db",
        "The assistant's SQLite database (state, outbox, traces)",
        "runner",
        "run.db",
        _text,
    ),
    Var(
        "WAPA_DB_KEY",
        "",
        "Encrypts message text and names in WAPA_DB; empty = not encrypted (a warning at start)",
        "runner",
        "run.db_key",
        _text,
        secret=True,
    ),
    Var(
        "WAPA_SESSION_DB",
        "data/session.db",
        "The WhatsApp session (SQLite path or postgres:// URL); created by `wapa pair`",
        "runner",
        "run.session_db",
        _text,
    ),
    Var(
        "WAPA_HTTP_HOST",
        "127.0.0.1",
        "Address of the health/metrics HTTP server (0.0.0.0 in a container)",
        "runner",
        "run.http_host",
        _text,
    ),
    Var(
        "WAPA_HTTP_PORT",
        "8080",
        "Port of the health/metrics HTTP server; 0 = any free port (printed at start)",
        "runner",
        "run.http_port",
        _port,
    ),
    Var(
        "WAPA_LOG_LEVEL",
        "info",
        "debug, info, warning or error",
        "runner",
        "run.log_level",
        _choice("debug", "info", "warning", "error"),
    ),
    Var(
        "WAPA_LOG_CONTENT",
        "0",
        "1 = show message text and phone numbers in logs (debugging only)",
        "runner",
        "run.log_content",
        _bool,
    ),
    Var(
        "WAPA_RECORD",
        "",
        "Record inbound events and effects as JSON lines to this file (for `wapa replay`)",
        "runner",
        "run.record",
        _text,
    ),
    Var(
        "WAPA_RECORD_REDACT",
        "0",
        "1 = redact text and phone numbers in the recording",
        "runner",
        "run.record_redact",
        _bool,
    ),
    Var(
        "WAPA_SEED",
        "",
        "Seed of the typing jitter for a new database; empty = random",
        "runner",
        "run.seed",
        _int(0),
    ),
    Var(
        "WAPA_MAX_CONCURRENT_GENERATIONS",
        "2",
        "Model calls under way at once",
        "runner",
        "run.max_concurrent_generations",
        _int(1, 64),
    ),
    Var(
        "WAPA_SHUTDOWN_TIMEOUT",
        "10s",
        "On SIGTERM, wait this long for sends under way before stopping",
        "runner",
        "run.shutdown_timeout",
        _D,
    ),
    Var(
        "WAPA_MEMORY_WARN_MB",
        "256",
        "Warn once (with the top allocation sites) above this resident memory; 0 = never",
        "runner",
        "run.memory_warn_mb",
        _int(0),
    ),
    # --- read by the WhatsApp adapter (adapters/whatsapp)
    Var(
        "NEONIZE_BOT_TAG",
        "off",
        "on = let neonize mark every one-to-one message as sent by a business bot (its default); anything else = off",
        "whatsapp",
    ),
    # --- read by the model adapter (adapters/llm) - listed here for the docs and .env.example
    Var(
        "CLOUDFLARE_API_TOKEN",
        "",
        "Cloudflare API token with the Workers AI permission",
        "model",
        secret=True,
    ),
    Var(
        "CLOUDFLARE_ACCOUNT_ID",
        "",
        "Cloudflare account id (Workers AI page of the dashboard)",
        "model",
    ),
    Var("AI_MODEL_NAME", "@cf/meta/llama-3.2-1b-instruct", "Workers AI model", "model"),
    Var(
        "AI_FALLBACK_MODELS",
        "",
        "Comma-separated Workers AI models tried after AI_MODEL_NAME",
        "model",
    ),
    Var(
        "CLOUDFLARE_API_BASE",
        "https://api.cloudflare.com/client/v4",
        "Cloudflare API base URL",
        "model",
    ),
    Var(
        "CLOUDFLARE_AI_GATEWAY_URL",
        "",
        "An AI Gateway URL that replaces the API base for generations",
        "model",
    ),
    Var(
        "OPENAI_BASE_URL",
        "",
        "An OpenAI-compatible server (second provider), like http://localhost:11434/v1",
        "model",
    ),
    Var("OPENAI_MODEL", "", "Model name on the OpenAI-compatible server", "model"),
    Var("OPENAI_API_KEY", "", "API key of the OpenAI-compatible server", "model", secret=True),
    Var("AI_MAX_TOKENS", "256", "Longest reply in tokens", "model"),
    Var("AI_TEMPERATURE", "0.6", "Sampling temperature", "model"),
    Var("AI_TIMEOUT", "30", "Seconds per model request", "model"),
    Var("AI_TOTAL_TIMEOUT", "90", "Seconds per reply, retries and fallbacks included", "model"),
    Var("AI_MAX_ATTEMPTS", "3", "Attempts per model", "model"),
    Var("AI_MAX_RETRY_AFTER", "30", "A longer Retry-After (seconds) is not waited for", "model"),
    Var(
        "AI_DAILY_NEURON_BUDGET", "10000", "Neurons a day wapa may spend; off = no budget", "model"
    ),
    Var(
        "AI_NEURONS_PER_M_INPUT",
        "",
        "Override the model's neurons per million input tokens",
        "model",
    ),
    Var(
        "AI_NEURONS_PER_M_OUTPUT",
        "",
        "Override the model's neurons per million output tokens",
        "model",
    ),
    Var("AI_HEALTH_INTERVAL", "60", "Seconds a model health check is cached", "model"),
    # --- read by the store (adapters/store)
    Var("WAPA_TRACE_DAYS", "14", "Days decision traces are kept", "store"),
    Var("WAPA_BACKUP_DIR", "data/backups", "Where daily backups go", "store"),
    Var("WAPA_BACKUP_KEEP", "7", "Daily backups kept; 0 = no daily backups", "store"),
    Var("WAPA_DB_SYNC", "full", "SQLite synchronous mode: full or normal", "store"),
)

BY_NAME: dict[str, Var] = {v.name: v for v in VARIABLES}
_SECTIONS = (
    ("policy", "Policy: when and how the assistant answers"),
    ("legacy", "Names of the original assistant (still accepted)"),
    ("persona", "Persona: who the assistant speaks for"),
    ("runner", "Runner"),
    ("whatsapp", "WhatsApp (read by the WhatsApp adapter; see docs/whatsapp.md)"),
    ("model", "Model (read by the model adapter; see docs/model.md)"),
    ("store", "Store (read by the store; see docs/store.md)"),
)


def _extra_variables() -> tuple[Var, ...]:
    """Variables other adapters declare in their own tables (when they have one)."""
    return ()


def all_variables() -> tuple[Var, ...]:
    seen = set(BY_NAME)
    extra = tuple(v for v in _extra_variables() if v.name not in seen)
    return VARIABLES + extra


# ---------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    policy: Policy
    persona: Persona
    transport: str = "whatsapp"
    db: str = "data/wapa.db"
    db_key: str = ""
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
    env: dict[str, str] = field(default_factory=dict, repr=False)  # merged, for other adapters
    unknown: tuple[UnknownName, ...] = ()  # WAPA_* environment variables the table lacks


ENV_PREFIX = "WAPA_"


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
    names = [v.name for v in all_variables()] if known is None else list(known)
    stems: dict[str, str] = {}
    for known_name in names:  # a later exact stem never hides an earlier one
        stems.setdefault(_stem(known_name), known_name)
    match = difflib.get_close_matches(_stem(name.strip().upper()), list(stems), n=1)
    return stems[match[0]] if match else ""


def _stem(name: str) -> str:
    return name[len(ENV_PREFIX) :] if name.startswith(ENV_PREFIX) else name


def unknown_environment(environ: Mapping[str, str]) -> tuple[UnknownName, ...]:
    """Every set `WAPA_*` variable (any case) that the table does not know, sorted.

    Only the `WAPA_` names are wapa's alone; the environment holds everybody's variables."""
    known = {v.name for v in all_variables()}
    return tuple(
        UnknownName(name, closest_name(name))
        for name in sorted(environ)
        if name.upper().startswith(ENV_PREFIX) and name not in known
    )


def _unknown_key(key: str, path: str) -> UnknownName:
    """A config-file key the table lacks; the suggestion is written the way the key was."""
    suggestion = closest_name(key)
    if suggestion and not key.upper().startswith(ENV_PREFIX):
        suggestion = _stem(suggestion)
    if suggestion and key == key.lower():
        suggestion = suggestion.lower()
    return UnknownName(key, suggestion, f" (in {path})")


def read_config_file(path: str) -> dict[str, Any]:
    """A flat YAML mapping of variable names (prefix `WAPA_` and case optional) to values."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise ConfigError(f"--config: cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"--config: {path}{where} is not valid YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config: {path} must hold a mapping of VARIABLE: value")
    known = {v.name for v in all_variables()}
    out: dict[str, Any] = {}
    unknown: list[UnknownName] = []
    for key, value in data.items():
        name = str(key).strip().upper()
        if name not in known and f"WAPA_{name}" in known:
            name = f"WAPA_{name}"
        if name not in known:
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


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def load_settings(
    environ: Mapping[str, str] | None = None,
    config_file: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings; raises `ConfigError` with one line naming the variable."""
    env = dict(os.environ if environ is None else environ)
    file_values = read_config_file(config_file) if config_file else {}
    where: dict[str, str] = {}
    merged: dict[str, Any] = {}
    for name, value in file_values.items():
        merged[name], where[name] = value, f" (in {config_file})"
    for name, value in env.items():
        if _present(value) or name not in merged:
            merged[name], where[name] = value, ""
    for name, value in (overrides or {}).items():
        merged[name], where[name] = value, " (command line)"

    policy_changes: dict[str, Any] = {}
    caps: dict[str, int] = {}
    quiet: dict[str, Any] = {}
    persona: dict[str, Any] = {}
    run: dict[str, Any] = {}
    origin: dict[str, str] = {}  # target -> variable name, for errors from the core
    # legacy names first, so that the WAPA_* names win
    ordered = sorted(VARIABLES, key=lambda v: v.section != "legacy")
    for var in ordered:
        if var.parse is None or not _present(merged.get(var.name)):
            continue
        try:
            value = var.parse(merged[var.name], var.name)
        except ConfigError as exc:
            raise ConfigError(_place(str(exc), var.name, where.get(var.name, ""))) from None
        kind, _, attr = var.target.partition(".")
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
            "tz": quiet.get("tz", "UTC"),
        }
    elif "tz" in quiet:
        _check_tz(quiet["tz"])
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
        if _present(v)
    }
    unknown = unknown_environment(env)
    return Settings(policy=policy, persona=persona_obj, env=env_out, unknown=unknown, **run)


def _place(message: str, name: str, where: str) -> str:
    if where and message.startswith(name + ":"):
        return f"{name}{where}:{message[len(name) + 1 :]}"
    return message


def _check_tz(tz: str) -> None:
    from wapa.core import QuietHours

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
        "# wapa configuration. Generated from app/config.py (`wapa config --env-example`).",
        "# An empty value means the default. Durations: 500ms, 90s, 2m, 5h, 1d or seconds.",
    ]
    variables = all_variables()
    for section, title in _SECTIONS:
        chosen = [v for v in variables if v.section == section]
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
    variables = all_variables()
    for section, title in _SECTIONS:
        chosen = [v for v in variables if v.section == section]
        if not chosen:
            continue
        out += [f"### {title}", "", "| variable | default | meaning |", "|---|---|---|"]
        for v in chosen:
            default = f"`{v.default}`" if v.default else "(empty)"
            out.append(f"| `{v.name}` | {default} | {v.help.replace('|', '/')} |")
        out.append("")
    return "\n".join(out)
