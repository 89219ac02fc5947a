"""Tests that cannot run against the compiled core (`python -m wapa.bench.build_core`, which
CI builds to run tests/core a second time): they are skipped there, with the reason.

- `PATCHES_THE_CORE`: the test replaces a method of `Assistant` (monkeypatch) to break the
  core on purpose; compiled code calls its methods directly and its instances' attributes
  are fixed, so the patch would not take.
- `ILL_TYPED_FIELDS`: the test builds an event whose field has the wrong type (None for a
  str). The compiled core checks a field's declared type when it reads it, so it refuses the
  whole event as malformed (`bad_event`, never an exception) where the Python core judges
  what it can of it. Drivers build their events with the declared types (recordings are
  checked field by field on load: sim/replay.py), so the two decide alike on real input."""

from __future__ import annotations

import pytest
from wapa.bench.build_core import is_compiled

COMPILED = is_compiled()
PATCHES_THE_CORE = pytest.mark.skipif(
    COMPILED, reason="replaces an Assistant method: compiled code does not see the patch"
)
ILL_TYPED_FIELDS = pytest.mark.skipif(
    COMPILED, reason="an ill-typed event field: the compiled core refuses the event whole"
)
