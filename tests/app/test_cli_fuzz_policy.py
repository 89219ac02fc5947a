"""`wapa fuzz --policy FILE` reads through the bounded YAML loader, like scenarios and
`--config`: an alias bomb, deep nesting, a huge integer or a big file is refused with
`FILE:LINE: what`, never expanded."""

from __future__ import annotations

from pathlib import Path

import pytest
from wapa.cli import main
from wapa.commands.fuzz import _load_policy

BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['x'] * 9)}]\n"
    for prev, name in zip(["", "a", "b", "c", "d", "e", "f"], "abcdefg", strict=True)
)


@pytest.mark.parametrize(
    ("text", "what"),
    [
        (BOMB, "p.yaml:5: aliases expand to more than 10,000 values"),
        ("cooldown: " + "[" * 200 + "]" * 200 + "\n", "p.yaml:1: nested"),
        ("caps: {per_hour: " + "9" * 5000 + "}\n", "p.yaml:1: "),
        ("- cooldown: 1h\n", "p.yaml: expected a mapping of policy settings"),
        ("cooldwn: 1h\n", "p.yaml: cooldwn: unknown policy setting"),
        ("cooldown: [1h\n", "p.yaml:2: bad YAML"),
    ],
)
def test_a_bad_policy_file_is_refused_with_where_and_what(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, what: str
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("p.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        _load_policy("p.yaml")
    message = str(info.value.code)
    assert message.startswith("wapa fuzz: ") and what in message, message
    assert len(message) < 1000  # the expansion is never printed


def test_a_big_policy_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * 2_000_000 + "\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="too large"):
        _load_policy(str(path))


def test_a_good_policy_file_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("cooldown: 1h\ncaps: {per_hour: 5}\n", encoding="utf-8")
    policy = _load_policy(str(path))
    assert policy.cooldown == 3600 and policy.caps.per_hour == 5
    assert main(["fuzz", "--chats", "3", "--days", "1", "--seed", "2", "--policy", str(path)]) == 0
    assert "0 invariant violations" in capsys.readouterr().out


def test_the_summary_line_says_one_day_not_one_days(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fuzz", "--chats", "1", "--days", "1", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("fuzz seed 3: 1 chat, 1 day, ") and "1 days" not in out
