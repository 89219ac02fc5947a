"""`wapa replay` on damaged and reordered recordings, exports and lone surrogates: a clear
error naming the line (or a warning and a faithful replay), never a traceback or invented
divergences."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from wapa.adapters.recording import RecordingError, read_recording
from wapa.cli import main
from wapa.sim.replay import replay
from wapa.sim.suite import run_paths

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "cooldown_after_reply.yaml"


@pytest.fixture(scope="module")
def lines(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("rec")
    (outcome,) = run_paths([SCENARIO], record_dir=folder)
    assert outcome.passed
    return (folder / "cooldown_after_reply.jsonl").read_text(encoding="utf-8").splitlines()


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _changed(lines: list[str], kind: str, change: Callable[[dict[str, Any]], None]) -> list[str]:
    """The recording with the first item of `kind` (its line) changed by `change`."""
    out = list(lines)
    i = next(n for n, line in enumerate(out) if f'"type":"{kind}"' in line)
    data = json.loads(out[i])
    change(data)
    out[i] = json.dumps(data, ensure_ascii=False)
    return out


def _line_of(lines: list[str], kind: str) -> int:
    return next(n for n, line in enumerate(lines, 1) if f'"type":"{kind}"' in line)


@pytest.mark.parametrize(
    ("kind", "change", "what"),
    [
        ("Message", lambda d: d["item"].update(chat=5), "Message.chat: expected text, got 5"),
        ("Message", lambda d: d["item"].update(text=["a"]), "Message.text: expected text"),
        ("Message", lambda d: d["item"].update(from_me="yes"), "from_me: expected true or false"),
        ("Message", lambda d: d["item"].update(mentions=[1]), "mentions: expected a list of text"),
        ("Decision", lambda d: d["item"].update(t=float("nan")), "Decision.t: expected a finite"),
        ("Decision", lambda d: d["item"].update(code=3), "Decision.code: expected text, got 3"),
        ("Decision", lambda d: d.update(t=1e300), "t: 1e+300 is not a time between 1970 and 3000"),
        ("Decision", lambda d: d.update(t=-5), "t: -5.0 is not a time between 1970 and 3000"),
        ("Generate", lambda d: d["item"].update(messages=[1]), "messages: expected a list of"),
        ("Generate", lambda d: d["item"].update(messages=[{"role": "user"}]), "{role, content}"),
    ],
)
def test_a_damaged_item_is_refused_with_its_line(
    tmp_path: Path, lines: list[str], kind: str, change: Callable[[dict[str, Any]], None], what: str
) -> None:
    path = _write(tmp_path / "bad.jsonl", _changed(lines, kind, change))
    with pytest.raises(RecordingError) as info:
        replay(read_recording(path))
    assert str(info.value).startswith(f"{path}:{_line_of(lines, kind)}: "), info.value
    assert what in str(info.value)


def test_the_cli_says_the_line_and_exits_2(
    tmp_path: Path, lines: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(
        tmp_path / "bad.jsonl", _changed(lines, "Message", lambda d: d["item"].update(chat=5))
    )
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"wapa replay: {path}:2: Message.chat: expected text, got 5")
    assert "Traceback" not in err


@pytest.mark.parametrize("order", ["swapped", "shuffled", "reversed"])
def test_a_reordered_recording_replays_in_time_order_with_a_warning(
    tmp_path: Path, lines: list[str], order: str, capsys: pytest.CaptureFixture[str]
) -> None:
    body = lines[1:]
    if order == "swapped":
        body[0], body[4] = body[4], body[0]
    elif order == "shuffled":
        random.Random(1).shuffle(body)
    else:
        body.reverse()
    path = _write(tmp_path / f"{order}.jsonl", [lines[0], *body])
    report = replay(read_recording(path))
    assert report.divergences == [] and len(report.sent) == 2
    assert any("lines out of time order" in w for w in report.summary["warnings"])
    assert main(["replay", str(path)]) == 0
    assert "warning: line " in capsys.readouterr().err


def test_lone_surrogates_in_a_recording_print_as_escapes(
    tmp_path: Path, lines: list[str], capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    changed = list(lines)
    for i, line in enumerate(changed):  # every alice becomes "al\ud800ice" (valid JSON)
        changed[i] = line.replace('"alice"', '"al\\ud800ice"')
    path = _write(tmp_path / "surrogate.jsonl", changed)
    assert main(["replay", str(path)]) == 0
    capsysbinary.readouterr().out.decode("utf-8")  # strict: valid UTF-8
    assert main(["replay", str(path), "--set", "cooldown=1m"]) == 0  # lists replies by chat
    out = capsysbinary.readouterr().out.decode("utf-8")
    assert "+ " in out and "al\\ud800ice: " in out
    assert main(["replay", str(path), "--json"]) == 0
    data = json.loads(capsysbinary.readouterr().out.decode("utf-8"))
    assert {s["chat"] for s in data["sent"]} == {"al\\ud800ice"}


@pytest.mark.parametrize("name", ["WhatsApp Chat with Alice.txt", "export.zip", "chat.log"])
def test_a_chat_export_is_sent_to_import_export(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    path.write_text("12/01/2024, 10:00 - Alice: hi\n", encoding="utf-8")
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert "looks like a WhatsApp chat export" in err
    assert f"wapa import-export {path} --owner YOUR_NAME -o chat.jsonl" in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_or_a_directory_is_refused_without_opening_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "rec.jsonl"
    os.mkfifo(fifo)  # opening it for reading would block until a writer comes
    with pytest.raises(RecordingError, match=r"a FIFO \(named pipe\), not a wapa recording"):
        read_recording(fifo)
    assert main(["replay", str(fifo)]) == 2
    assert "a FIFO (named pipe), not a wapa recording" in capsys.readouterr().err
    with pytest.raises(RecordingError, match="a directory, not a wapa recording"):
        read_recording(tmp_path)
