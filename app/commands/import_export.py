"""`wapa import-export CHAT.txt|CHAT.zip --owner NAME [-o OUT.jsonl] [--force] [--tz ZONE] [--json]`:
turn a WhatsApp "Export chat" file into a recording that `wapa replay` accepts.

The file is streamed (memory stays bounded whatever its size); the recording is written next to
its destination and renamed into place, so a failed import leaves an old output untouched. The
output is never the input, and an existing output is replaced only with `--force`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "import-export",
        help="convert a WhatsApp 'Export chat' file (.txt or .zip) into a replayable recording",
        description=(
            "Read a chat exported from the phone (Chat > More > Export chat, without media "
            "or with it), detect its locale format, and write a recording for `wapa replay`. "
            "The owner's lines become the owner's own messages."
        ),
    )
    p.add_argument("file", metavar="CHAT.txt|CHAT.zip", help="the exported chat")
    p.add_argument(
        "--owner",
        required=True,
        metavar="NAME",
        help="the owner's name as it appears in the chat (any case)",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT.jsonl",
        help="where to write the recording (default: next to the chat, .jsonl)",
    )
    p.add_argument(
        "--force", action="store_true", help="replace the output file when it exists already"
    )
    p.add_argument(
        "--tz",
        default="UTC",
        metavar="ZONE",
        help="time zone of the phone that exported the chat (default UTC)",
    )
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    p.set_defaults(func=run)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def run(args: argparse.Namespace) -> int:
    from wapa.adapters.chat_export import ExportError, stream_export
    from wapa.adapters.recording import Recorder
    from wapa.core.policy import Policy

    source = Path(args.file)
    out = Path(args.output) if args.output else source.with_suffix(".jsonl")
    if _same_file(source, out):
        print(
            f"wapa import-export: the output {out} is the input; give another -o", file=sys.stderr
        )
        return 2
    if (out.exists() or out.is_symlink()) and not args.force:
        print(
            f"wapa import-export: {out} exists; add --force to replace it, or give another -o",
            file=sys.stderr,
        )
        return 2
    try:
        chat = stream_export(source, args.owner, args.tz)
    except ExportError as exc:
        print(f"wapa import-export: {exc}", file=sys.stderr)
        return 2
    parsed = chat.parsed
    part = out.with_name(out.name + ".part")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        part.write_text("", encoding="utf-8")
        events = chat.events()
        first = next(events, None)
        if first is None:
            raise ExportError(f"{source}: changed while it was read (no messages left)")
        with Recorder(part, Policy(), chat.persona, seed=0, start=first[0]) as recorder:
            recorder.record(first[0], "in", first[1])
            for t, event in events:
                recorder.record(t, "in", event)
        if recorder.failed:
            raise OSError("write failed")
        os.replace(part, out)
    except ExportError as exc:  # the file changed between the passes
        part.unlink(missing_ok=True)
        print(f"wapa import-export: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        part.unlink(missing_ok=True)
        print(f"wapa import-export: cannot write {out}: {exc}", file=sys.stderr)
        return 2
    summary = {
        "messages": parsed.count,
        "participants": parsed.participants,
        "system_skipped": parsed.system_skipped,
        "media": sum(parsed.media.values()),
        "media_by_kind": dict(sorted(parsed.media.items())),
        "format": parsed.format,
        "date_order": parsed.date_order,
        "deleted": parsed.deleted,
        "notices": parsed.notices,
        "skipped": dict(parsed.skipped),
        "skipped_lines": [{"line": n, "reason": r} for n, r in parsed.skipped_lines],
        "first": parsed.first.isoformat(sep=" ") if parsed.first else None,
        "last": parsed.last.isoformat(sep=" ") if parsed.last else None,
        "group": chat.is_group,
        "chat": chat.chat_id,
        "output": str(out),
    }
    if args.json:
        sys.stdout.write(json.dumps(summary, ensure_ascii=False) + "\n")
    else:
        kind = "group" if chat.is_group else "direct chat"
        print(
            f"{summary['messages']} messages ({summary['media']} media) from "
            f"{len(parsed.participants)} participants in a {kind}, format {parsed.format} "
            f"({parsed.date_order}); {parsed.system_skipped} system lines and "
            f"{parsed.deleted} deleted messages skipped."
        )
        print(f"Wrote {out}. Next: wapa replay {out}")
    return 0
