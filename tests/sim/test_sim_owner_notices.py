"""The simulator's side of what the owner sees: a scenario's calendar, calendar steps, notice
expectations by kind and count, and recordings of calendar updates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from wapa.adapters.codec import decode, encode
from wapa.adapters.recording import Recorder, read_recording
from wapa.core import BusyInterval, CalendarUpdate, Decision
from wapa.sim.expect import check, describe
from wapa.sim.replay import replay
from wapa.sim.scenario import ScenarioError, build_simulation, load_text

START = "2026-01-05T09:00:00+00:00"

CALENDAR = f"""\
name: calendar
start: {START}
policy: {{cooldown: 30m}}
calendar:
  - {{from: 1d16h, to: 1d18h, title: Board}}
  - {{from: 2026-01-05T15:00:00+01:00, to: 2026-01-05T16:00:00+01:00}}
chats:
  alice: {{name: Alice}}
script:
  - {{at: 1h, calendar_error: timeout}}
  - {{at: 2h, chat: alice, text: "free at 2?"}}
  - {{at: 3h, calendar: []}}
  - {{at: 4h, chat: alice, text: "and now?"}}
expect:
  - {{notice: "", kind: status, count: 0}}
"""


def _error(text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_text(text, "f.yaml")
    return info.value


def test_the_calendar_key_and_steps_load() -> None:
    s = load_text(CALENDAR, "f.yaml")
    start = s.start
    assert s.calendar == (
        BusyInterval(start + 86400 + 16 * 3600, start + 86400 + 18 * 3600, "Board"),
        BusyInterval(start + 5 * 3600, start + 6 * 3600, ""),
    )
    kinds = [(st.kind, st.error, st.busy) for st in s.steps if st.kind == "calendar"]
    assert kinds == [("calendar", "timeout", ()), ("calendar", "", ())]


def test_the_calendar_reaches_the_core_and_a_failed_update_keeps_it() -> None:
    s = load_text(CALENDAR, "f.yaml")
    sim = build_simulation(s)
    res = sim.run()
    calendar = [d.detail for d in res.decisions if d.code == "calendar"]
    assert calendar == [
        "calendar updated: 2 busy times ahead",
        "calendar update failed (timeout); keeping the busy times of 60 min ago",
        "calendar updated: 0 busy times ahead",
    ]
    first, second = (g.messages[0].content for g in res.generations)
    assert "today (Mon 05 Jan): busy 14:00-15:00" in first  # UTC: no zone configured
    assert "busy" not in second.split("[You may share: ")[1].split("You may say")[0]
    assert check(s, res, sim.whatsapp) == []


@pytest.mark.parametrize(
    ("body", "line", "what"),
    [
        ("calendar: {from: 1h}\n", 1, "calendar: expected a list"),
        ("calendar: [{from: 1h}]\n", 1, "calendar[0]: 'to' is required"),
        ("calendar: [{from: 2h, to: 1h}]\n", 1, "calendar[0].to: must be after from"),
        ("calendar: [{from: 1h, to: 2h, where: x}]\n", 1, "calendar[0]: unknown key 'where'"),
        (
            "script:\n  - {at: 1h, calendar_error: x, calendar: []}\n",
            2,
            "a calendar step takes at and one of calendar, calendar_error",
        ),
        (
            "script:\n  - {at: 1h, calendar_error: ' '}\n",
            2,
            "script[0].calendar_error: name the error",
        ),
        ("expect:\n  - {notice: x, kind: alarm}\n", 2, "unknown notice kind 'alarm'"),
    ],
)
def test_bad_calendars_and_notice_kinds_are_named(body: str, line: int, what: str) -> None:
    err = _error(f"name: x\nchats:\n  alice: {{name: A}}\n{body}")
    assert what in err.what
    assert err.line is not None and err.line >= line


NOTICES = """\
name: notices
policy: {cooldown: 1h}
chats:
  dana: {name: Dana}
script:
  - {at: 0s, chat: dana, text: "urgent, call me"}
  - {at: 1m, command: status}
expect:
"""


def _run(expect: str) -> list[str]:
    s = load_text(NOTICES + expect, "n.yaml")
    sim = build_simulation(s)
    return check(s, sim.run(), sim.whatsapp)


def test_notice_expectations_by_kind_and_count() -> None:
    assert _run('  - {notice: "Urgent from Dana", kind: escalation, at: 0s, within: 0s}\n') == []
    assert _run('  - {notice: "", kind: escalation, count: 1}\n') == []
    assert _run('  - {notice: "", kind: status, count: 1}\n') == []
    assert _run('  - {notice: "", count: 2}\n') == []
    wrong_kind = _run('  - {notice: "Urgent from Dana", kind: digest}\n')
    assert "expected a notice (digest) to the owner containing 'Urgent from Dana'" in wrong_kind[0]
    wrong_count = _run('  - {notice: "", kind: escalation, count: 2}\n')
    assert "expected 2 × notice (escalation) to the owner, got 1" in wrong_count[0]


def test_describe_names_the_kind_and_count() -> None:
    s = load_text(NOTICES + '  - {notice: "Urgent", kind: escalation, count: 1}\n', "n.yaml")
    assert describe(s.expectations[0]) == (
        "1 × notice (escalation) to the owner containing 'Urgent'"
    )


def test_unquoted_digest_time_is_read_as_a_time() -> None:
    s = load_text("name: x\npolicy: {digest_at: 18:00}\nchats:\n  a: {name: A}\n", "f.yaml")
    assert s.policy.digest_at == "18:00"


def test_a_calendar_update_survives_the_codec() -> None:
    update = CalendarUpdate((BusyInterval(1.0, 2.0, "t"),), "")
    data: Any = json.loads(json.dumps(encode(update)))
    assert decode(data) == update


def test_a_recorded_calendar_scenario_replays_identically(tmp_path: Path) -> None:
    """Calendar updates are inputs of a recording: the replay feeds them again, and the
    escalations, digests and prompts that depend on them come out the same."""
    path = tmp_path / "cal.jsonl"
    s = load_text(
        CALENDAR.replace(
            "expect:", "  - {at: 5h, chat: alice, text: 'urgent, call me'}\nexpect:"
        ).replace("{cooldown: 30m}", "{cooldown: 30m, digest_at: '18:00'}"),
        "f.yaml",
    )
    with Recorder(path, s.policy, s.persona, s.seed, start=s.start) as rec:
        build_simulation(s, on_record=rec.record).run()
    recording = read_recording(path)
    assert sum(isinstance(i.obj, CalendarUpdate) for i in recording.items) == 3
    report = replay(recording)
    assert report.divergences == []
    codes = {i.obj.code for i in recording.items if isinstance(i.obj, Decision)}
    assert {"calendar", "escalated", "digest"} <= codes
