"""`wapa bench` / `python -m wapa.bench`: run the benchmarks, print a Markdown table (and JSON).

Every figure is measured with a baseline in the same run; goals are for a 2-core x86-64 VM
and are reported, never asserted."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from wapa.bench.compare import spread_text
from wapa.bench.machine import describe

# key -> (goal text, predicate on the value, unit). A goal starting with "report" is only
# reported: no "met" is shown for it.
GOALS: dict[str, tuple[str, Callable[[float], bool], str]] = {
    "core_us_per_msg": ("<= 7 µs CPU", lambda v: v <= 7, "µs"),
    "core_msgs_ratio": ("<= 10x baseline", lambda v: v <= 10, "x"),
    "core_msgs_per_s": ("report (CPU time)", lambda v: True, "msg/s"),
    "core_timer_fires_per_s": ("report (CPU time)", lambda v: True, "fires/s"),
    "bytes_per_chat_steady": ("<= 4 KiB", lambda v: v <= 4096, "B"),
    "bytes_per_chat": ("report (10 messages)", lambda v: True, "B"),
    "sim_speedup": (">= 100,000", lambda v: v >= 100_000, "sim s / wall s"),
    "fuzz_us_per_msg_ratio": ("<= 1.2 (linear in days)", lambda v: v <= 1.2, "x"),
    "fuzz_rss_ratio": ("<= 1.5 (bounded by a window)", lambda v: v <= 1.5, "x"),
    "store_msgs_per_s": ("report", lambda v: True, "msg/s"),
    "store_ratio": (">= 0.8 of raw sqlite3", lambda v: v >= 0.8, "x"),
    "runner_cpu_ms_per_msg_at_500": ("<= 2 ms", lambda v: v <= 2, "ms"),
    "runner_overhead_p99_ms_at_500": ("<= 10 ms (keeps up at 500 msg/s)", lambda v: v <= 10, "ms"),
    "runner_overhead_p99_ms": ("<= 20 ms", lambda v: v <= 20, "ms"),
    "loop_lag_p99_ms": ("<= 10 ms", lambda v: v <= 10, "ms"),
    "help_s": ("<= 0.06 s", lambda v: v <= 0.06, "s"),
    "simulate_scenarios_s": ("<= 0.25 s", lambda v: v <= 0.25, "s"),
    "idle_rss_mb": ("<= 70 MB", lambda v: v <= 70, "MB"),
    "prompt_tokens_full_context": ("report (old design below)", lambda v: True, "tokens"),
}


def reported_only(goal: str) -> bool:
    return goal.startswith("report")


def _sections(quick: bool) -> list[tuple[str, Callable[[], dict[str, Any]]]]:
    q = quick
    sections: list[tuple[str, Callable[[], dict[str, Any]]]] = []
    for name, module, func in (
        ("core messages", "wapa.bench.core_bench", "core_messages"),
        ("core timers", "wapa.bench.core_bench", "core_timers"),
        ("memory per chat", "wapa.bench.core_bench", "memory_per_chat"),
        ("prompt size", "wapa.bench.core_bench", "prompt_size"),
        ("start-up", "wapa.bench.startup_bench", "startup_figures"),
        ("simulation speed", "wapa.bench.sim_bench", "sim_speedup"),
        ("fuzz scaling", "wapa.bench.fuzz_bench", "fuzz_figures"),
        ("store", "wapa.bench.store_bench", "store_msgs_per_s"),
        ("runner", "wapa.bench.runner_bench", "runner_figures"),
    ):
        sections.append((name, _lazy(module, func, q)))
    return sections


def _lazy(module: str, func: str, quick: bool) -> Callable[[], dict[str, Any]]:
    def run() -> dict[str, Any]:
        import importlib

        return getattr(importlib.import_module(module), func)(quick=quick)

    return run


def run(quick: bool, progress: Callable[[str], None], repeat: int = 1) -> dict[str, Any]:
    """Every section, `repeat` times in a row; each figure is the median of its samples (a
    section may take several itself: `_samples`), and `spread[key]` keeps their min, max and
    number. The load average is read before and after every section: a machine busy with
    other work is flagged (`noisy`)."""
    result: dict[str, Any] = {"quick": quick, "repeat": repeat, **describe()}
    errors: dict[str, str] = {}
    samples: dict[str, list[float]] = {}
    loads: list[float] = [load_average()]
    for name, fn in _sections(quick):
        for i in range(repeat):
            tag = f" ({i + 1}/{repeat})" if repeat > 1 else ""
            progress(f"bench: {name}{tag} ...")
            t0 = time.perf_counter()
            try:
                figures = fn()
            except Exception as exc:  # one broken section must not hide the others
                errors[name] = f"{type(exc).__name__}: {exc}"
                break
            inner: dict[str, list[float]] = figures.pop("_samples", {})
            for key, value in figures.items():
                if key in inner:
                    samples.setdefault(key, []).extend(inner[key])
                elif isinstance(value, int | float) and not isinstance(value, bool):
                    samples.setdefault(key, []).append(value)
                else:
                    result[key] = value
            loads.append(load_average())
            progress(
                f"bench: {name}{tag} done in {time.perf_counter() - t0:.1f}s "
                f"(load average {loads[-1]:.2f})"
            )
    spread: dict[str, dict[str, float]] = {}
    for key, values in samples.items():
        result[key] = statistics.median(values)
        spread[key] = {"min": min(values), "max": max(values), "n": len(values)}
    for key in GOALS:
        result.setdefault(key, None)
    result["spread"] = spread
    result["errors"] = errors
    result["load_average"] = {
        "min": min(loads),
        "max": max(loads),
        "median": statistics.median(loads),
    }
    result["noisy"] = noisy(loads, int(result["cores"]))
    if result["noisy"]:
        progress(noisy_warning(result))
    return result


def load_average() -> float:
    """The 1-minute load average (0.0 where the system has none)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


def noisy(loads: list[float], cores: int) -> bool:
    """Other work was running: the load average went above what this benchmark adds itself
    (one busy thread, plus the subprocesses of the runner section) on more than a core's worth
    of the machine."""
    return max(loads, default=0.0) > max(1.5, cores - 0.5)


def noisy_warning(result: dict[str, Any]) -> str:
    la = result.get("load_average") or {}
    return (
        f"WARNING: the machine was busy with other work (load average {la.get('min', 0):.2f}-"
        f"{la.get('max', 0):.2f} on {result.get('cores', '?')} cores): absolute figures are "
        "low and noisy; read the ratios to the same-run baselines and the spreads"
    )


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"
    return str(v)


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Machine: {result['cpu_model']} ({result['arch']}, {result['cores']} cores), "
        f"Python {result['python']}{' (quick run)' if result['quick'] else ''}",
        "",
        "| figure | value | goal | met |",
        "|---|---|---|---|",
    ]
    for key, (goal, ok, unit) in GOALS.items():
        v = result.get(key)
        met = "" if reported_only(goal) else "n/a" if v is None else ("yes" if ok(v) else "no")
        lines.append(f"| {key} | {_fmt(v)} {unit}{spread_text(result, key)} | {goal} | {met} |")
    extras = [k for k in result if k.startswith("baseline") or k.endswith("old_design")]
    if extras:
        lines.append("")
        lines.append(
            "Baselines measured in the same run: "
            + ", ".join(f"{k} = {_fmt(result[k])}" for k in extras)
        )
    machine = set(describe()) | {
        "quick",
        "errors",
        "spread",
        "repeat",
        "label",
        "note",
        "load_average",
        "noisy",
    }
    others = [k for k in result if k not in GOALS and k not in machine and k not in extras]
    if others:
        lines.append("")
        lines.append("Other figures: " + ", ".join(f"{k} = {_fmt(result[k])}" for k in others))
    for name, err in result.get("errors", {}).items():
        lines.append(f"\n{name}: not measured ({err})")
    la = result.get("load_average")
    if la:
        lines.append("")
        lines.append(
            f"Load average during the run: {la['min']:.2f}-{la['max']:.2f} (median {la['median']:.2f})."
        )
    if result.get("noisy"):
        lines.append("")
        lines.append(noisy_warning(result))
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="smaller sizes; finishes in under a minute")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--out", metavar="FILE", help="also write the JSON result to FILE")
    p.add_argument(
        "--soak",
        type=float,
        metavar="SECONDS",
        help="drive the runner this long and report memory growth",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run every section N times: each figure is the median, with its spread (min-max)",
    )
    p.add_argument("--label", help="a name for this machine in --compare tables (e.g. pi5)")
    p.add_argument("--note", help="a note kept with the result (e.g. 'emulated', 'SD card')")
    p.add_argument(
        "--compare",
        nargs="+",
        metavar="FILE.json",
        help="print saved --json/--out results side by side (no benchmark is run)",
    )
    p.add_argument(
        "--markdown",
        action="store_true",
        help="with --compare: a Markdown table (for a README or a pull request)",
    )


def main_args(args: argparse.Namespace) -> int:
    if args.compare:
        from wapa.bench.compare import CompareError, load, render

        try:
            runs = [load(path) for path in args.compare]
        except CompareError as exc:
            print(f"wapa bench --compare: {exc}", file=sys.stderr)
            return 1
        print(render(runs, GOALS, args.markdown))
        return 0
    if args.repeat < 1:
        print("wapa bench: --repeat must be at least 1", file=sys.stderr)
        return 1
    tty = sys.stderr.isatty()

    def progress(msg: str) -> None:
        if tty or not args.json:
            print(msg, file=sys.stderr, flush=True)

    if args.soak is not None:
        from wapa.bench.runner_bench import BenchError, soak

        try:
            result: dict[str, Any] = {**describe(), **soak(args.soak, progress)}
        except (BenchError, OSError) as exc:
            print(f"wapa bench --soak: {exc}", file=sys.stderr)
            return 1
    else:
        result = run(args.quick, progress, args.repeat)
    for key in ("label", "note"):
        if getattr(args, key):
            result[key] = getattr(args, key)
    text = json.dumps(result, indent=None if args.json else 2, sort_keys=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    if args.json:
        print(text)
    else:
        print(soak_markdown(result) if args.soak is not None else markdown(result))
    return 0


def soak_markdown(result: dict[str, Any]) -> str:
    growth = result.get("soak_rss_growth_pct")
    met = "n/a" if growth is None else ("yes" if growth < 5 else "no")
    return "\n".join(
        [
            f"Machine: {result['cpu_model']} ({result['arch']}, {result['cores']} cores), "
            f"Python {result['python']}",
            "",
            f"Soak: {_fmt(result['soak_seconds'])} s, {result['soak_messages']} messages in, "
            f"{result['soak_replies']} replies out",
            "",
            "| rss at launch | rss after warm-up | rss at end | max | growth | goal | met |",
            "|---|---|---|---|---|---|---|",
            f"| {_fmt(result['soak_rss_launch_mb'])} MB | {_fmt(result['soak_rss_start_mb'])} MB "
            f"| {_fmt(result['soak_rss_end_mb'])} MB | {_fmt(result['soak_rss_max_mb'])} MB "
            f"| {_fmt(growth)} % | < 5 % over 10 minutes | {met} |",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wapa.bench", description=__doc__)
    add_arguments(p)
    return main_args(p.parse_args(argv))
