"""`wapa replay` streams the recording (sim/replay_stream.py): it reports exactly what the
whole-recording replay reports (`replay_whole`, the test oracle in
tests/support/replay_oracle.py), lists at most `limit` of each list while counting all, puts
lines out of order back within a bounded buffer and refuses beyond it, and its memory does
not grow with the recording."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from wapa.adapters.chat_export.measure import OWNER, generate
from wapa.adapters.recording import RecordingError, read_recording
from wapa.cli import main
from wapa.core import Policy
from wapa.sim import replay_stream
from wapa.sim.engine import Simulation
from wapa.sim.replay import replay

from tests.sim.test_replay import BUSY_DAY, PERSONA, T0, _msg, record
from tests.sim.test_replay_crashes import _record_fuzz
from tests.support.replay_oracle import replay_whole

CHANGES: list[dict[str, Any] | None] = [
    None,
    {"response_delay": "10s"},
    {"cooldown": "20m"},
    {"burst_count": 1},
]


def _same(path: Path, changes: dict[str, Any] | None) -> dict[str, Any]:
    whole = replay_whole(read_recording(path), changes).to_json()
    streamed = replay(path, changes).to_json()
    assert streamed == whole
    return streamed


@pytest.mark.parametrize("changes", CHANGES, ids=lambda c: json.dumps(c))
def test_a_fuzz_recording_with_crashes_replays_as_the_whole_replay(
    tmp_path: Path, changes: dict[str, Any] | None
) -> None:
    path = tmp_path / "fuzz.jsonl"
    _record_fuzz(path, 3, crash_rate=0.1)
    out = _same(path, changes)
    assert out["summary"]["restarts"] > 5
    if changes:
        assert out["divergences"], "the what-if changes something"
    else:
        assert out["summary"]["compared"] and out["summary"]["divergences"] == 0


def _changed_policy(path: Path, **policy: Any) -> Path:
    """The recording with another policy in its header: replaying it diverges."""
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    header["policy"] = Policy.from_mapping(policy).to_mapping()
    out = path.with_name("changed.jsonl")
    out.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    return out


def test_divergences_and_their_traces_are_the_whole_replays(tmp_path: Path) -> None:
    path = tmp_path / "fuzz.jsonl"
    _record_fuzz(path, 4)
    changed = _changed_policy(path, cooldown="10m", response_delay="30s")
    out = _same(changed, None)
    assert out["summary"]["divergences"] > 10
    assert all(d["recorded"] or d["replay"] for d in out["divergences"])


def test_answers_read_after_the_replay_asked_are_handed_over_late(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a look-ahead shorter than the model's and WhatsApp's latencies, every recorded
    answer is read after its request was taken: it still arrives at its recorded delay."""
    path = tmp_path / "fuzz.jsonl"
    _record_fuzz(path, 5, crash_rate=0.05)
    monkeypatch.setattr(replay_stream, "LOOKAHEAD", 5.5)
    monkeypatch.setattr(replay_stream, "STEP", 0.0)
    out = _same(path, None)
    assert out["summary"]["divergences"] == 0 and out["summary"]["replayed_replies"] > 10


def test_an_imported_chat_replays_as_the_whole_replay(tmp_path: Path) -> None:
    chat = tmp_path / "chat.txt"
    generate(chat, 60_000)
    path = tmp_path / "chat.jsonl"
    assert main(["import-export", str(chat), "--owner", OWNER, "-o", str(path)]) == 0
    for changes in (None, {"cooldown": "30m"}):
        out = _same(path, changes)
        assert out["unanswered"]


def test_chats_quiet_for_days_replay_as_the_whole_replay(tmp_path: Path) -> None:
    """Messages days apart: a message sent in the cooldown is answered by the next reply,
    days later, as in the whole replay; each run forgets a quiet chat after a day, and the
    moved replies still pair with their baseline replies."""
    days = [
        (k * 86_400.0 * 1.5 + j * 40.0, _msg(chat, 10 * k + j, f"day {k} message {j}"))
        for k in range(4)
        for chat in ("alice", "bob")
        for j in range(2)
    ]
    path = tmp_path / "days.jsonl"
    record(path, sorted(days, key=lambda x: x[0]))
    out = _same(path, {"response_delay": "10s"})
    assert out["summary"]["moved"] == 8 and out["summary"]["gained"] == 0
    assert _same(path, None)["summary"]["divergences"] == 0


def test_beyond_the_waiting_bound_a_message_waits_a_day_for_its_reply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With more than `KEPT` messages waiting, one waiting over a day is unanswered: the reply
    a day and a half later no longer counts as answering a message sent in the cooldown."""
    path = tmp_path / "days.jsonl"
    script = [(0.0, _msg("alice", 1, "hi")), (600.0, _msg("alice", 2, "in the cooldown"))]
    record(path, [*script, (1.5 * 86_400.0, _msg("alice", 3, "two days later"))])
    assert [u["text"] for u in _same(path, None)["unanswered"]] == []
    monkeypatch.setattr(replay_stream, "KEPT", 0)
    late = replay(path).to_json()["unanswered"]
    assert [(u["text"], u["code"]) for u in late] == [("in the cooldown", "cooldown")]


def test_lists_are_cut_at_the_limit_and_everything_is_counted(tmp_path: Path) -> None:
    path = tmp_path / "fuzz.jsonl"
    _record_fuzz(path, 3)
    whole = replay_whole(read_recording(path), {"cooldown": "20m"}).to_json()
    cut = replay(path, {"cooldown": "20m"}, limit=2).to_json()
    assert len(whole["divergences"]) > 2 and len(whole["unanswered"]) > 2
    for key in ("divergences", "unanswered", "sent"):
        assert cut[key] == whole[key][:2]
    listed = cut["summary"].pop("listed")
    assert listed == {
        "limit": 2,
        "divergences": len(whole["divergences"]),
        "sent": len(whole["sent"]),
        "unanswered": len(whole["unanswered"]),
    }
    assert cut["summary"] == {**whole["summary"], "per_chat": cut["summary"]["per_chat"]}


def test_the_command_says_how_many_were_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "day.jsonl"
    record(path, BUSY_DAY)
    assert main(["replay", str(path), "--set", "response_delay=10s", "--limit", "1"]) == 0
    out = capsys.readouterr().out
    assert "3 replies -> 4 (1 gained, 0 lost, 2 moved)" in out
    assert "... and 2 more (--limit N lists more)" in out


def _lines(tmp_path: Path) -> list[str]:
    path = tmp_path / "day.jsonl"
    record(path, BUSY_DAY)
    return path.read_text().splitlines()


def test_lines_out_of_order_within_the_buffer_replay_in_time_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = _lines(tmp_path)
    monkeypatch.setattr(replay_stream, "REORDER_LINES", 4)
    body = lines[1:]
    moved = [*body[:10], *body[13:16], *body[10:13], *body[16:]]  # three lines, three down
    path = tmp_path / "moved.jsonl"
    path.write_text("\n".join([lines[0], *moved]) + "\n")
    whole = replay_whole(read_recording(path)).to_json()
    assert replay(path).to_json() == whole
    assert whole["summary"]["divergences"] == 0
    assert whole["summary"]["warnings"] == [
        "line 15: lines out of time order (this one is earlier than the line before it): "
        "replayed in time order"
    ]


def test_a_line_out_of_order_beyond_the_buffer_is_refused_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = _lines(tmp_path)
    monkeypatch.setattr(replay_stream, "REORDER_LINES", 4)
    body = lines[1:]
    path = tmp_path / "far.jsonl"
    path.write_text("\n".join([lines[0], *body[1:], body[0]]) + "\n")  # the first line, last
    n = len(lines)
    with pytest.raises(RecordingError, match=rf"far\.jsonl:{n}: out of time order by more than 4"):
        replay(path)


def _traced_peak(path: Path) -> int:
    tracemalloc.start()
    try:
        replay(path, limit=100)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_replay_memory_does_not_grow_with_the_recording(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten times the recording, about the same peak (the whole recording held: ten times).
    The lists, the reorder buffer and the messages kept waiting for a reply are made small,
    so that both recordings fill them."""
    monkeypatch.setattr(replay_stream, "REORDER_LINES", 300)
    monkeypatch.setattr(replay_stream, "KEPT", 100)
    paths = []
    for size in (30_000, 300_000):
        chat = tmp_path / f"chat{size}.txt"
        generate(chat, size)
        paths.append(tmp_path / f"chat{size}.jsonl")
        assert main(["import-export", str(chat), "--owner", OWNER, "-o", str(paths[-1])]) == 0
    replay(paths[0])  # the first replay fills caches (event types' fields, compiled patterns)
    peaks = [_traced_peak(path) for path in paths]
    small, big = peaks
    assert big < 1.5 * small, peaks


def test_inputs_added_while_running_keep_the_order_of_adding_them_first() -> None:
    """`add_scripted` between `run(until)` calls gives the run of adding everything first."""

    def sim() -> Simulation:
        return Simulation(policy=Policy(), persona=PERSONA, seed=2, start=T0)

    first = sim()
    for t, m in BUSY_DAY:
        first.add_message(T0 + t, m)
    whole = first.run()
    late = sim()
    for t, m in BUSY_DAY:
        late.run(T0 + t - 1.0)
        late.add_scripted(T0 + t, m)
    streamed = late.run()
    assert streamed.decisions == whole.decisions and streamed.sent == whole.sent
    assert len(whole.sent) >= 3
