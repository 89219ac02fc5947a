"""The fake WhatsApp's lifecycle faults (issue 12): red while they last, what they report,
and how a scenario file states them."""

from __future__ import annotations

import pytest
from wapa.core.events import Notice, Send, SendConfirmed, SendFailed
from wapa.sim.fake_whatsapp import FakeWhatsApp, LinkFault
from wapa.sim.scenario import ScenarioError, load_text


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
