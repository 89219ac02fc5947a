"""The discrete-event engine: ordering, echoes, crashes, recording, determinism."""

from __future__ import annotations

from typing import Any

from wapa.core.events import Generate, Generated, GenerationFailed, Message, SendConfirmed
from wapa.core.hygiene import clean_reply
from wapa.core.policy import Persona, Policy
from wapa.sim.engine import Crash, Restart, Simulation
from wapa.sim.fake_model import FakeModel
from wapa.sim.fake_whatsapp import FakeWhatsApp, ReadSent, ScheduledSendFailure

from tests.support.heap_scheduler import HeapScheduler

T0 = 1_767_600_000.0
PERSONA = Persona(owner_id="owner", owner_name="Gilad")


def _sim(**kw: Any) -> Simulation:
    return Simulation(
        policy=kw.pop("policy", Policy()), persona=PERSONA, seed=kw.pop("seed", 0), start=T0, **kw
    )


def _msg(i: str, text: str = "hi", chat: str = "alice", **kw: Any) -> Message:
    return Message(chat=chat, sender=chat, id=i, text=text, sender_name="Alice", **kw)


def test_one_message_one_reply_confirmed_and_never_echoed() -> None:
    sim = _sim()
    sim.add_message(T0, _msg("m1", "Are you free tomorrow?"))
    r = sim.run()
    assert len(r.sent) == 1
    sent = r.sent[0]
    assert T0 + 120 < sent.t < T0 + 150
    assert "Alice" in sent.text and "Gilad" in sent.text and "free tomorrow" in sent.text
    codes = [d.code for d in r.decisions]
    assert codes == ["scheduled", "generating", "reply_ready", "sent", "send_confirmed"]
    # like whatsmeow: our own send is not delivered back to this device
    assert not [e for _, e in r.timeline if isinstance(e, Message) and e.from_me]
    assert sim.whatsapp.reads == [ReadSent(T0 + 120, "alice", ("m1",))]


def test_until_stops_and_run_continues() -> None:
    sim = _sim()
    sim.add_message(T0, _msg("m1"))
    assert sim.run(until=T0 + 60).sent == []
    assert sim.clock.now == T0
    assert len(sim.run().sent) == 1


def test_input_at_the_deadline_goes_first() -> None:
    sim = _sim()
    sim.add_message(T0, _msg("m1"))
    owner = Message(chat="alice", sender="owner", id="o1", text="got it", from_me=True)
    sim.add_message(T0 + 120, owner)  # exactly when the reply is due
    r = sim.run()
    assert r.sent == [] and "generating" not in [d.code for d in r.decisions]


def test_crash_loses_results_in_flight_but_not_echoes() -> None:
    sim = _sim(model=FakeModel(latency=20.0))
    sim.add_message(T0, _msg("m1"))
    sim.add_crash(T0 + 130, down=5.0)
    r = sim.run()
    # the model's answer to r1 was on its way (provider latency 20 s) when the process died:
    # it never arrives, and the restarted process asks again (r2)
    answered = {e.request_id for _, e in r.timeline if isinstance(e, Generated | GenerationFailed)}
    assert "r1" not in answered and "r2" in answered
    assert [type(e) for _, e in r.timeline if isinstance(e, Crash | Restart)] == [Crash, Restart]
    assert len(r.sent) == 1 and r.crashes == [T0 + 130]
    assert [g.request_id for g in r.generations] == ["r1", "r2"]


def test_messages_during_downtime_arrive_at_restart() -> None:
    sim = _sim()
    sim.add_crash(T0, down=600.0)
    sim.add_message(T0 + 60, _msg("m1"))
    r = sim.run()
    first = next(d for d in r.decisions if d.code == "scheduled")
    assert first.t == T0 + 600


def test_on_record_sees_inputs_and_effects_as_codec_dicts() -> None:
    records: list[tuple[float, str, dict[str, Any]]] = []
    sim = _sim(on_record=lambda t, d, obj: records.append((t, d, obj)))
    sim.add_message(T0, _msg("m1"))
    sim.run()
    assert records[0] == (T0, "in", records[0][2]) and records[0][2]["type"] == "Message"
    kinds = {(d, obj["type"]) for _, d, obj in records}
    assert {
        ("in", "Generated"),
        ("in", "SendConfirmed"),
        ("out", "Send"),
        ("out", "Generate"),
    } <= kinds


def test_send_failures_and_dropped_echoes() -> None:
    wa = FakeWhatsApp(failures=[ScheduledSendFailure("fail"), ScheduledSendFailure("drop_echo")])
    sim = _sim(whatsapp=wa, policy=Policy(cooldown=60))
    sim.add_message(T0, _msg("m1"))
    sim.add_message(T0 + 600, _msg("m2", "again"))
    r = sim.run()
    assert len(r.send_failures) == 1
    assert [d.code for d in r.decisions].count("echo") == 0
    assert any(isinstance(e, SendConfirmed) for _, e in r.timeline)


def test_same_seed_same_run_other_seed_other_jitter() -> None:
    def run(seed: int) -> list[float]:
        sim = _sim(seed=seed)
        for i in range(5):
            sim.add_message(T0 + i * 3600, _msg(f"m{i}", chat=f"c{i}"))
        return [s.t for s in sim.run().sent]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_fake_model_reply_passes_hygiene_and_names_the_context() -> None:
    sim = _sim()
    sim.add_message(T0, _msg("m1", "can we meet on friday at noon about the contract"))
    r = sim.run()
    g = r.generations[0]
    model, sched = FakeModel(), HeapScheduler(T0)
    model.bind(sched)
    model.start_generation(Generate("r9", "alice", g.messages), T0)
    [(t, generated)] = sched.run()
    assert isinstance(generated, Generated)
    text, why = clean_reply(generated.text, g.messages[0].content, 600)
    assert why == "" and "can we meet on friday at" in text and t == T0 + model.latency


def test_the_fake_records_whose_messages_a_group_receipt_names() -> None:
    sim = _sim()
    group = "team@g.us"
    for i, (sender, name) in enumerate([("bob", "Bob"), ("carol", "Carol"), ("bob", "Bob")]):
        sim.add_message(
            T0 + i,
            Message(
                chat=group,
                sender=sender,
                id=f"g{i}",
                text="@Gilad can you check?",
                sender_name=name,
                is_group=True,
                group_title="Team",
                mentions=("owner",),
            ),
        )
    sim.run()
    reads = {(r.chat, r.message_ids, r.sender) for r in sim.whatsapp.reads}
    assert reads == {(group, ("g0", "g2"), "bob"), (group, ("g1",), "carol")}
