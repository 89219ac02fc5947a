"""The `wapa` command. Each subcommand lives in its own module under app/commands/ and
exposes `register(subparsers)`; this file only discovers and dispatches them."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

import wapa.commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wapa",
        description="wapa: a WhatsApp personal assistant with human timing (simulation-first).",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(wapa.commands.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"wapa.commands.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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
