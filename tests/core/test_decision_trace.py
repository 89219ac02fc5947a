"""Decisions stay identical across performance work: a long seeded fuzz run (traffic, model
and send failures, crashes and restarts through the store) is replayed and the digest of its
full decision trace, every `Decision` in order with its time, chat, code, detail and request
id, is compared with the one stored in tests/data/traces/decision_trace.json.

When a rule changes on purpose, the trace changes with it: regenerate the stored digest with

    .venv/bin/python -m tests.core.test_decision_trace --write

and say so in the commit (which rule changed, and why the decisions moved)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from wapa.core.events import Decision
from wapa.sim.fuzz import run_fuzz

STORED = Path(__file__).resolve().parents[1] / "data" / "traces" / "decision_trace.json"
CHATS, DAYS, SEED = 150, 7.0, 18
RUN = {"chats": CHATS, "days": DAYS, "seed": SEED}


def trace(chats: int, days: float, seed: int) -> dict[str, Any]:
    """The run's decision count and the sha256 of its trace (one line per decision)."""
    digest = hashlib.sha256()
    count = 0

    def take(decisions: list[Decision]) -> None:
        nonlocal count
        for d in decisions:
            line = f"{d.t!r}\t{d.chat}\t{d.code}\t{d.detail}\t{d.request_id}\n"
            digest.update(line.encode("utf-8", "surrogatepass"))
            count += 1

    report = run_fuzz(chats, days, seed, on_decisions=take)
    assert report.ok, report.violations[:3]
    return {**RUN, "decisions": count, "sha256": digest.hexdigest()}


def test_the_long_fuzz_run_decides_exactly_as_recorded() -> None:
    stored = json.loads(STORED.read_text(encoding="utf-8"))
    now = trace(CHATS, DAYS, SEED)
    assert now == stored, (
        "the decisions of the recorded fuzz run changed. If a rule changed on purpose, "
        "regenerate with `.venv/bin/python -m tests.core.test_decision_trace --write` and say "
        "so in the commit; if not, a change meant to keep behaviour did not"
    )


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m tests.core.test_decision_trace --write")
    result = trace(CHATS, DAYS, SEED)
    STORED.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{STORED}: {result['decisions']} decisions, sha256 {result['sha256']}")
