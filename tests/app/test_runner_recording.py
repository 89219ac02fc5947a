"""WAPA_RECORD through the runner's world: the recording (in the format `wapa replay` reads)
holds every committed step, the event "in" then its effects "out", across a restart, and
replays in the simulator with zero divergences."""

from __future__ import annotations

from pathlib import Path

from wapa.adapters.recording import read_recording
from wapa.core import Message
from wapa.sim.replay import replay

from tests.app.test_runner_inprocess import OWNER, Harness
from tests.support.runner import contact

ALICE = "15551234567@s.whatsapp.net"
BOB = "15557654321@s.whatsapp.net"


async def test_a_runner_recording_replays_with_zero_divergences(tmp_path: Path) -> None:
    rec = tmp_path / "traffic.jsonl"
    env = {"WAPA_RECORD": str(rec)}
    first = Harness(tmp_path, env)
    await first.start()
    await first.transport.deliver(contact("hello, are you there?", chat=ALICE, mid="a1"))
    await first.clock.advance(runner=first.runner, seconds=15)
    await first.transport.deliver(contact("one more thing", chat=BOB, mid="b1"))
    await first.clock.advance(runner=first.runner, seconds=4)  # Bob's reply still waits
    assert await first.stop() == 0
    assert len(first.transport.sent) == 1

    second = Harness(tmp_path, env)  # a restart on the same file: a new header line
    second.clock.t = first.clock.t + 2
    await second.start()
    await second.clock.advance(runner=second.runner, seconds=20)
    await second.transport.deliver(Message(OWNER, OWNER, "c1", "status", from_me=True))
    assert await second.stop() == 0
    assert [s[0] for s in second.transport.sent] == [BOB]

    recording = read_recording(rec)
    assert recording.warnings == []
    items = [(i.dir, type(i.obj).__name__) for i in recording.items]
    assert ("in", "Message") in items and ("out", "Send") in items
    assert ("in", "SendConfirmed") in items and ("out", "Notice") in items
    # each step: its event first, then what it caused
    first_in = items.index(("in", "Message"))
    assert all(d == "in" or i > first_in for i, (d, _) in enumerate(items) if d == "out")
    report = replay(recording)
    assert report.summary["restarts"] == 1
    assert report.divergences == [], report.divergences
    assert [s.chat for s in report.sent] == [ALICE, BOB]
