"""Crashes in recordings: a simulator run with crashes is recorded (a restart header with the
crash time) and replays with zero divergences; production restarts without a crash time still
replay; a bad crash time is refused with file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from wapa.adapters.recording import Recorder, RecordingError, read_recording
from wapa.core import Decision, Message, Persona, Policy, Send
from wapa.sim.engine import Simulation
from wapa.sim.fuzz import build_simulation, generate_traffic
from wapa.sim.replay import replay

T0 = 1_700_000_000.0


def _record_fuzz(path: Path, seed: int, **engine: object) -> Simulation:
    traffic = generate_traffic(15, 1, seed, crashes_per_day=10)
    with Recorder(path, Policy(), traffic.persona, seed, start=traffic.start) as rec:
        sim = build_simulation(traffic, on_record=rec.record, **engine)  # type: ignore[arg-type]
        with sim:
            sim.run()
    return sim


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_fuzz_run_with_crashes_replays_with_zero_divergences(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "fuzz.jsonl"
    result = _record_fuzz(path, seed, crash_rate=0.1).result  # JSON restarts
    recording = read_recording(path)
    assert len(result.crashes) >= 15 and len(recording.restarts) == len(result.crashes)
    assert [h.crashed_at for h in recording.restarts] == result.crashes
    report = replay(recording)
    assert report.divergences == []
    assert report.summary["restarts"] == len(result.crashes)
    assert report.summary["recorded_decisions"] == report.summary["replayed_decisions"]
    assert [(s.t, s.chat, s.text) for s in report.sent] == [
        (s.t, s.chat, s.text) for s in result.sent
    ]
    codes = {i.obj.code for i in recording.items if isinstance(i.obj, Decision)}
    assert "recovered" in codes  # the crashes did hit replies under way


def test_random_crashes_with_a_store_replay_exactly(tmp_path: Path) -> None:
    path = tmp_path / "fuzz.jsonl"
    sim = _record_fuzz(path, 5, crash_rate=0.2, store=tmp_path / "fuzz.db")
    assert sim.store is not None and sim.store.restarts == len(sim.result.crashes) > 20
    report = replay(read_recording(path))
    assert report.divergences == []
    assert len(report.sent) == len(sim.result.sent)


def test_the_crash_time_matters_when_the_restart_header_lacks_it(tmp_path: Path) -> None:
    """A production restart header has no crash time: the replay takes the last item's time."""
    persona = Persona(owner_id="owner", owner_name="Dana")
    path = tmp_path / "rec.jsonl"
    with Recorder(path, Policy(), persona, 3, start=T0) as rec:
        sim = Simulation(policy=Policy(), persona=persona, seed=3, start=T0, on_record=rec.record)
        sim.add_message(T0, Message("alice", "alice", "a1", "hi", sender_name="Alice"))
        sim.add_crash(T0 + 60, down=30)
        sim.run()
    lines = path.read_text().splitlines()
    restart = next(i for i, line in enumerate(lines[1:], 1) if '"format"' in line)
    assert json.loads(lines[restart])["crashed_at"] == T0 + 60
    assert replay(read_recording(path)).divergences == []
    header = json.loads(lines[restart])
    del header["crashed_at"]
    lines[restart] = json.dumps(header)
    path.write_text("\n".join(lines) + "\n")
    recording = read_recording(path)
    assert recording.restarts[0].crashed_at is None
    report = replay(recording)  # crash taken at the last item before it (the scheduled decision)
    assert report.summary["restarts"] == 1 and report.divergences == []
    assert [s.text for s in report.sent] == [
        i.obj.text for i in recording.items if isinstance(i.obj, Send)
    ]


@pytest.mark.parametrize("bad", ["soon", True, 1e300, float("inf")])
def test_a_bad_crash_time_is_refused_with_file_and_line(tmp_path: Path, bad: object) -> None:
    path = tmp_path / "rec.jsonl"
    Recorder(path, Policy(), Persona(owner_id="o"), 0, start=T0).close()
    header = json.loads(path.read_text().splitlines()[0])
    header.update(start=T0 + 100, crashed_at=bad)
    with path.open("a") as f:
        f.write(json.dumps(header) + "\n")
    with pytest.raises(RecordingError, match=r"rec\.jsonl:2: crashed_at: expected epoch seconds"):
        read_recording(path)
