"""Rule 13, profiles: tone, language, whereabouts, timing and silence per kind of chat."""

from __future__ import annotations

import json
from typing import Any

import pytest
from wapa.core import Assistant, Decision, Generate, Notice, Policy, PolicyError, Reason, Send
from wapa.core.profiles import Profile, ProfileRule, choose

from tests.support.core_run import ALICE, BOB, GROUP, OWNER, T0, MakeRun, Run

PROFILES: dict[str, Any] = {
    "profiles": {
        "work": {"tone": "brief and formal", "whereabouts": "at the office", "delay": "5m"},
        "family": {"tone": "warm", "language": "Hebrew", "delay": "30s", "cooldown": "1h"},
        "unknown": {"cooldown": "7d", "calendar": False},
        "silent": {"answer": False},
    },
    "profile_rules": [
        {"chat": BOB, "profile": "work"},
        {"name": "^(mom|dad)$", "profile": "family"},
        {"sender": "boss@s.whatsapp.net", "profile": "work"},
    ],
    "default_profile": "unknown",
}


def system(run: Run) -> str:
    return run.effects(Generate)[-1].messages[0].content


def test_rules_then_default(make_run: MakeRun) -> None:
    run = make_run(PROFILES)
    run.msg("hi", chat=BOB, sender_name="Bob")  # by chat id
    run.msg("hi", sender_name="Mom")  # by name
    run.msg("hi", chat="x@s.whatsapp.net", sender_name="Stranger")  # the default
    run.msg("hi", chat="boss@s.whatsapp.net", sender_name="Rafi")  # by sender
    a = run.a
    assert [a._profile(a.chats[c]).name for c in (BOB, ALICE, "x@s.whatsapp.net")] == [  # type: ignore[union-attr]
        "work",
        "family",
        "unknown",
    ]
    assert a._profile(a.chats["boss@s.whatsapp.net"]).name == "work"  # type: ignore[union-attr]


def test_tone_language_and_whereabouts_reach_the_system_prompt(make_run: MakeRun) -> None:
    run = make_run(PROFILES)
    run.msg("where is he?", chat=BOB, sender_name="Bob")
    run.advance_until(Generate)
    work = system(run)
    assert "Tone: brief and formal." in work and "warm" not in work
    assert "[You may share: where Gilad is: at the office.] Say nothing else" in work
    run.msg("hi", sender_name="Mom")
    run.advance_until(Generate)
    family = system(run)
    assert "in Hebrew." in family and "Tone: warm." in family and "office" not in family


def test_delay_and_cooldown_override_rules_1_and_2(make_run: MakeRun) -> None:
    run = make_run(PROFILES)
    run.msg("hi", sender_name="Mom")
    run.advance_until(Generate)
    assert run.t == T0 + 30  # the family delay, not response_delay
    run.answer()
    run.advance_until(Send)
    assert run.a.chats[ALICE].cooldown_until == run.t + 3600  # the family cooldown
    run.owner("I'll call you", dt=60)
    assert run.a.chats[ALICE].cooldown_until == run.t + 3600  # the owner's cooldown too


def test_unknown_numbers_get_one_message_a_week(make_run: MakeRun) -> None:
    run = make_run(PROFILES)
    chat = "x@s.whatsapp.net"
    run.msg("hello?", chat=chat, sender_name="Stranger")
    run.reply_cycle()
    for day in range(1, 7):
        run.msg(f"hello? day {day}", chat=chat, dt=86400)
    run.advance(3600)
    assert len(run.sends()) == 1
    run.msg("a week later", chat=chat, dt=86400)
    run.reply_cycle()
    assert len(run.sends()) == 2


def test_a_silent_profile_answers_no_one_and_says_why(make_run: MakeRun) -> None:
    run = make_run({**PROFILES, "default_profile": "silent"})
    out = run.msg("hi", chat="x@s.whatsapp.net", sender_name="Stranger")
    assert [d.detail for d in out if isinstance(d, Decision) and d.code == "profile_silent"] == [
        "profile 'silent' answers no one"
    ]
    run.advance(3600)
    assert run.sends() == []
    run.msg("urgent, call me", chat="x@s.whatsapp.net")  # still told to the owner
    assert any(n.kind == "escalation" for n in run.effects(Notice))


def test_the_owner_switches_a_chat_and_back(make_run: MakeRun) -> None:
    run = make_run(PROFILES)
    run.msg("hi", chat=BOB, sender_name="Bob")
    run.msg("profile Bob family", chat=OWNER, from_me=True)
    assert run.effects(Notice)[-1].text == "Bob: profile 'family' from now on."
    assert run.a.chats[BOB].profile == "family"
    state = json.loads(json.dumps(run.a.export(), allow_nan=False))
    assert state["chats"][BOB]["profile"] == "family"
    restored = Assistant.restore(state, run.policy, run.persona)
    assert restored._profile(restored.chats[BOB]).name == "family"  # type: ignore[union-attr]
    run.msg("profile Bob default", chat=OWNER, from_me=True)
    assert run.effects(Notice)[-1].text == "Bob: profile 'work' from now on."
    assert "profile" not in run.a.export()["chats"][BOB]  # back to the rules: nothing kept
    run.msg("profile Bob boss", chat=OWNER, from_me=True)
    assert run.effects(Notice)[-1].text.startswith("No profile called 'boss' (profiles: work,")
    run.msg("profile Nobody work", chat=OWNER, from_me=True)
    assert run.effects(Notice)[-1].text == "No chat called 'Nobody'."
    assert Reason.PROFILE in run.codes(BOB)


def test_a_group_is_matched_by_its_title(make_run: MakeRun) -> None:
    policy = {**PROFILES, "profile_rules": [{"name": "^Family", "profile": "family"}]}
    run = make_run(policy)
    run.msg("@Gilad hi", chat=GROUP, group_title="Family Cohen", mentions=(OWNER,))
    assert run.a._profile(run.a.chats[GROUP]).name == "family"  # type: ignore[union-attr]


def test_no_profiles_means_the_global_settings(run: Run) -> None:
    run.msg("hi")
    run.advance_until(Generate)
    assert run.t == T0 + 120 and "Tone:" not in system(run)


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"profiles": {"work": {"mood": "x"}}}, "profiles.work.mood: unknown key"),
        ({"profiles": {"work": {"delay": "soon"}}}, "profiles.work.delay: expected a duration"),
        ({"profiles": {"work": {"answer": "no"}}}, "profiles.work.answer: expected true or false"),
        ({"profiles": {"a b": {}}}, "profiles: a name is letters"),
        ({"profiles": {"w": {"tone": "x" * 400}}}, "profiles.w.tone: at most 300"),
        ({"profile_rules": [{"chat": "x", "profile": "nope"}]}, "no profile called 'nope'"),
        ({"profiles": {"w": {}}, "profile_rules": [{"name": "(", "profile": "w"}]}, "bad pattern"),
        ({"profiles": {"w": {}}, "profile_rules": [{"name": "(a+)+$", "profile": "w"}]}, "refused"),
        ({"profiles": {"w": {}}, "profile_rules": [{"chat": "x"}]}, "exactly one of"),
        ({"default_profile": "ghost"}, "default_profile: no profile called 'ghost'"),
    ],
)
def test_bad_profile_settings_are_named(settings: dict[str, Any], error: str) -> None:
    with pytest.raises(PolicyError, match=error.replace("(", r"\(")):
        Policy.from_mapping(settings)


def test_profiles_round_trip_through_to_mapping() -> None:
    policy = Policy.from_mapping(PROFILES)
    assert Policy.from_mapping(policy.to_mapping()) == policy
    assert hash(policy) == hash(Policy.from_mapping(policy.to_mapping()))


def test_choose_prefers_the_owners_choice_then_rules_then_default() -> None:
    profiles = (Profile("a"), Profile("b"), Profile("c"))
    rules = (ProfileRule("name", "^Al", "b"),)
    assert choose(profiles, rules, "c", chosen="a", name="Alice") == profiles[0]
    assert choose(profiles, rules, "c", name="alice") == profiles[1]
    assert choose(profiles, rules, "c", name="Bob") == profiles[2]
    assert choose(profiles, rules, "", name="Bob") is None
