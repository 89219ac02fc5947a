"""`wapa replay FILE.jsonl [--set KEY=VALUE ...] [--json] [--tolerance S]`: replay a recording
through today's core; without --set check it makes the same decisions, with --set show what
would have changed."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

DEFAULT_TOLERANCE = 5.0  # sim.replay.DEFAULT_TOLERANCE, repeated to keep `wapa --help` light


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "replay",
        help="replay a recording (or an imported chat) through the core on a virtual clock",
        description=(
            "Feed the recorded messages and commands through today's core on a virtual clock. "
            "Without --set: report every decision that differs from the recording (exit 1 if "
            "any). With --set KEY=VALUE (any policy setting, e.g. cooldown=2h, "
            "caps.per_hour=5): report the replies gained, lost and moved per chat."
        ),
    )
    p.add_argument("file", metavar="FILE.jsonl", help="a recording (WAPA_RECORD or import-export)")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change a policy setting for a what-if replay (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    p.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        metavar="SECONDS",
        help=f"times closer than this match (default {DEFAULT_TOLERANCE:g})",
    )
    p.set_defaults(func=run)


def _value(key: str, raw: str) -> Any:
    from wapa.adapters.safe_yaml import SafeYAMLError, load_yaml

    try:
        value = load_yaml(raw, f"--set {key}") if raw.strip() else ""
    except SafeYAMLError as exc:
        if exc.problem.startswith("bad YAML"):
            return raw  # not YAML: the text itself
        raise  # bounded: an alias bomb or a huge number is refused, never expanded
    if isinstance(value, int | float) and not isinstance(value, bool) and ":" in raw:
        return raw  # "22:00" is a time, not YAML 1.1 base-60
    return raw if value is None else value


def parse_sets(sets: list[str], base: dict[str, Any]) -> dict[str, Any]:
    """["cooldown=2h", "caps.per_hour=5"] -> {"cooldown": "2h", "caps": {...merged...}}.
    Raises ValueError naming the bad item."""
    changes: dict[str, Any] = {}
    for item in sets:
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. cooldown=2h")
        top, dot, sub = key.partition(".")
        if not dot:
            changes[key] = _value(key, raw)
            continue
        current = changes.get(top, base.get(top))
        nested = dict(current) if isinstance(current, dict) else {}
        nested[sub] = raw.strip() if top == "quiet_hours" else _value(sub, raw)
        changes[top] = nested
    return changes


def run(args: argparse.Namespace) -> int:
    from wapa.adapters.recording import RecordingError, read_recording
    from wapa.core.policy import PolicyError
    from wapa.sim.replay import iso, replay

    try:
        recording = read_recording(args.file)
    except RecordingError as exc:
        print(f"wapa replay: {exc}", file=sys.stderr)
        return 2
    try:
        changes = parse_sets(args.sets, recording.header.policy.to_mapping())
        report = replay(recording, changes or None, tolerance=max(0.0, args.tolerance))
    except (ValueError, PolicyError) as exc:
        print(f"wapa replay: {exc}", file=sys.stderr)
        return 2
    for warning in recording.warnings:
        print(f"wapa replay: warning: {warning}", file=sys.stderr)
    if args.json:
        sys.stdout.write(json.dumps(report.to_json(), ensure_ascii=False, indent=1) + "\n")
    else:
        s = report.summary
        print(f"{report.events} events replayed from {args.file}; {len(report.sent)} replies sent.")
        if s["mode"] == "what-if":
            print(
                f"What if {', '.join(args.sets)}: {s['baseline_replies']} replies -> "
                f"{s['what_if_replies']} ({s['gained']} gained, {s['lost']} lost, "
                f"{s['moved']} moved)."
            )
            for d in report.divergences:
                if d["kind"] == "reply_moved":
                    print(
                        f"  ~ {d['chat']}: moved {d['from_time']} → {d['time']} "
                        f"({_shift(d['shift_s'])}): {d['text'][:80]}"
                    )
                    continue
                sign = "+" if d["kind"] == "reply_gained" else "-"
                print(f"  {sign} {d['time']} {d['chat']}: {d['text'][:80]}")
        elif not s["compared"]:
            print(
                "The recording holds no decisions to compare (an imported chat?); the replies "
                "today's core would send:"
            )
            for r in report.sent:
                print(f"  {iso(r.t)} {r.chat}: {r.text[:80]}")
        else:
            print(
                f"{s['recorded_decisions']} recorded decisions, {s['replayed_decisions']} "
                f"replayed, {s['divergences']} divergences."
            )
            for d in report.divergences:
                who = "only in the recording" if d["side"] == "recorded" else "only in the replay"
                print(f"\n{d['time']} {d['chat'] or '(global)'}: {d['code']} {who}")
                print("  recorded:")
                print("\n".join(f"    {x}" for x in d["recorded"]) or "    (nothing)")
                print("  replay:")
                print("\n".join(f"    {x}" for x in d["replay"]) or "    (nothing)")
    return 1 if report.summary["mode"] == "check" and report.divergences else 0


def _shift(seconds: float) -> str:
    """-138.2 -> "2m18s earlier"; 3600 -> "1h later"."""
    whole = round(abs(seconds))
    h, rest = divmod(whole, 3600)
    m, sec = divmod(rest, 60)
    text = "".join(f"{n}{u}" for n, u in ((h, "h"), (m, "m"), (sec, "s")) if n) or "0s"
    return f"{text} {'earlier' if seconds < 0 else 'later'}"
