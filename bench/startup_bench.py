"""Start-up figures: `wapa --help` and `wapa simulate scenarios/`, each a fresh process.

Each command runs `runs` times, alternating with the same-run baseline (a bare `python -c
pass`), and the figure is the median: wall seconds (`help_s`, `simulate_scenarios_s`, the
goals) and the children's CPU seconds (`*_cpu_s`, from `getrusage(RUSAGE_CHILDREN)`), which
other work on a busy machine disturbs much less than the wall clock. The process starts the
way the `wapa` console script does (`from wapa.cli import main`). Each command first runs once
uncounted, with `PYTHONDONTWRITEBYTECODE` dropped from the children's environment, so the
figures are of a tree whose bytecode is compiled (as pip leaves an install), not of compiling
changed modules from source at each start (`simulate` with nothing compiled: about 1.0 s CPU
instead of 0.5 on the build VM)."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
_WAPA = "import sys\nfrom wapa.cli import main\nsys.exit(main())"


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of `argv`, output discarded."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WAPA_", "GITHUB_")) and k != "PYTHONDONTWRITEBYTECODE"
    }
    cpu0, t0 = _children_cpu(), time.perf_counter()
    subprocess.run(
        argv,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return time.perf_counter() - t0, _children_cpu() - cpu0


def wapa(*args: str) -> list[str]:
    return [sys.executable, "-c", _WAPA, *args]


def startup_figures(quick: bool, runs: int | None = None) -> dict[str, Any]:
    runs = runs if runs is not None else (5 if quick else 9)
    commands = {
        "baseline_python": [sys.executable, "-c", "pass"],
        "help": wapa("--help"),
        "simulate_scenarios": wapa("simulate", str(SCENARIOS)),
    }
    for argv in commands.values():  # uncounted: bytecode written, caches warm
        timed(argv)
    samples: dict[str, list[float]] = {}
    for _ in range(runs):
        for name, argv in commands.items():
            wall, cpu = timed(argv)
            samples.setdefault(f"{name}_s", []).append(wall)
            samples.setdefault(f"{name}_cpu_s", []).append(cpu)
    out: dict[str, Any] = {k: statistics.median(v) for k, v in samples.items()}
    out["help_cpu_ratio"] = out["help_cpu_s"] / max(out["baseline_python_cpu_s"], 1e-9)
    out["_samples"] = samples
    return out
