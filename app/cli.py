"""The `wapa` command. Each subcommand lives in its own module under app/commands/ and
exposes `register(subparsers)`; this file only discovers and dispatches them.

Start-up is lazy: `wapa COMMAND ...` imports that command's module alone (each imports what it
needs: the benchmark, asyncio, the store, neonize...), and `wapa --help` imports none; the
other commands are listed by their line in `HELP` (a test checks each against its module). A
module with no line there is imported and registers itself, so a new command is never
missing, only slower to list."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

import wapa.commands

# command -> its one-line help, as its module's register() gives it (tests/app/test_cli.py)
HELP = {
    "ask": "get one reply to one message from the configured model (checks credentials)",
    "backup": "copy the database safely while it is in use (SQLite online backup)",
    "bench": "run the benchmarks (ratios against same-run baselines)",
    "config": "print every configuration variable (.env example, Markdown) or check the settings",
    "doctor": "check configuration, store, WhatsApp session and model credentials",
    "fake-cloudflare": "serve a fake Cloudflare Workers AI API locally (for tests and trying wapa)",
    "fuzz": "simulate seeded random traffic and check the assistant's invariants",
    "healthcheck": "exit 0 when a running `wapa run` answers GET /healthz with 200 "
    "(Docker HEALTHCHECK)",
    "import-export": "convert a WhatsApp 'Export chat' file (.txt or .zip) into a replayable "
    "recording",
    "pair": "link wapa to your WhatsApp account (QR code, or a pairing code with --phone)",
    "replay": "replay a recording (or an imported chat) through the core on a virtual clock",
    "run": "run the assistant (WhatsApp, or --transport console to try it in a terminal)",
    "simulate": "run scenario files on a virtual clock (no account, no credentials needed)",
}
ALL = None  # build_parser(ALL): every command's module imported and registered


def command_modules() -> dict[str, str]:
    """command name -> module name, for every module in app/commands/ (a directory listing:
    cheaper than pkgutil)."""
    out: dict[str, str] = {}
    for path in wapa.commands.__path__:
        for entry in os.listdir(path):
            name, ext = os.path.splitext(entry)
            if ext == ".py" and name.isidentifier() and not name.startswith("_"):
                out[name.replace("_", "-")] = name
    return dict(sorted(out.items()))


def build_parser(only: str | None = ALL) -> argparse.ArgumentParser:
    """The `wapa` parser. `only`: the command about to run, the one whose module is imported
    (with "", none); the others are listed by their help line. Default: every command in full."""
    parser = argparse.ArgumentParser(
        prog="wapa",
        description="wapa: a WhatsApp personal assistant with human timing (simulation-first).",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command, module_name in command_modules().items():
        if only is ALL or command == only or command not in HELP:
            module = importlib.import_module(f"wapa.commands.{module_name}")
            register = getattr(module, "register", None)
            if register is not None:
                register(subparsers)
        else:
            subparsers.add_parser(command, help=HELP[command], add_help=False)
    return parser


def _command(argv: list[str]) -> str:
    """The command word in `argv` (the first that is not an option), or ""."""
    return next((a for a in argv if not a.startswith("-")), "")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(_command(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `wapa simulate ... | head`: the reader has what it wanted
        _silence_stdout()
        return 141  # 128 + SIGPIPE, what a shell shows for a command cut by a closed pipe


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush of the rest of the
    buffer does not raise (and print) a second BrokenPipeError."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (a test's captured stdout)
        pass


if __name__ == "__main__":
    sys.exit(main())
