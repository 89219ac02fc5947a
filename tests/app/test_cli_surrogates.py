"""Lone surrogates never break an output: a scenario file whose name is not UTF-8 (Python holds
its bytes as U+DC80-U+DCFF) and a recording with `"\\ud800"` in it give valid UTF-8 from
`wapa simulate --json/--report/--junit/--github` and `wapa replay` (human and --json)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from wapa.adapters.safe_text import utf8_safe

ROOT = Path(__file__).resolve().parents[2]
GOOD = b"""name: x
chats: {alice: {}}
script:
  - {at: 0s, chat: alice, text: hi}
expect:
  - {reply: alice, at: 2m}
"""


def _wapa(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "wapa", *args], cwd=cwd, capture_output=True, timeout=120
    )


def test_utf8_safe_shows_lone_surrogates_as_escapes() -> None:
    assert utf8_safe("bad\udcff\udcfe.yaml \ud800 é 👩") == "bad\\xff\\xfe.yaml \\ud800 é 👩"
    text = json.dumps({"f": "a\udcffb\udfff"}, ensure_ascii=False)
    assert json.loads(utf8_safe(text, json=True)) == {"f": "a\\xffb\\udfff"}
    assert utf8_safe("plain") == "plain"


def test_simulate_outputs_stay_utf8_with_a_file_name_that_is_not(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    folder.mkdir()
    with open(os.fsencode(folder) + b"/bad\xff\xfename.yaml", "wb") as f:
        f.write(GOOD)
    with open(os.fsencode(folder) + b"/broken\xff.yaml", "wb") as f:
        f.write(b"name: x\nchats: [\n")
    out = _wapa("simulate", "s", "--json", cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    data = json.loads(out.stdout.decode("utf-8"))  # strict: invalid UTF-8 raises
    assert [s["file"] for s in data["scenarios"]] == [
        "s/bad\\xff\\xfename.yaml",
        "s/broken\\xff.yaml",
    ]
    assert data["passed"] == 1
    out = _wapa("simulate", "s", "--report", "r.html", "--junit", "r.xml", "--github", cwd=tmp_path)
    assert out.returncode == 1 and b"Traceback" not in out.stderr, out.stderr
    text = out.stdout.decode("utf-8")
    assert "s/bad\\xff\\xfename.yaml" in text and "::error file=s/broken\\xff.yaml,line=3" in text
    assert "bad\\xff\\xfename.yaml" in (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "broken\\xff" in (tmp_path / "r.xml").read_text(encoding="utf-8")
