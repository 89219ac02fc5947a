"""`wapa healthcheck`: ask a running `wapa run` for GET /healthz and exit 0 when it answers 200.

It is the Docker HEALTHCHECK command, so it uses only the standard library (the image has no
curl), ignores proxy variables (the target is always local), never waits longer than its
timeout, and exits only with 0 (healthy) or 1 (unhealthy): Docker reserves exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import TextIO

DEFAULT_PORT = 8080
DEFAULT_TIMEOUT = 3.0
BODY_LIMIT = 500
# Addresses a server listens on but a client cannot connect to: use loopback instead.
_WILDCARD_HOSTS = {"", "0.0.0.0", "::", "[::]"}


class HealthcheckConfigError(ValueError):
    """A variable that the default URL is built from holds a value that cannot be used."""


def default_url(environ: Mapping[str, str]) -> str:
    """The /healthz URL of the runner configured by WAPA_HTTP_HOST and WAPA_HTTP_PORT."""
    host = environ.get("WAPA_HTTP_HOST", "127.0.0.1").strip()
    if host in _WILDCARD_HOSTS:
        host = "::1" if ":" in host else "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    raw_port = environ.get("WAPA_HTTP_PORT", "").strip() or str(DEFAULT_PORT)
    try:
        port = int(raw_port)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise HealthcheckConfigError(
            f"WAPA_HTTP_PORT={raw_port!r} is not a port number (accepts an integer 1-65535)"
        )
    return f"http://{host}:{port}/healthz"


def check(url: str, timeout: float, out: TextIO) -> int:
    """GET url; print one line saying what was found; return 0 on HTTP 200, else 1."""
    # An empty ProxyHandler: HTTP_PROXY and friends must not send a local probe elsewhere.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "wapa-healthcheck"})
        with opener.open(request, timeout=timeout) as response:
            status = response.status
            body = response.read(BODY_LIMIT + 1)
    except urllib.error.HTTPError as error:
        status = error.code
        body = error.read(BODY_LIMIT + 1) if error.fp is not None else b""
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        print(f"unhealthy: {url} unreachable: {reason}", file=out)
        return 1
    text = body[:BODY_LIMIT].decode("utf-8", "replace").strip()
    if len(body) > BODY_LIMIT:
        text += "..."
    verdict = "healthy" if status == 200 else "unhealthy"
    print(f"{verdict}: HTTP {status} {text}".rstrip(), file=out)
    return 0 if status == 200 else 1


def run(args: argparse.Namespace) -> int:
    if args.timeout <= 0:
        print(f"unhealthy: --timeout must be positive, got {args.timeout}", file=sys.stdout)
        return 1
    url = args.url
    if url is None:
        try:
            url = default_url(os.environ)
        except HealthcheckConfigError as error:
            print(f"unhealthy: {error}", file=sys.stdout)
            return 1
    return check(url, args.timeout, sys.stdout)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "healthcheck",
        help="exit 0 when a running `wapa run` answers GET /healthz with 200 (Docker HEALTHCHECK)",
        description=(
            "GET /healthz of a running `wapa run` and exit 0 on HTTP 200, 1 otherwise "
            "(unreachable, timeout, or 503 when a component is down). The default URL comes "
            "from WAPA_HTTP_HOST (0.0.0.0 and :: mean this machine) and WAPA_HTTP_PORT "
            f"(default {DEFAULT_PORT})."
        ),
    )
    parser.add_argument(
        "--url",
        default=None,
        help="URL to check (default: http://WAPA_HTTP_HOST:WAPA_HTTP_PORT/healthz)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds to wait for the answer (default {DEFAULT_TIMEOUT:g})",
    )
    parser.set_defaults(func=run)
