"""`wapa fake-cloudflare`: serve the fake Cloudflare Workers AI API until SIGINT/SIGTERM.

For trying wapa without an account: point `CLOUDFLARE_API_BASE` at the printed URL and use
any account id with the printed token.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "fake-cloudflare",
        help="serve a fake Cloudflare Workers AI API locally (for tests and trying wapa)",
        description="Serve a fake Cloudflare Workers AI API with deterministic replies until "
        "interrupted. Point CLOUDFLARE_API_BASE at the printed URL.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8787, help="port (8787; 0 picks a free one)")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per generation (0.2)")
    parser.add_argument(
        "--token",
        default="fake-token",
        help="the bearer token to accept (fake-token); 'any' accepts every token",
    )
    parser.add_argument(
        "--fail",
        action="append",
        default=[],
        metavar="KIND[:TIMES]",
        help="answer the first generations with a scripted failure, e.g. capacity:2 "
        "(auth, bad_header, capacity, rate_limit, daily_quota, internal, no_model, context, "
        "timeout, empty, bad_gateway, hang); repeatable",
    )
    parser.add_argument(
        "--context-window", type=int, default=None, help="tokens; larger prompts get 413"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from wapa.sim.fake_cloudflare import FakeCloudflare

    if args.latency < 0 or not 0 <= args.port <= 65535:
        print(
            "wapa fake-cloudflare: error: --latency must be >= 0 and --port 0..65535",
            file=sys.stderr,
        )
        return 2
    server = FakeCloudflare(
        args.host,
        args.port,
        latency=args.latency,
        token=None if args.token == "any" else args.token,
        context_window=args.context_window,
    )
    try:
        for item in args.fail:
            kind, _, times = item.partition(":")
            server.fail(kind, times=int(times or 1))
    except ValueError as exc:
        print(f"wapa fake-cloudflare: error: --fail {exc}", file=sys.stderr)
        return 2
    try:
        server.start()
    except OSError as exc:
        print(
            f"wapa fake-cloudflare: error: cannot listen on {args.host}:{args.port}: {exc}",
            file=sys.stderr,
        )
        return 1
    done = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"fake Cloudflare Workers AI on {server.base_url}", flush=True)
    print(f"  CLOUDFLARE_API_BASE={server.base_url}", flush=True)
    print(f"  CLOUDFLARE_API_TOKEN={args.token if args.token != 'any' else 'anything'}", flush=True)
    print(f"  CLOUDFLARE_ACCOUNT_ID={server.account}", flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        server.stop()
    print("fake Cloudflare stopped", flush=True)
    return 0
