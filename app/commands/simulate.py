"""`wapa simulate PATH... [--json] [--report FILE.html] [--junit FILE.xml] [--github] [--seed N]
[--store DIR] [--record DIR [--record-redact]]`: run scenarios."""

from __future__ import annotations

import argparse
import gc
import json
import os
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
    p.add_argument(
        "--junit",
        metavar="FILE.xml",
        help="also write a JUnit XML report (one test case per scenario) for CI systems",
    )
    p.add_argument(
        "--github",
        action="store_true",
        help="also print failures as GitHub Actions ::error annotations at the expectation's "
        "line (on by default when GITHUB_ACTIONS=true)",
    )
    p.add_argument("--seed", type=int, default=None, help="override every scenario's seed")
    p.add_argument(
        "--store",
        metavar="DIR",
        help="commit every step of every scenario to a SQLite store in DIR (a new or empty "
        "folder; one NAME.db per scenario file, kept) and restart from it at each crash",
    )
    p.add_argument(
        "--record",
        metavar="DIR",
        help="write one recording per scenario file to DIR (a new or empty folder): NAME.jsonl, "
        "the format `wapa run` writes with WAPA_RECORD, for `wapa replay`",
    )
    p.add_argument(
        "--record-redact",
        action="store_true",
        help="with --record: redact text and phone numbers, as WAPA_RECORD_REDACT=1",
    )
    p.set_defaults(func=run)


def _store_dir(text: str, option: str = "--store") -> Path | str:
    """The new or empty folder for --store or --record, or an error message."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        return f"{option} {text}: not a folder"
    if path.is_dir() and any(path.iterdir()):
        return f"{option} {text}: the folder is not empty (give a new or empty one)"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"{option} {text}: cannot create the folder: {exc.strerror or exc}"
    return path


def _import_without_gc() -> None:
    """Import the simulator with the cyclic collector off, then freeze what the imports made.

    The imports make tens of thousands of long-lived objects (modules, classes, functions);
    with the collector on they set off collections that walk them again and again, and every
    later full collection walks them too. `gc.freeze()` moves them out of its reach for the
    rest of the process (they live as long as it anyway; reference counting still frees
    anything that is not a cycle). The collector then runs as usual on the scenarios' own
    objects, so memory stays bounded. Issue 18: `wapa simulate scenarios/` 0.52 -> 0.48 s CPU
    (same run, alternating); not undone at the end, which would cost the gain back in the
    interpreter's last full collection. Once per process: after the first call the imports
    are done, and freezing again would make whatever the caller holds then (its cyclic
    garbage included) immortal."""
    if "wapa.sim.suite" in sys.modules:
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        import wapa.adapters.safe_text
        import wapa.sim.suite  # noqa: F401
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def run(args: argparse.Namespace) -> int:
    _import_without_gc()
    from wapa.adapters.safe_text import utf8_safe
    from wapa.core.digest import counted
    from wapa.sim.suite import human, run_paths, to_json

    if args.record_redact and not args.record:
        print("wapa simulate: --record-redact needs --record DIR", file=sys.stderr)
        return 2
    if args.store and args.record and Path(args.store).resolve() == Path(args.record).resolve():
        print("wapa simulate: --store and --record need two different folders", file=sys.stderr)
        return 2
    folders: dict[str, Path | None] = {"--store": None, "--record": None}
    for option, text in (("--store", args.store), ("--record", args.record)):
        if text:
            folder = _store_dir(text, option)
            if isinstance(folder, str):
                print(f"wapa simulate: {folder}", file=sys.stderr)
                return 2
            folders[option] = folder
    outcomes = run_paths(
        args.paths, args.seed, folders["--store"], folders["--record"], args.record_redact
    )
    if args.report:
        from wapa.sim.report_html import write_report

        try:
            write_report(args.report, outcomes)
        except OSError as exc:
            print(f"wapa simulate: cannot write the report {args.report}: {exc}", file=sys.stderr)
            return 2
    if args.junit:
        from wapa.sim.junit import simulate_junit

        try:
            junit = utf8_safe(simulate_junit(outcomes, args.seed))
            Path(args.junit).write_text(junit, encoding="utf-8")
        except OSError as exc:
            print(f"wapa simulate: cannot write {args.junit}: {exc}", file=sys.stderr)
            return 2
    _annotate(args, outcomes)
    if args.json:
        text = json.dumps(to_json(outcomes), ensure_ascii=False, indent=1)
        sys.stdout.write(utf8_safe(text, json=True) + "\n")
    else:
        print(utf8_safe(human(outcomes)))
        if args.report:
            print(f"report written to {args.report}")
        if args.junit:
            print(f"JUnit XML written to {args.junit}")
        if args.record:
            written = sum(o.scenario is not None for o in outcomes)
            print(
                f"{counted(written, 'recording')} written to {args.record} (wapa replay FILE.jsonl)"
            )
    if not outcomes:
        print("wapa simulate: no scenario files found", file=sys.stderr)
        return 1
    return 0 if all(o.passed for o in outcomes) else 1


def _annotate(args: argparse.Namespace, outcomes: list[Any]) -> None:
    """With --github (or inside GitHub Actions): failures as ::error workflow commands, on
    stderr when stdout carries the JSON (the runner reads workflow commands from both)."""
    if not args.github and "GITHUB_ACTIONS" not in os.environ:
        return  # (decided without importing sim.junit: most runs end here)
    from wapa.adapters.safe_text import utf8_safe
    from wapa.sim.junit import github_actions, github_annotations

    if not (args.github or github_actions()):
        return
    stream = sys.stderr if args.json else sys.stdout
    for line in github_annotations(outcomes):
        print(utf8_safe(line), file=stream)
