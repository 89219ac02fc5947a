"""Scenario files: strict loading with file, line and what is wrong."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from wapa.sim.scenario import DECISION_CODES, ScenarioError, load_text, parse_offset
from wapa.sim.suite import run_paths

GOOD = """\
name: ok
chats:
  alice: {name: Alice}
  team: {kind: group, title: T, members: [bob]}
script:
  - {at: 0s, chat: alice, text: "hi", id: m1}
  - {at: 1m, chat: team, from: bob, text: "x", quote: m1}
expect:
  - {reply: alice, at: 2m}
"""


def _error(text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_text(text, "f.yaml")
    return info.value


def test_a_good_file_loads() -> None:
    s = load_text(GOOD, "f.yaml")
    assert s.name == "ok" and [st.t for st in s.steps] == [0.0, 60.0]
    assert s.steps[1].quote == "m1" and s.chats["team"].members == {"bob": "Bob"}
    assert s.expectations[0].window == (90.0, 150.0)


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        (
            "name: x\nchats: {a: {}}\nscript:\n  - {at: 0s, chat: a, txt: hi}\n",
            4,
            "unknown key 'txt'",
        ),
        ("name: x\nchats: {a: {}}\nscript:\n  - {at: 0s, chat: b}\n", 4, "unknown chat 'b'"),
        (
            "name: x\nchats: {a: {}}\nscript:\n  - {at: 2m, chat: a}\n  - {at: 1m, chat: a}\n",
            5,
            "time goes backwards",
        ),
        ("name: x\nchats: {a: {}}\nscript:\n  - {at: soon, chat: a}\n", 4, "expected a duration"),
        (
            "name: x\nchats: {a: {}}\npolicy:\n  cooldown: 5h\n  cooldwn: 1h\n",
            5,
            "cooldwn: unknown policy setting",
        ),
        ("name: x\nchats: {a: {}}\npolicy: {quiet_hours: {start: 25:00}}\n", 3, "quiet_hours"),
        ("name: x\nchats: {a: {}}\nexpect:\n  - {reply: zed}\n", 4, "unknown chat 'zed'"),
        (
            "name: x\nchats: {a: {}}\nexpect:\n  - {decision: cooldwn, chat: a}\n",
            4,
            "unknown decision code",
        ),
        ("name: x\nchats: {a: {}}\nexpect:\n  - {reply: a, no_reply: a}\n", 4, "exactly one of"),
        ("name: x\nchats:\n  a: {}\n  a: {}\n", 4, "duplicate key"),
        ("name: x\nchats: {a: {}\n", 3, "bad YAML"),
        ("chats: {a: {}}\n", 1, "'name' is required"),
        (
            "name: x\nchats: {t: {kind: group, members: [bob]}}\nscript:\n  - {at: 0s, chat: t, text: hi}\n",
            4,
            "'from' is required",
        ),
        ("name: x\nchats: {a: {}}\nllm: {failures: [{kind: teapot}]}\n", 3, "unknown"),
        (
            "name: x\nchats: {a: {}}\nscript:\n  - {at: 0s, chat: a, quote: nope}\n",
            4,
            "no earlier message",
        ),
        (
            "name: x\nchats: {a: {}}\nrestart_from: disk\n",
            3,
            "restart_from: expected memory or export or store",
        ),
    ],
)
def test_broken_files_name_file_line_and_what(text: str, line: int, what: str) -> None:
    err = _error(text)
    assert err.file == "f.yaml" and err.line == line, str(err)
    assert what in str(err) and str(err).startswith(f"f.yaml:{line}: ")


def test_unquoted_quiet_hours_times_are_read_as_times() -> None:
    s = load_text(
        "name: x\nchats: {a: {}}\npolicy: {quiet_hours: {start: 22:00, end: 7:00, tz: Europe/Berlin}}\n"
    )
    assert s.policy.quiet_hours is not None
    assert (s.policy.quiet_hours.start, s.policy.quiet_hours.end) == ("22:00", "07:00")


def test_restart_from_defaults_to_the_export() -> None:
    assert load_text(GOOD).restart_from == "memory"
    assert load_text(GOOD + "restart_from: store\n").restart_from == "store"


def test_compound_offsets() -> None:
    assert parse_offset("1h30m", "at") == 5400 and parse_offset("1d2h", "at") == 93600
    assert parse_offset("90s", "at") == 90 and parse_offset(45, "at") == 45


def test_a_broken_file_does_not_stop_the_others(tmp_path: Path) -> None:
    (tmp_path / "a_broken.yaml").write_text("name: x\nchats: [oops]\n")
    (tmp_path / "b_good.yaml").write_text(GOOD)
    outcomes = run_paths([tmp_path, tmp_path / "missing.yaml"])
    by_file = {Path(o.file).name: o for o in outcomes}
    assert by_file["b_good.yaml"].passed
    assert not by_file["a_broken.yaml"].passed
    assert "a_broken.yaml:2: chats: expected a mapping" in by_file["a_broken.yaml"].failures[0]
    assert not by_file["missing.yaml"].passed


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("name: x\nchats: {a: {}}\nexpct: []\n", 3, "unknown key 'expct', did you mean expect?"),
        (
            "name: x\nchats: {alice: {}}\nexpect:\n  - {no_repy: alice}\n",
            4,
            "expect[0]: unknown key 'no_repy', did you mean no_reply?",
        ),
        (
            "name: x\nchats: {a: {}}\nscript:\n  - {at: 0s, chat: a, txt: hi}\n",
            4,
            "script[0]: unknown key 'txt', did you mean text?",
        ),
        (
            "name: x\nchats: {a: {}}\npolicy:\n  cooldown: 5h\n  cooldwn: 1h\n",
            5,
            "policy.cooldwn: unknown policy setting, did you mean cooldown?",
        ),
        (
            "name: x\nchats: {a: {}}\nexpect:\n  - {decision: cooldwn, chat: a}\n",
            4,
            "unknown decision code 'cooldwn', did you mean cooldown?",
        ),
        (
            "name: x\nchats: {alice: {}}\nscript:\n  - {at: 0s, chat: alcie}\n",
            4,
            "unknown chat 'alcie', did you mean alice?",
        ),
        (
            "name: x\nchats: {alice: {}}\nexpect:\n  - {reply: alcie}\n",
            4,
            "unknown chat 'alcie', did you mean alice?",
        ),
    ],
)
def test_unknown_names_suggest_the_closest_known_one(text: str, line: int, what: str) -> None:
    err = _error(text)
    assert err.line == line and what in str(err), str(err)


def test_no_suggestion_when_nothing_is_close() -> None:
    err = _error("name: x\nchats: {a: {}}\nzzzqqq: 1\n")
    assert "unknown key 'zzzqqq' (known:" in str(err) and "did you mean" not in str(err)
    err = _error("name: x\nchats: {a: {}}\nexpect:\n  - {zzzqqq: a}\n")
    assert "name exactly one of" in str(err) and "did you mean" not in str(err)


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("script:\n  - {at: -5m, chat: a}\n", 4, "script[0].at: must not be negative, got '-5m'"),
        ("script:\n  - {at: -5, chat: a}\n", 4, "script[0].at: must not be negative, got -5"),
        (
            "script:\n  - {at: 1m, crash: true, down: -1m}\n",
            4,
            "script[0].down: must not be negative",
        ),
        ("expect:\n  - {reply: a, at: 1m, within: -5s}\n", 4, "within: must not be negative"),
        (
            "expect:\n  - {replies: a, count: 0, between: [-1h, 2h]}\n",
            4,
            "between: must not be negative",
        ),
        ("llm: {latency: -1s}\n", 3, "llm.latency: must not be negative"),
        ("policy: {cooldown: -5m}\n", 3, "policy.cooldown: must not be negative, got '-5m'"),
        ("script:\n  - {at: 400d, chat: a}\n", 4, "'400d' is more than 366 days"),
        ("until: 1000000000d\n", 3, "until: '1000000000d' is more than 366 days"),
        ("start: 0001-01-01T00:00:00Z\n", 3, "start: the year 1 is out of range"),
        ("start: 9999-12-31T23:00:00Z\n", 3, "start: the year 9999 is out of range"),
        ("start: '0026-01-05T09:00:00+00:00'\n", 3, "start: the year 26 is out of range"),
    ],
)
def test_negative_absurd_durations_and_years_are_refused(text: str, line: int, what: str) -> None:
    err = _error("name: x\nchats: {a: {}}\n" + text)
    assert err.line == line and what in str(err), str(err)


def test_a_year_long_scenario_still_loads() -> None:
    s = load_text("name: x\nstart: 2099-01-01T00:00:00Z\nchats: {a: {}}\nuntil: 366d\n")
    assert s.until == 366 * 86400


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("script:\n  - {at: 1m, crash: no}\n", 4, "script[0].crash: expected true, got no"),
        ('script:\n  - {at: 1m, crash: "no"}\n', 4, "crash: expected true, got the text 'no'"),
        ('script:\n  - {at: 1m, crash: "yes"}\n', 4, "crash: expected true, got the text 'yes'"),
        ("script:\n  - {at: 1m, crash: 1}\n", 4, "crash: expected true, got int 1"),
        (
            "script:\n  - {at: 1m, chat: a, text: no}\n",
            4,
            'script[0].text: expected text, got no, which YAML reads as false (quote it for the word: "no")',
        ),
        ("script:\n  - {at: 1m, chat: a, text: Off}\n", 4, "got Off, which YAML reads as false"),
        (
            "script:\n  - {at: 1m, chat: a, media: no}\n",
            4,
            "script[0].media: expected text, got no",
        ),
        (
            "script:\n  - {at: 1m, chat: a, kind: yes}\n",
            4,
            "script[0].kind: expected text, got yes",
        ),
        ("script:\n  - {at: 1m, chat: a, mentions: [no]}\n", 4, "mentions: expected text, got no"),
        ("restart_from: no\n", 3, "restart_from: expected memory or export or store, got no,"),
        ("expect:\n  - {notice: no}\n", 4, "expect[0].notice: expected text, got no, which YAML"),
    ],
)
def test_yaml_booleans_where_a_word_is_expected(text: str, line: int, what: str) -> None:
    err = _error("name: x\nchats: {a: {}}\n" + text)
    assert err.line == line and what in str(err), str(err)


def test_a_boolean_chat_name_or_kind_is_named_by_its_word() -> None:
    assert "chats: a chat's name: expected text, got no, which YAML" in str(
        _error("name: x\nchats: {no: {}}\n")
    )
    err = _error("name: x\nchats: {a: {kind: no}}\n")
    assert "chats.a.kind: expected direct or group, got no, which YAML reads as false" in str(err)


def test_crash_true_and_yes_are_crashes() -> None:
    for word in ("true", "yes"):
        s = load_text(f"name: x\nchats: {{a: {{}}}}\nscript:\n  - {{at: 1m, crash: {word}}}\n")
        assert [st.kind for st in s.steps] == ["crash"]


def test_the_decision_codes_in_the_docs_are_the_loaders() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "simulation.md").read_text()
    listing = docs.split("codes are the core's `Reason` values (", 1)[1].split("; a test", 1)[0]
    assert set(re.findall(r"`(\w+)`", listing)) == set(DECISION_CODES)
