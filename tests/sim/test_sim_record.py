"""`wapa simulate PATH --record DIR`: one recording per scenario file, in the format the runner
writes, named after the file; every one replays with zero divergences."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from wapa.adapters.recording import read_recording
from wapa.cli import main
from wapa.core import Send
from wapa.sim.replay import replay
from wapa.sim.scenario import load_file

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"


def test_every_scenario_recording_replays_with_zero_divergences(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "recordings"
    assert main(["simulate", str(SCENARIOS), "--record", str(out)]) == 0
    scenario_files = sorted(SCENARIOS.glob("*.yaml"))
    assert "recordings written to" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{f.stem}.jsonl" for f in scenario_files
    )
    restarts = 0
    for path in sorted(out.iterdir()):
        recording = read_recording(path)
        assert not recording.header.redacted and not recording.warnings, path.name
        report = replay(recording)
        assert report.summary["compared"], path.name
        assert report.divergences == [], (path.name, report.divergences[:3])
        recorded = [
            (i.t, i.obj.chat, i.obj.text) for i in recording.items if isinstance(i.obj, Send)
        ]
        assert [(s.t, s.chat, s.text) for s in report.sent] == recorded, path.name
        restarts += report.summary["restarts"]
    assert restarts >= 9  # the crash scenarios are covered: restarts replay as crashes


def test_a_recording_holds_the_scenarios_policy_persona_and_seed(tmp_path: Path) -> None:
    out = tmp_path / "rec"
    scenario = SCENARIOS / "cooldown_after_reply.yaml"
    assert main(["simulate", str(scenario), "--record", str(out), "--seed", "7", "--json"]) == 0
    s = load_file(scenario)
    header = read_recording(out / "cooldown_after_reply.jsonl").header
    assert (header.policy, header.persona, header.seed, header.start) == (
        s.policy,
        s.persona,
        7,
        s.start,
    )


def test_same_file_names_in_two_folders_get_two_recordings(tmp_path: Path) -> None:
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        shutil.copy(SCENARIOS / "cooldown_after_reply.yaml", tmp_path / folder / "same.yaml")
    out = tmp_path / "rec"
    assert (
        main(["simulate", str(tmp_path / "one"), str(tmp_path / "two"), "--record", str(out)]) == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["same-2.jsonl", "same.jsonl"]
    for path in out.iterdir():
        assert replay(read_recording(path)).divergences == []


def test_redacted_recordings_hide_the_text_and_still_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a fixed salt (the redactor draws a random one per recording) keeps the test deterministic
    monkeypatch.setattr("wapa.adapters.redact.secrets.token_bytes", lambda n: b"\x01" * n)
    out = tmp_path / "rec"
    names = ["group_replies_only_when_mentioned", "crash_during_typing_still_sends_once"]
    paths = [str(SCENARIOS / f"{n}.yaml") for n in names]
    assert main(["simulate", *paths, "--record", str(out), "--record-redact"]) == 0
    text = (out / f"{names[0]}.jsonl").read_text()
    assert "standup" not in text and "check the build" not in text
    for name in names:
        recording = read_recording(out / f"{name}.jsonl")
        assert recording.header.redacted
        assert replay(recording).divergences == [], name


def test_bad_record_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = str(SCENARIOS / "cooldown_after_reply.yaml")
    full = tmp_path / "full"
    full.mkdir()
    (full / "old.jsonl").write_text("{}\n")
    assert main(["simulate", scenario, "--record", str(full)]) == 2
    assert "--record" in capsys.readouterr().err and (full / "old.jsonl").read_text() == "{}\n"
    assert main(["simulate", scenario, "--record-redact"]) == 2
    assert "--record-redact needs --record" in capsys.readouterr().err
    same = str(tmp_path / "same")
    assert main(["simulate", scenario, "--store", same, "--record", same]) == 2
    assert "two different folders" in capsys.readouterr().err


def test_a_broken_scenario_writes_no_recording(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rec"
    broken = ROOT / "tests" / "sim_examples" / "broken_unknown_key.yaml"
    assert main(["simulate", str(broken), "--record", str(out), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["failed"] == 1
    assert list(out.iterdir()) == []
