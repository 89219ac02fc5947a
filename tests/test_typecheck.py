"""The whole tree type-checks clean: this is how CI runs mypy (the README's test command is
pytest). Settings are in pyproject.toml `[tool.mypy]`; `python -m tests.support.typecheck`
prints the same report. mypy keeps its cache in build/typecheck, so only a cold run is slow
(about ten seconds)."""

from __future__ import annotations

from tests.support.typecheck import run_mypy


def test_mypy_reports_no_errors_on_the_whole_tree() -> None:
    report, status = run_mypy()
    assert status == 0 and report.startswith("Success: no issues found"), report
