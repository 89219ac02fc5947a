"""Simulation speed: simulated seconds per wall second for realistic traffic (`sim/fuzz.py`'s
generator: bursts in waking hours, groups, owner replies, media, redeliveries, commands) over
many chats and days, played through `sim/engine.py` with the real core, fake WhatsApp and fake
model.

The baseline, measured in the same run, pushes the same event stream through a bare heapq
loop (no core, no fakes): each message popped in time order is appended to a bounded per-chat
deque. Its speedup is the most a discrete-event loop in pure Python could do with the stream,
so `sim_speedup / baseline_sim_speedup` says what the core and the fakes cost."""

from __future__ import annotations

import gc
import heapq
import time
from collections import deque
from typing import Any

from wapa.sim.fuzz import DAY, Traffic, build_simulation, generate_traffic

SEED = 7


def _run_simulation(traffic: Traffic, faults: bool) -> tuple[float, int]:
    """Wall seconds of `sim.run()` alone (building the simulation is not timed) and steps."""
    sim = build_simulation(traffic, faults=faults, keep_timeline=False)
    gc.collect()
    t0 = time.perf_counter()
    result = sim.run()
    return time.perf_counter() - t0, result.steps


def _run_baseline(traffic: Traffic) -> float:
    """Wall seconds of a bare heapq loop over the same stream (push all, pop in order)."""
    gc.collect()
    t0 = time.perf_counter()
    heap: list[tuple[float, int, Any]] = []
    for seq, (t, m) in enumerate(traffic.messages):
        heapq.heappush(heap, (t, seq, m))
    chats: dict[str, deque[tuple[float, str]]] = {}
    while heap:
        t, _, m = heapq.heappop(heap)
        q = chats.get(m.chat)
        if q is None:
            q = chats[m.chat] = deque(maxlen=10)
        q.append((t, m.text))
    return time.perf_counter() - t0


def sim_speedup(quick: bool, chats: int | None = None, days: float | None = None) -> dict[str, Any]:
    """`sim_speedup` for `chats` chats over `days` days (default 1,000 x 7; quick 1,000 x 1: the same
    density, so the figure is comparable),
    without faults (the traffic alone), plus the same with the fuzzer's faults and crashes
    (each crash round-trips the whole state through JSON) and the bare-loop baseline."""
    chats = chats if chats is not None else 1000
    days = days if days is not None else (1.0 if quick else 7.0)
    traffic = generate_traffic(chats, days, SEED)
    simulated = days * DAY
    wall, steps = _run_simulation(traffic, faults=False)
    wall_faults, _ = _run_simulation(traffic, faults=True)
    base = _run_baseline(traffic)
    return {
        "sim_speedup": simulated / max(wall, 1e-9),
        "sim_speedup_with_faults": simulated / max(wall_faults, 1e-9),
        "baseline_sim_speedup": simulated / max(base, 1e-9),
        "sim_chats": chats,
        "sim_days": days,
        "sim_messages": len(traffic.messages),
        "sim_steps_per_s": steps / max(wall, 1e-9),
    }
