"""What-if replay: a reply that only moves in time is reported as moved (T1 -> T2), paired with
its baseline reply by the messages it answers, not as one gained and one lost."""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path

import pytest
from wapa.adapters.recording import read_recording
from wapa.cli import main
from wapa.core import Message
from wapa.sim.engine import Sent
from wapa.sim.replay import replay
from wapa.sim.replay_stream import Answers, Batch, match_in_order, pair_moved

from tests.sim.test_replay import BUSY_DAY, T0, H, _msg, record

# one message per chat, hours apart: a shorter delay changes nothing but the reply times
SPACED = [(k * 3 * H, _msg(chat, 1, f"hello from {chat}")) for k, chat in enumerate("abcd")]


def test_a_reply_that_only_moves_is_moved_not_gained_and_lost(tmp_path: Path) -> None:
    path = tmp_path / "spaced.jsonl"
    record(path, SPACED)
    report = replay(read_recording(path), {"response_delay": "10s"})
    s = report.summary
    assert (s["gained"], s["lost"], s["moved"]) == (0, 0, 4)
    assert s["baseline_replies"] == s["what_if_replies"] == 4
    for d in report.divergences:
        assert d["kind"] == "reply_moved"
        began = T0 + 3 * H * "abcd".index(d["chat"])
        assert began + 120 <= d["from_t"] < began + 160  # 2 min delay, then typing
        assert began + 10 <= d["t"] < began + 50  # 10 s delay, then typing
        assert d["shift_s"] == pytest.approx(d["t"] - d["from_t"], abs=1e-3) and d["shift_s"] < 0
        assert s["per_chat"][d["chat"]]["moved"] == [{"from": d["from_time"], "to": d["time"]}]


def test_a_debounced_reply_pairs_with_the_earlier_reply_to_the_same_batch(tmp_path: Path) -> None:
    """Alice writes at 0 s and 30 s: with 2 min the reply answers both; with 10 s it answers
    the first, and the second falls into the cooldown. Carol's reply is truly new: the owner
    wrote 60 s after her, before a 2 min reply, but after a 10 s one."""
    path = tmp_path / "day.jsonl"
    record(path, BUSY_DAY)
    report = replay(read_recording(path), {"response_delay": "10s"})
    s = report.summary
    assert (s["gained"], s["lost"], s["moved"]) == (1, 0, 2)
    assert [(d["chat"], d["kind"]) for d in report.divergences] == [
        ("alice", "reply_moved"),
        ("carol", "reply_gained"),
        ("alice", "reply_moved"),
    ]
    first = report.divergences[0]
    assert T0 + 120 < first["from_t"] < T0 + 200 and T0 + 10 <= first["t"] < T0 + 60


def test_cooldown_what_ifs_still_gain_and_lose(tmp_path: Path) -> None:
    path = tmp_path / "day.jsonl"
    record(path, BUSY_DAY)
    shorter = replay(read_recording(path), {"cooldown": "30m"}).summary
    assert (shorter["gained"], shorter["lost"], shorter["moved"]) == (1, 0, 0)
    longer = replay(read_recording(path), {"cooldown": "12h"}).summary
    assert (longer["gained"], longer["lost"], longer["moved"]) == (0, 1, 0)


def _sent(t: float, rid: str) -> Sent:
    return Sent(T0 + t, "alice", f"reply {rid}", rid, "")


def _batch(lo: int, hi: int) -> Batch:
    return Batch(lo, hi, T0 + hi)


def test_the_same_last_message_pairs_before_any_message_in_common() -> None:
    # baseline: one reply to messages 0 and 1; what-if: one reply to 0, another to 1
    assert pair_moved([_batch(0, 1)], [_batch(0, 0), _batch(1, 1)]) == [(0, 1)]
    # the earlier baseline reply shares message 1, the later one the last message (3)
    assert pair_moved([_batch(0, 1), _batch(2, 3)], [_batch(1, 3)]) == [(1, 0)]
    # else any message in common, the earliest free what-if reply first
    assert pair_moved([_batch(0, 3)], [_batch(0, 0), _batch(2, 2)]) == [(0, 0)]
    # nothing in common, or a reply that answers nothing: gained and lost
    assert pair_moved([_batch(0, 1)], [_batch(2, 2)]) == []
    assert pair_moved([None], [None, _batch(0, 0)]) == []


def test_replies_within_the_tolerance_are_unchanged_whatever_they_answer() -> None:
    left: list[tuple[int, Sent]] = []
    base, new = deque([_sent(200, "b1")]), deque([_sent(203, "n1")])
    match_in_order(
        base, new, lambda s: s.t, 5.0, (T0 + 900, T0 + 900), lambda i, s: left.append((i, s))
    )
    assert left == [] and not base and not new
    base, new = deque([_sent(200, "b1")]), deque([_sent(20, "n1"), _sent(400, "n2")])
    match_in_order(
        base, new, lambda s: s.t, 5.0, (T0 + 900, T0 + 900), lambda i, s: left.append((i, s))
    )
    assert [(i, s.request_id) for i, s in left] == [(1, "n1"), (0, "b1"), (1, "n2")]


def test_a_reply_pairs_with_its_baseline_by_the_messages_it_answers(tmp_path: Path) -> None:
    """The same as the first test above, through a what-if replay: the baseline answers
    Alice's two messages at once, the what-if each of them."""
    script: list[tuple[float, Message]] = [
        (0, _msg("alice", 1, "one")),
        (100, _msg("alice", 2, "two")),
    ]
    path = tmp_path / "two.jsonl"
    record(path, script)
    report = replay(read_recording(path), {"response_delay": "5s", "cooldown": "1m"})
    assert [(d["kind"], d["t"] < T0 + 100) for d in report.divergences] == [
        ("reply_gained", True),
        ("reply_moved", False),
    ]


def test_an_owner_message_ends_what_a_reply_answers(tmp_path: Path) -> None:
    """The owner answered Alice's first message himself; the later reply answers only the
    second, so a what-if reply to the first (made before the owner wrote) is gained."""
    script = [
        (0, _msg("alice", 1, "first question")),
        (60, Message("alice", "owner", "o1", "answered myself", from_me=True)),
        (6 * H, _msg("alice", 2, "second question")),
    ]
    path = tmp_path / "owner.jsonl"
    record(path, script)
    recording = read_recording(path)
    s = replay(recording, {"response_delay": "10s"}).summary
    assert (s["gained"], s["lost"], s["moved"]) == (1, 0, 1)
    answers = Answers(explain=True, limit=10)
    for index, (t, m) in enumerate(script):
        answers.message(index, T0 + t, m)
    reply = Sent(T0 + 6 * H + 150, "alice", "a reply", "r1", "")
    assert answers.reply(reply, upto=T0 + 6 * H + 140) == Batch(2, 2, T0 + 6 * H)  # not 0 to 2
    assert [u["text"] for u in answers.unanswered.values()] == ["first question"]


def test_cli_prints_moved_and_json_counts_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "spaced.jsonl"
    record(path, SPACED)
    assert main(["replay", str(path), "--set", "response_delay=10s"]) == 0
    out = capsys.readouterr().out
    assert "(0 gained, 0 lost, 4 moved)" in out
    assert out.count("  ~ ") == 4 and "earlier)" in out and " → " in out
    assert main(["replay", str(path), "--set", "response_delay=10s", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"events", "sent", "divergences", "unanswered", "summary"}
    assert data["summary"]["moved"] == 4
    assert {d["kind"] for d in data["divergences"]} == {"reply_moved"}
