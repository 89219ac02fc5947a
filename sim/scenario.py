"""Scenario files: YAML in, a validated `Scenario` out, or a `ScenarioError` naming file and line.

The format is described in docs/simulation.md. Loading is strict: unknown keys, unknown chats,
times going backwards, bad durations and bad policy settings are refused with the file, the
line (from PyYAML's node marks) and what is wrong. `build_simulation` turns a scenario into a
ready-to-run `sim.engine.Simulation`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml
from wapa.adapters.llm.media import MediaJob
from wapa.adapters.safe_yaml import Fallback, SafeYAMLError, Values, load_yaml
from wapa.core.events import (
    MEDIA_KINDS,
    MESSAGE_KINDS,
    BusyInterval,
    CalendarUpdate,
    Message,
    NoticeKind,
    Reason,
)
from wapa.core.policy import Persona, Policy, PolicyError, parse_duration
from wapa.core.records import Record
from wapa.sim.engine import QUOTE_LAST_REPLY, Simulation
from wapa.sim.fake_media import MEDIA_FAILURE_KINDS, FakeMedia, image_job, voice_job
from wapa.sim.fake_model import FakeModel, ScheduledFailure
from wapa.sim.fake_whatsapp import FakeWhatsApp, LinkFault, ScheduledSendFailure

DEFAULT_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday
DEFAULT_WITHIN = 30.0  # `at:` tolerance: a reply lands after model latency and typing time
# Where a crash restarts from: what the memory store committed ("memory"; "export" is its old
# name, kept so older files load) or a SQLite store file ("store").
RESTART_FROM = ("memory", "export", "store")
# Bounds against typos like 0026 for 2026 or 1000d for 100d: a start in these years, and no
# time, window or duration in a file longer than MAX_OFFSET (a scenario spans at most a year).
START_YEARS = range(2000, 2100)
MAX_OFFSET = 366 * 86400.0
DECISION_CODES = frozenset(v for k, v in vars(Reason).items() if k.isupper())


class ScenarioError(ValueError):
    """A scenario file is broken. `str()` is "file:line: what"."""

    def __init__(self, file: str, line: int | None, what: str) -> None:
        self.file, self.line, self.what = file, line, what
        super().__init__(f"{file}:{line}: {what}" if line else f"{file}: {what}")


# ---------------------------------------------------------------- YAML with line numbers


class _Map(dict[Any, Any]):
    line: int = 0
    key_lines: dict[Any, int]
    bool_words: dict[int, list[str]]  # the document's: line -> words YAML read as true/false


class _Seq(list[Any]):
    line: int = 0
    item_lines: list[int]


class _Loader(yaml.SafeLoader):
    pass


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> _Map:
    loader.flatten_mapping(node)
    out = _Map()
    out.line, out.key_lines = node.start_mark.line + 1, {}
    out.bool_words = _bool_words(loader)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain value", key_node.start_mark
            )
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> _Seq:
    out = _Seq(loader.construct_object(child, deep=True) for child in node.value)
    out.line, out.item_lines = node.start_mark.line + 1, [c.start_mark.line + 1 for c in node.value]
    return out


def _bool_words(loader: _Loader) -> dict[int, list[str]]:
    words: dict[int, list[str]] = loader.__dict__.setdefault("bool_words", {})
    return words


def _construct_bool(loader: _Loader, node: yaml.ScalarNode) -> bool:
    """YAML 1.1's booleans (yes/no/on/off/true/false), with the word remembered by line, so
    that `text: no` can be answered "no, which YAML reads as false (quote it)"."""
    _bool_words(loader).setdefault(node.start_mark.line + 1, []).append(node.value)
    return bool(yaml.SafeLoader.construct_yaml_bool(loader, node))


def _construct_timestamp(loader: _Loader, node: yaml.ScalarNode) -> Any:
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except (ValueError, OverflowError) as exc:
        raise yaml.constructor.ConstructorError(
            None, None, f"bad date {node.value!r}: {exc}", node.start_mark
        ) from None


_PLAIN_KEYS = frozenset({str, int, float, bool, type(None)})  # what a key may be


class _Values(Values):
    """The same `_Map` and `_Seq` as the constructors above, built by `safe_yaml`'s one-pass
    composer from finished values (a key that is not a plain value, or a duplicate key, is left
    to the constructors above, which refuse it with its line)."""

    def mapping(
        self, loader: Any, line: int, keys: list[Any], key_lines: list[int], values: list[Any]
    ) -> _Map:
        for key in keys:
            if type(key) not in _PLAIN_KEYS:  # (the composer builds these exact types)
                raise Fallback
        out = _Map(zip(keys, values, strict=True))
        if len(out) != len(keys):  # a duplicate key (1, 1.0 and true are one key)
            raise Fallback
        out.line, out.key_lines = line, dict(zip(keys, key_lines, strict=True))
        out.bool_words = _bool_words(loader)
        return out

    def sequence(self, loader: Any, line: int, items: list[Any], item_lines: list[int]) -> _Seq:
        out = _Seq(items)
        out.line, out.item_lines = line, item_lines
        return out


_Loader.one_pass_values = _Values()  # type: ignore[attr-defined]
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)
_Loader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


def _line(value: Any, key: Any = None) -> int | None:
    kind = type(value)  # (no class derives from _Map or _Seq: `is`, not isinstance)
    if kind is _Map:
        return value.line if key is None else value.key_lines.get(key, value.line)
    if kind is _Seq:
        return value.line
    return None


# ---------------------------------------------------------------- the scenario model


@dataclass(frozen=True, eq=False, repr=False)
class ChatSpec(Record):
    """One chat of the scenario's `chats:` (a direct chat, or a group with its members)."""

    key: str
    kind: str  # "direct" | "group"
    name: str  # the contact's name (direct) or the group's title
    members: dict[str, str] = field(default_factory=dict)  # group: member id -> name


@dataclass(frozen=True, eq=False, repr=False)
class Step(Record):
    """One script line, `t` in seconds since the start. `kind`: message | command | crash."""

    t: float
    line: int
    kind: str
    chat: str = ""
    sender: str = ""  # member or contact id, or the owner's id
    text: str = ""
    id: str = ""
    quote: str = ""
    mentions: tuple[str, ...] = ()
    media: str = ""
    message_kind: str = "message"
    down: float = 0.0
    transcript: str = ""  # a voice note's text, as the fake transcriber returns it
    description: str = ""  # an image's description, as the fake describer returns it
    seconds: float = 0.0  # a voice note's length
    busy: tuple[BusyInterval, ...] = ()  # calendar: the new busy times
    error: str = ""  # calendar: the feed failed with this error (the last good ones stay)


@dataclass(frozen=True, eq=False, repr=False)
class Expectation(Record):
    """One entry of the scenario's `expect:`, checked (sim/expect.py) after the run."""

    kind: (
        str  # reply | no_reply | replies | decision | no_decision | prompt | notice | read | typing
    )
    line: int
    index: int
    chat: str = ""  # "" means every chat
    code: str = ""  # decision codes
    window: tuple[float, float] = (float("-inf"), float("inf"))  # seconds since the start
    at: float | None = None
    contains: tuple[str, ...] = ()
    not_contains: tuple[str, ...] = ()
    count: int | None = None
    quote: str | None = None  # reply: the scripted id the reply must quote ("" = no quote)
    notice_kind: str = ""  # notice: status | escalation | digest ("" = any)

    def where(self) -> str:
        return f"expect[{self.index}] (line {self.line})"


@dataclass
class Scenario:
    """A scenario file, loaded and checked: who, which settings, the script and the
    expectations (`build_simulation` turns it into a `Simulation`)."""

    name: str
    file: str
    start: float
    seed: int
    persona: Persona
    policy: Policy
    chats: dict[str, ChatSpec]
    model: dict[str, Any]
    whatsapp: dict[str, Any]
    steps: list[Step]
    expectations: list[Expectation]
    until: float | None = None  # seconds since the start; None runs until nothing is left
    description: str = ""
    restart_from: str = "memory"  # one of RESTART_FROM
    media_model: dict[str, Any] = field(default_factory=dict)  # the fake transcriber/describer
    calendar: tuple[BusyInterval, ...] | None = None  # fed as a CalendarUpdate at the start


# ---------------------------------------------------------------- parsing helpers


def parse_offset(value: Any, name: str) -> float:
    """Seconds from a duration ("90s", "2m", "1h30m", "1d2h", 45): the core's one parser."""
    return parse_duration(value, name)


def _datetime(value: Any, name: str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise PolicyError(f"{name}: expected a date and time like 2026-01-05T09:00:00+00:00")


class _Ctx:
    """Carries the file name for error messages."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.bool_words: dict[int, list[str]] = {}

    def fail(self, line: int | None, what: str) -> ScenarioError:
        return ScenarioError(self.file, line, what)

    def mapping(self, value: Any, where: str, line: int | None) -> _Map:
        if type(value) is _Map:  # what the loader builds: no ABC check needed
            return value
        if not isinstance(value, Mapping):
            raise self.fail(line, f"{where}: expected a mapping, got {_kind(value)}")
        return value if isinstance(value, _Map) else _Map(value)

    def keys(self, value: _Map, where: str, known: tuple[str, ...]) -> None:
        for key in value:
            if key not in known:
                raise self.fail(
                    _line(value, key),
                    f"{where}: unknown key {key!r}{did_you_mean(key, known)} (known: {', '.join(known)})",
                )

    def offset(self, value: Any, where: str, line: int | None) -> float:
        """A duration or a time since the start: >= 0 and at most MAX_OFFSET."""
        negative = (isinstance(value, str) and value.strip().startswith("-")) or (
            isinstance(value, int | float) and not isinstance(value, bool) and value < 0
        )
        if negative:
            raise self.fail(line, f"{where}: must not be negative, got {value!r}")
        try:
            seconds = parse_offset(value, where)
        except PolicyError as exc:
            raise self.fail(line, str(exc)) from None
        if seconds > MAX_OFFSET:
            raise self.fail(
                line, f"{where}: {value!r} is more than 366 days (a scenario spans at most a year)"
            )
        return seconds

    def text(self, value: Any, where: str, line: int | None) -> str:
        if type(value) is str:  # most values: no ABC check needed
            return value
        if isinstance(value, bool) or value is None or isinstance(value, Mapping | list):
            raise self.fail(line, f"{where}: expected text, got {self.got(value, line)}")
        return str(value)

    def got(self, value: Any, line: int | None) -> str:
        """What a wrong value is, for an error; a YAML boolean by the word that was written."""
        if isinstance(value, bool):
            said, word = str(value).lower(), self.bool_word(value, line)
            if word.lower() != said:
                return f'{word}, which YAML reads as {said} (quote it for the word: "{word}")'
            return f'{said} (quote it for the word: "{said}")'
        return _kind(value)

    def bool_word(self, value: bool, line: int | None) -> str:
        """The word written for a YAML boolean on `line` (yes, no, on, off...)."""
        words = [w for w in self.bool_words.get(line or 0, []) if w.lower() in _WORDS[value]]
        return words[0] if words else str(value).lower()


def did_you_mean(name: Any, known: Iterable[str]) -> str:
    """ ", did you mean X?" for the known name closest to `name` (app/config.py's
    `closest_name`, which compares in upper case), or ""."""
    # Imported only when a name is wrong: wapa.config loads every adapter's settings (the
    # calendar's with httpx and asyncio), which a valid scenario never needs.
    from wapa.config import closest_name

    by_upper = {k.upper(): k for k in known}
    match = closest_name(str(name), by_upper)
    return f", did you mean {by_upper[match]}?" if match else ""


_WORDS = {True: ("yes", "y", "on", "true"), False: ("no", "n", "off", "false")}


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value!r}"
    return f"{type(value).__name__} {value!r}"


# ---------------------------------------------------------------- loading

_TOP = (
    "name",
    "description",
    "start",
    "seed",
    "owner",
    "policy",
    "chats",
    "llm",
    "whatsapp",
    "media_model",
    "script",
    "expect",
    "until",
    "restart_from",
    "calendar",
)
_OWNER = ("id", "name", "assistant_name", "introduction", "languages", "extra_instructions")
_CHAT = ("kind", "name", "title", "members")
_STEP = (
    "at",
    "chat",
    "from",
    "text",
    "id",
    "quote",
    "mentions",
    "media",
    "kind",
    "crash",
    "down",
    "command",
    "transcript",
    "description",
    "seconds",
    "calendar",
    "calendar_error",
)
_LLM = ("latency", "timeout_after", "failures", "replies", "fallback_models")
_LLM_FAILURE = ("kind", "count", "after", "retry_after", "model")
_WA = ("latency", "echo_after", "echo", "failures", "link")
_MEDIA = ("latency", "failures", "neuron_budget")
_MEDIA_FAILURE = ("kind", "count", "after", "model")
_WA_FAILURE = ("kind", "count", "after", "by")
_WA_LINK = ("kind", "after", "for")
_EXPECT_KINDS = (
    "reply",
    "no_reply",
    "replies",
    "decision",
    "no_decision",
    "prompt",
    "notice",
    "read",
    "typing",
    "link",
)
# `link`: the WhatsApp link's health (as /healthz shows it) throughout the window
LINK_EXPECT_STATES = ("red", "green", "connected", "degraded", "disconnected", "banned", "failed")
_EXPECT_KEYS = {
    "reply": ("chat", "at", "within", "between", "contains", "not_contains", "quote"),
    "no_reply": ("at", "within", "between"),
    "replies": ("count", "between"),
    "decision": ("chat", "at", "within", "between", "count", "contains"),
    "no_decision": ("chat", "between"),
    "prompt": ("at", "within", "between", "contains", "not_contains"),
    "notice": ("at", "within", "between", "contains", "not_contains", "kind", "count"),
    "read": ("at", "within", "between", "count"),
    "typing": ("at", "within", "between", "count"),
    "link": ("at", "within", "between"),
}


def load_file(path: str | Path) -> Scenario:
    path = Path(path)
    file = str(path)
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(file, None, f"cannot read: {exc}") from None
    return load_text(source, file)


def load_text(source: str, file: str = "<scenario>") -> Scenario:
    c = _Ctx(file)
    try:  # aliases, depth, integers and size bounded (adapters/safe_yaml.py)
        data = load_yaml(source, file, loader=_Loader)
    except SafeYAMLError as exc:
        raise c.fail(exc.line, exc.problem) from None
    top = c.mapping(data, "scenario", 1)
    c.bool_words = getattr(top, "bool_words", {})
    c.keys(top, "scenario", _TOP)
    if "name" not in top:
        raise c.fail(top.line, "scenario: 'name' is required")
    name = c.text(top["name"], "name", _line(top, "name")).strip()
    if not name:
        raise c.fail(_line(top, "name"), "name: must not be empty")

    try:
        start_at = _datetime(top.get("start", DEFAULT_START), "start")
    except PolicyError as exc:
        raise c.fail(_line(top, "start"), str(exc)) from None
    if start_at.year not in START_YEARS:
        raise c.fail(
            _line(top, "start"),
            f"start: the year {start_at.year} is out of range "
            f"(a start from {START_YEARS.start} to {START_YEARS.stop - 1})",
        )
    start = start_at.timestamp()
    seed = top.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise c.fail(_line(top, "seed"), f"seed: expected a whole number, got {seed!r}")

    persona = _persona(c, top)
    policy = _policy(c, top)
    chats = _chats(c, top, persona.owner_id)
    model = _llm(c, top, start)
    whatsapp = _whatsapp(c, top, start)
    media_model = _media_model(c, top, start)
    steps = _script(c, top, chats, persona.owner_id, start)
    calendar = None
    if "calendar" in top:
        calendar = _busy(c, top["calendar"], "calendar", _line(top, "calendar"), start)
    expectations = _expectations(c, top, chats, steps, persona.owner_id)
    until = None
    if "until" in top:
        until = c.offset(top["until"], "until", _line(top, "until"))
    description = c.text(top.get("description", ""), "description", _line(top, "description"))
    restart_from = top.get("restart_from", "memory")
    if restart_from not in RESTART_FROM:
        raise c.fail(
            _line(top, "restart_from"),
            f"restart_from: expected {' or '.join(RESTART_FROM)}, "
            f"got {c.got(restart_from, _line(top, 'restart_from'))}",
        )
    return Scenario(
        name=name,
        file=file,
        start=start,
        seed=seed,
        persona=persona,
        policy=policy,
        chats=chats,
        model=model,
        whatsapp=whatsapp,
        steps=steps,
        expectations=expectations,
        until=until,
        description=description.strip(),
        restart_from=restart_from,
        media_model=media_model,
        calendar=calendar,
    )


def _persona(c: _Ctx, top: _Map) -> Persona:
    raw = top.get("owner", {})
    owner = c.mapping(raw, "owner", _line(top, "owner"))
    c.keys(owner, "owner", _OWNER)
    values: dict[str, Any] = {"owner_id": "owner", "owner_name": "Gilad"}
    names = {"id": "owner_id", "name": "owner_name"}
    for key, value in owner.items():
        if key == "languages":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise c.fail(_line(owner, key), "owner.languages: expected a list of names")
            values[key] = tuple(value)
        else:
            values[names.get(key, key)] = c.text(value, f"owner.{key}", _line(owner, key))
    try:
        return Persona(**values)
    except PolicyError as exc:
        raise c.fail(_line(top, "owner"), f"owner: {exc}") from None


def _policy(c: _Ctx, top: _Map) -> Policy:
    raw = top.get("policy", {})
    data = dict(c.mapping(raw, "policy", _line(top, "policy")))
    for key in data:
        if key not in _POLICY_KEYS:
            known = sorted(_POLICY_KEYS)
            raise c.fail(
                _line(raw, key),
                f"policy.{key}: unknown policy setting{did_you_mean(key, known)}"
                f" (known: {', '.join(known)})",
            )
    if isinstance(data.get("digest_at"), int) and not isinstance(data["digest_at"], bool):
        v = data["digest_at"]  # YAML 1.1 reads an unquoted 18:00 as 1080, as below
        data["digest_at"] = f"{v // 60:02d}:{v % 60:02d}"
    qh = data.get("quiet_hours")
    if isinstance(qh, Mapping):
        # YAML 1.1 reads an unquoted 22:00 as the base-60 number 1320: give it back as a time.
        data["quiet_hours"] = {
            k: f"{v // 60:02d}:{v % 60:02d}" if isinstance(v, int) and k != "tz" else v
            for k, v in qh.items()
        }
    key = repr(data)  # plain YAML values: the repr tells apart what Policy would
    known_policy = _POLICIES.get(key)
    if known_policy is not None:
        return known_policy
    try:
        policy = Policy.from_mapping(data)
    except PolicyError as exc:
        field_name = str(exc).split(":", 1)[0].split(".", 1)[0]
        line = _line(raw, field_name) if field_name in data else _line(top, "policy")
        value = data.get(field_name)
        if isinstance(value, str) and value.strip().startswith("-") and "duration" in str(exc):
            raise c.fail(
                line, f"policy.{field_name}: must not be negative, got {value!r}"
            ) from None
        raise c.fail(line, f"policy.{exc}") from None
    except TypeError as exc:
        raise c.fail(_line(top, "policy"), f"policy: {exc}") from None
    if len(_POLICIES) >= _POLICIES_KEPT:
        _POLICIES.clear()
    _POLICIES[key] = policy
    return policy


_POLICY_KEYS = frozenset(f.name for f in fields(Policy))

# Policies by their settings: a suite's scenarios share a few (78 files, 25 policies), and a
# Policy is frozen, so one built for a file serves the next with the same settings (building
# and validating one is most of loading a small file's settings).
_POLICIES: dict[str, Policy] = {}
_POLICIES_KEPT = 256


def _chats(c: _Ctx, top: _Map, owner_id: str) -> dict[str, ChatSpec]:
    if "chats" not in top:
        raise c.fail(top.line, "scenario: 'chats' is required (at least one chat)")
    raw = c.mapping(top["chats"], "chats", _line(top, "chats"))
    if not raw:
        raise c.fail(_line(top, "chats"), "chats: at least one chat is needed")
    chats: dict[str, ChatSpec] = {}
    for key, spec_raw in raw.items():
        line = _line(raw, key)
        key = c.text(key, "chats: a chat's name", line)
        where = f"chats.{key}"
        if key == owner_id:
            raise c.fail(line, f"{where}: the owner's own chat is written with `command:` steps")
        spec = c.mapping(spec_raw if spec_raw is not None else {}, where, line)
        c.keys(spec, where, _CHAT)
        kind = spec.get("kind", "direct")
        if kind not in ("direct", "group"):
            raise c.fail(
                _line(spec, "kind"),
                f"{where}.kind: expected direct or group, got {c.got(kind, _line(spec, 'kind'))}",
            )
        if kind == "direct":
            for bad in ("title", "members"):
                if bad in spec:
                    raise c.fail(_line(spec, bad), f"{where}.{bad}: only groups have {bad}")
            name = c.text(spec.get("name", key.capitalize()), f"{where}.name", _line(spec, "name"))
            chats[key] = ChatSpec(key, kind, name)
            continue
        if "name" in spec:
            raise c.fail(_line(spec, "name"), f"{where}.name: a group has a title, not a name")
        title = c.text(spec.get("title", key), f"{where}.title", _line(spec, "title"))
        members_raw = spec.get("members", [])
        members: dict[str, str] = {}
        if isinstance(members_raw, list):
            for member in members_raw:
                member = c.text(member, f"{where}.members", _line(spec, "members"))
                members[member] = member.capitalize()
        elif isinstance(members_raw, Mapping):
            for member, mname in members_raw.items():
                member = c.text(member, f"{where}.members", _line(members_raw, member))
                members[member] = c.text(
                    mname, f"{where}.members.{member}", _line(members_raw, member)
                )
        else:
            raise c.fail(_line(spec, "members"), f"{where}.members: expected a list of member ids")
        chats[key] = ChatSpec(key, kind, title, members)
    for chat in chats.values():  # a member who also has a direct chat keeps that chat's name
        for member in chat.members:
            if member in chats and chats[member].kind == "direct":
                chat.members[member] = chats[member].name
    return chats


def _seq(c: _Ctx, top: _Map, key: str) -> _Seq:
    value = top.get(key, _Seq())
    if value is None:
        return _Seq()
    if not isinstance(value, list):
        raise c.fail(_line(top, key), f"{key}: expected a list, got {_kind(value)}")
    return value if isinstance(value, _Seq) else _Seq(value)


def _item_line(seq: _Seq, i: int) -> int | None:
    lines = getattr(seq, "item_lines", None)
    return lines[i] if lines and i < len(lines) else None


def _fake(
    c: _Ctx,
    top: _Map,
    section: str,
    known: tuple[str, ...],
    durations: tuple[str, ...],
    failure_keys: tuple[str, ...],
    failure: Callable[[_Map, str, float], Any],
    start: float,
) -> tuple[_Map, dict[str, Any]]:
    """A fake's section (`llm`, `whatsapp`): its durations and its scheduled failures, each
    built by `failure(mapping, where, after)` (a ValueError names a bad kind)."""
    raw = c.mapping(top.get(section, {}), section, _line(top, section))
    c.keys(raw, section, known)
    out: dict[str, Any] = {}
    for key in durations:
        if key in raw:
            out[key] = c.offset(raw[key], f"{section}.{key}", _line(raw, key))
    failures = []
    for i, f_raw in enumerate(_seq(c, raw, "failures")):
        where = f"{section}.failures[{i}]"
        f = c.mapping(f_raw, where, _item_line(raw["failures"], i))
        c.keys(f, where, failure_keys)
        after = start + c.offset(f.get("after", 0), f"{where}.after", _line(f, "after"))
        try:
            failures.append(failure(f, where, after))
        except ValueError as exc:
            raise c.fail(_line(f, "kind"), f"{where}: {exc}") from None
    out["failures"] = failures
    return raw, out


def _llm(c: _Ctx, top: _Map, start: float) -> dict[str, Any]:
    def failure(f: _Map, where: str, after: float) -> ScheduledFailure:
        retry_after = None
        if "retry_after" in f:
            retry_after = c.offset(
                f["retry_after"], f"{where}.retry_after", _line(f, "retry_after")
            )
        model = c.text(f["model"], f"{where}.model", _line(f, "model")) if "model" in f else None
        return ScheduledFailure(
            str(f.get("kind", "")), _count(c, f, where, 1), after, retry_after, model
        )

    raw, out = _fake(
        c, top, "llm", _LLM, ("latency", "timeout_after"), _LLM_FAILURE, failure, start
    )
    replies = _seq(c, raw, "replies")
    out["replies"] = [
        c.text(r, f"llm.replies[{i}]", _item_line(replies, i)) for i, r in enumerate(replies)
    ]
    models = _seq(c, raw, "fallback_models")
    out["fallback_models"] = [
        c.text(m, f"llm.fallback_models[{i}]", _item_line(models, i)) for i, m in enumerate(models)
    ]
    return out


def _whatsapp(c: _Ctx, top: _Map, start: float) -> dict[str, Any]:
    def failure(f: _Map, where: str, after: float) -> ScheduledSendFailure:
        by = c.offset(f.get("by", 30), f"{where}.by", _line(f, "by"))
        return ScheduledSendFailure(str(f.get("kind", "")), _count(c, f, where, 1), after, by)

    raw, out = _fake(
        c, top, "whatsapp", _WA, ("latency", "echo_after"), _WA_FAILURE, failure, start
    )
    if "echo" in raw:  # the old multi-device echo, as a fault (whatsmeow never echoes)
        if not isinstance(raw["echo"], bool):
            raise c.fail(_line(raw, "echo"), "whatsapp.echo: expected true or false")
        out["echo"] = raw["echo"]
    faults = []  # lifecycle faults: `link: [{kind: temporary_ban, after: 1m, for: 10m}]`
    for i, f_raw in enumerate(_seq(c, raw, "link")):
        where = f"whatsapp.link[{i}]"
        f = c.mapping(f_raw, where, _item_line(raw["link"], i))
        c.keys(f, where, _WA_LINK)
        after = start + c.offset(f.get("after", 0), f"{where}.after", _line(f, "after"))
        lasts = c.offset(f["for"], f"{where}.for", _line(f, "for")) if "for" in f else None
        try:
            faults.append(LinkFault(str(f.get("kind", "")), after, lasts))
        except ValueError as exc:
            raise c.fail(_line(f, "kind"), f"{where}: {exc}") from None
    out["link"] = faults
    return out


def _media_model(c: _Ctx, top: _Map, start: float) -> dict[str, Any]:
    """The fake transcriber/describer (`media_model:`): latency, failures like the model's,
    and `neuron_budget`, the shared daily budget (replies and media alike)."""

    def failure(f: _Map, where: str, after: float) -> ScheduledFailure:
        if f.get("kind") not in MEDIA_FAILURE_KINDS:
            raise ValueError(
                f"media failure kind {f.get('kind')!r} is unknown "
                f"(known: {', '.join(MEDIA_FAILURE_KINDS)})"
            )
        model = c.text(f["model"], f"{where}.model", _line(f, "model")) if "model" in f else None
        return ScheduledFailure(str(f["kind"]), _count(c, f, where, 1), after, None, model)

    raw, out = _fake(c, top, "media_model", _MEDIA, ("latency",), _MEDIA_FAILURE, failure, start)
    if "neuron_budget" in raw:
        budget = raw["neuron_budget"]
        if isinstance(budget, bool) or not isinstance(budget, int | float) or budget <= 0:
            raise c.fail(
                _line(raw, "neuron_budget"),
                f"media_model.neuron_budget: expected a number of neurons > 0, got {budget!r}",
            )
        out["neuron_budget"] = float(budget)
    return out


def _count(c: _Ctx, m: _Map, where: str, default: int | None) -> int:
    value = m.get("count", default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise c.fail(
            _line(m, "count"), f"{where}.count: expected a whole number >= 0, got {value!r}"
        )
    return value


def _busy(
    c: _Ctx, raw: Any, where: str, line: int | None, start: float
) -> tuple[BusyInterval, ...]:
    """A calendar: a list of {from, to, title?}; times are offsets since the start (1d16h)
    or dates and times (2026-01-06T16:00:00+01:00)."""
    if not isinstance(raw, list):
        raise c.fail(line, f"{where}: expected a list like [{{from: 1d16h, to: 1d18h}}]")
    out = []
    for i, item in enumerate(raw):
        here = f"{where}[{i}]"
        m = c.mapping(item, here, _item_line(raw, i) if isinstance(raw, _Seq) else line)
        c.keys(m, here, ("from", "to", "title"))
        times = []
        for key in ("from", "to"):
            if key not in m:
                raise c.fail(m.line, f"{here}: '{key}' is required")
            value = m[key]
            if isinstance(value, datetime | date) or (
                isinstance(value, str) and "T" in value and ":" in value
            ):
                try:
                    times.append(_datetime(value, f"{here}.{key}").timestamp())
                except PolicyError as exc:
                    raise c.fail(_line(m, key), str(exc)) from None
            else:
                times.append(start + c.offset(value, f"{here}.{key}", _line(m, key)))
        if times[1] <= times[0]:
            raise c.fail(_line(m, "to"), f"{here}.to: must be after from")
        title = c.text(m.get("title", ""), f"{here}.title", _line(m, "title"))
        out.append(BusyInterval(times[0], times[1], title))
    return tuple(out)


def _script(
    c: _Ctx, top: _Map, chats: dict[str, ChatSpec], owner_id: str, start: float
) -> list[Step]:
    script = _seq(c, top, "script")
    steps: list[Step] = []
    senders: dict[str, str] = {}  # scripted id -> sender id (for quotes)
    last = 0.0
    for i, raw in enumerate(script):
        where, line = f"script[{i}]", _item_line(script, i)
        s = c.mapping(raw, where, line)
        line = s.line or line
        c.keys(s, where, _STEP)
        if "at" not in s:
            raise c.fail(line, f"{where}: 'at' is required (a time since the start, like 2m)")
        t = c.offset(s["at"], f"{where}.at", _line(s, "at"))
        if t < last:
            raise c.fail(
                _line(s, "at"),
                f"{where}.at: time goes backwards ({s['at']} is before the previous step)",
            )
        last = t
        if "crash" in s and s["crash"] is not True:  # only `crash: true`; "no" is not a crash
            crash = s["crash"]
            shown = c.bool_word(crash, _line(s, "crash")) if crash is False else _kind(crash)
            raise c.fail(
                _line(s, "crash"),
                f"{where}.crash: expected true, got {shown}: write crash: true for a crash, "
                "or leave crash out",
            )
        if "crash" in s:
            extra = set(s) - {"at", "crash", "down"}
            if extra:
                raise c.fail(
                    line,
                    f"{where}: a crash step takes only at, crash and down, not {sorted(extra)[0]}",
                )
            down = c.offset(s.get("down", 0), f"{where}.down", _line(s, "down"))
            steps.append(Step(t, line or 0, "crash", down=down))
            continue
        if "down" in s:
            raise c.fail(_line(s, "down"), f"{where}.down: only a crash step has a downtime")
        if "calendar" in s or "calendar_error" in s:
            extra = set(s) - {"at", "calendar", "calendar_error"}
            if extra or len(set(s) & {"calendar", "calendar_error"}) != 1:
                raise c.fail(
                    line, f"{where}: a calendar step takes at and one of calendar, calendar_error"
                )
            if "calendar" in s:
                busy = _busy(c, s["calendar"], f"{where}.calendar", _line(s, "calendar"), start)
                steps.append(Step(t, line or 0, "calendar", busy=busy))
            else:
                error = c.text(
                    s["calendar_error"], f"{where}.calendar_error", _line(s, "calendar_error")
                )
                if not error.strip():
                    raise c.fail(
                        _line(s, "calendar_error"), f"{where}.calendar_error: name the error"
                    )
                steps.append(Step(t, line or 0, "calendar", error=error))
            continue
        msg_id = c.text(s.get("id", f"auto{i}"), f"{where}.id", _line(s, "id"))
        if "command" in s:
            extra = set(s) - {"at", "command", "id"}
            if extra:
                raise c.fail(
                    line,
                    f"{where}: a command step takes only at, command and id, not {sorted(extra)[0]}",
                )
            text = c.text(s["command"], f"{where}.command", _line(s, "command"))
            steps.append(
                Step(t, line or 0, "command", chat=owner_id, sender=owner_id, text=text, id=msg_id)
            )
            continue
        if "chat" not in s:
            raise c.fail(line, f"{where}: 'chat' is required (or crash: true, or command: ...)")
        chat_key = c.text(s["chat"], f"{where}.chat", _line(s, "chat"))
        spec = chats.get(chat_key)
        if spec is None:
            raise c.fail(
                _line(s, "chat"),
                f"{where}.chat: unknown chat {chat_key!r}{did_you_mean(chat_key, chats)}"
                f" (chats: {', '.join(chats)})",
            )
        sender = _sender(c, s, spec, owner_id, where)
        text = c.text(s.get("text", ""), f"{where}.text", _line(s, "text"))
        media = c.text(s.get("media", ""), f"{where}.media", _line(s, "media"))
        if media and media not in MEDIA_KINDS:
            raise c.fail(
                _line(s, "media"),
                f"{where}.media: unknown media {media!r}{did_you_mean(media, MEDIA_KINDS)}"
                f" (known: {', '.join(MEDIA_KINDS)})",
            )
        kind = c.text(s.get("kind", "message"), f"{where}.kind", _line(s, "kind"))
        if kind not in MESSAGE_KINDS:
            raise c.fail(
                _line(s, "kind"),
                f"{where}.kind: unknown kind {kind!r}{did_you_mean(kind, MESSAGE_KINDS)}"
                f" (known: {', '.join(MESSAGE_KINDS)})",
            )
        quote = ""
        if "quote" in s:
            quote = c.text(s["quote"], f"{where}.quote", _line(s, "quote"))
            if quote != "reply" and quote not in senders:
                raise c.fail(
                    _line(s, "quote"),
                    f"{where}.quote: no earlier message has id {quote!r} (or write quote: reply)",
                )
        mentions_raw = s.get("mentions", [])
        if not isinstance(mentions_raw, list):
            raise c.fail(_line(s, "mentions"), f"{where}.mentions: expected a list, like [owner]")
        mentions = tuple(
            owner_id if m == "owner" else c.text(m, f"{where}.mentions", _line(s, "mentions"))
            for m in mentions_raw
        )
        understood: dict[str, str] = {}
        for key, kinds in (("transcript", ("voice", "audio")), ("description", ("image",))):
            if key in s:
                if media not in kinds:
                    raise c.fail(
                        _line(s, key),
                        f"{where}.{key}: needs media: {' or '.join(kinds)}",
                    )
                understood[key] = c.text(s[key], f"{where}.{key}", _line(s, key))
        seconds = 5.0
        if "seconds" in s:
            seconds = c.offset(s["seconds"], f"{where}.seconds", _line(s, "seconds"))
        senders.setdefault(msg_id, sender)
        steps.append(
            Step(
                t,
                line or 0,
                "message",
                chat=chat_key,
                sender=sender,
                text=text,
                id=msg_id,
                quote=quote,
                mentions=mentions,
                media=media or "",
                message_kind=kind,
                seconds=seconds,
                transcript=understood.get("transcript", ""),
                description=understood.get("description", ""),
            )
        )
    return steps


def _sender(c: _Ctx, s: _Map, spec: ChatSpec, owner_id: str, where: str) -> str:
    who = s.get("from")
    line = _line(s, "from")
    if who is not None:
        who = c.text(who, f"{where}.from", line)
    if who in ("owner", owner_id):
        return owner_id
    if spec.kind == "direct":
        if who not in (None, spec.key):
            raise c.fail(
                line,
                f"{where}.from: in the direct chat {spec.key!r} only {spec.key} or owner write",
            )
        return spec.key
    if who is None:
        raise c.fail(
            s.line, f"{where}: 'from' is required in the group {spec.key!r} (a member or owner)"
        )
    if who not in spec.members:
        raise c.fail(
            line,
            f"{where}.from: {who!r} is not a member of {spec.key!r} (members: {', '.join(spec.members)})",
        )
    return who


def _expectations(
    c: _Ctx, top: _Map, chats: dict[str, ChatSpec], steps: list[Step], owner_id: str
) -> list[Expectation]:
    ids = {s.id for s in steps if s.kind == "message"}
    out = []
    expect = _seq(c, top, "expect")
    for i, raw in enumerate(expect):
        where = f"expect[{i}]"
        e = c.mapping(raw, where, _item_line(expect, i))
        line = e.line or _item_line(expect, i) or 0
        kinds = [k for k in e if k in _EXPECT_KINDS]
        if not kinds:
            for key in e:
                hint = did_you_mean(key, _EXPECT_KINDS)
                if hint and not any(key in keys for keys in _EXPECT_KEYS.values()):
                    raise c.fail(_line(e, key), f"{where}: unknown key {key!r}{hint}")
        if len(kinds) != 1:
            raise c.fail(line, f"{where}: name exactly one of {', '.join(_EXPECT_KINDS)}")
        kind = kinds[0]
        c.keys(e, where, (kind, *_EXPECT_KEYS[kind]))
        head = e[kind]
        fields: dict[str, Any] = {"kind": kind, "line": line, "index": i}
        if kind in ("decision", "no_decision"):
            code = c.text(head, f"{where}.{kind}", _line(e, kind))
            if code not in DECISION_CODES:
                raise c.fail(
                    _line(e, kind),
                    f"{where}.{kind}: unknown decision code {code!r}{did_you_mean(code, DECISION_CODES)}"
                    f" (known: {', '.join(sorted(DECISION_CODES))})",
                )
            fields["code"] = code
            chat = e.get("chat", "")
        elif kind == "link":
            chat = ""
            state = c.text(head, f"{where}.link", _line(e, kind))
            if state not in LINK_EXPECT_STATES and state not in ("replaced", "logged_out"):
                raise c.fail(
                    _line(e, kind),
                    f"{where}.link: unknown link state {state!r} "
                    f"(known: {', '.join(LINK_EXPECT_STATES)}, replaced, logged_out)",
                )
            fields["code"] = state
        elif kind == "notice":
            chat = ""
            if head not in (True, None):
                fields["contains"] = (c.text(head, f"{where}.notice", _line(e, kind)),)
            if "kind" in e:
                notice_kind = c.text(e["kind"], f"{where}.kind", _line(e, "kind"))
                if notice_kind not in tuple(NoticeKind):
                    raise c.fail(
                        _line(e, "kind"),
                        f"{where}.kind: unknown notice kind {notice_kind!r} "
                        f"(known: {', '.join(NoticeKind)})",
                    )
                fields["notice_kind"] = notice_kind
        else:
            chat = head
        if chat not in ("", "all", None):
            chat = c.text(chat, f"{where}.{kind}", _line(e, kind))
            if chat in ("owner", owner_id) and kind in ("decision", "no_decision"):
                chat = owner_id  # the owner's chat with himself: commands and notices
            elif chat not in chats:
                raise c.fail(
                    _line(e, kind),
                    f"{where}: unknown chat {chat!r}{did_you_mean(chat, chats)} (chats: {', '.join(chats)})",
                )
        elif kind in ("reply", "prompt", "read", "typing"):
            raise c.fail(_line(e, kind), f"{where}.{kind}: name a chat")
        fields["chat"] = chat if chat not in ("all", None) else ""
        if "between" in e and "at" in e:
            raise c.fail(line, f"{where}: use either at (with within) or between, not both")
        if "between" in e:
            b = e["between"]
            if not isinstance(b, list) or len(b) != 2:
                raise c.fail(
                    _line(e, "between"), f"{where}.between: expected [FROM, TO], like [2m, 5h]"
                )
            lo = c.offset(b[0], f"{where}.between", _line(e, "between"))
            hi = c.offset(b[1], f"{where}.between", _line(e, "between"))
            if hi < lo:
                raise c.fail(_line(e, "between"), f"{where}.between: {b[1]} is before {b[0]}")
            fields["window"] = (lo, hi)
        elif "at" in e:
            at = c.offset(e["at"], f"{where}.at", _line(e, "at"))
            within = c.offset(
                e.get("within", DEFAULT_WITHIN), f"{where}.within", _line(e, "within")
            )
            fields["at"] = at
            fields["window"] = (at - within, at + within)
        elif "within" in e:
            raise c.fail(_line(e, "within"), f"{where}.within: goes with at")
        for key in ("contains", "not_contains"):
            if key in e:
                v = e[key]
                items = v if isinstance(v, list) else [v]
                fields[key] = fields.get(key, ()) + tuple(
                    c.text(x, f"{where}.{key}", _line(e, key)) for x in items
                )
        if kind == "replies":
            if "count" not in e:
                raise c.fail(line, f"{where}: replies needs a count")
            fields["count"] = _count(c, e, where, None)
        elif "count" in e:
            fields["count"] = _count(c, e, where, None)
        if "quote" in e:
            quote = (
                ""
                if e["quote"] in (None, False, "none")
                else c.text(e["quote"], f"{where}.quote", _line(e, "quote"))
            )
            if quote and quote not in ids:
                raise c.fail(
                    _line(e, "quote"), f"{where}.quote: no scripted message has id {quote!r}"
                )
            fields["quote"] = quote
        out.append(Expectation(**fields))
    return out


# ---------------------------------------------------------------- to a simulation


def build_simulation(s: Scenario, seed: int | None = None, **kwargs: Any) -> Simulation:
    """A `Simulation` loaded with the scenario's script. `seed` overrides the file's seed."""
    seed = s.seed if seed is None else seed
    model = FakeModel(
        latency=s.model.get("latency", 0.8),
        timeout_after=s.model.get("timeout_after", 30.0),
        failures=[replace(f) for f in s.model.get("failures", [])],
        replies=list(s.model.get("replies", [])),
        fallback_models=tuple(s.model.get("fallback_models", ())),
        seed=seed,
    )
    whatsapp = FakeWhatsApp(
        latency=s.whatsapp.get("latency", 0.3),
        echo_after=s.whatsapp.get("echo_after", 0.2),
        echo=s.whatsapp.get("echo", False),
        failures=[
            ScheduledSendFailure(f.kind, f.count, f.after, f.by)
            for f in s.whatsapp.get("failures", [])
        ],
        link_faults=list(s.whatsapp.get("link", [])),
        seed=seed,
    )
    sim = Simulation(
        policy=s.policy,
        persona=s.persona,
        seed=seed,
        start=s.start,
        model=model,
        whatsapp=whatsapp,
        **kwargs,
    )
    media: FakeMedia | None = None  # made for the first voice note or image (most have none)
    if "neuron_budget" in s.media_model:
        model.meter.budget = s.media_model["neuron_budget"]
    if s.calendar is not None:  # the owner's calendar, read as the runner starts
        sim.add_event(s.start, CalendarUpdate(s.calendar))
    for step in s.steps:
        t = s.start + step.t
        if step.kind == "crash":
            sim.add_crash(t, step.down)
        elif step.kind == "calendar":
            sim.add_event(t, CalendarUpdate(step.busy, step.error))
        else:
            message = step_message(s, step)
            sim.add_message(t, message)
            if step.transcript or step.description:  # understood when it arrives
                if media is None:
                    media = _fake_media(s, model, seed, sim)
                job = (
                    voice_job(message.chat, message.id, step.seconds)
                    if step.transcript
                    else image_job(message.chat, message.id)
                )
                sim.call_at(t, _understand(media, job, step.transcript or step.description))
    return sim


def _fake_media(s: Scenario, model: FakeModel, seed: int, sim: Simulation) -> FakeMedia:
    """The fake transcriber/describer, sharing the model's neuron meter."""
    media = FakeMedia(
        latency=s.media_model.get("latency", 2.0),
        failures=[replace(f) for f in s.media_model.get("failures", [])],
        meter=model.meter,
        seed=seed,
    )
    media.bind(sim)
    return media


def _understand(media: FakeMedia, job: MediaJob, answer: str) -> Callable[[float], None]:
    """The fake transcriber/describer's start when the message arrives."""
    return lambda now: media.start(job, answer, now)


def step_message(s: Scenario, step: Step) -> Message:
    owner = s.persona.owner_id
    if step.kind == "command":
        return Message(chat=owner, sender=owner, id=step.id, text=step.text, from_me=True)
    spec = s.chats[step.chat]
    from_me = step.sender == owner
    quoted_id, quoted_sender = "", ""
    if step.quote == "reply":
        quoted_id = QUOTE_LAST_REPLY
    elif step.quote:
        quoted_id = step.quote
        quoted_sender = next(x.sender for x in s.steps if x.id == step.quote)
    if spec.kind == "group":
        return Message(
            chat=spec.key,
            sender=step.sender,
            id=step.id,
            text=step.text,
            from_me=from_me,
            is_group=True,
            sender_name="" if from_me else spec.members.get(step.sender, ""),
            group_title=spec.name,
            participants=len(spec.members) + 1,
            mentions=step.mentions,
            quoted_id=quoted_id,
            quoted_sender=quoted_sender,
            media=step.media,
            kind=step.message_kind,
        )
    return Message(
        chat=spec.key,
        sender=step.sender,
        id=step.id,
        text=step.text,
        from_me=from_me,
        sender_name="" if from_me else spec.name,
        mentions=step.mentions,
        quoted_id=quoted_id,
        quoted_sender=quoted_sender,
        media=step.media,
        kind=step.message_kind,
    )
