"""The engine asks the fake WhatsApp when a message reaches the device (issue 12): written
while the link is down, it arrives once the link is up, with its own time; after a final
fault, never."""

from __future__ import annotations

from wapa.core.events import Message, Reason
from wapa.core.policy import Persona, Policy
from wapa.sim.engine import Simulation
from wapa.sim.fake_whatsapp import FakeWhatsApp, LinkFault

T0 = 1_767_600_000.0


def _sim(*faults: LinkFault) -> Simulation:
    return Simulation(
        policy=Policy(),
        persona=Persona(owner_id="owner"),
        seed=0,
        start=T0,
        whatsapp=FakeWhatsApp(link_faults=list(faults)),
    )


def test_the_simulation_delivers_the_backlog_which_the_core_finds_stale() -> None:
    t0 = T0
    sim = _sim(LinkFault("connect_failure", after=t0 + 60, lasts=2 * 3600.0))
    sim.add_message(t0 + 600, Message(chat="alice", sender="alice", id="m1", text="lunch?"))
    sim.run(t0 + 4 * 3600)
    [decision] = [d for d in sim.result.decisions if d.chat == "alice"]
    assert decision.code == Reason.STALE and decision.t == t0 + 60 + 2 * 3600
    assert sim.result.sent == []


def test_after_a_final_fault_the_engine_never_delivers() -> None:
    sim = _sim(LinkFault("stream_replaced", after=T0 + 60))
    sim.add_message(T0 + 600, Message(chat="alice", sender="alice", id="m1", text="lunch?"))
    sim.run(T0 + 3600)
    assert sim.result.decisions == [] and sim.result.inputs == 0
    assert sim.whatsapp.never_arrived == [(T0 + 600, "m1")]
