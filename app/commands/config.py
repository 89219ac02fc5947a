"""`wapa config`: print the configuration variables (`--env-example`, `--markdown`) or check
the current configuration (`--check`)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "config",
        help="print every configuration variable (.env example, Markdown) or check the settings",
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--env-example",
        action="store_true",
        help="print a commented .env file with every variable and its default",
    )
    group.add_argument("--markdown", action="store_true", help="print the variables as Markdown")
    group.add_argument(
        "--check",
        action="store_true",
        help="validate the environment (and --config FILE); exit 2 on a bad value "
        "or an unknown WAPA_* name",
    )
    p.add_argument("--config", metavar="FILE", help="YAML file of VARIABLE: value (with --check)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from wapa.config import ConfigError, docs_table, env_example, load_settings

    if args.markdown:
        sys.stdout.write(docs_table())
        return 0
    if args.check:
        try:
            settings = load_settings(os.environ, args.config)
        except ConfigError as exc:
            print(f"wapa config: {exc}", file=sys.stderr)
            return 2
        for unknown in settings.unknown:
            print(f"wapa config: {unknown}", file=sys.stderr)
        if settings.unknown:
            return 2
        print("configuration ok")
        return 0
    sys.stdout.write(env_example())
    return 0
