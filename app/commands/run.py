"""`wapa run`: the production runner (WhatsApp, or the console to try it without a phone)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported at run time only when the command runs (a fast `wapa --help`)
    from wapa.adapters.llm import LLMSettings
    from wapa.adapters.llm.config import MediaSettings
    from wapa.adapters.llm.media_client import MediaClient
    from wapa.adapters.store import StoreSettings
    from wapa.adapters.transport import Transport
    from wapa.config import Settings


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run",
        help="run the assistant (WhatsApp, or --transport console to try it in a terminal)",
        description="Run the assistant. Configuration comes from the environment (see "
        "docs/runner.md) and optionally a YAML file. Health: GET /healthz, metrics: GET /metrics "
        "on WAPA_HTTP_HOST:WAPA_HTTP_PORT.",
    )
    p.add_argument(
        "--transport",
        choices=("whatsapp", "console"),
        default=None,
        help="whatsapp (default, or WAPA_TRANSPORT) or console: stdin/stdout",
    )
    p.add_argument("--config", metavar="FILE", help="YAML file of VARIABLE: value (env wins)")
    p.add_argument(
        "--exit-on-eof",
        action="store_true",
        help="console: when stdin ends, finish pending replies, then exit",
    )
    p.add_argument("--http-port", type=int, default=None, help="overrides WAPA_HTTP_PORT")
    p.set_defaults(func=main)


def _fail(message: str, code: int) -> int:
    print(f"wapa run: {message}", file=sys.stderr, flush=True)
    return code


def main(args: argparse.Namespace) -> int:
    from wapa.config import ConfigError, load_settings

    overrides: dict[str, Any] = {}
    if args.transport:
        overrides["WAPA_TRANSPORT"] = args.transport
    if args.http_port is not None:
        overrides["WAPA_HTTP_PORT"] = str(args.http_port)
    try:
        settings = load_settings(os.environ, args.config, overrides)
        model_settings, store_settings = _adapter_settings(settings.env)
        media_settings = _media_settings(settings)
    except ConfigError as exc:
        return _fail(str(exc), 2)
    except ValueError as exc:  # the other adapters' config errors also name the variable
        return _fail(str(exc), 2)

    import asyncio

    from wapa.adapters.logs import flush_logging, setup_logging

    log_stream, log_file = None, ""
    if settings.transport == "console":  # at a terminal, JSON logs to a file: it is the chat
        from wapa.adapters.console import open_console_log

        log_stream, log_file = open_console_log(settings.db)
    setup_logging(settings.log_level.upper(), settings.log_content, log_stream, background=True)
    _warn_unknown(settings.unknown)
    try:
        code = asyncio.run(
            _run(
                settings, model_settings, store_settings, args.exit_on_eof, media_settings, log_file
            )
        )
    except Exception as exc:  # a bug at start-up or on the way out: one line, never a hang
        code = _crashed(exc)
    # Everything is committed and flushed by now; leave without waiting for threads that may
    # still block: neonize's Go side after disconnecting, the console's stdin reader (a daemon
    # thread inside a read() makes CPython abort at shutdown when it holds the stdin lock).
    stuck = flush_logging() is not None  # the log stream took nothing for seconds: lines lost
    for stream in (sys.stdout,) if stuck else (sys.stdout, sys.stderr):  # a blocked write holds
        with contextlib.suppress(Exception):  # stderr's lock: flushing it would wait forever
            stream.flush()
    os._exit(code)


def _crashed(exc: BaseException) -> int:
    """An unexpected exception out of the runner: its traceback in one JSON log line, one
    human line on stderr, exit status 1 (main() then exits at once: no thread keeps it)."""
    import logging
    import traceback

    from wapa.adapters.logs import log_event

    error = f"{type(exc).__name__}: {exc}"[:300]
    trace = "".join(traceback.format_exception(exc))[-4000:]
    log_event(
        logging.getLogger("wapa.run"), logging.ERROR, "run_failed", error=error, traceback=trace
    )
    return _fail(f"stopped by an unexpected error: {error}", 1)


def _warn_unknown(unknown: Any) -> None:
    """One warning line per unknown `WAPA_*` variable; the runner still starts (a deployed
    assistant must not stop over a name). The value is never logged: it may be a secret."""
    import logging

    from wapa.adapters.logs import log_event

    log = logging.getLogger("wapa.config")
    for name in unknown:
        log_event(
            log,
            logging.WARNING,
            "config_unknown_variable",
            variable=name.name,
            did_you_mean=name.suggestion or None,
            detail=str(name),
        )


def _adapter_settings(env: dict[str, str]) -> tuple[LLMSettings, StoreSettings]:
    from wapa.adapters.llm import settings_from_env
    from wapa.adapters.store import StoreSettings

    return settings_from_env(env), StoreSettings.from_env(env)


def _media_settings(settings: Settings) -> MediaSettings:
    from wapa.adapters.llm.config import media_settings_from_env

    return media_settings_from_env(settings.env, ", ".join(settings.persona.languages))


def _media_client(
    media: MediaSettings | None, model_settings: LLMSettings, chain: Any
) -> MediaClient | None:
    """The voice-note and image client when WAPA_TRANSCRIBE / WAPA_DESCRIBE_IMAGES is on and
    Cloudflare is configured; metered on the replies' `NeuronMeter` (one budget)."""
    import logging

    from wapa.adapters.llm.media_client import MediaClient
    from wapa.adapters.llm.usage import NeuronMeter
    from wapa.adapters.logs import log_event

    if media is None or not (media.transcribe or media.describe_images):
        return None
    if model_settings.cloudflare is None:
        log_event(
            logging.getLogger("wapa.run"),
            logging.WARNING,
            "media_off",
            reason="voice notes and images are understood with Workers AI: set CLOUDFLARE_*",
        )
        return None
    meter = getattr(chain, "meter", None)
    meter = meter if isinstance(meter, NeuronMeter) else None
    return MediaClient(media, model_settings.cloudflare, meter=meter)


async def _run(
    settings: Settings,
    model_settings: LLMSettings,
    store_settings: StoreSettings,
    exit_on_eof: bool,
    media_settings: MediaSettings | None = None,
    log_file: str = "",
) -> int:
    import logging

    from wapa.adapters.llm import client_from_settings
    from wapa.adapters.llm.service import ModelService
    from wapa.adapters.logs import log_event
    from wapa.adapters.store import Store, StoreError
    from wapa.housekeeping import housekeeping
    from wapa.media import MediaWorker
    from wapa.runner import Runner

    log = logging.getLogger("wapa.run")
    try:
        store = await Store.open(settings.db, settings.db_key or None, sync=store_settings.sync)
    except StoreError as exc:
        log_event(log, logging.ERROR, "store_open_failed", error=str(exc))
        return _fail(str(exc), 1)
    model: ModelService | None = None
    runner: Runner | None = None
    media_client: MediaClient | None = None
    try:  # the runner closes the store and the model; until it runs, this does
        n = settings.max_concurrent_generations
        chain = client_from_settings(model_settings, connections=n)
        model = ModelService(chain, max_concurrent=n)
        media_client = _media_client(media_settings, model_settings, chain)
        media = None
        if media_client is not None and media_settings is not None:
            media = MediaWorker(media_client, media_settings)
        holder: dict[str, Runner] = {}
        transport = _transport(settings, exit_on_eof, lambda: holder["runner"].on_eof(), log_file)
        if transport is None:
            return 2

        def on_port(port: int) -> None:
            show = getattr(transport, "show", None)
            if show is not None:
                show(f"[http] http://{settings.http_host}:{port}")

        runner = Runner(
            settings,
            transport,
            store,
            model,
            on_http_port=on_port,
            housekeeping=housekeeping(store, store_settings),
            media=media,
        )
        holder["runner"] = runner
        code = await runner.run()
        if runner.start_error:
            print(f"wapa run: {runner.start_error}", file=sys.stderr, flush=True)
        return code
    finally:
        if media_client is not None:  # after the runner: its media tasks are over by now
            with contextlib.suppress(Exception):
                await media_client.aclose()
        if runner is None:
            with contextlib.suppress(Exception):
                await store.close()
            if model is not None:
                with contextlib.suppress(Exception):
                    await model.aclose()


def _transport(
    settings: Settings, exit_on_eof: bool, on_eof: Callable[[], None], log_file: str = ""
) -> Transport | None:
    if settings.transport == "console":
        from wapa.adapters.console import ConsoleTransport

        return ConsoleTransport(
            settings.persona.owner_id,
            settings.persona.owner_name,
            on_eof=on_eof if exit_on_eof else None,
            log_file=log_file,
        )
    try:
        from wapa.adapters.whatsapp.client import NeonizeTransport
    except ImportError as exc:
        _fail(f"the WhatsApp transport cannot be loaded ({exc}); try --transport console", 2)
        return None
    owner = settings.persona.owner_id if "@" in settings.persona.owner_id else None
    return NeonizeTransport(settings.session_db, owner_jid=owner)
