"""`wapa import-export CHAT.txt|CHAT.zip --owner NAME [-o OUT.jsonl] [--tz ZONE] [--json]`:
turn a WhatsApp "Export chat" file into a recording that `wapa replay` accepts."""

from __future__ import annotations

import argparse
import json
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
        "--tz",
        default="UTC",
        metavar="ZONE",
        help="time zone of the phone that exported the chat (default UTC)",
    )
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from wapa.adapters.chat_export import ExportError, import_export
    from wapa.adapters.recording import Recorder
    from wapa.core.policy import Policy

    source = Path(args.file)
    out = Path(args.output) if args.output else source.with_suffix(".jsonl")
    try:
        chat = import_export(source, args.owner, args.tz)
    except ExportError as exc:
        print(f"wapa import-export: {exc}", file=sys.stderr)
        return 2
    parsed = chat.parsed
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("", encoding="utf-8")  # a fresh recording, not appended to an old one
        start = chat.events[0][0]
        with Recorder(out, Policy(), chat.persona, seed=0, start=start) as recorder:
            for t, event in chat.events:
                recorder.record(t, "in", event)
        if recorder.failed:
            raise OSError("write failed")
    except OSError as exc:
        print(f"wapa import-export: cannot write {out}: {exc}", file=sys.stderr)
        return 2
    summary = {
        "messages": len(parsed.messages),
        "participants": parsed.participants,
        "system_skipped": parsed.system_skipped,
        "media": sum(1 for m in parsed.messages if m.media),
        "format": parsed.format,
        "deleted": parsed.deleted,
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
