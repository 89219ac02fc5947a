"""`--exit-on-eof`: the runner stops once the work is done, whatever its outcome.

Before: after a failed generation or a refused reply the runner never exited. The last
event was handled while the typing-off effect was still under way, and nothing woke the
loop again to see that all was done. In-process, on a manual clock.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.app.test_runner_inprocess import Harness
from tests.support.runner import contact, settle


async def _finish_after_eof(h: Harness) -> int:
    runner = await h.start()
    await h.transport.deliver(contact("hello, are you there?"))
    await settle(runner)
    runner.on_eof()  # stdin ended with a reply still waiting for its delay
    await h.clock.advance(runner=runner, seconds=60)
    assert h.task is not None
    return await asyncio.wait_for(asyncio.shield(h.task), 5)


@pytest.mark.parametrize("kind", ["boom", "auth"])
async def test_exits_after_a_failed_generation(tmp_path: Path, kind: str) -> None:
    h = Harness(tmp_path)
    h.model.fail_kind = kind
    assert await _finish_after_eof(h) == 0
    assert h.model.calls and h.transport.sent == []


async def test_exits_after_a_refused_reply(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.model.reply = "As an AI language model, I cannot help with that."
    assert await _finish_after_eof(h) == 0
    assert h.model.calls and h.transport.sent == []


async def test_exits_after_a_sent_reply(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    assert await _finish_after_eof(h) == 0
    assert len(h.transport.sent) == 1
