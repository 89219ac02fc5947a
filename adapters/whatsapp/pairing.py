"""Linking wapa to a WhatsApp account (`wapa pair`), by QR code or by pairing code.

QR: whatsmeow hands out a new code every 20 s (60 s for the first) for a few minutes; each is
drawn in the terminal (segno, half-block characters) for the phone to scan in WhatsApp >
Settings > Linked devices > Link a device. Pairing code (`--phone`): once the first QR code
arrives (whatsmeow is then ready), neonize's `PairPhone` returns an 8-character code to type
in WhatsApp > Linked devices > Link with phone number instead.

The session (device keys) is written by whatsmeow to the session database as soon as the phone
confirms; `pair` then waits briefly for the first login to finish and disconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TextIO

import segno
from neonize.aioze.client import NewAClient
from neonize.aioze.events import ConnectedEv, LoggedOutEv, PairStatusEv
from neonize.proto.Neonize_pb2 import PairStatus
from neonize.utils.enum import ClientName, ClientType
from wapa.adapters.whatsapp import jid as J
from wapa.adapters.whatsapp.client import _default_client, _default_paired
from wapa.adapters.whatsapp.session import describe_session

LOGIN_WAIT = 30.0  # after the phone confirms, how long to wait for the first login
STOP_WAIT = 10.0
# whatsmeow's QR channel (qrchan.go) ends after its codes run out: 60 s for the first, 20 s for
# each of the next five; the pairing code is tied to that connection and dies with it.
CODE_LIFETIME = 160.0


class PairingError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class PairResult:
    ok: bool
    message: str
    account: str = ""
    clean: bool = True  # False: neonize's worker thread is still running (exit hard)


def normalize_phone(text: str) -> str:
    """Digits of an international number ("+972 50-123-4567" -> "972501234567")."""
    digits = re.sub(r"[\s\-().]", "", text or "").removeprefix("+").removeprefix("00")
    if not digits.isdigit() or not 7 <= len(digits) <= 15:
        raise ValueError(
            "--phone: expected the account's full number in international format, "
            "country code first (for example +972 50 123 4567)"
        )
    return digits


def mask(account: str) -> str:
    """A phone number or JID shown as +********4567."""
    digits = account.split("@")[0].split(":")[0]
    if not digits.isdigit():
        return "this account"
    return "+" + "*" * max(0, len(digits) - 4) + digits[-4:]


async def pair(
    session_db: str,
    *,
    phone: str | None = None,
    out: TextIO = sys.stdout,
    timeout: float = 180.0,
    client_factory: Callable[[], NewAClient] | None = None,
    paired_check: Callable[[str], Awaitable[list[str]]] | None = None,
    stop_wait: float = STOP_WAIT,
) -> PairResult:
    where = describe_session(session_db)
    accounts = await (paired_check or _default_paired)(session_db)
    if accounts:
        return PairResult(
            True,
            f"Already paired with {mask(accounts[0])} (session in {where}). To link another "
            "phone, delete that session (or point WAPA_SESSION_DB elsewhere) and run "
            "`wapa pair` again.",
            accounts[0],
        )
    client = (client_factory or (lambda: _default_client(session_db)))()
    loop = asyncio.get_running_loop()
    paired: asyncio.Future[str] = loop.create_future()
    logged_in = asyncio.Event()
    asked_code = False

    def fail(exc: BaseException) -> None:
        if not paired.done():
            paired.set_exception(exc)

    async def on_qr(_client: NewAClient, data: bytes) -> None:
        nonlocal asked_code
        try:
            if phone:
                if asked_code:
                    return
                asked_code = True
                # neonize derives the type from DeviceProps' platform number, which is a
                # different enum: SAFARI there is OPERA here ("OPERA (LINUX)" on the phone)
                code = await client.PairPhone(phone, True, ClientName.LINUX, ClientType.SAFARI)
                out.write(
                    f"\nPairing code for {mask(phone)}:  {code}\n\n"
                    "On the phone: WhatsApp > Settings > Linked devices > Link a device > "
                    "Link with phone number instead, then type the code.\n"
                    f"The code works for about {CODE_LIFETIME:.0f} s: it ends with WhatsApp's "
                    "QR codes. If it runs out, run `wapa pair --phone` again.\n"
                )
            else:
                out.write(
                    "\nScan this QR code with WhatsApp on the phone: Settings > Linked devices "
                    "> Link a device. A new code appears every 20 seconds.\n"
                )
                segno.make_qr(data).terminal(out=out, compact=True)
            out.flush()
        except Exception as exc:  # noqa: BLE001 - reported as the pairing's failure
            fail(PairingError(f"could not get a pairing code: {J.redact_numbers(str(exc))}"))

    async def on_pair_status(_client: NewAClient, ev: PairStatus) -> None:
        if ev.Status == PairStatus.SUCCESS:
            if not paired.done():
                paired.set_result(J.jid_str(ev.ID))
        else:
            fail(PairingError(f"the phone refused the link: {J.redact_numbers(ev.Error)[:200]}"))

    async def on_connected(_client: NewAClient, _ev: Any) -> None:
        logged_in.set()

    async def on_logged_out(_client: NewAClient, _ev: Any) -> None:
        fail(PairingError("WhatsApp logged this device out during pairing"))

    client.event.qr(on_qr)
    client.event(PairStatusEv)(on_pair_status)
    client.event(ConnectedEv)(on_connected)
    client.event(LoggedOutEv)(on_logged_out)
    task: asyncio.Future[Any] | None = None
    try:
        task = await client.connect()
        result = await _outcome(paired, task, logged_in, timeout, where)
    except PairingError as exc:
        result = PairResult(False, f"Pairing failed: {exc}.")
    finally:
        if not paired.done():
            paired.cancel()
        clean = await _stop(client, task, stop_wait)
    return replace(result, clean=clean)


async def _outcome(
    paired: asyncio.Future[str],
    task: asyncio.Future[Any],
    logged_in: asyncio.Event,
    timeout: float,
    where: str,
) -> PairResult:
    done, _ = await asyncio.wait({paired, task}, timeout=timeout, return_when="FIRST_COMPLETED")
    if paired.done():
        account = paired.result()  # raises PairingError on a refusal
        # The session is saved already; if the first login is slow, `wapa run` finishes it.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(logged_in.wait(), LOGIN_WAIT)
        return PairResult(
            True,
            f"Paired with {mask(account)}. The session is saved in {where}; "
            "start the assistant with `wapa run`.",
            account,
        )
    if task in done:
        error = task.exception() if not task.cancelled() else None
        why = J.redact_numbers(str(error))[:400] if error else "the connection ended"
        return PairResult(False, f"Pairing failed: {why}")
    return PairResult(
        False,
        f"Pairing timed out after {timeout:.0f} s without the phone confirming (a QR code or "
        f"pairing code lasts about {CODE_LIFETIME:.0f} s in all). "
        "Run `wapa pair` again (with --phone NUMBER for a pairing code instead).",
    )


async def _stop(client: NewAClient, task: asyncio.Future[Any] | None, wait: float) -> bool:
    """Stop neonize; True when its worker ended (the process can exit normally)."""
    if task is None:
        return True
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.stop(), wait)
    done, _ = await asyncio.wait({task}, timeout=wait)
    if task in done and not task.cancelled():
        task.exception()  # retrieved: no "never retrieved" warning
    return task in done
