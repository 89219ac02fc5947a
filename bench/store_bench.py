"""Store throughput: messages persisted per second through `adapters/store` as the runner does
it, on a real SQLite file in a temporary directory.

The runner commits by groups (group commit): the events already queued, up to `STORE_BATCH`
(256, the runner's `_BATCH_MAX`) steps, go through the shared driver and are saved as ONE
batch (`Driver.take_batch` then `Store.save`), one committed WAL transaction.
`store_msgs_per_s` is that path: 1,000 chats, one batch per 256 messages, only `take_batch`
(the snapshot of the changed chats' state) and `save` timed (the core's own cost is
`core_msgs_per_s`). The baseline, in the same run, writes the same rows (the same JSON chat
states, each changed chat once per group, the global row once per group, one trace row per
decision; computed beforehand by an identical assistant) with the standard library's
`sqlite3`: same schema, same pragmas, the same one transaction per group, `executemany` per
table. So `store_ratio` is what the store's own layer costs (exporting and encoding the
state, sealing, aiosqlite's thread hop), with the commit cost durability requires on both
sides. Both start after a `gc.collect()`. The grouped figures are medians of `ROUNDS`
rounds, each the store then its baseline (a burst of load on a shared machine hits both),
`store_ratio` the median of each round's ratio; every round is kept in `_samples`. Wall time
is what a runner waits for; CPU time (`*_cpu_us_per_msg`, this process's, the store's
thread included) is what a busy machine distorts least, `store_export_cpu_us_per_msg` is
the share of `take_batch` (the core exporting the changed chats) and
`store_thread_cpu_us_per_msg` the share of aiosqlite's thread (SQLite's own work, the raw
baseline's counterpart; the rest is the event loop's: exporting, encoding, sealing).
`*_per_message` repeats both with one transaction per message (a runner that is not under
load commits every step alone); `baseline_sqlite_batch_rows_per_s` writes every row in a
single transaction. Both sides run the same migrations, so the same schema."""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import sqlite3
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wapa.adapters.store import Store
from wapa.adapters.store.schema import SCHEMA_VERSION, script
from wapa.bench.core_bench import PERSONA, START, traffic
from wapa.core import Assistant, Decision, Message, Policy
from wapa.core.driver import Driver, NullWorld
from wapa.runner import _BATCH_MAX

# A fixed raw key (base64 of 32 bytes): a passphrase would add scrypt at open, not per step.
BENCH_KEY = base64.b64encode(bytes(range(32))).decode()
CHATS = 1000
STORE_BATCH = _BATCH_MAX
ROUNDS = 3  # store then baseline, alternating; medians

# the rows of one commit: chat rows, the global row, its time, trace rows
Rows = tuple[list[tuple[str, bytes, float, float | None]], bytes, float, list[tuple[Any, ...]]]


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _groups(msgs: list[Message], batch: int) -> list[list[tuple[int, Message]]]:
    indexed = list(enumerate(msgs))
    return [indexed[i : i + batch] for i in range(0, len(indexed), batch)]


@dataclass(frozen=True, slots=True)
class Timed:
    """One run: messages per wall second, and CPU microseconds per message (this process's,
    every thread); `export_us` the share of `take_batch` (0 for the baseline), `thread_us`
    the share of threads other than the event loop's: aiosqlite's, where SQLite runs."""

    msgs_per_s: float
    cpu_us: float
    export_us: float = 0.0
    thread_us: float = 0.0


async def _through_store(
    path: Path, msgs: list[Message], key: str | None, sync: str, batch: int
) -> Timed:
    """`take_batch` + `save` (timed alone), one batch per `batch` messages."""
    store = await Store.open(path, key, sync=sync)
    try:
        driver = Driver(Assistant(Policy(), PERSONA, seed=1), NullWorld())
        spent = cpu = export = loop = 0.0
        clock, process, thread = time.perf_counter, time.process_time, time.thread_time
        gc.collect()
        for group in _groups(msgs, batch):
            for i, m in group:
                driver.feed(m, START + i * 0.01)
            t0, c0, e0 = clock(), process(), thread()
            taken = driver.take_batch()
            e1 = thread()
            assert taken is not None
            await store.save(taken)
            spent += clock() - t0
            cpu += process() - c0
            loop += thread() - e0
            export += e1 - e0
            driver.committed(taken)
    finally:
        await store.close()
    n = len(msgs)
    return Timed(n / max(spent, 1e-9), cpu / n * 1e6, export / n * 1e6, (cpu - loop) / n * 1e6)


def _rows(msgs: list[Message], batch: int) -> list[Rows]:
    """The rows each commit writes (unencrypted), from an identical assistant."""
    a = Assistant(Policy(), PERSONA, seed=1)
    out: list[Rows] = []
    for group in _groups(msgs, batch):
        traces: list[tuple[Any, ...]] = []
        now = START
        for i, m in group:
            now = START + i * 0.01
            traces += [
                (e.t, e.chat, e.code, e.request_id, e.detail.encode())
                for e in a.handle(m, now)
                if isinstance(e, Decision)
            ]
        chats = []
        for cid in a.take_dirty():
            chat = a.export_chat(cid)
            oldest = min((float(e[0]) for e in chat.get("context") or []), default=None)
            chats.append((cid, _dumps(chat), now, oldest))
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
    db.execute("PRAGMA auto_vacuum = INCREMENTAL")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {sync.upper()}")
    db.execute("PRAGMA secure_delete = ON")
    for version in range(1, SCHEMA_VERSION + 1):
        db.executescript(script(version))
    return db


def _raw_grouped(path: Path, commits: list[Rows], messages: int, sync: str) -> tuple[Timed, float]:
    """(the run, rows per second) with one transaction per commit."""
    db = _raw_db(path, sync)
    rows = sum(len(c) + 1 + len(t) for c, _, _, t in commits)
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    for chats, meta, now, traces in commits:
        db.execute("BEGIN IMMEDIATE")
        db.executemany(_UPSERT_CHAT, chats)
        db.execute(_UPSERT_META, (meta, now))
        if traces:
            db.executemany(_TRACE, traces)
        db.execute("COMMIT")
    spent = max(time.perf_counter() - t0, 1e-9)
    cpu = time.process_time() - c0
    db.close()
    return Timed(messages / spent, cpu / messages * 1e6), rows / spent


def _raw_batch(path: Path, commits: list[Rows], sync: str) -> float:
    """Rows per second with every row in one transaction (one executemany per table)."""
    db = _raw_db(path, sync)
    chats = [row for c, _, _, _ in commits for row in c]
    metas = [(meta, now) for _, meta, now, _ in commits]
    traces = [row for _, _, _, t in commits for row in t]
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


def store_msgs_per_s(quick: bool, n: int | None = None, rounds: int = ROUNDS) -> dict[str, Any]:
    """The store figures for `n` messages over 1,000 chats (default 10,000; quick 2,000),
    committed in groups of `STORE_BATCH`, with the store's default durability
    (synchronous=FULL, as `wapa run` uses), with NORMAL and encrypted; and with one message
    per transaction over a fifth of them (at least 100, at most 1,000). `rounds` rounds, each
    of every figure, the store then its baseline; medians, every round in `_samples`."""
    n = n if n is not None else (2_000 if quick else 10_000)
    msgs = traffic(n, CHATS, seed=4)
    grouped = _rows(msgs, STORE_BATCH)
    single_msgs = msgs[: max(min(n, 100), min(n // 5, 1_000))]
    single = _rows(single_msgs, 1)
    out: dict[str, Any] = {"store_messages": n, "store_batch": STORE_BATCH, "store_rounds": rounds}
    samples: dict[str, list[float]] = {}

    def keep(suffix: str, store: Timed, raw: Timed) -> None:
        for key, value in (
            ("store_msgs_per_s", store.msgs_per_s),
            ("baseline_sqlite_msgs_per_s", raw.msgs_per_s),
            ("store_ratio", store.msgs_per_s / raw.msgs_per_s),
            ("store_cpu_us_per_msg", store.cpu_us),
            ("store_export_cpu_us_per_msg", store.export_us),
            ("store_thread_cpu_us_per_msg", store.thread_us),
            ("baseline_sqlite_cpu_us_per_msg", raw.cpu_us),
            ("store_cpu_ratio", raw.cpu_us / max(store.cpu_us, 1e-9)),
        ):
            samples.setdefault(key + suffix, []).append(value)

    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="wapa-bench-") as tmp:
            d = Path(tmp)
            for sync, suffix in (("full", ""), ("normal", "_sync_normal")):
                store = asyncio.run(
                    _through_store(d / f"store-{sync}.db", msgs, None, sync, STORE_BATCH)
                )
                raw, raw_rows = _raw_grouped(d / f"raw-{sync}.db", grouped, n, sync)
                keep(suffix, store, raw)
                samples.setdefault(f"baseline_sqlite_rows_per_s{suffix}", []).append(raw_rows)
            encrypted = asyncio.run(
                _through_store(d / "store-encrypted.db", msgs, BENCH_KEY, "full", STORE_BATCH)
            )
            samples.setdefault("store_msgs_per_s_encrypted", []).append(encrypted.msgs_per_s)
            one = asyncio.run(_through_store(d / "store-single.db", single_msgs, None, "full", 1))
            raw, _ = _raw_grouped(d / "raw-single.db", single, len(single_msgs), "full")
            keep("_per_message", one, raw)
    with tempfile.TemporaryDirectory(prefix="wapa-bench-") as tmp:
        out["baseline_sqlite_batch_rows_per_s"] = _raw_batch(
            Path(tmp) / "raw-batch.db", grouped, "full"
        )
    out.update({key: statistics.median(values) for key, values in samples.items()})
    out["_samples"] = samples
    return out
