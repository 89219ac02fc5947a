"""`wapa pair`: QR code or pairing code, then exit; neonize's client with network calls faked."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest
from neonize.aioze.events import EVENT_TO_INT, ConnectedEv, PairStatusEv
from neonize.proto.Neonize_pb2 import PairStatus
from wapa.adapters.whatsapp.pairing import mask, normalize_phone, pair
from wapa.adapters.whatsapp.session import describe_session, paired_accounts, session_from_env
from wapa.cli import main

from tests.adapters.test_whatsapp_mapping import OWN, jid
from tests.adapters.test_whatsapp_transport import FakeClient


class PairingClient(FakeClient):
    def __init__(self) -> None:
        super().__init__()
        self.codes_asked: list[tuple[str, bool]] = []

    async def PairPhone(self, phone: str, show_push_notification: bool, *a: Any, **kw: Any) -> str:  # noqa: N802
        self.codes_asked.append((phone, show_push_notification))
        return "ABCD-EFGH"

    async def show_qr(self, data: bytes) -> None:
        await self.event._qr(self, data)

    async def paired_ok(self) -> None:
        ev = PairStatus(ID=jid(OWN), Status=PairStatus.SUCCESS)
        await self.event.list_func[EVENT_TO_INT[PairStatusEv]](self, ev)
        await self.event.list_func[EVENT_TO_INT[ConnectedEv]](self, ConnectedEv(status=True))


async def unpaired(_db: str) -> list[str]:
    return []


async def run_pair(client: PairingClient, script: Any, **kw: Any) -> tuple[Any, str]:
    out = io.StringIO()
    task = asyncio.create_task(
        pair("data/s.db", out=out, client_factory=lambda: client, paired_check=unpaired, **kw)
    )
    while client.running is None:
        await asyncio.sleep(0)
    await script(client)
    return await task, out.getvalue()


async def two_qr_codes_then_paired(c: PairingClient) -> None:
    await c.show_qr(b"2@first")
    await c.show_qr(b"2@second")
    await c.paired_ok()


async def test_qr_code_is_drawn_then_pairing_succeeds_and_stops() -> None:
    client = PairingClient()
    result, out = await run_pair(client, two_qr_codes_then_paired)
    assert result.ok and result.clean and result.account == OWN
    assert "Paired with +********0001" in result.message and "wapa run" in result.message
    assert out.count("Linked devices") == 2  # two QR codes drawn...
    assert sum(out.count(ch) for ch in "█▀▄") > 100  # ...as half-block art
    assert client.of("stop") == [None] and client.codes_asked == []


async def test_phone_number_gets_one_pairing_code_and_no_qr() -> None:
    client = PairingClient()
    result, out = await run_pair(client, two_qr_codes_then_paired, phone="972500000001")
    assert result.ok
    assert client.codes_asked == [("972500000001", True)]
    assert "ABCD-EFGH" in out and "Link with phone number" in out and "▀" not in out


async def test_a_refusal_and_a_timeout_fail_with_a_reason() -> None:
    async def refuse(c: PairingClient) -> None:
        ev = PairStatus(Status=PairStatus.ERROR, Error="bad code from 972500000001")
        await c.event.list_func[EVENT_TO_INT[PairStatusEv]](c, ev)

    result, _ = await run_pair(PairingClient(), refuse)
    assert not result.ok and "refused" in result.message and "972500000001" not in result.message

    async def nothing(_c: PairingClient) -> None:
        return None

    client = PairingClient()
    client.stop_hangs = True  # whatsmeow's QR loop ended without a login: the worker hangs
    result, _ = await run_pair(client, nothing, timeout=0, stop_wait=0)
    assert not result.ok and "timed out" in result.message and not result.clean


async def test_already_paired_does_not_connect() -> None:
    async def paired(_db: str) -> list[str]:
        return [OWN]

    client = PairingClient()
    result = await pair("data/s.db", client_factory=lambda: client, paired_check=paired)
    assert result.ok and "Already paired with +********0001" in result.message
    assert client.connects == 0


def test_phone_numbers_and_masks() -> None:
    assert normalize_phone("+972 50-123-4567") == "972501234567"
    assert normalize_phone("00447700900123") == "447700900123"
    for bad in ("", "abc", "+12", "1" * 16):
        with pytest.raises(ValueError, match="--phone"):
            normalize_phone(bad)
    assert mask("972501234567@s.whatsapp.net") == "+********4567"
    assert mask("x@lid") == "this account"


def test_session_location(tmp_path: Any) -> None:
    assert session_from_env({}) == "data/session.db"
    assert session_from_env({"WAPA_SESSION_DB": " /srv/s.db "}) == "/srv/s.db"
    url = "postgres://wapa:hunter2@db.local:5432/wapa"
    assert describe_session(url) == "postgres://db.local:5432/wapa"
    assert paired_accounts(str(tmp_path / "missing.db")) == []
    assert not (tmp_path / "missing.db").exists()


def test_cli_rejects_a_bad_phone_and_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pair", "--phone", "call me"]) == 2
    assert "--phone: expected" in capsys.readouterr().err
    assert main(["pair", "--timeout", "0"]) == 2
    assert "--timeout" in capsys.readouterr().err
