"""`wapa bench`: throughput, latency, memory and cost figures (see bench/)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bench", help="run the benchmarks (ratios against same-run baselines)"
    )
    from wapa.bench.cli import add_arguments, main_args

    add_arguments(p)
    p.set_defaults(func=lambda args: main_args(args))


__all__ = ["register", "argparse"]
