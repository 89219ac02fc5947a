"""The store's rows are written with orjson where that is safe: every value reads back (with
the stdlib's `json.loads`, as `Store.load` reads it) exactly as the stdlib's own encoding
would, NaN, infinities and huge integers included."""

from __future__ import annotations

import gc
import json
import math
import os
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wapa.adapters.store.store import encode_row
from wapa.sim.fuzz import build_simulation, generate_traffic


def _stdlib(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN and types compared (1 is not 1.0 here)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


_text = st.text(st.characters(exclude_categories=["Cs"]))  # lone surrogates: never stored
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | _text
)
_values = st.recursive(
    _scalars, lambda inner: st.lists(inner) | st.dictionaries(_text, inner), max_leaves=30
)


@given(_values)
def test_every_value_reads_back_as_the_stdlib_would_write_it(value: Any) -> None:
    assert _same(json.loads(encode_row(value)), json.loads(_stdlib(value)))


def test_nan_and_big_integers_go_through_the_stdlib() -> None:
    assert encode_row({"x": float("nan")}) == b'{"x":NaN}'
    assert encode_row({"x": 2**80}) == _stdlib({"x": 2**80})
    assert encode_row({"x": [1.5, "é"]}) == '{"x":[1.5,"é"]}'.encode()


def test_chat_rows_of_a_fuzz_run_read_back_identically() -> None:
    traffic = generate_traffic(30, 1.0, seed=3)
    sim = build_simulation(traffic)
    sim.run()
    state = sim.driver.assistant.export()
    assert len(state["chats"]) > 10
    for chat in [*state["chats"].values(), {**state, "chats": {}}]:
        assert json.loads(encode_row(chat)) == json.loads(_stdlib(chat)) == chat


def _resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads Linux's /proc")
def test_kept_rows_cost_about_their_own_size_in_memory() -> None:
    """A commit keeps its rows until SQLite has them: orjson's own output kept about 4-8 KB
    of allocation behind each row of 0.5-0.8 KB."""
    chat = {
        "id": "4915111@s.whatsapp.net",
        "context": [
            [1767600000.0 + i, "contact", "Bob", "see you at 5 " * 6, f"m{i}"] for i in range(4)
        ],
        "phase": "waiting",
        "due": 1767600120.0,
    }
    rows = 5000
    gc.collect()
    before = _resident_bytes()
    kept = [encode_row({**chat, "n": i}) for i in range(rows)]
    grown = _resident_bytes() - before
    size = sum(map(len, kept))
    assert 500 < size / rows < 1000
    assert grown < 3 * size, f"{grown / rows:.0f} B resident per row of {size / rows:.0f} B"
