"""Fixtures shared by every layer's tests (the helpers themselves live in tests/support/)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from wapa.bench.build_core import core_dir, stale
from wapa.core import Policy

from tests.support.core_run import Run


def pytest_sessionstart(session: pytest.Session) -> None:
    """Never test an old compiled core (`python -m wapa.bench.build_core`) against new sources:
    Python would import the stale extension modules instead of the edited .py files."""
    changed = stale(core_dir())
    if changed:
        raise pytest.UsageError(
            f"the compiled core is stale: {', '.join(changed)} changed since it was built; "
            "run `python -m wapa.bench.build_core` again, or `--remove` it"
        )


@pytest.fixture
def run() -> Run:
    return Run()


@pytest.fixture
def make_run() -> Callable[..., Run]:
    def make(policy: dict[str, Any] | None = None, **kw: Any) -> Run:
        return Run(Policy.from_mapping(policy or {}), **kw)

    return make
