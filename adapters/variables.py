"""Configuration variables: the one `Var` record, the one `ConfigError`, the value parsers.

Every setting wapa reads from the environment (or a `--config` file) is a `Var`: its name,
its default as written in an `.env` file, a one-line meaning, the documentation section, where
the value goes (`target`) and a parser. Each part of wapa declares its own variables next to
the settings object they fill, with these parsers:

- `wapa.config` (app/config.py): policy, persona, runner, WhatsApp; it also assembles the
  whole table (`wapa.config.VARIABLES`), which `load_settings`, `wapa config`, `.env.example`
  and the docs use;
- `wapa.adapters.llm.config`: the model (`CLOUDFLARE_*`, `AI_*`, `OPENAI_*`);
- `wapa.adapters.store.settings`: the store (`WAPA_DB`, `WAPA_TRACE_DAYS`, ...).

A default is written once, in the settings dataclass the variable fills (`Policy`,
`LLMSettings`, `StoreSettings`, `Settings`); the `Var`'s default is rendered from it.

A parser takes the raw value (a string from the environment, or what YAML gave) and the
variable's name, and returns the value or raises `ConfigError("NAME: expected ..., got '...'")`.
Durations go through the core's `parse_duration`, the one duration syntax of the project
(`500ms`, `90s`, `2m`, `5h`, `1d` or plain seconds). An empty value counts as unset.

This module is in `adapters/` because both the adapters and the app use it; it imports the
core only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from wapa.core import PolicyError, parse_duration

__all__ = [
    "ConfigError",
    "Parser",
    "Var",
    "boolean",
    "choice",
    "duration",
    "format_duration",
    "integer",
    "listing",
    "milliseconds",
    "number",
    "present",
    "read",
    "secret",
    "text",
    "url",
]


class ConfigError(ValueError):
    """A setting is missing or wrong; `str()` is one line starting with the variable's name.

    The one configuration error of wapa: `wapa.config.ConfigError`,
    `wapa.adapters.llm.ConfigError` and `wapa.adapters.store.settings.ConfigError` are this
    class."""


Parser = Callable[[Any, str], Any]


# ---------------------------------------------------------------- value parsers


def text(value: Any, name: str) -> str:
    """A single value, stripped."""
    if isinstance(value, list | tuple | dict):
        raise ConfigError(f"{name}: expected a single value, got a {type(value).__name__}")
    return str(value).strip()


def format_duration(seconds: float) -> str:
    """`120.0` -> `2m`: the largest whole unit, as `parse_duration` reads it back."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds * 1000:g}ms"


def duration(lo: float = 0.0, hi: float | None = None) -> Parser:
    """Seconds from `500ms`, `90s`, `2m`, `5h`, `1d` or plain seconds, within [lo, hi]."""

    def parse(value: Any, name: str) -> float:
        raw = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        try:
            seconds = parse_duration(text(value, name) if raw is None else raw, name)
        except PolicyError as exc:
            raise ConfigError(str(exc)) from None
        if seconds < lo or (hi is not None and seconds > hi):
            upper = f" and <= {format_duration(hi)}" if hi is not None else ""
            got = value if raw is None else format_duration(seconds)
            raise ConfigError(
                f"{name}: expected a duration >= {format_duration(lo) if lo else '0'}{upper}, "
                f"got {str(got).strip()!r}"
            )
        return seconds

    return parse


def milliseconds(value: Any, name: str) -> float:
    """Seconds from a plain number of milliseconds (the original assistant's `*_MS` names)."""
    raw = text(value, name)
    if re.fullmatch(r"\d+(\.\d+)?", raw):
        try:
            return parse_duration(f"{raw}ms", name)
        except PolicyError:
            pass
    raise ConfigError(f"{name}: expected milliseconds as a number like 120000, got {raw!r}")


def integer(lo: int, hi: int | None = None) -> Parser:
    """A whole number within [lo, hi]."""

    def parse(value: Any, name: str) -> int:
        raw = text(value, name)
        ok = re.fullmatch(r"[-+]?\d+", raw) is not None
        n = int(raw) if ok else 0
        if not ok or n < lo or (hi is not None and n > hi):
            upper = f" and <= {hi}" if hi is not None else ""
            raise ConfigError(f"{name}: expected a whole number >= {lo}{upper}, got {raw!r}")
        return n

    return parse


def number(lo: float, hi: float, *, lo_open: bool = False) -> Parser:
    """A finite number within [lo, hi] (or (lo, hi] with `lo_open`)."""

    def parse(value: Any, name: str) -> float:
        raw = text(value, name)
        try:
            x = float(raw)
        except ValueError:
            x = math.nan
        if not math.isfinite(x) or (x <= lo if lo_open else x < lo) or x > hi:
            bound = f"> {lo:g}" if lo_open else f">= {lo:g}"
            raise ConfigError(f"{name}: expected a number {bound} and <= {hi:g}, got {raw!r}")
        return x

    return parse


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def boolean(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    raw = text(value, name).casefold()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(f"{name}: expected 1/0, true/false, yes/no or on/off, got {raw!r}")


def listing(value: Any, name: str) -> tuple[str, ...]:
    """Comma-separated in the environment, or a YAML list; empty items are dropped."""
    if isinstance(value, list | tuple):
        items = [str(v).strip() for v in value]
    else:
        items = [v.strip() for v in text(value, name).split(",")]
    return tuple(v for v in items if v)


def choice(*choices: str) -> Parser:
    """One of `choices`, case-insensitive."""

    def parse(value: Any, name: str) -> str:
        raw = text(value, name).casefold()
        if raw not in choices:
            raise ConfigError(f"{name}: expected one of {', '.join(choices)}, got {raw!r}")
        return raw

    return parse


def url(value: Any, name: str) -> str:
    """An http(s) URL, without a trailing slash."""
    raw = text(value, name)
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name}: expected an http(s) URL, got {raw!r}")
    return raw.rstrip("/")


def secret(value: Any, name: str) -> str:
    """A token or key: no spaces or control characters inside. Never echoed in the error."""
    raw = text(value, name)
    if any(c.isspace() for c in raw) or not raw.isprintable():
        raise ConfigError(f"{name}: contains spaces or control characters (a pasting accident?)")
    return raw


# ---------------------------------------------------------------- the record


@dataclass(frozen=True)
class Var:
    """One configuration variable."""

    name: str
    default: str  # as written in an .env file; "" means unset
    help: str
    section: str  # the documentation section (see wapa.config)
    target: str = ""  # where the value goes, as its owner reads it ("policy.cooldown", "timeout")
    parse: Parser = text
    secret: bool = False  # never given a value in .env.example, never logged


def present(value: Any) -> bool:
    """Set and not blank: an empty value counts as unset (Docker `env_file` lines `NAME=`)."""
    return value is not None and not (isinstance(value, str) and not value.strip())


def read(
    variables: Iterable[Var], values: Mapping[str, Any], where: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The parsed value of every variable that is set in `values`, by name.

    Raises `ConfigError` naming the variable, placed with `where[name]` (" (in FILE)")."""
    out: dict[str, Any] = {}
    for var in variables:
        raw = values.get(var.name)
        if not present(raw):
            continue
        try:
            out[var.name] = var.parse(raw, var.name)
        except ConfigError as exc:
            raise ConfigError(_place(str(exc), var.name, (where or {}).get(var.name, ""))) from None
    return out


def _place(message: str, name: str, where: str) -> str:
    if where and message.startswith(name + ":"):
        return f"{name}{where}:{message[len(name) + 1 :]}"
    return message
