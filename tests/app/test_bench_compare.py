"""`wapa bench --repeat N` (medians with their spread) and `wapa bench --compare A B
[--markdown]` (saved runs side by side). No benchmark is timed here: sections are stubs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from wapa.bench import cli
from wapa.cli import main


def _stub_sections(values: list[float]) -> Any:
    calls = iter(values)

    def sections(quick: bool) -> list[tuple[str, Any]]:
        return [
            ("core", lambda: {"core_msgs_per_s": next(calls), "core_msgs_ratio": 20.0}),
            ("broken", lambda: 1 / 0),
        ]

    return sections


def test_repeat_keeps_the_median_and_the_spread(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "_sections", _stub_sections([100.0, 300.0, 200.0]))
    out = tmp_path / "a.json"
    code = main(["bench", "--repeat", "3", "--json", "--out", str(out), "--label", "vm"])
    assert code == 0
    result = json.loads(out.read_text())
    assert result == json.loads(capsys.readouterr().out)
    assert result["core_msgs_per_s"] == 200.0 and result["repeat"] == 3
    assert result["spread"]["core_msgs_per_s"] == {"min": 100.0, "max": 300.0, "n": 3}
    assert result["label"] == "vm"
    for key in ("python", "arch", "cpu_model", "cores", "system", "implementation"):
        assert result[key]
    assert "broken" in result["errors"]  # one broken section does not hide the others
    assert "±50%" in cli.markdown(result)


def _saved(path: Path, **figures: Any) -> str:
    base = {
        "python": "3.11.7",
        "implementation": "cpython",
        "arch": "x86_64",
        "cpu_model": "AMD EPYC",
        "cores": 2,
        "system": "Linux 6.18",
        "quick": True,
    }
    path.write_text(json.dumps({**base, **figures}))
    return str(path)


def test_compare_renders_two_saved_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _saved(
        tmp_path / "server.json", core_msgs_per_s=30000.0, core_us_per_msg=6.5, idle_rss_mb=79.0
    )
    b = _saved(
        tmp_path / "pi.json",
        arch="aarch64",
        cpu_model="Cortex-A76",
        note="emulated",
        core_msgs_per_s=12000.0,
        core_us_per_msg=16.0,
        idle_rss_mb=85.0,
    )
    assert main(["bench", "--compare", a, b]) == 0
    text = capsys.readouterr().out
    assert "server: AMD EPYC (x86_64" in text and "pi: Cortex-A76 (aarch64" in text
    assert "(emulated)" in text
    row = next(line for line in text.splitlines() if line.startswith("core_msgs_per_s"))
    assert "30,000" in row and "12,000" in row and "0.40x" in row
    assert "server meets 1 of 2 goals; pi meets 0 of 2 goals" in text

    assert main(["bench", "--compare", a, b, "--markdown"]) == 0
    md = capsys.readouterr().out
    assert "| figure | goal | server | pi | pi / server |" in md
    assert "| idle_rss_mb | <= 70 MB | 79.00 MB ✗ | 85.00 MB ✗ | 1.08x |" in md
    assert "| core_us_per_msg | <= 7 µs CPU | 6.50 µs ✓ | 16.00 µs ✗ | 2.46x |" in md
    # a figure that is only reported is never judged
    assert "| core_msgs_per_s | report (CPU time) | 30,000 msg/s | 12,000 msg/s | 0.40x |" in md


def test_compare_refuses_other_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"passed": 1}')
    assert main(["bench", "--compare", str(bad)]) == 1
    assert "not a `wapa bench --json` result" in capsys.readouterr().err
