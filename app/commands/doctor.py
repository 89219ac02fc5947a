"""`wapa doctor`: check the configuration, the store, the WhatsApp session and the model
credentials (without spending neurons), and say what is wrong and how to fix it."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from wapa.core.digest import counted

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass
class Check:
    status: str
    what: str
    detail: str
    fix: str = ""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "doctor",
        help="check configuration, store, WhatsApp session and model credentials",
        description="Checks what `wapa run` needs, spending no neurons, and prints what is "
        "wrong and how to fix it. Exit status 1 when something must be fixed.",
    )
    p.add_argument("--config", metavar="FILE", help="YAML file of VARIABLE: value (env wins)")
    p.add_argument(
        "--transport",
        choices=("whatsapp", "console"),
        default=None,
        help="console: skip the WhatsApp session check",
    )
    p.add_argument("--skip-model", action="store_true", help="do not contact the model provider")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    checks = asyncio.run(
        diagnose(os.environ, args.config, args.transport, skip_model=args.skip_model)
    )
    return report(checks, sys.stdout)


def report(checks: list[Check], out: TextIO) -> int:
    for c in checks:
        out.write(f"{c.status:<4}  {c.what}: {c.detail}\n")
        if c.fix and c.status != OK:
            out.write(f"      fix: {c.fix}\n")
    failed = sum(c.status == FAIL for c in checks)
    out.write("all good\n" if not failed else f"{counted(failed, 'problem')} to fix\n")
    return 1 if failed else 0


async def diagnose(
    environ: Mapping[str, str],
    config_file: str | None = None,
    transport: str | None = None,
    *,
    skip_model: bool = False,
    model_transport: Any = None,
) -> list[Check]:
    from wapa.config import ConfigError, load_settings

    checks: list[Check] = []
    overrides = {"WAPA_TRANSPORT": transport} if transport else None
    try:
        settings = load_settings(environ, config_file, overrides)
    except ConfigError as exc:
        fix = "rename or remove the key" if "unknown variable" in str(exc) else "correct the value"
        return [Check(FAIL, "config", str(exc), f"{fix}; docs/runner.md lists them all")]
    checks.append(Check(OK, "config", f"policy and persona valid (transport {settings.transport})"))
    for unknown in settings.unknown:
        fix = (
            f"rename it to {unknown.suggestion}, or remove it"
            if unknown.suggestion
            else "remove it; `wapa config --markdown` lists every variable"
        )
        checks.append(Check(FAIL, "config", str(unknown), fix))
    checks.append(await _store(settings))
    if settings.transport == "whatsapp":
        checks.append(await _session(settings.session_db))
    checks.append(_port(settings.http_host, settings.http_port))
    if skip_model:
        checks.append(Check(WARN, "model", "not checked (--skip-model)"))
    else:
        checks.append(await _model(settings.env, model_transport))
    return checks


async def _store(settings: Any) -> Check:
    from wapa.adapters.store import Store, StoreError, StoreSettings

    try:
        store_settings = StoreSettings.from_env(settings.env)
    except ValueError as exc:
        return Check(FAIL, "store", str(exc), "correct the value (docs/store.md)")
    path = Path(settings.db)
    if not path.exists():
        parent = next((p for p in path.absolute().parents if p.exists()), Path("/"))
        if not os.access(parent, os.W_OK):
            return Check(
                FAIL,
                "store",
                f"{path} does not exist and {parent} is not writable",
                "set WAPA_DB to a writable place, or fix the directory's owner",
            )
        return Check(OK, "store", f"{path} will be created at the first run")
    try:
        store = await Store.open(path, settings.db_key or None, sync=store_settings.sync)
    except StoreError as exc:
        fix = (
            "use the WAPA_DB_KEY this database was created with (none if it was created without)"
            if "WAPA_DB_KEY" in str(exc)
            else "restore a backup (docs/store.md), or move the file away"
        )
        return Check(FAIL, "store", str(exc), fix)
    try:
        assistant = await store.load(settings.policy, settings.persona)
    except StoreError as exc:
        return Check(FAIL, "store", str(exc), "check WAPA_DB_KEY, or restore a backup")
    finally:
        await store.close()
    chats = len(assistant.chats) if assistant is not None else 0
    if not store.encrypted:
        return Check(
            WARN,
            "store",
            f"{path} opens ({chats} chats) but is not encrypted",
            "set WAPA_DB_KEY (a passphrase) to encrypt message text and names at rest",
        )
    return Check(OK, "store", f"{path} opens, key matches ({chats} chats)")


async def _session(session_db: str) -> Check:
    try:
        from wapa.adapters.whatsapp.session import SessionError, describe_session, paired_accounts
    except ImportError as exc:
        return Check(
            FAIL,
            "whatsapp",
            f"the WhatsApp adapter cannot be loaded ({exc})",
            "install libmagic1 (Debian/Ubuntu) and reinstall wapa",
        )
    try:
        accounts = await asyncio.to_thread(paired_accounts, session_db)
    except SessionError as exc:
        return Check(FAIL, "whatsapp", str(exc), "check WAPA_SESSION_DB")
    except Exception as exc:  # neonize's Go library failing to load, and the like
        return Check(
            FAIL,
            "whatsapp",
            f"cannot read the session ({type(exc).__name__})",
            "check WAPA_SESSION_DB and that neonize imports (libmagic1)",
        )
    where = describe_session(session_db)
    if not accounts:
        return Check(
            FAIL,
            "whatsapp",
            f"no paired account in {where}",
            "run `wapa pair` (QR code) or `wapa pair --phone NUMBER`",
        )
    return Check(OK, "whatsapp", f"paired ({len(accounts)} account) in {where}")


def _port(host: str, port: int) -> Check:
    """Is the health/metrics port free? Taken by a running wapa (its /healthz answers as
    wapa's does, as when `docker compose exec wapa wapa doctor` runs beside the assistant) is
    fine; taken by anything else is a warning: `wapa run` could not start."""
    if port == 0:
        return Check(OK, "http", "a free port will be chosen at start")
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as exc:
        status = _wapa_health(host, port)
        if status:
            return Check(OK, "http", f"{host}:{port} is served by a running wapa ({status})")
        return Check(
            WARN,
            "http",
            f"{host}:{port} is taken by another program ({exc.strerror}): `wapa run` could "
            "not start its health and metrics server there",
            "stop that program, or set WAPA_HTTP_PORT to a free port",
        )
    return Check(OK, "http", f"{host}:{port} is free")


def _wapa_health(host: str, port: int, timeout: float = 2.0) -> str:
    """The `status` a wapa /healthz on host:port reports ("ok", "degraded", ...), or "" when
    what listens there is not wapa (no answer, not JSON, not wapa's shape)."""
    import json
    import urllib.error
    import urllib.request

    from wapa.commands.healthcheck import default_url

    url = default_url({"WAPA_HTTP_HOST": host, "WAPA_HTTP_PORT": str(port)})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as answer:
            body = answer.read(65536)
    except urllib.error.HTTPError as error:  # 503: wapa, with a component down
        body = error.read(65536)
    except (urllib.error.URLError, OSError, ValueError):
        return ""
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(data, dict) or not isinstance(data.get("components"), dict):
        return ""
    return str(data.get("status", "unknown"))[:40]


async def _model(env: Mapping[str, str], transport: Any) -> Check:
    from wapa.adapters.llm import ConfigError, client_from_env

    try:
        client = client_from_env(env, transport=transport)
    except ConfigError as exc:
        return Check(FAIL, "model", str(exc), "see docs/model.md")
    try:
        health = await client.health()
    finally:
        await client.aclose()
    providers = health.get("providers", [])
    left = health.get("budget_left")
    budget = f"; {left:.0f} neurons left today" if isinstance(left, int | float) else ""
    if health.get("ok"):
        status = WARN if health.get("status") != "ok" else OK
        names = ", ".join(str(p.get("model", "")) for p in providers)
        return Check(
            status,
            "model",
            f"credentials accepted ({health.get('status')}: {names}){budget}",
            "a fallback provider failed its check; see the details with --verbose logs",
        )
    kinds = {str(p.get("kind", "")) for p in providers}
    details = "; ".join(str(p.get("detail", p.get("kind", ""))) for p in providers)
    if "auth" in kinds:
        fix = "create a Cloudflare API token with the Workers AI permission; check CLOUDFLARE_ACCOUNT_ID"
    elif "unreachable" in kinds or "timeout" in kinds:
        fix = "check the network, proxies and CLOUDFLARE_API_BASE / OPENAI_BASE_URL"
    else:
        fix = "see docs/model.md"
    return Check(FAIL, "model", f"check failed: {details or 'no provider answered'}", fix)
