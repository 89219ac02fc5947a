"""Many seeds: ranges, shards, parallel jobs and merging. Same seeds, same results, whatever the
number of processes and shards. Runs are tiny (a few chats, half a day) to stay quick."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from wapa.cli import main
from wapa.commands.fuzz import seeds_text
from wapa.sim.fuzz import SeedError, parse_seeds, parse_shard, shard_seeds

SMALL = ["--chats", "4", "--days", "0.5"]


def _fuzz_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["fuzz", *SMALL, "--json", *argv])
    return code, json.loads(capsys.readouterr().out)


def _results(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in summary["runs"]]


def test_seed_ranges_and_shards() -> None:
    assert parse_seeds("1-5") == [1, 2, 3, 4, 5]
    assert parse_seeds("3, 1-2,2,9") == [3, 1, 2, 9]
    for bad in ("", "a-b", "5-1", "-3", "1-"):
        with pytest.raises(SeedError):
            parse_seeds(bad)
    assert parse_shard("2/4") == (2, 4)
    for bad in ("0/4", "5/4", "4", "a/b"):
        with pytest.raises(SeedError):
            parse_shard(bad)
    seeds = parse_seeds("1-103")
    for m in (1, 2, 3, 7):
        shards = [shard_seeds(seeds, k, m) for k in range(1, m + 1)]
        assert sorted(s for shard in shards for s in shard) == seeds  # each seed exactly once
        assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert seeds_text([1, 2, 3, 7, 9, 10]) == "1-3,7,9-10"


def test_jobs_and_shards_give_the_same_results(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code1, one = _fuzz_json(capsys, "--seeds", "1-8", "--jobs", "1")
    code2, two = _fuzz_json(capsys, "--seeds", "1-8", "--jobs", "2")
    assert code1 == code2 == 0
    assert one["count"] == 8 and one["seeds"] == "1-8" and one["ok"]
    assert _results(one) == _results(two)
    assert all(r["sent"] > 0 or r["messages"] == 0 for r in one["runs"])

    # three shards, each with two jobs, merged: the same result again
    files = []
    for k in (1, 2, 3):
        code, part = _fuzz_json(capsys, "--seeds", "1-8", "--jobs", "2", "--shard", f"{k}/3")
        assert code == 0 and part["shard"] == f"{k}/3"
        files.append(tmp_path / f"shard{k}.json")
        files[-1].write_text(json.dumps(part))
    junit = tmp_path / "fuzz.xml"
    assert main(["fuzz", "--merge", *map(str, files), "--json", "--junit", str(junit)]) == 0
    merged = json.loads(capsys.readouterr().out)
    assert _results(merged) == _results(one)
    assert merged["seeds"] == "1-8" and merged["shard"] is None
    assert junit.read_text().count("<testcase ") == 8

    # a run of one seed gives what --seed gives
    assert main(["fuzz", *SMALL, "--json", "--seed", "5"]) == 0
    single = json.loads(capsys.readouterr().out)
    assert single == _results(one)[4]


def test_merge_refuses_other_settings(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _, a = _fuzz_json(capsys, "--seeds", "1", "--jobs", "1")
    b = dict(a, chats=99)
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    with pytest.raises(SystemExit, match="other settings"):
        main(["fuzz", "--merge", str(tmp_path / "a.json"), str(tmp_path / "b.json")])


def test_failing_seeds_are_listed_with_their_replay_command(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A seed that breaks an invariant is reported with the command that replays it."""
    from wapa.sim import fuzz
    from wapa.sim.invariants import Violation

    real = fuzz.run_fuzz

    def broken_on_seed_2(chats: int, days: float, seed: int, *a: Any, **kw: Any) -> Any:
        report = real(chats, days, seed, *a, **kw)
        if seed == 2:
            report.violations.append(Violation(report.messages, "c1", "test_rule", "broken"))
        return report

    monkeypatch.setattr(fuzz, "run_fuzz", broken_on_seed_2)
    junit = tmp_path / "r.xml"
    code = main(
        ["fuzz", *SMALL, "--seeds", "1-3", "--jobs", "1", "--junit", str(junit), "--github"]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "FAILED seed 2: 1 invariant violation" in out
    assert "replay: wapa fuzz --chats 4 --days 0.5 --seed 2" in out
    assert "failing seeds: 2" in out
    assert "::error title=wapa fuzz seed 2::" in out
    assert 'failures="1"' in junit.read_text()


def test_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match="--jobs needs --seeds"):
        main(["fuzz", *SMALL, "--jobs", "2"])
    with pytest.raises(SystemExit, match="K/M"):
        main(["fuzz", *SMALL, "--seeds", "1-3", "--shard", "4/3"])
