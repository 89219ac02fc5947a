"""`wapa replay` says which contact messages today's core would leave unanswered, and why
(cooldown, the owner answered, a cap...), with the decision that explains each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from wapa.cli import main

CHAT = """\
1/5/26, 9:00 AM - Alice: hi, are you free tomorrow?
1/5/26, 9:05 AM - Alice: also, did you get my email
1/5/26, 9:30 AM - Gilad: yes, tomorrow works
1/5/26, 10:00 AM - Alice: great, what time
1/5/26, 11:00 AM - Alice: hello?
"""


@pytest.fixture
def imported(tmp_path: Path) -> Path:
    (tmp_path / "chat.txt").write_text(CHAT, encoding="utf-8")
    out = tmp_path / "chat.jsonl"
    assert (
        main(["import-export", str(tmp_path / "chat.txt"), "--owner", "Gilad", "-o", str(out)]) == 0
    )
    return out


def test_unanswered_messages_are_listed_with_why(
    imported: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["replay", str(imported), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [s["text"][:8] for s in data["sent"]] == ["Hi Alice"]  # the first message, answered
    why = [(u["text"], u["code"], u["detail"].split(" (")[-1]) for u in data["unanswered"]]
    assert why == [
        ("also, did you get my email", "cooldown", "replied)"),
        ("great, what time", "cooldown", "owner wrote)"),
        ("hello?", "cooldown", "owner wrote)"),
    ]
    assert main(["replay", str(imported)]) == 0
    text = capsys.readouterr().out
    assert "3 messages left without a reply (cooldown 3):" in text
    assert "'great, what time', cooldown: cooling down until" in text


def test_a_what_if_lists_what_it_still_leaves_unanswered(
    imported: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["replay", str(imported), "--set", "cooldown=0s", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["summary"]["what_if_replies"] > data["summary"]["baseline_replies"]
    assert len(data["unanswered"]) < 3
