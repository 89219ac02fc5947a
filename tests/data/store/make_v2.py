"""How `v2.db` and `v2-encrypted.db` (schema v2, chats WITHOUT ROWID) were made: by the wapa
that wrote schema v2 (commit 1d1f591), for `tests/adapters/test_store_schema_v3.py`.

    git worktree add /tmp/wapa-v2 1d1f591        # then a venv there with `pip install -e .`
    /tmp/wapa-v2/.venv/bin/python tests/data/store/make_v2.py tests/data/store

Six chats through the real `Store`: twelve contact messages (a name and non-ASCII text),
twelve replies generated and sent, nine confirmed, two failed, one left open (intent with no
outcome: a crash right after its commit); a store_meta value; and what that wapa loaded back
(`Assistant.export()`) beside each file as JSON. The encrypted file uses `KEY` (a raw key)."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from pathlib import Path

from wapa.adapters.store import Store
from wapa.adapters.store.schema import SCHEMA_VERSION
from wapa.core import (
    Assistant,
    Generate,
    Generated,
    Message,
    Persona,
    Policy,
    Send,
    SendConfirmed,
    SendFailed,
)
from wapa.core.driver import Driver, NullWorld

T0 = 1_767_600_000.0
KEY = base64.b64encode(bytes(range(32))).decode()
POLICY = {"cooldown": "0s"}
PERSONA = Persona(owner_id="owner", owner_name="Gilad", assistant_name="Dana")


async def make(path: Path, key: str | None) -> Assistant:
    path.unlink(missing_ok=True)
    store = await Store.open(path, key, clock=lambda: T0)
    policy = Policy.from_mapping(POLICY)
    d = Driver(Assistant(policy, PERSONA, seed=7), NullWorld())
    open_sends: list[Send] = []

    async def commit(values: dict[str, str] | None = None) -> None:
        batch = d.take_batch()
        if batch is not None:
            await store.save(batch, values=values)
            d.committed(batch)
            open_sends.extend(e for e in batch.effects() if isinstance(e, Send))

    await commit()
    now = T0
    for k in range(12):
        now += 7.0
        chat = f"4915{k % 6:03d}@s.whatsapp.net"
        text = f"Hi, message {k}: can we talk about the invoice? (é ✓)"
        d.feed(Message(chat, chat, f"m{k}", text, sender_name=f"Contact {k % 6}"), now)
        answers = []
        for _ in range(3):
            now += 40.0
            for e in d.fire_due(now):
                if isinstance(e, Generate):
                    answers.append(Generated(e.request_id, f"Thanks, I'll pass it on ({k})."))
        await commit({"model_usage": json.dumps({"day": "2026-01-05", "n": k})})
        for answer in answers:
            now += 0.5
            d.feed(answer, now)
        await commit()
        sends, open_sends[:] = list(open_sends), []
        for i, s in enumerate(sends):
            now += 0.3
            ok = (k + i) % 4
            d.feed(
                SendConfirmed(s.request_id, f"wa{k}{i}") if ok else SendFailed(s.request_id), now
            )
        await commit()
    for _ in range(3):  # the last replies are sent; the first of them is left open
        now += 40.0
        d.fire_due(now)
        await commit()
    for s in open_sends[1:]:
        now += 0.3
        d.feed(SendConfirmed(s.request_id, "wa-last"), now)
    await commit()
    loaded = await store.load(policy, PERSONA)
    await store.close()
    assert loaded is not None
    return loaded


def main(out: Path) -> None:
    assert SCHEMA_VERSION == 2, "run this with the wapa that writes schema v2 (1d1f591)"
    for name, key in (("v2", None), ("v2-encrypted", KEY)):
        loaded = asyncio.run(make(out / f"{name}.db", key))
        export = json.dumps(loaded.export(), sort_keys=True, indent=1, ensure_ascii=False)
        (out / f"{name}.export.json").write_text(export + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
