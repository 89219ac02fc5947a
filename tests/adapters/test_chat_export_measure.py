"""The import's measurement tool (`python -m wapa.adapters.chat_export.measure`), and the bound it
shows: the import's memory does not grow with the file."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
from wapa.adapters.chat_export import parse_export
from wapa.adapters.chat_export.measure import OWNER, _cli, _peak, generate, main, measure


def test_generated_export_is_deterministic_and_imports_exactly(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    count = generate(a, 50_000)
    assert generate(b, 50_000) == count and a.read_bytes() == b.read_bytes()
    parsed = parse_export(a.read_text(encoding="utf-8"))
    assert len(parsed.messages) == count
    assert set(parsed.participants) == {"Alice Smith", OWNER}
    assert any("\n" in m.text for m in parsed.messages)  # two-line messages


def test_measure_reports_every_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "chat.txt"
    count = generate(path, 60_000)
    figures = measure(path, memory=True, replay=True)
    assert figures.messages == count and figures.lines > count and figures.size >= 60_000
    assert figures.read_s > 0 and figures.parse_s > 0 and figures.import_s > 0
    assert figures.import_peak and figures.replay_peak
    report = "\n".join(figures.report())
    assert "lines/s per pass" in report and "replay peak traced memory" in report
    assert figures.replay_items == count and figures.replay_cpu_s  # one message, one item
    assert "µs per item" in report


def test_the_command_line_generates_and_measures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gen.txt"
    assert main([str(path), "--generate", "0.03"]) == 0
    out = capsys.readouterr().out
    assert path.stat().st_size >= 30_000
    assert out.startswith("file: ") and "import-export peak" not in out


def test_import_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    # Streaming: ten times the file, about the same peak (the whole file held would be ten times).
    peaks = []
    for size in (50_000, 500_000):
        path = tmp_path / f"chat{size}.txt"
        generate(path, size)
        out = tmp_path / "out.jsonl"
        argv = ["import-export", str(path), "--owner", OWNER, "-o", str(out), "--force"]
        _cli(argv)  # modules imported before tracing
        peaks.append(_peak(partial(_cli, argv)))
    small, big = peaks
    assert big < 1.5 * small + 256 * 1024, peaks
