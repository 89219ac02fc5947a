"""The runner's persistence: group commit (one transaction for the events already queued,
committed before any of their effects), and the model's daily budget and quota block kept in
the store across restarts. Real core, real SQLite store, real model chain over a mocked HTTP
transport, manual clock."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from wapa.adapters.llm import client_from_settings, settings_from_env
from wapa.adapters.llm.usage import neurons, next_utc_midnight
from wapa.adapters.store import Store
from wapa.runner import USAGE_KEY

from tests.app.test_runner_inprocess import Harness
from tests.support.llm import MODEL, cf_env, reply, success
from tests.support.runner import FakeTransport, contact, settle

CHATS = [f"1555100{i:04d}@s.whatsapp.net" for i in range(6)]


class CheckingTransport(FakeTransport):
    """Before each mark_read, reads the database file the way another process would: what
    it sees there is what was committed before the effect ran."""

    def __init__(self, db: str, journal: list[tuple[Any, ...]]) -> None:
        super().__init__(journal)
        self.db = db
        self.committed_chats: list[int] = []

    async def mark_read(self, chat: str, message_ids: Any, sender: str) -> None:
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            (count,) = con.execute("SELECT count(*) FROM chats").fetchone()
        finally:
            con.close()
        self.committed_chats.append(count)
        await super().mark_read(chat, message_ids, sender)


async def test_queued_events_are_committed_once_before_any_of_their_effects(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, {"WAPA_RESPONSE_DELAY": "0s"})
    h.transport = CheckingTransport(h.settings.db, h.journal)
    runner = await h.start()
    commits_before = runner.commits
    assert h.transport.on_message is not None
    for i, chat in enumerate(CHATS):  # all queued before the runner's loop runs again
        await h.transport.on_message(contact(f"hello {i}", chat=chat, mid=f"m{i}"))
    await settle(runner)

    commits = [j for j in h.journal if j[0] == "commit" and "Message" in j[2]]
    assert len(commits) == 1, commits  # one transaction for the whole group
    (group,) = commits
    assert group[2] == ("Message",) * len(CHATS)
    # zero delay: the timer came due inside the group, so its effects are in the same commit
    assert group[1].count("MarkRead") == group[1].count("Generate") == len(CHATS)
    assert runner.commits - commits_before >= 1 and runner.committed_steps >= len(CHATS) + 1
    at = h.journal.index(group)
    effects = [i for i, j in enumerate(h.journal) if j[0] in ("mark_read", "typing", "send")]
    assert len([i for i in effects if h.journal[i][0] == "mark_read"]) == len(CHATS)
    assert min(effects) > at  # nothing ran before the group's commit
    # and the commit was real: every mark_read saw all six chats in the file
    assert h.transport.committed_chats == [len(CHATS)] * len(CHATS)
    assert len(h.model.calls) == len(CHATS)
    assert await h.stop() == 0
    store = await Store.open(h.settings.db)
    try:
        a = await store.load(h.settings.policy, h.settings.persona)
        assert a is not None and set(CHATS) <= set(a.chats)
    finally:
        await store.close()


async def test_a_single_event_is_still_one_step_one_commit(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    runner = await h.start()
    before = runner.commits
    await h.transport.deliver(contact("hello"))
    assert runner.commits == before + 1
    assert [j for j in h.journal if j[0] == "commit"][-1][2] == ("Message",)
    assert await h.stop() == 0


# ---------------------------------------------------------------- the model's daily budget

T_EVENING = datetime(2025, 3, 10, 21, 30, tzinfo=UTC).timestamp()


class CloudflareScript:
    """The HTTP side of Cloudflare: answers from a script, counts the calls."""

    def __init__(self) -> None:
        self.answers: list[httpx.Response] = []
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return self.answers.pop(0) if self.answers else success()


async def _no_sleep(seconds: float) -> None:
    return None


def _model(h: Harness, cf: CloudflareScript, **env: str) -> Any:
    settings = settings_from_env(cf_env(**env))
    return client_from_settings(
        settings, transport=httpx.MockTransport(cf), clock=h.clock, sleep=_no_sleep
    )


async def _reply_round(h: Harness, chat: str, mid: str) -> None:
    await h.transport.deliver(contact("are you there?", chat=chat, mid=mid))
    await h.clock.advance(runner=h.runner, seconds=15)


def _saved_usage(db: str) -> dict[str, Any]:
    con = sqlite3.connect(db)
    try:
        (text,) = con.execute(
            "SELECT value FROM store_meta WHERE name = ?", (USAGE_KEY,)
        ).fetchone()
    finally:
        con.close()
    return dict(json.loads(text))


async def test_spend_and_quota_block_survive_restarts_until_midnight_utc(tmp_path: Path) -> None:
    cf = CloudflareScript()
    per_call = neurons(MODEL, 312, 31)  # what `success()` reports as usage

    first = Harness(tmp_path)
    first.clock.t = T_EVENING
    first.model = _model(first, cf, AI_DAILY_NEURON_BUDGET="100")
    await first.start()
    await _reply_round(first, CHATS[0], "a1")
    assert cf.calls == 1 and len(first.transport.sent) == 1
    left = first.model.stats.budget_left
    assert left == 100 - per_call
    # the API says the day's free allocation is used up
    cf.answers.append(reply("run_daily_quota_429.json", 429))
    await _reply_round(first, CHATS[1], "b1")
    assert cf.calls == 2
    midnight = next_utc_midnight(T_EVENING)
    assert first.model.stats.quota_blocked_until == midnight
    assert await first.stop() == 0
    saved = _saved_usage(first.settings.db)
    assert saved == {"day": "2025-03-10", "spent": round(per_call, 6), "blocked_until": midnight}

    # a restart the same evening: the same budget left, still blocked, no call to the API
    second = Harness(tmp_path)
    second.clock.t = first.clock.t + 60
    second.model = _model(second, cf, AI_DAILY_NEURON_BUDGET="100")
    await second.start()
    assert second.model.stats.budget_left == left
    assert second.model.stats.neurons_today == per_call
    assert second.model.stats.quota_blocked_until == midnight
    ok, body = second.runner.health()  # type: ignore[union-attr]
    assert body["components"]["model"]["budget_left"] == round(left, 1)
    await _reply_round(second, CHATS[2], "c1")
    assert cf.calls == 2  # refused locally: the block was restored
    assert second.transport.sent == []
    assert await second.stop() == 0

    # after 00:00 UTC: a new day, a full budget, the block is over
    third = Harness(tmp_path)
    third.clock.t = midnight + 1
    third.model = _model(third, cf, AI_DAILY_NEURON_BUDGET="100")
    await third.start()
    assert third.model.stats.quota_blocked_until == 0.0
    assert third.model.stats.budget_left == 100
    await _reply_round(third, CHATS[3], "d1")
    assert cf.calls == 3 and len(third.transport.sent) == 1
    assert await third.stop() == 0
    assert _saved_usage(third.settings.db)["day"] == "2025-03-11"


async def test_a_spent_budget_stays_spent_after_a_restart(tmp_path: Path) -> None:
    """A restart loop must not hand the day's budget out again."""
    cf = CloudflareScript()
    first = Harness(tmp_path)
    first.clock.t = T_EVENING
    first.model = _model(first, cf, AI_DAILY_NEURON_BUDGET="6")  # one call's worst case fits
    await first.start()
    await _reply_round(first, CHATS[0], "a1")
    assert cf.calls == 1
    assert await first.stop() == 0

    again = Harness(tmp_path)
    again.clock.t = first.clock.t + 5
    again.model = _model(again, cf, AI_DAILY_NEURON_BUDGET="6")
    await again.start()
    await _reply_round(again, CHATS[1], "b1")
    assert cf.calls == 1  # the budget check refused it: the spend came back from the store
    assert again.model.stats.failures == {"budget": 1}
    assert await again.stop() == 0


async def test_a_damaged_usage_value_is_logged_and_the_runner_starts(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    store = await Store.open(h.settings.db)
    await store.close()
    con = sqlite3.connect(h.settings.db)
    con.execute("INSERT INTO store_meta VALUES (?, ?)", (USAGE_KEY, '{"day": 5}'))
    con.commit()
    con.close()
    cf = CloudflareScript()
    h.clock.t = T_EVENING
    h.model = _model(h, cf)
    runner = await h.start()
    assert runner.state == "running"
    await _reply_round(h, CHATS[0], "a1")
    assert cf.calls == 1 and len(h.transport.sent) == 1
    assert await h.stop() == 0
    assert _saved_usage(h.settings.db)["day"] == "2025-03-10"  # rewritten after the call
