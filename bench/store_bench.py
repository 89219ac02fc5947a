"""Store throughput: messages persisted per second through `adapters/store` as the runner does
it (one `save_step`, one committed WAL transaction, per message), on a real SQLite file in a
temporary directory.

Only the `save_step` calls are timed (the core's own cost is `core_msgs_per_s`). The baseline,
in the same run, writes the same rows (the same JSON chat states, global state and decision
traces, computed beforehand by an identical assistant) with the standard library's `sqlite3`:
same schema, same pragmas, the same one transaction per message, `executemany` for each table.
So `store_ratio` is what the store's own layer costs (aiosqlite's thread hop, exporting the
state, sealing), with the commit cost the durability rule requires on both sides. A second
baseline writes all the rows in a single transaction, to show what one commit per message
costs."""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from adapters.store import Store
from adapters.store.schema import SCHEMA_VERSION, script
from bench.core_bench import PERSONA, START, traffic
from core import Assistant, Decision, Message, Policy

# A fixed raw key (base64 of 32 bytes): a passphrase would add scrypt at open, not per step.
BENCH_KEY = base64.b64encode(bytes(range(32))).decode()
CHATS = 1000

Rows = tuple[list[tuple[str, bytes, float, float | None]], bytes, float, list[tuple[Any, ...]]]


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


async def _through_store(path: Path, msgs: list[Message], key: str | None, sync: str) -> float:
    """Messages per second of `save_step` (timed alone) for one step per message."""
    store = await Store.open(path, key, sync=sync)
    try:
        a = Assistant(Policy(), PERSONA, seed=1)
        spent = 0.0
        clock = time.perf_counter
        for i, m in enumerate(msgs):
            effects = a.handle(m, START + i * 0.01)
            t0 = clock()
            await store.save_step(a, effects, (m,))
            spent += clock() - t0
    finally:
        await store.close()
    return len(msgs) / max(spent, 1e-9)


def _rows(msgs: list[Message]) -> list[Rows]:
    """The rows each message's step writes (unencrypted), from an identical assistant."""
    a = Assistant(Policy(), PERSONA, seed=1)
    out: list[Rows] = []
    for i, m in enumerate(msgs):
        now = START + i * 0.01
        effects = a.handle(m, now)
        chats = []
        for cid in a.take_dirty():
            chat = a.export_chat(cid)
            oldest = min((float(e[0]) for e in chat.get("context") or []), default=None)
            chats.append((cid, _dumps(chat), now, oldest))
        traces = [(e.t, e.chat, e.code, e.request_id, e.detail.encode())
                  for e in effects if isinstance(e, Decision)]  # fmt: skip
        out.append((chats, _dumps(a.export_meta()), now, traces))
    return out


_UPSERT_CHAT = (
    "INSERT INTO chats (key, state, updated, ctx_oldest) VALUES (?, ?, ?, ?) ON CONFLICT (key) "
    "DO UPDATE SET state = excluded.state, updated = excluded.updated, "
    "ctx_oldest = excluded.ctx_oldest"
)
_UPSERT_META = (
    "INSERT INTO assistant (id, state, updated) VALUES (1, ?, ?) ON CONFLICT (id) "
    "DO UPDATE SET state = excluded.state, updated = excluded.updated"
)
_TRACE = "INSERT INTO traces (t, chat_key, code, request_id, detail) VALUES (?, ?, ?, ?, ?)"


def _raw_db(path: Path, sync: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {sync.upper()}")
    db.execute("PRAGMA secure_delete = ON")
    for version in range(1, SCHEMA_VERSION + 1):
        db.executescript(script(version))
    return db


def _raw_per_step(path: Path, steps: list[Rows], sync: str) -> tuple[float, float]:
    """(messages per second, rows per second) with one transaction per message."""
    db = _raw_db(path, sync)
    rows = sum(len(c) + 1 + len(t) for c, _, _, t in steps)
    gc.collect()
    t0 = time.perf_counter()
    for chats, meta, now, traces in steps:
        db.execute("BEGIN IMMEDIATE")
        db.executemany(_UPSERT_CHAT, chats)
        db.execute(_UPSERT_META, (meta, now))
        if traces:
            db.executemany(_TRACE, traces)
        db.execute("COMMIT")
    spent = max(time.perf_counter() - t0, 1e-9)
    db.close()
    return len(steps) / spent, rows / spent


def _raw_batch(path: Path, steps: list[Rows], sync: str) -> float:
    """Rows per second with every row in one transaction (one executemany per table)."""
    db = _raw_db(path, sync)
    chats = [row for c, _, _, _ in steps for row in c]
    metas = [(meta, now) for _, meta, now, _ in steps]
    traces = [row for _, _, _, t in steps for row in t]
    gc.collect()
    t0 = time.perf_counter()
    db.execute("BEGIN IMMEDIATE")
    db.executemany(_UPSERT_CHAT, chats)
    db.executemany(_UPSERT_META, metas)
    db.executemany(_TRACE, traces)
    db.execute("COMMIT")
    spent = max(time.perf_counter() - t0, 1e-9)
    db.close()
    return (len(chats) + len(metas) + len(traces)) / spent


def store_msgs_per_s(quick: bool, n: int | None = None) -> dict[str, Any]:
    """The store figures for `n` messages over 1,000 chats (default 5,000; quick 1,000), with
    the store's default durability (synchronous=FULL, as `wapa run` uses) and with NORMAL."""
    n = n if n is not None else (1_000 if quick else 5_000)
    msgs = traffic(n, CHATS, seed=4)
    steps = _rows(msgs)
    out: dict[str, Any] = {"store_messages": n}
    with tempfile.TemporaryDirectory(prefix="wapa-bench-") as tmp:
        d = Path(tmp)
        for sync, suffix in (("full", ""), ("normal", "_sync_normal")):
            store = asyncio.run(_through_store(d / f"store-{sync}.db", msgs, None, sync))
            raw_msgs, raw_rows = _raw_per_step(d / f"raw-{sync}.db", steps, sync)
            out[f"store_msgs_per_s{suffix}"] = store
            out[f"baseline_sqlite_msgs_per_s{suffix}"] = raw_msgs
            out[f"baseline_sqlite_rows_per_s{suffix}"] = raw_rows
            out[f"store_ratio{suffix}"] = store / raw_msgs
        out["store_msgs_per_s_encrypted"] = asyncio.run(
            _through_store(d / "store-encrypted.db", msgs, BENCH_KEY, "full")
        )
        out["baseline_sqlite_batch_rows_per_s"] = _raw_batch(d / "raw-batch.db", steps, "full")
    return out
