"""Policy and Persona validation: every bad setting is refused with the field's name."""

from __future__ import annotations

import pytest
from wapa.core import Caps, Persona, Policy, PolicyError, QuietHours, parse_duration


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"response_delay": -5}, "response_delay"),
        ({"cooldown": "-1h"}, "cooldown"),
        ({"max_wait": "5 parsecs"}, "max_wait"),
        ({"urgent_delay": float("nan")}, "urgent_delay"),
        ({"context_ttl": float("inf")}, "context_ttl"),
        ({"typing_min": True}, "typing_min"),
        ({"max_context": 0}, "max_context"),
        ({"max_context": 2.5}, "max_context"),
        ({"group_reply": "always"}, "group_reply"),
        ({"max_wait": 60, "response_delay": 120}, "max_wait"),
        ({"typing_jitter": 1.5}, "typing_jitter"),
        ({"urgent_keywords": "urgent"}, "urgent_keywords"),
        ({"aliases": ["(unclosed"]}, "aliases"),
        (
            {"quiet_hours": {"start": "22:00", "end": "07:00", "tz": "Mars/Olympus"}},
            "quiet_hours.tz",
        ),
        ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, "quiet_hours.start"),
        ({"quiet_hours": {"start": "22:00", "until": "07:00"}}, "quiet_hours.until"),
        ({"quiet_hours": "nights"}, "quiet_hours"),
        ({"caps": {"per_hour": -1}}, "caps.per_hour"),
        ({"caps": {"per_week": 5}}, "caps.per_week"),
        ({"respnse_delay": 5}, "respnse_delay"),
    ],
)
def test_bad_settings_name_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(PolicyError) as err:
        Policy.from_mapping(data)
    assert str(err.value).startswith(f"{field}:")


def test_policy_must_be_a_mapping() -> None:
    with pytest.raises(PolicyError, match="^policy:"):
        Policy.from_mapping(["cooldown", 5])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90.0),
        ("90s", 90.0),
        ("2m", 120.0),
        ("5h", 18000.0),
        ("1d", 86400.0),
        ("500ms", 0.5),
        (" 1.5h ", 5400.0),
        (0, 0.0),
        ("1h30m", 5400.0),
        ("1d2h", 93600.0),
        ("2m30s", 150.0),
    ],
)
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["-1h30m", "-5s", "1h 30m", "h", "1x", "", "inf", True, None])
def test_parse_duration_refuses(value: object) -> None:
    with pytest.raises(PolicyError, match="duration"):
        parse_duration(value)


def test_defaults_are_the_design_defaults() -> None:
    p = Policy()
    assert (p.response_delay, p.max_wait, p.cooldown, p.urgent_delay) == (120, 600, 18000, 15)
    assert (p.max_context, p.context_ttl, p.quiet_hours) == (10, 86400, None)


def test_from_mapping_parses_durations_and_nested_settings() -> None:
    p = Policy.from_mapping(
        {
            "cooldown": "2h",
            "quiet_hours": {"start": "23:00", "end": "06:30", "tz": "Europe/Berlin"},
            "caps": {"per_hour": 5},
            "deny": ["x@s.whatsapp.net"],
        }
    )
    assert p.cooldown == 7200.0
    assert p.quiet_hours == QuietHours("23:00", "06:30", "Europe/Berlin")
    assert p.caps == Caps(per_chat_per_day=20, per_hour=5, per_day=200)
    assert p.deny == ("x@s.whatsapp.net",)


def test_mapping_round_trip() -> None:
    p = Policy.from_mapping(
        {"cooldown": "2h", "quiet_hours": {"tz": "Asia/Tokyo"}, "aliases": ["gili"]}
    )
    assert Policy.from_mapping(p.to_mapping()) == p


def test_quiet_hours_off() -> None:
    assert Policy.from_mapping({"quiet_hours": "off"}).quiet_hours is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"owner_id": ""}, "owner_id"),
        ({"owner_name": "  "}, "owner_name"),
        ({"owner_id": 5}, "owner_id"),
    ],
)
def test_persona_validation(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(PolicyError, match=f"^{field}:"):
        Persona(**kwargs)  # type: ignore[arg-type]


def test_persona_shapes_the_prompt() -> None:
    from wapa.core.context import system_prompt

    persona = Persona(
        owner_name="Gilad",
        assistant_name="Dana",
        introduction="I'm Dana.",
        languages=("Hebrew", "English"),
        extra_instructions="Never use emoji.",
    )
    text = system_prompt(persona, False)
    for part in (
        "You are Dana",
        "Gilad",
        "I'm Dana.",
        "Hebrew, English",
        "Never use emoji.",
    ):
        assert part in text
