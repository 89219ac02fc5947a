"""Shared helpers for the model adapter tests (no tests here): a virtual clock whose sleep
only advances time, the fixtures, and env builders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cloudflare"
ACCOUNT = "0123456789abcdef0123456789abcdef"
BASE = "https://api.cloudflare.test/client/v4"
MODEL = "@cf/meta/llama-3.2-1b-instruct"
RUN_URL = f"{BASE}/accounts/{ACCOUNT}/ai/run/{MODEL}"
T0 = 1_741_600_000.0  # 2025-03-10 09:46:40 UTC


def fixture(name: str) -> Any:
    text = (FIXTURES / name).read_text()
    return json.loads(text) if name.endswith(".json") else text


def cf_env(**extra: str) -> dict[str, str]:
    return {
        "CLOUDFLARE_API_TOKEN": "test-token",
        "CLOUDFLARE_ACCOUNT_ID": ACCOUNT,
        "CLOUDFLARE_API_BASE": BASE,
        **extra,
    }


class VirtualTime:
    """`clock` and `sleep` for the adapters: sleeping advances the clock, never waits."""

    def __init__(self, start: float = T0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def reply(name: str, status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=fixture(name), headers=headers)


def success(
    text: str = "Hi Dana, Gilad will get back to you.", usage: bool = True
) -> httpx.Response:
    result: dict[str, Any] = {"response": text}
    if usage:
        result["usage"] = {"prompt_tokens": 312, "completion_tokens": 31, "total_tokens": 343}
    return httpx.Response(
        200, json={"result": result, "success": True, "errors": [], "messages": []}
    )
