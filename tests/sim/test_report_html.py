"""sim/report_html.py: contact rows are not styled as timeline markers, every expectation has
a mark, a scenario with no expectations is flagged."""

from __future__ import annotations

import re
from pathlib import Path

from wapa.sim.report_html import render
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
