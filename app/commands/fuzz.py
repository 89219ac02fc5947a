"""`wapa fuzz --chats N --days D --seed S`: seeded random traffic with the invariants checked."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

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


def _load_policy(path: str) -> Any:
    import yaml
    from wapa.core.policy import Policy, PolicyError

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
        return Policy.from_mapping(data)
    except OSError as exc:
        raise SystemExit(f"wapa fuzz: cannot read {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise SystemExit(f"wapa fuzz: {path}: bad YAML: {exc}") from None
    except (PolicyError, TypeError) as exc:
        raise SystemExit(f"wapa fuzz: {path}: {exc}") from None


def replay_command(args: argparse.Namespace) -> str:
    days = f"{args.days:g}"
    cmd = f"wapa fuzz --chats {args.chats} --days {days} --seed {args.seed}"
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


def run(args: argparse.Namespace) -> int:
    policy = _load_policy(args.policy) if args.policy else None
    report = _fuzz(args, policy)
    replay = replay_command(args)
    if args.json:
        out = {
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
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        return 0 if report.ok else 1
    print(
        f"fuzz seed {report.seed}: {report.chats} chats, {report.days:g} days, "
        f"{report.messages} messages in, {report.sent} replies, {report.crashes} crashes, "
        f"{report.decisions} decisions, {len(report.violations)} invariant violations "
        f"({report.seconds:.1f} s)"
        + (f"; {report.commits} steps committed to the store" if report.commits else "")
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
