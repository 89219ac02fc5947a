"""The simulator's and the model policy's frozen records are `Record`s (core/records.py):
each behaves as the plain dataclass would (the checks of tests/core/test_core_record_base.py)."""

from __future__ import annotations

import pytest
from wapa.adapters.llm import policy
from wapa.core.records import Record
from wapa.sim import fake_whatsapp, scenario, suite, world

from tests.core.test_core_record_base import (
    test_a_record_behaves_as_its_plain_dataclass as behaves_as_its_plain_dataclass,
)

RECORDS = sorted(
    {
        cls
        for module in (policy, fake_whatsapp, scenario, suite, world)
        for cls in vars(module).values()
        if isinstance(cls, type) and issubclass(cls, Record) and cls.__module__ == module.__name__
    },
    key=lambda cls: f"{cls.__module__}.{cls.__name__}",
)


def test_the_records_are_found() -> None:
    names = {cls.__name__ for cls in RECORDS}
    assert {"Call", "Wait", "ProviderId", "Step", "Expectation", "Delivery", "Crash"} <= names


@pytest.mark.parametrize("cls", RECORDS, ids=lambda cls: cls.__name__)
def test_a_record_behaves_as_its_plain_dataclass(cls: type) -> None:
    behaves_as_its_plain_dataclass(cls)
