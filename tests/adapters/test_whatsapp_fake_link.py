"""The fake WhatsApp's lifecycle faults (issue 12): red while they last, what they report,
and how a scenario file states them."""

from __future__ import annotations

import pytest
from wapa.core.events import Message, Notice, Send, SendConfirmed, SendFailed
from wapa.sim.fake_whatsapp import Arrival, FakeWhatsApp, LinkFault
from wapa.sim.scenario import ScenarioError, load_text
from wapa.sim.suite import run_scenario


def test_sends_fail_at_once_while_red_and_go_out_after() -> None:
    wa = FakeWhatsApp(link_faults=[LinkFault("temporary_ban", after=100.0, lasts=60.0)])
    before = wa.send(99.0, Send("r1", "alice", "a"))
    during = wa.send(164.0, Send("r2", "alice", "b"))  # ban 60 s + wapa's 5 s reconnect delay
    after = wa.send(165.0, Send("r3", "alice", "c"))
    assert isinstance(before[0].event, SendConfirmed)
    assert isinstance(during[0].event, SendFailed) and during[0].delay == 0.0
    assert "temporary_ban" in during[0].event.detail
    assert isinstance(after[0].event, SendConfirmed)
    assert wa.lifecycle == [(100.0, "temporary_ban"), (165.0, "connected")]


def test_final_faults_never_recover_and_a_connect_failure_lasts_until_the_reconnect() -> None:
    wa = FakeWhatsApp(
        link_faults=[LinkFault("connect_failure", after=0.0), LinkFault("stream_replaced", 50.0)]
    )
    assert wa.link_down(4.9) == "connect_failure" and wa.link_down(5.0) == ""
    assert wa.link_down(10**9) == "stream_replaced"
    assert wa.notice(60.0, Notice("x")) == [] and wa.notices == []


@pytest.mark.parametrize(
    ("link", "error"),
    [
        ("[{kind: banned}]", "unknown"),
        ("[{kind: stream_replaced, for: 1m}]", "final"),
        ("[{kind: temporary_ban}]", "needs its length"),
        ("[{kind: logged_out, when: 1m}]", "when"),
    ],
)
def test_bad_link_faults_in_a_scenario_are_refused(link: str, error: str) -> None:
    text = (
        f"name: x\nwhatsapp: {{link: {link}}}\nchats: {{alice: {{name: Alice}}}}\n"
        "script: [{at: 0s, chat: alice, text: hi}]\nexpect: [{replies: alice, count: 1}]\n"
    )
    with pytest.raises(ScenarioError, match=error):
        load_text(text)


# ---------------------------------------------------------------- a silently dead stream


def test_a_dead_stream_is_not_red_its_sends_time_out_and_notices_are_lost() -> None:
    wa = FakeWhatsApp(link_faults=[LinkFault("dead_stream", after=100.0)])
    assert wa.link_down(150.0) == "" and wa.link_silent(150.0) is not None  # sent, not refused
    [late] = wa.send(150.0, Send("r1", "alice", "a"))
    assert isinstance(late.event, SendFailed) and late.delay == 75.0  # whatsmeow's timeout
    [cut] = wa.send(250.0, Send("r2", "alice", "b"))  # the forced reconnect at 282 s ends it
    assert isinstance(cut.event, SendFailed) and cut.delay == pytest.approx(32.0)
    assert wa.notice(150.0, Notice("x")) == [] and wa.notices == []
    assert isinstance(wa.send(282.0, Send("r3", "alice", "c"))[0].event, SendConfirmed)
    # keepalive.go: first ping lost within 40 s, reconnect forced after 3 min of failures
    assert wa.lifecycle == [
        (140.0, "keepalive_lost"),
        (280.0, "disconnected"),
        (282.0, "connected"),
    ]


def test_a_short_dead_stream_comes_back_by_itself() -> None:
    wa = FakeWhatsApp(link_faults=[LinkFault("dead_stream", after=0.0, lasts=60.0)])
    assert wa.lifecycle == [(40.0, "keepalive_lost"), (60.0, "keepalive_restored")]
    assert wa.link_silent(60.0) is None


# ---------------------------------------------------------------- the offline backlog


def test_traffic_written_while_the_link_is_down_arrives_after_with_its_own_time() -> None:
    wa = FakeWhatsApp(link_faults=[LinkFault("temporary_ban", after=100.0, lasts=600.0)])
    m = Message(chat="alice", sender="alice", id="m1", text="hi")
    assert wa.arrival(50.0, m) == Arrival(50.0, m)  # link up: at once, unchanged
    held = wa.arrival(200.0, m)
    assert held is not None and held.at == 705.0  # the ban, then wapa's reconnect 5 s later
    assert held.message.sent_at == 200.0 and held.message.id == "m1"
    assert wa.backlog == [(200.0, 705.0, "m1")]


def test_after_a_final_fault_nothing_arrives() -> None:
    wa = FakeWhatsApp(link_faults=[LinkFault("logged_out", after=100.0)])
    m = Message(chat="alice", sender="alice", id="m1", text="hi")
    assert wa.arrival(100.0, m) is None and wa.never_arrived == [(100.0, "m1")]


# ---------------------------------------------------------------- link health in scenarios


def _ban_scenario(expect: str) -> str:
    return (
        "name: x\nwhatsapp: {link: [{kind: temporary_ban, after: 1m, for: 10m}]}\n"
        "chats: {alice: {name: Alice}}\nscript: [{at: 0s, chat: alice, text: hi}]\n"
        f"expect: [{expect}]\n"
    )


def test_health_follows_the_real_link_health_through_the_lifecycle() -> None:
    wa = FakeWhatsApp(link_faults=[LinkFault("connect_failure", after=60.0, lasts=600.0)])
    assert wa.health_at(59.0).state == "connected"
    assert wa.health_at(60.0).red and wa.health_at(659.0).state == "failed"
    assert wa.health_at(660.0).state == "connected" and wa.health_changes() == [60.0, 660.0]


@pytest.mark.parametrize(
    ("expect", "problem"),
    [
        ("{link: banned, between: [1m, 11m]}", ""),
        ("{link: green, between: [11m05s, 12m]}", ""),
        ("{link: green, between: [0s, 2m]}", "at +1m it was banned"),
        ("{link: red, at: 5m}", "at +4m30s it was banned"),
    ],
)
def test_a_link_expectation_holds_through_its_window_or_says_when_not(
    expect: str, problem: str
) -> None:
    outcome = run_scenario(load_text(_ban_scenario(expect)))
    if not problem:
        assert outcome.passed, outcome.failures
    else:
        [failure] = outcome.failures
        assert problem in failure


def test_an_unknown_link_state_is_refused_by_name() -> None:
    with pytest.raises(ScenarioError, match="unknown link state 'purple'"):
        load_text(_ban_scenario("{link: purple}"))
