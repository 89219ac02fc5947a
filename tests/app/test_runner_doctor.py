"""`wapa doctor` and `wapa config`, against real files and the fake Cloudflare server."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from wapa.adapters.store import Store
from wapa.cli import main as cli
from wapa.commands.doctor import diagnose, report
from wapa.config import VARIABLES
from wapa.sim.fake_cloudflare import FakeCloudflare


@pytest.fixture
def cloudflare() -> Iterator[FakeCloudflare]:
    with FakeCloudflare() as fake:
        yield fake


def _text(checks: list) -> tuple[int, str]:
    out = io.StringIO()
    code = report(checks, out)
    return code, out.getvalue()


async def test_all_good_with_console_transport(tmp_path: Path, cloudflare: FakeCloudflare) -> None:
    env = {
        **cloudflare.env(),
        "WAPA_DB": str(tmp_path / "w.db"),
        "WAPA_DB_KEY": "pass phrase",
        "WAPA_HTTP_PORT": "0",
    }
    code, text = _text(await diagnose(env, transport="console"))
    assert code == 0, text
    assert "ok    model: credentials accepted" in text and "all good" in text
    assert [r for r in cloudflare.requests if r.endpoint in ("run", "chat")] == []  # no neurons


async def test_problems_are_named_with_a_fix(tmp_path: Path, cloudflare: FakeCloudflare) -> None:
    db = tmp_path / "w.db"
    store = await Store.open(db, "right key")
    await store.close()
    env = {
        **cloudflare.env(CLOUDFLARE_API_TOKEN="wrong"),
        "WAPA_DB": str(db),
        "WAPA_DB_KEY": "other key",
        "WAPA_SESSION_DB": str(tmp_path / "none.db"),
    }
    code, text = _text(await diagnose(env, transport="whatsapp"))
    assert code == 1
    assert "FAIL  store: " in text and "WAPA_DB_KEY" in text
    assert "FAIL  whatsapp: no paired account" in text and "wapa pair" in text
    assert (
        "FAIL  model: check failed: auth" in text and "fix: create a Cloudflare API token" in text
    )


async def test_a_bad_value_stops_at_the_config_check() -> None:
    code, text = _text(await diagnose({"WAPA_COOLDOWN": "forever"}, transport="console"))
    assert code == 1 and text.startswith("FAIL  config: WAPA_COOLDOWN: ")


def test_config_command_prints_every_variable(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["config", "--env-example"]) == 0
    out = capsys.readouterr().out
    assert all(f"\n{v.name}=" in out for v in VARIABLES)
    assert cli(["config", "--markdown"]) == 0
    assert "| `WAPA_RESPONSE_DELAY` | `2m` |" in capsys.readouterr().out
