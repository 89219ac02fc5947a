"""The JSON-lines recorder and reader: format, validation, crash-truncated last lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from wapa.adapters.recording import FORMAT, Recorder, RecordingError, read_recording
from wapa.core import Decision, Generate, Message, Persona, Policy, Reason
from wapa.core.events import ChatMessage

T0 = 1_700_000_000.0
PERSONA = Persona(owner_id="owner@s.whatsapp.net", owner_name="Dana")


def _write(path: Path, policy: Policy | None = None) -> None:
    with Recorder(path, policy or Policy(), PERSONA, 3, start=T0) as rec:
        rec.record(
            T0,
            "in",
            Message(chat="a@s.whatsapp.net", sender="a@s.whatsapp.net", id="m1", text="hi"),
        )
        rec.record(T0, "out", Decision(T0, "a@s.whatsapp.net", Reason.SCHEDULED, "reply due"))
        rec.record(
            T0 + 120, "out", Generate("r1", "a@s.whatsapp.net", (ChatMessage("system", "s"),))
        )


def test_round_trip_keeps_header_and_items(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    _write(
        path,
        Policy.from_mapping({"cooldown": "2h", "quiet_hours": {"start": "23:00", "end": "06:00"}}),
    )
    rec = read_recording(path)
    assert rec.header.policy.cooldown == 7200
    assert (
        rec.header.policy.quiet_hours is not None and rec.header.policy.quiet_hours.start == "23:00"
    )
    assert rec.header.persona == PERSONA and rec.header.seed == 3 and rec.header.start == T0
    assert [(i.t, i.dir, type(i.obj).__name__) for i in rec.items] == [
        (T0, "in", "Message"),
        (T0, "out", "Decision"),
        (T0 + 120, "out", "Generate"),
    ]
    generate = rec.items[2].obj
    assert isinstance(generate, Generate) and generate.messages == (ChatMessage("system", "s"),)
    first = json.loads(path.read_text().splitlines()[0])
    assert first["format"] == FORMAT and first["version"] == 1 and first["redacted"] is False


def test_each_line_is_flushed_before_close(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    rec = Recorder(path, Policy(), PERSONA, 0, start=T0)
    rec.record(T0, "in", {"type": "Command", "name": "pause", "arg": ""})
    assert len(path.read_text().splitlines()) == 2  # header + item, without close()
    rec.close()


def test_truncated_last_line_is_reported_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    _write(path)
    path.write_text(path.read_text() + '{"t": 1700000200.0, "dir": "in", "item": {"type": "Mess')
    rec = read_recording(path)
    assert len(rec.items) == 3
    assert (
        len(rec.warnings) == 1
        and f"{path}:5" in rec.warnings[0]
        and "incomplete" in rec.warnings[0]
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not JSON"),
        ('{"t": 1, "dir": "sideways", "item": {"type": "Command", "name": "x"}}', "dir"),
        ('{"t": "soon", "dir": "in", "item": {"type": "Command", "name": "x"}}', "t: expected"),
        ('{"t": 1, "dir": "in", "item": {"type": "Teleport"}}', "unknown type 'Teleport'"),
        (
            '{"t": 1, "dir": "in", "item": {"type": "Command", "name": "x", "color": 1}}',
            "unknown field 'color'",
        ),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_bad_middle_lines_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "rec.jsonl"
    _write(path)
    lines = path.read_text().splitlines()
    lines.insert(2, line)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordingError, match=rf"rec\.jsonl:3: .*{message}"):
        read_recording(path)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"format": "other"}, "not a wapa recording"),
        ({"format": FORMAT, "version": 9, "start": T0}, "version 9 is not supported"),
        (
            {"format": FORMAT, "version": 1, "start": T0, "policy": {"cooldown": "soon"}},
            "policy: cooldown",
        ),
        (
            {"format": FORMAT, "version": 1, "start": T0, "persona": {"owner_id": ""}},
            "persona: owner_id",
        ),
        ({"format": FORMAT, "version": 1, "start": "yesterday"}, "start: expected"),
    ],
)
def test_bad_headers(tmp_path: Path, header: dict, message: str) -> None:
    path = tmp_path / "rec.jsonl"
    path.write_text(json.dumps(header) + "\n")
    with pytest.raises(RecordingError, match=rf"rec\.jsonl:1: .*{message}"):
        read_recording(path)


def test_items_before_a_header_and_empty_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    path.write_text('{"t": 1, "dir": "in", "item": {"type": "Command", "name": "x"}}\n')
    with pytest.raises(RecordingError, match="first line must be the recording header"):
        read_recording(path)
    path.write_text("")
    with pytest.raises(RecordingError, match="empty file"):
        read_recording(path)


def test_a_second_header_marks_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    _write(path)
    with Recorder(path, Policy(), PERSONA, 3, start=T0 + 500) as rec:
        rec.record(T0 + 501, "in", Message(chat="a", sender="a", id="m2", text="back?"))
    recording = read_recording(path)
    assert len(recording.items) == 4
    assert [h.start for h in recording.restarts] == [T0 + 500]


def test_record_never_raises_and_survives_odd_text(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    rec = Recorder(path, Policy(), PERSONA, 0, start=T0)
    rec.record(T0, "sideways", Message(chat="a", sender="a", id="m"))  # refused, logged
    rec.record(T0, "in", Message(chat="a", sender="a", id="m", text="lone \ud800 surrogate"))
    rec.record(float("nan"), "in", Message(chat="a", sender="a", id="m2"))  # refused, logged
    rec.close()
    rec.record(T0, "in", Message(chat="a", sender="a", id="m3"))  # closed: ignored
    items = read_recording(path).items
    assert len(items) == 1 and isinstance(items[0].obj, Message)
    assert items[0].obj.text == "lone \ud800 surrogate"


def test_a_failing_disk_stops_recording_without_raising(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "rec.jsonl", Policy(), PERSONA, 0, start=T0)

    class Broken:
        def write(self, _: str) -> int:
            raise OSError(28, "No space left on device")

        def close(self) -> None:
            pass

    rec._file = Broken()  # type: ignore[assignment]
    rec.record(T0, "in", Message(chat="a", sender="a", id="m"))
    assert rec.failed
    rec.record(T0, "in", Message(chat="a", sender="a", id="m2"))  # no exception
