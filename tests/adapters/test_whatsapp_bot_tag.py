"""NEONIZE_BOT_TAG: wapa's messages are not marked as a business bot's unless asked for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from wapa.adapters.whatsapp import BOT_TAG, bot_tag

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "off"),
        ("", "off"),
        ("  ", "off"),
        ("off", "off"),
        ("0", "off"),
        ("maybe", "off"),
        ("on", "on"),
        (" ON ", "on"),
        ("1", "on"),
        ("true", "on"),
        ("yes", "on"),
    ],
)
def test_only_an_explicit_on_keeps_the_bot_tag(value: str | None, expected: str) -> None:
    assert bot_tag({} if value is None else {BOT_TAG: value}) == expected


@pytest.mark.parametrize(("value", "expected"), [("", "off"), ("on", "on")])
def test_importing_the_adapter_sets_it_before_neonize_loads(value: str, expected: str) -> None:
    """An empty line in an env_file (`NEONIZE_BOT_TAG=`) reaches the process as "": it must
    still mean off, as every empty value in wapa's configuration means the default."""
    code = "import os, adapters.whatsapp; print(os.environ['NEONIZE_BOT_TAG'])"
    env = {**os.environ, BOT_TAG: value}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert out.stdout.strip() == expected
