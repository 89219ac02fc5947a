"""`wapa pair [--phone NUMBER]`: link wapa to a WhatsApp account, then exit.

Without --phone a QR code is drawn in the terminal; with it, an 8-character pairing code is
printed instead. The session goes to WAPA_SESSION_DB (default data/session.db, or a
postgres:// URL). Exit status: 0 paired (or already paired), 1 failed or timed out, 2 bad
arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "pair",
        help="link wapa to your WhatsApp account (QR code, or a pairing code with --phone)",
        description=(
            "Link wapa to a WhatsApp account as a linked device, then exit. The session is "
            "stored in WAPA_SESSION_DB (default data/session.db; a postgres:// URL also works)."
        ),
    )
    p.add_argument(
        "--phone",
        metavar="NUMBER",
        help="the account's number in international format: print a pairing code to type "
        "on the phone instead of showing a QR code",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=180.0,
        metavar="SECONDS",
        help="give up when the phone has not confirmed after this long (default 180)",
    )
    p.add_argument("--verbose", action="store_true", help="show neonize's own log lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from wapa.adapters.whatsapp.session import SessionError, prepare_session, session_from_env

    phone: str | None = None
    if args.phone is not None:
        from wapa.adapters.whatsapp.pairing import normalize_phone

        try:
            phone = normalize_phone(args.phone)
        except ValueError as exc:
            print(f"wapa pair: {exc}", file=sys.stderr)
            return 2
    if not args.timeout > 0:
        print("wapa pair: --timeout: expected a positive number of seconds", file=sys.stderr)
        return 2
    session = session_from_env()
    try:
        prepare_session(session)
    except SessionError as exc:
        print(f"wapa pair: {exc}", file=sys.stderr)
        return 1
    if not args.verbose:
        from wapa.adapters.whatsapp import quiet_neonize_logs

        quiet_neonize_logs()
    from wapa.adapters.whatsapp.pairing import pair
    from wapa.adapters.whatsapp.session import SessionError as ReadError

    loop = asyncio.new_event_loop()
    try:
        result = loop.run_until_complete(pair(session, phone=phone, timeout=args.timeout))
    except ReadError as exc:
        print(f"wapa pair: {exc}", file=sys.stderr)
        return 1
    code = 0 if result.ok else 1
    print(result.message, file=sys.stdout if result.ok else sys.stderr)
    if not result.clean:
        # neonize's Go worker thread is still blocked (an unfinished QR login): a normal exit
        # would wait for it forever.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()
    return code
