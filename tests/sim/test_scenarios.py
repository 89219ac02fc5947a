"""The scenario suite: every file under scenarios/ passes, and its expectations bite: with a rule
switched off in the core (patched here, in the test only) the scenarios for that rule fail."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from wapa.core import machine
from wapa.core.calendar import Calendar
from wapa.core.escalation import Escalations
from wapa.core.machine import Assistant
from wapa.sim.suite import run_file

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
FILES = sorted(SCENARIOS.glob("*.yaml"))


def test_the_suite_has_at_least_thirty_scenarios() -> None:
    assert len(FILES) >= 30


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario_passes(path: Path) -> None:
    outcome = run_file(path)
    assert outcome.passed, "\n".join(outcome.failures)


def _no_cooldown(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Assistant._on_message

    def patched(self: Assistant, m: Any, now: float, out: list[Any]) -> None:
        chat = self.chats.get(m.chat)
        if chat is not None:
            chat.cooldown_until = 0.0
        original(self, m, now, out)

    monkeypatch.setattr(Assistant, "_on_message", patched)


def _digest_without_daylight_saving(monkeypatch: pytest.MonkeyPatch) -> None:
    original = machine.next_time
    winter = ZoneInfo("Etc/GMT-1")  # Berlin's winter offset, all year
    monkeypatch.setattr(machine, "next_time", lambda after, at, zone: original(after, at, winter))


def _failed_update_forgets(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Calendar.apply

    def apply(self: Calendar, update: Any, now: float, days: int, titles: bool) -> str:
        if update.error:
            self.busy = []
        return original(self, update, now, days, titles)

    monkeypatch.setattr(Calendar, "apply", apply)


MUTATIONS = {
    "escalation off": (
        lambda mp: mp.setattr(Assistant, "_escalate", lambda self, *a: None),
        [
            "urgent_message_escalated_to_the_owner_once",
            "escalation_held_by_quiet_hours_told_when_they_end",
            "an_owners_week",
        ],
    ),
    "escalation without its once-per-cooldown and cap": (
        lambda mp: mp.setattr(Escalations, "refusal", lambda self, *a: ""),
        ["urgent_message_escalated_to_the_owner_once"],
    ),
    "what quiet hours held is never told": (
        lambda mp: mp.setattr(Escalations, "hold", lambda self, line, now, until: None),
        ["escalation_held_by_quiet_hours_told_when_they_end", "an_owners_week"],
    ),
    "the digest on a fixed UTC offset": (
        _digest_without_daylight_saving,
        [
            "daily_digest_at_18_berlin_across_october_dst_change",
            "daily_digest_at_18_berlin_across_march_dst_change",
        ],
    ),
    "a failed calendar update forgets the busy times": (
        _failed_update_forgets,
        ["calendar_feed_unreachable_keeps_last_good_busy_times"],
    ),
    "no calendar in the prompt": (
        lambda mp: mp.setattr(Assistant, "_calendar_texts", lambda self, now: ("", "")),
        ["calendar_aware_reply_says_free_or_busy_never_commits", "an_owners_week"],
    ),
    "profiles ignored": (
        lambda mp: mp.setattr(Assistant, "_profile", lambda self, chat: None),
        ["profile_switched_by_owner_command", "an_owners_week"],
    ),
    "cooldown off": (
        _no_cooldown,
        [
            "cooldown_after_reply",
            "urgent_breaks_cooldown_once",
            "owner_reply_cancels_pending_reply",
        ],
    ),
    "echo taken for the owner": (
        lambda mp: mp.setattr(Assistant, "_is_echo", lambda self, chat, m: False),
        ["echo_never_counts_as_owner", "echo_from_this_device_recognised_when_confirmation_lost"],
    ),
    "an echo recognised by its text": (
        lambda mp: mp.setattr(
            Assistant,
            "_is_echo",
            lambda self, chat, m: any(
                e.who == "assistant" and e.text == m.text for e in chat.context
            ),
        ),
        ["echo_never_comes_back_owner_using_our_words_takes_over"],
    ),
    "every group message addresses the owner": (
        lambda mp: mp.setattr(Assistant, "_addressed", lambda self, chat, m, t: True),
        ["group_replies_only_when_mentioned", "group_urgency_alone_never_speaks"],
    ),
    "quiet hours ignored": (
        lambda mp: mp.setattr(Assistant, "_quiet_until", lambda self, now: None),
        ["quiet_hours_cross_midnight_in_berlin", "quiet_hours_daytime_window_new_york"],
    ),
    "caps ignored": (
        lambda mp: mp.setattr(Assistant, "_cap_reached", lambda self, chat, now: ""),
        ["caps_per_chat_per_day", "caps_per_hour_across_many_chats", "caps_per_day_across_chats"],
    ),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_scenarios_fail_when_their_rule_is_removed(
    mutation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    patch, names = MUTATIONS[mutation]
    patch(monkeypatch)
    for name in names:
        outcome = run_file(SCENARIOS / f"{name}.yaml")
        assert not outcome.passed, f"{name} still passes with {mutation}"
