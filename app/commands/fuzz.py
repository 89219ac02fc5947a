"""`wapa fuzz --chats N --days D --seed S`: seeded random traffic with the invariants checked."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
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
    p.add_argument("--days", type=_positive_float, default=7.0, help="simulated days (default 7)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--policy", metavar="FILE.yaml", help="policy settings (a YAML mapping)")
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


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of days, got {text!r}") from None
    if not 0 < value <= 3650:
        raise argparse.ArgumentTypeError(f"must be between 0 and 3650 days, got {value}")
    return value


def _load_policy(path: str) -> Any:
    import yaml

    from core.policy import Policy, PolicyError

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
    return cmd + (f" --policy {args.policy}" if args.policy else "")


def run(args: argparse.Namespace) -> int:
    from sim.fuzz import run_fuzz

    policy = _load_policy(args.policy) if args.policy else None
    report = run_fuzz(args.chats, args.days, args.seed, policy)
    replay = replay_command(args)
    if args.json:
        out = {
            "seed": report.seed, "chats": report.chats, "days": report.days,
            "messages": report.messages, "sent": report.sent, "decisions": report.decisions,
            "crashes": report.crashes, "ok": report.ok, "replay": replay,
            "violations": [
                {"t": v.t, "chat": v.chat, "rule": v.rule, "detail": v.detail}
                for v in report.violations
            ],
        }  # fmt: skip
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        return 0 if report.ok else 1
    print(
        f"fuzz seed {report.seed}: {report.chats} chats, {report.days:g} days, "
        f"{report.messages} messages in, {report.sent} replies, {report.crashes} crashes, "
        f"{report.decisions} decisions, {len(report.violations)} invariant violations "
        f"({report.seconds:.1f} s)"
    )
    if report.ok:
        return 0
    for v in report.violations[:_SHOWN]:
        when = datetime.fromtimestamp(v.t, UTC).strftime("%Y-%m-%d %H:%M:%S")
        print(f"  {when}  {v.chat}  {v.rule}: {v.detail}")
    if len(report.violations) > _SHOWN:
        print(f"  ... and {len(report.violations) - _SHOWN} more")
    print(f"FAILED with seed {report.seed}; replay exactly with:\n  {replay}")
    return 1
