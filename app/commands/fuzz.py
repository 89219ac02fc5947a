"""`wapa fuzz --chats N --days D --seed S`: seeded random traffic with the invariants checked.

Many seeds: `--seeds 1-1000 [--jobs N] [--shard K/M] [--junit FILE.xml]` runs each seed as its
own run across N processes (default: every core) and prints the failing seeds with their replay
command; `--shard K/M` keeps every M-th seed from the K-th, for a CI matrix; `--merge A.json
B.json ...` joins the shards' `--json` outputs into one result (JSON and/or JUnit). Each seed's
run depends only on its seed and the settings, so the results are the same whatever N and M.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from wapa.core.digest import counted

_SHOWN = 25


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "fuzz",
        help="simulate seeded random traffic and check the assistant's invariants",
        description=(
            "Generate realistic traffic (direct and group chats, bursts, owner replies, urgent "
            "messages, redeliveries, crashes, model and send failures) from a seed and check "
            "the invariants continuously. Exit status 1 if any is broken; the printed command "
            "replays the run exactly."
        ),
    )
    p.add_argument("--chats", type=_positive, default=200, help="number of chats (default 200)")
    p.add_argument("--days", type=_days, default=7.0, help="simulated days (default 7)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--policy", metavar="FILE.yaml", help="policy settings (a YAML mapping)")
    p.add_argument(
        "--store",
        nargs="?",
        const="",
        metavar="FILE.db",
        help="commit every step to a SQLite store and restart from it at each crash; FILE.db "
        "must not exist (kept afterwards); without it a temporary file is used",
    )
    p.add_argument(
        "--crash-rate",
        type=_probability,
        default=0.0,
        metavar="P",
        help="after each step, with probability P, also crash within the next second (default 0)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--seeds",
        metavar="RANGE",
        help="run many seeds, each its own run: 1-1000, or 1,5,10-20 (instead of --seed)",
    )
    p.add_argument(
        "--jobs",
        type=_positive,
        default=None,
        metavar="N",
        help="with --seeds: processes to run seeds in (default: every core)",
    )
    p.add_argument(
        "--shard",
        metavar="K/M",
        help="with --seeds: run only shard K of M (every M-th seed from the K-th), for CI matrices",
    )
    p.add_argument(
        "--junit", metavar="FILE.xml", help="also write a JUnit XML report (one test per seed)"
    )
    p.add_argument(
        "--github",
        action="store_true",
        help="also print failing seeds as GitHub Actions ::error annotations "
        "(on by default when GITHUB_ACTIONS=true)",
    )
    p.add_argument(
        "--merge",
        nargs="+",
        metavar="FILE.json",
        help="join the --json outputs of --seeds runs (e.g. the shards of a CI matrix) into one "
        "result; with --json and/or --junit",
    )
    p.set_defaults(func=run)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _within(what: str, low: float, high: float, *, low_open: bool = False) -> Any:
    """An argparse type: a number from `low` (excluded with `low_open`) to `high`."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not (low < value if low_open else low <= value) or value > high:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}, got {value}")
        return value

    return parse


_days = _within("a number of days", 0, 3650, low_open=True)
_probability = _within("a number from 0 to 0.5", 0.0, 0.5)


POLICY_MAX_BYTES = 1_000_000  # a policy file is small


def _load_policy(path: str) -> Any:
    """`--policy FILE`: a YAML mapping of policy settings, read through the bounded loader
    (`adapters/safe_yaml.py`: size, aliases, depth and integers bounded, as for scenarios);
    any problem exits with `wapa fuzz: FILE:LINE: what`."""
    from wapa.adapters.safe_yaml import SafeYAMLError, load_yaml_file
    from wapa.core.policy import Policy, PolicyError

    try:
        data = load_yaml_file(path, max_bytes=POLICY_MAX_BYTES)
    except SafeYAMLError as exc:
        raise SystemExit(f"wapa fuzz: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SystemExit(f"wapa fuzz: {path}: expected a mapping of policy settings")
    try:
        return Policy.from_mapping(data)
    except (PolicyError, TypeError) as exc:
        raise SystemExit(f"wapa fuzz: {path}: {exc}") from None


def replay_command(args: argparse.Namespace, seed: int | None = None) -> str:
    days = f"{args.days:g}"
    seed = args.seed if seed is None else seed
    cmd = f"wapa fuzz --chats {args.chats} --days {days} --seed {seed}"
    cmd += f" --policy {args.policy}" if args.policy else ""
    cmd += " --store" if args.store is not None else ""
    return cmd + (f" --crash-rate {args.crash_rate:g}" if args.crash_rate else "")


def _fuzz(args: argparse.Namespace, policy: Any) -> Any:
    import tempfile
    from pathlib import Path

    from wapa.sim.fuzz import run_fuzz

    if args.store is None:
        return run_fuzz(args.chats, args.days, args.seed, policy, crash_rate=args.crash_rate)
    if args.store:
        if Path(args.store).exists():
            raise SystemExit(f"wapa fuzz: --store {args.store}: the file exists; give a new one")
        return run_fuzz(
            args.chats, args.days, args.seed, policy, store=args.store, crash_rate=args.crash_rate
        )
    with tempfile.TemporaryDirectory(prefix="wapa-fuzz-") as tmp:
        return run_fuzz(
            args.chats,
            args.days,
            args.seed,
            policy,
            store=Path(tmp) / "fuzz.db",
            crash_rate=args.crash_rate,
        )


def _report_json(report: Any, replay: str) -> dict[str, Any]:
    return {
        "seed": report.seed,
        "chats": report.chats,
        "days": report.days,
        "messages": report.messages,
        "sent": report.sent,
        "decisions": report.decisions,
        "crashes": report.crashes,
        "commits": report.commits,
        "ok": report.ok,
        "replay": replay,
        "violations": [
            {"t": v.t, "chat": v.chat, "rule": v.rule, "detail": v.detail}
            for v in report.violations
        ],
    }


def run(args: argparse.Namespace) -> int:
    if args.merge:
        return _merge(args)
    if args.seeds is not None:
        return _run_many(args)
    for option in ("jobs", "shard"):
        if getattr(args, option) is not None:
            raise SystemExit(f"wapa fuzz: --{option} needs --seeds")
    policy = _load_policy(args.policy) if args.policy else None
    report = _fuzz(args, policy)
    replay = replay_command(args)
    if args.junit or args.github or _github_actions():
        run_json = {**_report_json(report, replay), "seconds": report.seconds}
        _ci_outputs(args, [run_json], _settings(args))
    if args.json:
        out = _report_json(report, replay)
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        return 0 if report.ok else 1

    days = f"{report.days:g} day{'' if report.days == 1 else 's'}"
    print(
        f"fuzz seed {report.seed}: {counted(report.chats, 'chat')}, {days}, "
        f"{counted(report.messages, 'message')} in, {counted(report.sent, 'reply', 'replies')}, "
        f"{counted(report.crashes, 'crash', 'crashes')}, {counted(report.decisions, 'decision')}, "
        f"{counted(len(report.violations), 'invariant violation')} ({report.seconds:.1f} s)"
        + (f"; {counted(report.commits, 'step')} committed to the store" if report.commits else "")
    )
    if report.ok:
        return 0
    for v in report.violations[:_SHOWN]:
        when = _utc_text(v.t)
        print(f"  {when}  {v.chat}  {v.rule}: {v.detail}")
    if len(report.violations) > _SHOWN:
        print(f"  ... and {len(report.violations) - _SHOWN} more")
    print(f"FAILED with seed {report.seed}; replay exactly with:\n  {replay}")
    return 1


def _utc_text(t: float) -> str:
    from wapa.core import utc_text  # imported when needed: `wapa --help` stays fast

    return utc_text(t)


# ---------------------------------------------------------------- many seeds


def _github_actions() -> bool:
    from wapa.sim.junit import github_actions

    return github_actions()


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """What must be equal for two results to be merged."""
    return {
        "chats": args.chats,
        "days": args.days,
        "policy": args.policy,
        "store": args.store is not None,
        "crash_rate": args.crash_rate,
    }


def seeds_text(seeds: list[int]) -> str:
    """[1, 2, 3, 7, 9, 10] -> "1-3,7,9-10"."""
    parts: list[str] = []
    ordered = sorted(seeds)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def _summary_json(
    settings: dict[str, Any], runs: list[dict[str, Any]], shard: str | None
) -> dict[str, Any]:
    failed = [r["seed"] for r in runs if not r["ok"]]
    return {
        **settings,
        "seeds": seeds_text([r["seed"] for r in runs]),
        "shard": shard,
        "count": len(runs),
        "passed": len(runs) - len(failed),
        "failed": len(failed),
        "failed_seeds": failed,
        "ok": not failed,
        "runs": runs,
    }


def _ci_outputs(args: argparse.Namespace, runs: list[dict[str, Any]], settings: Any) -> None:
    """--junit and --github (or GITHUB_ACTIONS=true) for any number of seed runs."""
    if args.junit:
        from wapa.sim.junit import fuzz_junit

        props = {k: "" if v is None else str(v) for k, v in settings.items()}
        try:
            with open(args.junit, "w", encoding="utf-8") as f:
                f.write(fuzz_junit(runs, props))
        except OSError as exc:
            raise SystemExit(f"wapa fuzz: cannot write {args.junit}: {exc}") from None
    if args.github or _github_actions():
        from wapa.sim.junit import workflow_error

        stream = sys.stderr if args.json else sys.stdout
        for r in runs:
            if not r["ok"]:
                first = r["violations"][0]
                text = (
                    f"{counted(len(r['violations']), 'invariant violation')}, first: {first['rule']}: "
                    f"{first['detail']}\nreplay: {r['replay']}"
                )
                print(workflow_error(text, title=f"wapa fuzz seed {r['seed']}"), file=stream)


def _print_many(summary: dict[str, Any], jobs: int | None, seconds: float) -> None:
    where = f" (shard {summary['shard']})" if summary["shard"] else ""
    procs = f", {counted(jobs, 'job')}" if jobs else ""
    print(
        f"fuzz seeds {summary['seeds'] or '-'}{where}: {summary['chats']} chats, "
        f"{summary['days']:g} days each{procs}: {summary['passed']} passed, "
        f"{summary['failed']} failed ({seconds:.1f} s)"
    )
    failing = [r for r in summary["runs"] if not r["ok"]]
    for r in failing[:_SHOWN]:
        print(f"FAILED seed {r['seed']}: {counted(len(r['violations']), 'invariant violation')}")
        for v in r["violations"][:3]:
            print(f"  {_utc_text(v['t'])}  {v['chat']}  {v['rule']}: {v['detail']}")
        print(f"  replay: {r['replay']}")
    if len(failing) > _SHOWN:
        print(f"... and {len(failing) - _SHOWN} more failing seeds")
    if failing:
        print("failing seeds: " + seeds_text([r["seed"] for r in failing]))


def _run_many(args: argparse.Namespace) -> int:
    import tempfile
    import time

    from wapa.sim.fuzz import (
        FuzzJob,
        SeedError,
        default_jobs,
        parse_seeds,
        parse_shard,
        run_seeds,
        shard_seeds,
    )

    try:
        seeds = parse_seeds(args.seeds)
        shard = parse_shard(args.shard) if args.shard else None
    except SeedError as exc:
        raise SystemExit(f"wapa fuzz: {exc}") from None
    if args.store:
        raise SystemExit(
            "wapa fuzz: with --seeds, --store takes no file (each seed gets a temporary one)"
        )
    if shard:
        seeds = shard_seeds(seeds, *shard)
    policy = _load_policy(args.policy) if args.policy else None
    jobs = args.jobs or default_jobs()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="wapa-fuzz-") as tmp:
        store_dir = tmp if args.store is not None else None
        work = [
            FuzzJob(args.chats, args.days, s, policy, args.crash_rate, store_dir) for s in seeds
        ]
        reports = run_seeds(work, jobs)
    seconds = time.perf_counter() - began
    runs = [
        {**_report_json(r, replay_command(args, r.seed)), "seconds": round(r.seconds, 3)}
        for r in reports
    ]
    summary = _summary_json(_settings(args), runs, args.shard)
    _ci_outputs(args, runs, _settings(args))
    if args.json:
        sys.stdout.write(json.dumps(summary, ensure_ascii=False) + "\n")
    else:
        _print_many(summary, jobs, seconds)
    return 0 if summary["ok"] else 1


def _merge(args: argparse.Namespace) -> int:
    """Join several `--seeds ... --json` results (shards) into one."""
    settings: dict[str, Any] | None = None
    by_seed: dict[int, dict[str, Any]] = {}
    for path in args.merge:
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as exc:
            raise SystemExit(f"wapa fuzz --merge: cannot read {path}: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
            raise SystemExit(f"wapa fuzz --merge: {path} is not the --json output of a --seeds run")
        these = {k: data.get(k) for k in ("chats", "days", "policy", "store", "crash_rate")}
        if settings is None:
            settings = these
        elif these != settings:
            raise SystemExit(
                f"wapa fuzz --merge: {path} was run with other settings ({these} vs {settings})"
            )
        for r in data["runs"]:
            seen = by_seed.get(r["seed"])
            if seen is not None and _comparable(seen) != _comparable(r):
                raise SystemExit(f"wapa fuzz --merge: seed {r['seed']} has two different results")
            by_seed[r["seed"]] = r
    assert settings is not None
    runs = [by_seed[s] for s in sorted(by_seed)]
    summary = _summary_json(settings, runs, None)
    _ci_outputs(args, runs, settings)
    if args.json:
        sys.stdout.write(json.dumps(summary, ensure_ascii=False) + "\n")
    else:
        total = sum(float(r.get("seconds", 0.0)) for r in runs)
        print(f"merged {counted(len(args.merge), 'result')}")
        _print_many(summary, None, total)
    return 0 if summary["ok"] else 1


def _comparable(run: dict[str, Any]) -> dict[str, Any]:
    """A run's result without its timing."""
    return {k: v for k, v in run.items() if k != "seconds"}
