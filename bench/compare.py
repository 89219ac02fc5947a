"""`wapa bench --compare A.json B.json ...`: saved runs side by side.

Each file is a `wapa bench --json` / `--out` result (from any machine). The table has one row
per figure with a goal and one column per run, then the ratio of each run to the first (for a
rate, 0.50 means half as fast) and which goals each machine meets. `--markdown` renders the
same as a Markdown table for a README or a pull request. With `--repeat N` runs, a value shows
its spread (min-max over the runs, as ± percent of the median).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Which way is better, for the figures that have a goal (rates up, times and sizes down).
LOWER_IS_BETTER = {
    "core_msgs_ratio",
    "core_us_per_msg",
    "bytes_per_chat",
    "bytes_per_chat_steady",
    "fuzz_us_per_msg_ratio",
    "fuzz_rss_ratio",
    "runner_cpu_ms_per_msg_at_500",
    "runner_overhead_p99_ms_at_500",
    "help_s",
    "simulate_scenarios_s",
    "runner_overhead_p99_ms",
    "loop_lag_p99_ms",
    "idle_rss_mb",
    "prompt_tokens_full_context",
}


class CompareError(ValueError):
    """A file that is not a saved `wapa bench --json` result."""


def load(path: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CompareError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or "arch" not in data or "python" not in data:
        raise CompareError(f"{path}: not a `wapa bench --json` result (no machine in it)")
    data.setdefault("label", Path(path).stem)
    return data


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def fmt(v: float | None) -> str:
    if v is None:
        return "n/a"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.2f}"


def spread_text(run: dict[str, Any], key: str) -> str:
    """' ±4%' when the run repeated its measurements, else ''."""
    s = run.get("spread", {}).get(key)
    v = _num(run.get(key))
    if not s or not v or s.get("n", 1) < 2:
        return ""
    half = (float(s["max"]) - float(s["min"])) / 2
    return f" ±{100 * half / abs(v):.0f}%"


def machine_line(run: dict[str, Any]) -> str:
    quick = ", quick run" if run.get("quick") else ""
    repeat = f", {run['repeat']} repeats" if run.get("repeat", 1) > 1 else ""
    note = f" ({run['note']})" if run.get("note") else ""
    return (
        f"{run['label']}: {run.get('cpu_model', '?')} ({run['arch']}, {run.get('cores', '?')} "
        f"cores), {run.get('system', '?')}, Python {run['python']} "
        f"{run.get('implementation', '')}".rstrip()
        + quick
        + repeat
        + note
    )


def rows(runs: Sequence[dict[str, Any]], goals: dict[str, tuple[str, Any, str]]) -> list[list[str]]:
    """Header, then one row per figure: figure, goal, each run's value (+ met), ratios."""
    labels = [r["label"] for r in runs]
    head = ["figure", "goal", *labels, *[f"{x} / {labels[0]}" for x in labels[1:]]]
    out = [head]
    for key, (goal, ok, unit) in goals.items():
        values = [_num(r.get(key)) for r in runs]
        if all(v is None for v in values):
            continue
        cells = [key, goal]
        for r, v in zip(runs, values, strict=True):
            met = "" if v is None or goal.startswith("report") else (" ✓" if ok(v) else " ✗")
            cells.append(f"{fmt(v)} {unit}{spread_text(r, key)}{met}" if v is not None else "n/a")
        base = values[0]
        for v in values[1:]:
            cells.append("n/a" if v is None or not base else f"{v / base:.2f}x")
        out.append(cells)
    return out


def goals_met(runs: Sequence[dict[str, Any]], goals: dict[str, tuple[str, Any, str]]) -> str:
    parts = []
    for r in runs:
        judged = [
            k for k, (g, _, _) in goals.items() if not g.startswith("report") and _num(r.get(k))
        ]
        met = sum(bool(goals[k][1](float(r[k]))) for k in judged)
        parts.append(f"{r['label']} meets {met} of {len(judged)} goals")
    return "; ".join(parts)


def render(
    runs: Sequence[dict[str, Any]], goals: dict[str, tuple[str, Any, str]], markdown: bool
) -> str:
    table = rows(runs, goals)
    lines = [("- " if markdown else "") + machine_line(r) for r in runs]
    lines.append("")
    if markdown:
        lines.append("| " + " | ".join(table[0]) + " |")
        lines.append("|" + "---|" * len(table[0]))
        lines.extend("| " + " | ".join(row) + " |" for row in table[1:])
    else:
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        for row in table:
            cells = [
                c.ljust(w) if i < 2 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ]
            lines.append("  ".join(cells).rstrip())
    lines.append("")
    lines.append(
        "✓ / ✗: the goal is met or not (goals are for a 2-core x86-64 VM). The ratio columns "
        "divide by the first run: above 1 is more for rates, and worse for times and sizes "
        "(" + ", ".join(sorted(LOWER_IS_BETTER)) + ")."
    )
    lines.append(goals_met(runs, goals) + ".")
    return "\n".join(lines)
