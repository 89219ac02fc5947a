"""wapa replay: a simulator recording replays exactly; what-ifs show the expected change;
divergences are found and shown with both traces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from wapa.adapters.recording import Recorder, read_recording
from wapa.cli import main
from wapa.commands.replay import parse_sets
from wapa.core import Decision, Message, Persona, Policy, Send
from wapa.sim.engine import Simulation
from wapa.sim.fake_model import FakeModel, ScheduledFailure
from wapa.sim.fake_whatsapp import FakeWhatsApp, ScheduledSendFailure
from wapa.sim.replay import replay

T0 = 1_700_000_000.0
PERSONA = Persona(owner_id="owner", owner_name="Dana")
H = 3600.0


def _msg(chat: str, i: int, text: str) -> Message:
    return Message(chat=chat, sender=chat, id=f"{chat}-{i}", text=text, sender_name=chat.title())


def record(
    path: Path,
    script: list[tuple[float, Message]],
    policy: Policy | None = None,
    seed: int = 5,
    model: FakeModel | None = None,
    whatsapp: FakeWhatsApp | None = None,
) -> None:
    policy = policy or Policy()
    with Recorder(path, policy, PERSONA, seed, start=T0) as rec:
        sim = Simulation(
            policy=policy,
            persona=PERSONA,
            seed=seed,
            start=T0,
            model=model,
            whatsapp=whatsapp,
            on_record=rec.record,
        )
        for t, m in script:
            sim.add_message(T0 + t, m)
        sim.run()


BUSY_DAY = [
    (0, _msg("alice", 1, "hi, are you free later?")),
    (30, _msg("alice", 2, "for a coffee")),
    (1 * H, _msg("alice", 3, "ok nevermind, another time")),
    (2 * H, _msg("bob", 1, "URGENT the car is blocked, call me")),
    (2 * H + 600, _msg("bob", 2, "hello??")),
    (3 * H, _msg("carol", 1, "happy birthday!")),
    (3 * H + 60, Message("carol", "owner", "o1", "thanks Carol!", from_me=True)),
    (3 * H + 120, _msg("carol", 2, "party tonight?")),
    (7 * H, _msg("alice", 4, "are you back?")),
]


def test_a_simulator_recording_replays_with_zero_divergences(tmp_path: Path) -> None:
    path = tmp_path / "day.jsonl"
    model = FakeModel(seed=5, failures=[ScheduledFailure("rate_limited", 3, after=T0 + 2 * H)])
    whatsapp = FakeWhatsApp(
        seed=5, echo=True, failures=[ScheduledSendFailure("fail", after=T0 + 6 * H)]
    )  # echoes injected (whatsmeow sends none): a recording with echoes replays too
    record(path, BUSY_DAY, model=model, whatsapp=whatsapp)
    recording = read_recording(path)
    report = replay(recording)
    codes = {i.obj.code for i in recording.items if isinstance(i.obj, Decision)}
    assert {
        "sent",
        "echo",
        "cooldown",
        "owner_takeover",
        "generation_failed",
        "send_failed",
    } <= codes
    assert report.divergences == []
    assert report.summary["recorded_decisions"] == report.summary["replayed_decisions"] > 20
    assert report.summary["echoes_skipped"] >= 2
    recorded_sends = [
        (i.t, i.obj.chat, i.obj.text) for i in recording.items if isinstance(i.obj, Send)
    ]
    assert [(s.t, s.chat, s.text) for s in report.sent] == recorded_sends


def test_what_if_a_shorter_cooldown_gains_the_reply_the_cooldown_held_back(tmp_path: Path) -> None:
    path = tmp_path / "day.jsonl"
    record(path, BUSY_DAY)
    report = replay(read_recording(path), {"cooldown": "30m"})
    s = report.summary
    assert s["mode"] == "what-if" and s["lost"] == 0 and s["gained"] >= 1
    gained = [(d["chat"], d["t"]) for d in report.divergences if d["kind"] == "reply_gained"]
    # Alice's message an hour after the reply was held back by the 5 h cooldown; with 30 min it is answered.
    assert any(chat == "alice" and T0 + H < t < T0 + H + 700 for chat, t in gained)
    assert all(d["kind"] == "reply_gained" for d in report.divergences)
    longer = replay(read_recording(path), {"cooldown": "12h"})
    assert longer.summary["lost"] >= 1 and any(
        d["chat"] == "alice" and d["t"] > T0 + 7 * H for d in longer.divergences
    )


def test_a_changed_core_decision_is_a_divergence_with_both_traces(tmp_path: Path) -> None:
    path = tmp_path / "day.jsonl"
    record(path, BUSY_DAY, policy=Policy.from_mapping({"cooldown": "30m"}))
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    header["policy"]["cooldown"] = 5 * H  # today's settings differ from the recorded behaviour
    path.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    report = replay(read_recording(path))
    assert report.divergences
    d = next(
        x
        for x in report.divergences
        if x["chat"] == "alice" and x["side"] == "recorded" and x["code"] == "sent"
    )
    assert d["recorded"] and d["replay"]
    assert any("sent" in line for line in d["recorded"]) and any(
        "cooldown" in line for line in d["replay"]
    )


def test_small_timing_differences_within_the_tolerance_are_not_divergences(tmp_path: Path) -> None:
    path = tmp_path / "day.jsonl"
    record(path, BUSY_DAY)
    lines = path.read_text().splitlines()
    shifted = [lines[0]]
    for line in lines[1:]:
        item = json.loads(line)
        if item["item"]["type"] == "Decision" and item["item"]["code"] == "sent":
            item["item"]["t"] += 3.0
        shifted.append(json.dumps(item))
    path.write_text("\n".join(shifted) + "\n")
    assert replay(read_recording(path)).divergences == []
    assert replay(read_recording(path), tolerance=1.0).divergences


def test_a_restart_in_the_recording_is_replayed_as_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    with Recorder(path, Policy(), PERSONA, 1, start=T0) as rec:
        rec.record(T0, "in", _msg("alice", 1, "hi"))
    with Recorder(path, Policy(), PERSONA, 1, start=T0 + 30):
        pass
    report = replay(read_recording(path))
    assert report.summary["restarts"] == 1


def test_parse_sets() -> None:
    base = Policy().to_mapping()
    assert parse_sets(["cooldown=2h", "burst_count=4", "quote_in_groups=false"], base) == {
        "cooldown": "2h",
        "burst_count": 4,
        "quote_in_groups": False,
    }
    assert parse_sets(["caps.per_hour=5"], base)["caps"] == {
        "per_chat_per_day": 20,
        "per_hour": 5,
        "per_day": 200,
    }
    qh = parse_sets(["quiet_hours.start=22:00", "quiet_hours.tz=Europe/Berlin"], base)[
        "quiet_hours"
    ]
    assert qh == {"start": "22:00", "tz": "Europe/Berlin"}
    assert Policy.from_mapping({"quiet_hours": qh}).quiet_hours is not None
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        parse_sets(["cooldown"], base)


def test_cli_json_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "day.jsonl"
    record(path, BUSY_DAY)
    assert main(["replay", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"events", "sent", "divergences", "unanswered", "summary"}
    assert out["events"] == len(BUSY_DAY) and out["divergences"] == [] and out["sent"]
    assert main(["replay", str(path), "--set", "cooldown=30m", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["gained"] >= 1 and out["summary"]["per_chat"]["alice"]["gained"]
    assert main(["replay", str(path), "--set", "cooldown=soon"]) == 2
    assert "cooldown" in capsys.readouterr().err
    assert main(["replay", str(path), "--set", "colour=red"]) == 2
    assert "colour: unknown policy setting" in capsys.readouterr().err
    (tmp_path / "bad.jsonl").write_text("hello\n")
    assert main(["replay", str(tmp_path / "bad.jsonl")]) == 2
    assert "bad.jsonl:1" in capsys.readouterr().err


def test_set_values_are_bounded_yaml() -> None:
    """`--set` values are YAML within the same bounds as files: text that is not YAML stays
    text, a 200-digit number is refused, never expanded."""
    from wapa.commands.replay import parse_sets

    assert parse_sets(["x=a: b: c", "quiet_hours.start=22:00"], {}) == {
        "x": "a: b: c",
        "quiet_hours": {"start": "22:00"},
    }
    with pytest.raises(ValueError, match="digits"):
        parse_sets(["cooldown=" + "9" * 200], {})
