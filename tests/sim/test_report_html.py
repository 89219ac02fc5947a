"""sim/report_html.py: contact rows are not styled as timeline markers, every expectation has
a mark, a scenario with no expectations is flagged."""

from __future__ import annotations

import re
from pathlib import Path

from wapa.core.events import NoticeKind
from wapa.sim.fake_whatsapp import NoticeSent
from wapa.sim.report_html import NOTICES_LABEL, render, ticks
from wapa.sim.suite import checks, run_paths

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "direct_chat_gets_one_delayed_reply.yaml"
FAILING = ROOT / "tests" / "sim_examples" / "failing_expects_reply_during_cooldown.yaml"
EMPTY = """\
name: nothing expected
start: 2026-01-05T09:00:00+00:00
chats:
  alice: {name: Alice}
script:
  - {at: 0s, chat: alice, text: hi}
"""


def test_marker_rules_only_style_the_timeline() -> None:
    html = render(run_paths([SCENARIO]))
    css = html.split("<style>", 1)[1].split("</style>", 1)[0]
    # No bare `.in` rule (it matched <tr class='in'>, painting contact rows solid blue).
    selectors = {sel.strip() for rule in re.findall(r"([^{}]+)\{", css) for sel in rule.split(",")}
    assert ".in" not in selectors and ".own" not in selectors and ".track .in" in selectors
    assert ".track .in{" in css and "<tr class='in'>" in html
    assert "<span class='in' style='left:" in html  # the timeline marker is still there


def test_each_expectation_is_listed_with_its_mark() -> None:
    passing, failing = run_paths([SCENARIO, FAILING])
    marks = [(c.status, c.line) for c in checks(failing)]
    assert ("fail", 10) in marks and ("pass", 9) in marks
    assert all(c.status == "pass" for c in checks(passing)) and len(checks(passing)) == 6
    html = render([passing, failing])
    assert html.count("<li><b class='pass'") == 6 + 2 and html.count("<li><b class='fail'") == 1
    assert "a reply in alice at +1h02m (±30s)" in html
    assert "a reply in alice at +2m (±30s) containing &#x27;Hi Alice&#x27;" in html


def test_a_scenario_with_no_expectations_is_flagged(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text(EMPTY, encoding="utf-8")
    (outcome,) = run_paths([tmp_path / "empty.yaml"])
    assert outcome.passed and outcome.unchecked and checks(outcome) == []
    html = render([outcome])
    assert "<span class='skip'>EMPTY</span>" in html and "no expectations" in html
    assert "1 passed (1 with no expectations), 0 failed, 1 scenario<" in html


WEEK = """\
name: a week with caps and commands
policy: {cooldown: 1h, caps: {per_chat_per_day: 2}}
chats:
  alice: {name: Alice}
script:
  - {at: 0s, chat: alice, text: "one"}
  - {at: 5m, command: status}
  - {at: 2h, chat: alice, text: "two"}
  - {at: 4h, chat: alice, text: "three"}
  - {at: 2d, command: pause}
  - {at: 2d3h, command: resume}
  - {at: 6d20h, chat: alice, text: "last"}
expect:
  - {decision: capped, chat: alice, count: 1}
"""
CAPS = ROOT / "scenarios" / "caps_per_chat_per_day.yaml"


def _labels(html: str) -> list[str]:
    axis = html.split("<div class='axis'>", 1)[1].split("</div>", 1)[0]
    return re.findall(r"<b>([^<]*)</b>", axis)


def test_a_week_is_scaled_in_days_not_minutes() -> None:
    start = 1767603600.0  # Mon 5 Jan 2026 09:00 UTC
    tks = ticks(start, 0.0, 6 * 86400 + 20 * 3600)
    major = [t for t in tks if t.major]
    assert [t.top for t in major] == [
        "Tue 6 Jan",
        "Wed 7 Jan",
        "Thu 8 Jan",
        "Fri 9 Jan",
        "Sat 10 Jan",
        "Sun 11 Jan",
        "Mon 12 Jan",
    ]
    assert all((start + t.x) % 86400 == 0 for t in major)  # on UTC midnight
    assert major[0].bottom == "+15h" and len(tks) <= 8 + 48
    minor = [t.x for t in tks if not t.major]
    assert minor and all((start + x) % (6 * 3600) == 0 for x in minor)


def test_short_spans_get_offset_labels_with_the_time_of_day() -> None:
    start = 1767603600.0
    major = [t for t in ticks(start, 0.0, 134.4) if t.major]
    assert [(t.top, t.bottom) for t in major] == [
        ("+0", "09:00:00"),
        ("+30s", "09:00:30"),
        ("+1m", "09:01:00"),
        ("+1m30s", "09:01:30"),
        ("+2m", "09:02:00"),
    ]
    day = [t for t in ticks(start, 0.0, 25 * 3600) if t.major]
    assert 3 <= len(day) <= 8 and day[0].bottom.startswith("Mon ")  # crosses a day: weekday


def test_a_long_span_gets_close_ups_of_its_busy_moments(tmp_path: Path) -> None:
    (tmp_path / "week.yaml").write_text(WEEK, encoding="utf-8")
    (outcome,) = run_paths([tmp_path / "week.yaml"])
    assert outcome.passed, outcome.failures
    html = render([outcome])
    assert "Tue 6 Jan" in _labels(html)
    assert "close-ups of busy moments" in html
    assert "<h3>+0s to +4h" in html  # the first morning, squeezed into 2 % of the week
    (short,) = run_paths([SCENARIO])
    assert "close-ups" not in render([short])


def test_replies_dropped_by_caps_have_a_marker() -> None:
    (outcome,) = run_paths([CAPS])
    assert outcome.result is not None
    capped = [d for d in outcome.result.decisions if d.code == "capped"]
    assert len(capped) == 2
    html = render([outcome])
    whole = html.split("close-ups of busy moments", 1)[0]
    assert whole.count("<span class='cap'") == 2
    assert "reply dropped by a cap: " in whole and "reply dropped by a cap</span>" in html


def test_notices_have_their_own_row_and_each_kind_its_marker() -> None:
    (outcome,) = run_paths([ROOT / "scenarios" / "owner_commands_pause_and_resume.yaml"])
    assert outcome.sim is not None
    notices = outcome.sim.whatsapp.notices
    assert notices and {n.kind for n in notices} == {NoticeKind.STATUS}
    html = render([outcome])
    assert f"<b title='{NOTICES_LABEL}'>{NOTICES_LABEL}</b>" in html
    assert html.count("<span class='ns'") == len(notices)
    assert "notice (status)" in html  # the transcript's row
    start = outcome.sim.result.start
    notices.append(NoticeSent(start + 60, "Alice wrote: urgent", NoticeKind.ESCALATION))
    notices.append(NoticeSent(start + 120, "Today: 3 chats", NoticeKind.DIGEST))
    html = render([outcome])
    assert html.count("<span class='ne'") == 1 and html.count("<span class='nd'") == 1
    css = html.split("<style>", 1)[1].split("</style>", 1)[0]
    rules = {k: re.search(r"\.track span\." + k + r"\{([^}]*)\}", css) for k in ("ns", "ne", "nd")}
    bodies = {k: m.group(1) for k, m in rules.items() if m}
    assert len(set(bodies.values())) == 3  # each kind drawn differently
    assert "escalation notice: Alice wrote: urgent" in html
