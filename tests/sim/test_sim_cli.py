"""`wapa simulate` and `wapa fuzz` end to end, through the CLI entry point."""

from __future__ import annotations

import gc
import json
import re
import subprocess
import sys
import weakref
from pathlib import Path
from typing import Any

import pytest
from wapa.cli import main
from wapa.core.machine import Assistant

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
EXAMPLES = ROOT / "tests" / "sim_examples"
FEW = [
    str(SCENARIOS / n)
    for n in ("direct_chat_gets_one_delayed_reply.yaml", "group_replies_only_when_mentioned.yaml")
]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_simulate_prints_a_table_and_passes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "simulate", *FEW)
    assert code == 0
    assert out.splitlines()[0].split()[:5] == ["RESULT", "SCENARIO", "SPAN", "REPLIES", "FILE"]
    assert "2 passed, 0 failed, 2 scenarios" in out


def test_simulate_leaves_the_garbage_collector_as_it_found_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The simulator is imported with the collector off (then what it made is frozen); the
    collector is on again for the scenarios, and stays off for a caller that had it off."""
    assert gc.isenabled()
    try:
        code, _ = _run(capsys, "simulate", *FEW)
        assert code == 0 and gc.isenabled()
        gc.disable()
        code, _ = _run(capsys, "simulate", *FEW)
        assert code == 0 and not gc.isenabled()
    finally:
        gc.enable()


def test_simulate_freezes_only_its_own_imports_not_the_callers_garbage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`gc.freeze()` after the simulator's imports takes every object alive at that moment out
    of the collector's reach for good. A caller that runs `wapa simulate` in-process again
    (the tests, a bench) must not have its cyclic garbage made immortal by the second run."""

    class Cycle:
        me: object

    code, _ = _run(capsys, "simulate", *FEW)  # the simulator is imported by now
    assert code == 0
    garbage = Cycle()
    garbage.me = garbage  # only the cyclic collector frees it
    ref = weakref.ref(garbage)
    del garbage
    gc.disable()  # it stays garbage, uncollected, until the run below has started
    try:
        code, _ = _run(capsys, "simulate", *FEW)
    finally:
        gc.enable()
    assert code == 0
    gc.collect()
    assert ref() is None


def test_simulate_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "simulate", "--json", *FEW)
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"passed", "failed", "unchecked", "scenarios"} and data["passed"] == 2
    assert data["unchecked"] == 0
    s = data["scenarios"][0]
    assert set(s) == {
        "name",
        "file",
        "passed",
        "unchecked",
        "expectations",
        "failures",
        "sent",
        "decisions",
        "generations",
    }
    assert s["expectations"][0] == {
        "line": 11,
        "what": "no reply in alice between +0s and +1m59s",
        "status": "pass",
    }
    assert set(s["sent"][0]) == {"chat", "t", "text"} and 120 < s["sent"][0]["t"] < 150
    assert set(s["decisions"][0]) == {"t", "chat", "code", "detail"} and s["decisions"][0]["t"] == 0
    assert s["generations"][0]["messages"][0]["role"] == "system"


def test_simulate_json_is_byte_identical_across_runs(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["simulate", "--json", "--seed", "5", str(SCENARIOS)]
    _, first = _run(capsys, *args)
    _, second = _run(capsys, *args)
    assert first == second
    _, other_seed = _run(capsys, "simulate", "--json", "--seed", "6", str(SCENARIOS))
    assert other_seed != first  # the seed reaches the typing jitter


def test_failures_are_explained_with_the_decision_trace(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "simulate", str(EXAMPLES))
    assert code == 1
    assert "BROKEN" in out and "broken_unknown_key.yaml:6: script[1]: unknown key 'txt'" in out
    assert re.search(r"expected a reply in alice at \+1h02m \(±30s\): none was sent", out)
    assert re.search(
        r"last decision by \+1h02m30s: cooldown at \+1h00m .*cooling down until "
        r"2026-01-05 14:02:1\d \(replied\)",
        out,
    )
    assert "expected no reply in team, but team got one at +2m" in out
    assert "0 passed, 3 failed, 3 scenarios" in out


def test_report_is_self_contained_and_escaped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report = tmp_path / "r.html"
    code, out = _run(capsys, "simulate", "--report", str(report), str(EXAMPLES), *FEW)
    assert code == 1 and f"report written to {report}" in out
    html = report.read_text(encoding="utf-8")
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;Team &amp; Co&lt;/b&gt;" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    for lane in ("class='in'", "class='out'", "class='typ'", "class='pend'", "class='cool'"):
        assert lane in html


def test_simulate_without_files_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _ = _run(capsys, "simulate", str(tmp_path))
    assert code == 1


def test_fuzz_passes_on_a_small_run(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "fuzz", "--chats", "40", "--days", "2", "--seed", "11")
    assert code == 0, out
    assert "0 invariant violations" in out


def test_fuzz_catches_a_disabled_cooldown_and_prints_the_replay(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Assistant._on_message

    def no_cooldown(self: Assistant, m: Any, now: float, out: list[Any]) -> None:
        chat = self.chats.get(m.chat)
        if chat is not None:
            chat.cooldown_until = 0.0  # the rule is broken here, in the test only
        original(self, m, now, out)

    monkeypatch.setattr(Assistant, "_on_message", no_cooldown)
    code, out = _run(capsys, "fuzz", "--chats", "40", "--days", "2", "--seed", "11")
    assert code == 1
    assert re.search(r"cooldown: send inside the cooldown", out)
    assert (
        "FAILED with seed 11; replay exactly with:\n  wapa fuzz --chats 40 --days 2 --seed 11"
        in out
    )


def test_fuzz_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "fuzz", "--chats", "10", "--days", "1", "--seed", "2", "--json")
    data = json.loads(out)
    assert code == 0 and data["ok"] is True and data["replay"].endswith("--seed 2")


def test_simulate_store_writes_one_database_per_scenario(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_dir = tmp_path / "stores"
    crash = str(SCENARIOS / "crash_while_waiting_resumes_reply.yaml")
    code, out = _run(capsys, "simulate", "--store", str(out_dir), *FEW, crash)
    assert code == 0, out
    assert sorted(p.name for p in out_dir.glob("*.db")) == [
        "crash_while_waiting_resumes_reply.db",
        "direct_chat_gets_one_delayed_reply.db",
        "group_replies_only_when_mentioned.db",
    ]
    assert main(["simulate", "--store", str(out_dir), *FEW]) == 2  # never written over
    assert "the folder is not empty" in capsys.readouterr().err


def test_simulate_store_refuses_a_folder_that_is_not_empty(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "wapa.db").write_bytes(b"precious")
    assert main(["simulate", "--store", str(tmp_path), *FEW]) == 2
    assert "the folder is not empty" in capsys.readouterr().err
    assert (tmp_path / "wapa.db").read_bytes() == b"precious"


def test_fuzz_with_a_store_and_random_crashes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "fuzz.db"
    argv = ["fuzz", "--chats", "6", "--days", "1", "--seed", "3", "--crash-rate", "0.1", "--json"]
    code, out = _run(capsys, *argv, "--store", str(db))
    data = json.loads(out)
    assert code == 0 and data["ok"] and data["commits"] > 50 and db.is_file()
    assert data["replay"].endswith("--seed 3 --store --crash-rate 0.1")
    with pytest.raises(SystemExit, match="the file exists"):
        main([*argv, "--store", str(db)])
    code, out = _run(capsys, *argv, "--store")  # a temporary file
    assert code == 0 and json.loads(out)["commits"] == data["commits"]
    with pytest.raises(SystemExit):
        main(["fuzz", "--crash-rate", "2"])


LONG_NAME = (
    "a scenario whose name is much longer than sixty-six characters, kept whole in the table"
)
NOTHING_EXPECTED = f"""\
name: {LONG_NAME}
start: 2026-01-05T09:00:00+00:00
chats:
  alice: {{name: Alice}}
script:
  - {{at: 0s, chat: alice, text: hi}}
"""


def test_a_scenario_without_expectations_is_flagged_not_a_silent_pass(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "empty.yaml").write_text(NOTHING_EXPECTED, encoding="utf-8")
    code, out = _run(capsys, "simulate", str(tmp_path / "empty.yaml"))
    assert code == 0
    assert out.splitlines()[1].split()[0] == "EMPTY" and LONG_NAME in out.splitlines()[1]
    assert f"EMPTY {LONG_NAME} (" in out and "no expectations" in out
    assert out.rstrip().endswith("1 passed (1 with no expectations), 0 failed, 1 scenario")
    code, out = _run(capsys, "simulate", "--json", str(tmp_path / "empty.yaml"))
    data = json.loads(out)
    assert data["unchecked"] == 1 and data["scenarios"][0]["unchecked"] is True
    assert data["scenarios"][0]["expectations"] == []


def test_one_scenario_and_one_recording_are_singular(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out = _run(capsys, "simulate", "--record", str(tmp_path / "rec"), FEW[0])
    assert code == 0
    assert "1 passed, 0 failed, 1 scenario\n" in out
    assert f"1 recording written to {tmp_path / 'rec'}" in out


def test_a_closed_pipe_is_not_a_traceback() -> None:
    """`wapa simulate ... | head`: the reader goes away before the output is written."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "wapa.cli", "simulate", str(SCENARIOS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `head` that has already quit
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err, err
