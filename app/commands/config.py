"""`wapa config`: print the configuration variables (`--env-example`, `--markdown`) or check
the current configuration (`--check`: every variable, the model's and the store's settings as
`wapa run` builds them, and unknown names)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
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
        help="validate the environment (and --config FILE) as `wapa run` reads it: exit 0 and "
        "'configuration ok', or exit 2 on a bad or missing value or an unknown variable name "
        "(each on stderr)",
    )
    p.add_argument("--config", metavar="FILE", help="YAML file of VARIABLE: value (with --check)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from wapa.config import docs_table, env_example

    if args.markdown:
        sys.stdout.write(docs_table())
        return 0
    if args.check:
        problems = check(os.environ, args.config)
        for problem in problems:
            print(f"wapa config: {problem}", file=sys.stderr)
        if problems:  # the words agree with the status: not ok, exit 2 (even for a name that
            # `wapa run` would only warn about and ignore)
            n = len(problems)
            print(
                f"configuration not ok: {n} problem{'s' if n != 1 else ''} (listed on stderr); "
                "exit status 2"
            )
            return 2
        print("configuration ok")
        return 0
    sys.stdout.write(env_example())
    return 0


def check(environ: Mapping[str, str], config_file: str | None = None) -> list[str]:
    """What `wapa run` would refuse or warn about before starting, one line each: a wrong
    value stops at the first; then the model's and the store's settings as a whole, and every
    unknown variable name."""
    from wapa.adapters.llm import settings_from_env
    from wapa.adapters.store import StoreSettings
    from wapa.config import ConfigError, load_settings

    try:
        settings = load_settings(environ, config_file)
    except ConfigError as exc:
        return [str(exc)]
    problems: list[str] = []
    for build in (settings_from_env, StoreSettings.from_env):
        try:
            build(settings.env)
        except ConfigError as exc:
            problems.append(str(exc))
    return problems + [str(unknown) for unknown in settings.unknown]
