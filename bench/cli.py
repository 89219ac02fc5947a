"""`wapa bench` / `python -m wapa.bench`: run the benchmarks, print a Markdown table (and JSON).

Every figure is measured with a baseline in the same run; goals are for a 2-core x86-64 VM
and are reported, never asserted."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from wapa.bench import core_bench
from wapa.bench.compare import spread_text
from wapa.bench.machine import describe

# key -> (goal text, predicate on the value, unit)
GOALS: dict[str, tuple[str, Callable[[float], bool], str]] = {
    "core_msgs_per_s": (">= 200,000", lambda v: v >= 200_000, "msg/s"),
    "core_msgs_ratio": ("<= 25x baseline", lambda v: v <= 25, "x"),
    "core_timer_fires_per_s": (">= 200,000", lambda v: v >= 200_000, "fires/s"),
    "bytes_per_chat": ("<= 4 KiB", lambda v: v <= 4096, "B"),
    "sim_speedup": (">= 100,000", lambda v: v >= 100_000, "sim s / wall s"),
    "store_msgs_per_s": (">= 20,000", lambda v: v >= 20_000, "msg/s"),
    "store_ratio": (">= 0.3 of raw sqlite3", lambda v: v >= 0.3, "x"),
    "runner_overhead_p99_ms": ("<= 20 ms", lambda v: v <= 20, "ms"),
    "loop_lag_p99_ms": ("<= 10 ms", lambda v: v <= 10, "ms"),
    "idle_rss_mb": ("<= 80 MB", lambda v: v <= 80, "MB"),
    "prompt_tokens_full_context": ("report (old design below)", lambda v: True, "tokens"),
}


def _sections(quick: bool) -> list[tuple[str, Callable[[], dict[str, Any]]]]:
    q = quick
    sections: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("core messages", lambda: core_bench.core_msgs_per_s(50_000 if q else 300_000)),
        ("core timers", lambda: core_bench.core_timer_fires_per_s(20_000 if q else 100_000)),
        ("memory per chat", lambda: core_bench.bytes_per_chat(5_000 if q else 100_000)),
        ("prompt size", core_bench.prompt_tokens_full_context),
    ]
    for name, module, func in (
        ("simulation speed", "wapa.bench.sim_bench", "sim_speedup"),
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
    """Every section, `repeat` times in a row; each figure is the median of its runs, and
    `spread[key]` keeps its min, max and number of runs."""
    result: dict[str, Any] = {"quick": quick, "repeat": repeat, **describe()}
    errors: dict[str, str] = {}
    samples: dict[str, list[float]] = {}
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
            for key, value in figures.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    samples.setdefault(key, []).append(value)
                else:
                    result[key] = value
            progress(f"bench: {name}{tag} done in {time.perf_counter() - t0:.1f}s")
    spread: dict[str, dict[str, float]] = {}
    for key, values in samples.items():
        result[key] = statistics.median(values) if len(values) > 1 else values[0]
        spread[key] = {"min": min(values), "max": max(values), "n": len(values)}
    for key in GOALS:
        result.setdefault(key, None)
    result["spread"] = spread
    result["errors"] = errors
    return result


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
        met = "n/a" if v is None else ("yes" if ok(v) else "no")
        lines.append(f"| {key} | {_fmt(v)} {unit}{spread_text(result, key)} | {goal} | {met} |")
    extras = [k for k in result if k.startswith("baseline") or k.endswith("old_design")]
    if extras:
        lines.append("")
        lines.append(
            "Baselines measured in the same run: "
            + ", ".join(f"{k} = {_fmt(result[k])}" for k in extras)
        )
    machine = set(describe()) | {"quick", "errors", "spread", "repeat", "label", "note"}
    others = [k for k in result if k not in GOALS and k not in machine and k not in extras]
    if others:
        lines.append("")
        lines.append("Other figures: " + ", ".join(f"{k} = {_fmt(result[k])}" for k in others))
    for name, err in result.get("errors", {}).items():
        lines.append(f"\n{name}: not measured ({err})")
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
