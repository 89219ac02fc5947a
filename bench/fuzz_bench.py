"""Fuzzer scaling: `wapa fuzz` (`sim.fuzz.run_fuzz`: traffic, faults, crashes, the invariant
checker) for the same chats over a short and a long run, each in a fresh process.

Per message, a linear fuzzer costs the same over 30 days as over 7: `fuzz_us_per_msg_ratio`
is the long run's CPU microseconds per message over the short run's (goal <= 1.2). Its memory
is bounded by a window of the run, not by the whole run: `fuzz_rss_ratio` is the long run's
peak resident memory (`ru_maxrss` of its process) over the short run's (goal <= 1.5), and
`fuzz_run_mb_ratio` the same for the run's own memory (peak minus the RSS once the simulator
is imported, which dominates small runs: the quick sizes show it). Full run: 1,000 chats, 7 and
30 days (the issue's figure); quick: 200 chats, 3 and 12 days (the same 4.3x ratio of days,
roughly)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from wapa.bench.startup_bench import ROOT

_CODE = """
import json, resource, sys, time
from wapa.sim.fuzz import run_fuzz
chats, days = int(sys.argv[1]), float(sys.argv[2])
def vmrss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0
imported = vmrss()
cpu = time.process_time()
report = run_fuzz(chats, days, seed=1)
cpu = time.process_time() - cpu
print(json.dumps({
    "messages": report.messages,
    "cpu_s": cpu,
    "wall_s": report.seconds,
    "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "imported_mb": imported,
    "violations": len(report.violations),
}))
"""


def one_run(chats: int, days: float) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _CODE, str(chats), str(days)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def fuzz_figures(quick: bool, chats: int | None = None) -> dict[str, Any]:
    chats = chats if chats is not None else (200 if quick else 1000)
    short_days, long_days = (3.0, 12.0) if quick else (7.0, 30.0)
    short = one_run(chats, short_days)
    long = one_run(chats, long_days)
    per_msg_short = short["cpu_s"] / max(short["messages"], 1) * 1e6
    per_msg_long = long["cpu_s"] / max(long["messages"], 1) * 1e6
    return {
        "fuzz_chats": chats,
        "fuzz_days_short": short_days,
        "fuzz_days_long": long_days,
        "fuzz_messages_long": long["messages"],
        "fuzz_us_per_msg_short": per_msg_short,
        "fuzz_us_per_msg_long": per_msg_long,
        "fuzz_us_per_msg_ratio": per_msg_long / max(per_msg_short, 1e-9),
        "fuzz_wall_s_long": long["wall_s"],
        "fuzz_rss_mb_short": short["maxrss_mb"],
        "fuzz_rss_mb_long": long["maxrss_mb"],
        "fuzz_rss_ratio": long["maxrss_mb"] / max(short["maxrss_mb"], 1e-9),
        # the run's own memory: peak RSS above the process's RSS once the simulator was imported
        "fuzz_run_mb_short": short["maxrss_mb"] - short["imported_mb"],
        "fuzz_run_mb_long": long["maxrss_mb"] - long["imported_mb"],
        "fuzz_run_mb_ratio": (long["maxrss_mb"] - long["imported_mb"])
        / max(short["maxrss_mb"] - short["imported_mb"], 1e-9),
        "fuzz_violations": short["violations"] + long["violations"],
    }
