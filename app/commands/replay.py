"""`wapa replay FILE.jsonl [--set KEY=VALUE ...] [--json] [--tolerance S]`: replay a recording
through today's core; without --set check it makes the same decisions, with --set show what
would have changed."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

DEFAULT_TOLERANCE = 5.0  # sim.replay.DEFAULT_TOLERANCE, repeated to keep `wapa --help` light
DEFAULT_LIMIT = 1_000  # sim.replay_stream.DEFAULT_LIMIT, likewise


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
    p.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=(
            f"list at most N divergences, replies and unanswered messages (default "
            f"{DEFAULT_LIMIT:,}, the earliest); all are counted, and memory stays bounded"
        ),
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


EXPORT_SUFFIXES = (".txt", ".zip")


def _export_hint(path: str) -> str:
    """ " (a WhatsApp chat export? ...)" when `path` looks like one rather than a recording."""
    from pathlib import Path

    suffix = Path(path).suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        if not Path(path).is_file():  # a FIFO's open would block: only files are looked into
            return ""
        try:
            with open(path, "rb") as f:
                head = f.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
        except OSError:
            return ""
        if not head or head.startswith(b"{"):
            return ""
    return (
        f"\nwapa replay: {path} looks like a WhatsApp chat export, not a recording: turn it "
        f"into one first: wapa import-export {path} --owner YOUR_NAME -o chat.jsonl"
    )


def run(args: argparse.Namespace) -> int:
    from wapa.adapters.recording import RecordingError, RecordingStream
    from wapa.adapters.safe_text import utf8_safe
    from wapa.core.policy import PolicyError
    from wapa.sim.replay import replay

    if args.file.lower().endswith(EXPORT_SUFFIXES):
        print(utf8_safe(_export_hint(args.file).lstrip("\n")), file=sys.stderr)
        return 2
    try:
        header = RecordingStream(args.file).header  # the rest is read as it is replayed
    except RecordingError as exc:
        print(utf8_safe(f"wapa replay: {exc}{_export_hint(args.file)}"), file=sys.stderr)
        return 2
    try:
        changes = parse_sets(args.sets, header.policy.to_mapping())
        report = replay(
            args.file,
            changes or None,
            tolerance=max(0.0, args.tolerance),
            limit=max(0, args.limit),
        )
    except (ValueError, PolicyError) as exc:  # RecordingError too: a damaged item, by line
        print(utf8_safe(f"wapa replay: {exc}"), file=sys.stderr)
        return 2
    for warning in report.summary["warnings"]:
        print(utf8_safe(f"wapa replay: warning: {warning}"), file=sys.stderr)
    if args.json:
        text = json.dumps(report.to_json(), ensure_ascii=False, indent=1)
        sys.stdout.write(utf8_safe(text, json=True) + "\n")
    else:
        print(utf8_safe("\n".join(_human(args, report))))
    return 1 if report.summary["mode"] == "check" and report.divergences else 0


def _cut(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _human(args: argparse.Namespace, report: Any) -> list[str]:
    from wapa.sim.replay import iso

    s = report.summary
    out = [f"{report.events} events replayed from {args.file}; {report.replies()} replies sent."]
    if s["mode"] == "what-if":
        out.append(
            f"What if {', '.join(args.sets)}: {s['baseline_replies']} replies -> "
            f"{s['what_if_replies']} ({s['gained']} gained, {s['lost']} lost, "
            f"{s['moved']} moved)."
        )
        for d in report.divergences:
            if d["kind"] == "reply_moved":
                out.append(
                    f"  ~ {d['chat']}: moved {d['from_time']} → {d['time']} "
                    f"({_shift(d['shift_s'])}): {_cut(d['text'])}"
                )
                continue
            sign = "+" if d["kind"] == "reply_gained" else "-"
            out.append(f"  {sign} {d['time']} {d['chat']}: {_cut(d['text'])}")
        out.extend(_more(s["gained"] + s["lost"] + s["moved"], len(report.divergences)))
    elif not s["compared"]:
        out.append(
            "The recording holds no decisions to compare (an imported chat?); the replies "
            "today's core would send:"
        )
        out.extend(f"  {iso(r.t)} {r.chat}: {_cut(r.text)}" for r in report.sent)
        out.extend(_more(report.replies(), len(report.sent)))
    else:
        out.append(
            f"{s['recorded_decisions']} recorded decisions, {s['replayed_decisions']} "
            f"replayed, {s['divergences']} divergences."
        )
        for d in report.divergences:
            who = "only in the recording" if d["side"] == "recorded" else "only in the replay"
            out.append(f"\n{d['time']} {d['chat'] or '(global)'}: {d['code']} {who}")
            out.append("  recorded:")
            out.append("\n".join(f"    {x}" for x in d["recorded"]) or "    (nothing)")
            out.append("  replay:")
            out.append("\n".join(f"    {x}" for x in d["replay"]) or "    (nothing)")
        out.extend(_more(s["divergences"], len(report.divergences)))
    if s["mode"] == "what-if" or not s["compared"]:
        out.extend(_unanswered(report))
    return out


def _more(total: int, listed: int) -> list[str]:
    """The line saying how many were left out of a list cut at --limit."""
    return [f"  ... and {total - listed:,} more (--limit N lists more)"] if total > listed else []


SHOWN_UNANSWERED = 10


def _unanswered(report: Any) -> list[str]:
    """How many contact messages got no reply, by why, and the first few."""
    n, codes = report.unanswered_count()
    if not n:
        return []
    counts: dict[str, int] = {}
    for code, k in codes.items():
        counts[code or "none"] = counts.get(code or "none", 0) + k
    reasons = ", ".join(f"{code} {k}" for code, k in sorted(counts.items(), key=lambda x: -x[1]))
    items = report.unanswered
    out = [f"{n} message{'s' if n != 1 else ''} left without a reply ({reasons}):"]
    for item in items[:SHOWN_UNANSWERED]:
        why = f"{item['code']}: {item['detail']}" if item["code"] else item["detail"]
        out.append(f"  {item['time']} {item['chat']}: {_cut(item['text'], 50)!r}, {_cut(why)}")
    if n > SHOWN_UNANSWERED:
        lists = "lists them all" if len(items) == n else f"lists the first {len(items):,}"
        out.append(f"  ... and {n - SHOWN_UNANSWERED} more (--json {lists})")
    return out


def _shift(seconds: float) -> str:
    """-138.2 -> "2m18s earlier"; 3600 -> "1h later"."""
    whole = round(abs(seconds))
    h, rest = divmod(whole, 3600)
    m, sec = divmod(rest, 60)
    text = "".join(f"{n}{u}" for n, u in ((h, "h"), (m, "m"), (sec, "s")) if n) or "0s"
    return f"{text} {'earlier' if seconds < 0 else 'later'}"
