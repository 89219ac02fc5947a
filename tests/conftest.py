"""Fixtures shared by every layer's tests (the helpers themselves live in tests/support/)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from wapa.core import Policy

from tests.support.core_run import Run


@pytest.fixture
def run() -> Run:
    return Run()


@pytest.fixture
def make_run() -> Callable[..., Run]:
    def make(policy: dict[str, Any] | None = None, **kw: Any) -> Run:
        return Run(Policy.from_mapping(policy or {}), **kw)

    return make
