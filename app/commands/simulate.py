"""`wapa simulate PATH... [--json] [--report FILE.html] [--seed N] [--store DIR]`: run scenarios."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="run scenario files on a virtual clock (no account, no credentials needed)",
        description=(
            "Run every scenario in the given YAML files and folders with a fake WhatsApp and a "
            "fake model on a virtual clock. Exit status 0 only if every expectation holds."
        ),
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or folders")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    p.add_argument("--report", metavar="FILE.html", help="write a self-contained HTML report")
    p.add_argument("--seed", type=int, default=None, help="override every scenario's seed")
    p.add_argument(
        "--store",
        metavar="DIR",
        help="commit every step of every scenario to a SQLite store in DIR (a new or empty "
        "folder; one NAME.db per scenario file, kept) and restart from it at each crash",
    )
    p.set_defaults(func=run)


def _store_dir(text: str) -> Path | str:
    """The folder for --store, or an error message."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        return f"--store {text}: not a folder"
    if path.is_dir() and any(path.iterdir()):
        return f"--store {text}: the folder is not empty (give a new or empty one)"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"--store {text}: cannot create the folder: {exc.strerror or exc}"
    return path


def run(args: argparse.Namespace) -> int:
    from sim.suite import human, run_paths, to_json

    store_dir = None
    if args.store:
        store_dir = _store_dir(args.store)
        if isinstance(store_dir, str):
            print(f"wapa simulate: {store_dir}", file=sys.stderr)
            return 2
    outcomes = run_paths(args.paths, args.seed, store_dir)
    if args.report:
        from sim.report_html import write_report

        try:
            write_report(args.report, outcomes)
        except OSError as exc:
            print(f"wapa simulate: cannot write the report {args.report}: {exc}", file=sys.stderr)
            return 2
    if args.json:
        sys.stdout.write(json.dumps(to_json(outcomes), ensure_ascii=False, indent=1) + "\n")
    else:
        print(human(outcomes))
        if args.report:
            print(f"report written to {args.report}")
    if not outcomes:
        print("wapa simulate: no scenario files found", file=sys.stderr)
        return 1
    return 0 if all(o.passed for o in outcomes) else 1
