"""The deadline heap keeps at most one entry per chat, at or before its deadline: a deadline
moved later (a debounce) keeps its entry, which moves when it comes up (`Assistant._set_timer`).
Whatever the history, the next deadline and the order in which due chats fire are those of
every chat's live deadline, ordered by time and then by when it was set, as one entry per
deadline set would give them."""

from __future__ import annotations

import random

import pytest
from wapa.core import Assistant, Decision, Message, Policy

from tests.support.core_run import PERSONA, T0

POLICY = Policy.from_mapping(
    {
        "response_delay": "2m",
        "max_wait": "10m",
        "cooldown": "1m",
        "caps": {"per_chat_per_day": 0, "per_hour": 0, "per_day": 0},
    }
)


def _live(a: Assistant) -> list[tuple[float, int, str]]:
    """Every chat's live deadline as (time, sequence number, chat), in firing order."""
    return sorted((c.due, c.timer_seq, c.id) for c in a.chats.values() if c.timer_seq)


@pytest.mark.parametrize("seed", range(6))
def test_deadlines_fire_as_one_entry_per_deadline_would(seed: int) -> None:
    rng = random.Random(seed)
    a, t, n = Assistant(POLICY, PERSONA, seed), T0, 0
    chats = [f"c{i}@s.whatsapp.net" for i in range(12)]
    for _ in range(600):
        t += rng.choice((0.0, 0.5, 7.0, 40.0))  # equal times too: the sequence orders them
        roll = rng.random()
        if roll < 0.6:  # a contact writes: a new deadline, or one pushed later (debounce)
            n += 1
            text = "urgent: call me" if rng.random() < 0.1 else "hello"
            a.handle(Message(rng.choice(chats), "x", f"m{n}", text, sender_name="X"), t)
        elif roll < 0.7:  # the owner writes: the chat's deadline is cancelled
            n += 1
            a.handle(Message(rng.choice(chats), "me", f"o{n}", "on it", from_me=True), t)
        else:
            expected = [cid for due, _, cid in _live(a) if due <= t]
            decided = [d.chat for d in a.on_timer(t) if isinstance(d, Decision)]
            assert list(dict.fromkeys(decided)) == expected  # each fire decides for its chat
        live = _live(a)
        assert a.next_deadline() == (live[0][0] if live else None)
        assert len(a._heap) <= max(64, 2 * len(a.chats)) + 1  # stale entries do not pile up
