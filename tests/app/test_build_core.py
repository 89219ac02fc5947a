"""The optional compiled core's staleness check (bench/build_core.py): a build remembers the
sources it compiled, and any change since is named, so tests never run an old build."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from wapa.bench.build_core import MANIFEST, SUFFIX, remove, stale


def _core(tmp_path: Path) -> Path:
    core = tmp_path / "core"
    core.mkdir()
    for name in ("machine", "events"):
        (core / f"{name}.py").write_text(f"# {name}\n", encoding="utf-8")
    return core


def _pretend_built(core: Path) -> None:
    (core / f"machine{SUFFIX}").write_bytes(b"\x7fELF")
    sources = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in core.glob("*.py")}
    (core / MANIFEST).write_text(json.dumps(sources), encoding="utf-8")


def test_nothing_built_is_never_stale(tmp_path: Path) -> None:
    assert stale(_core(tmp_path)) == []


def test_a_fresh_build_is_not_stale_and_an_edit_added_or_removed_file_is(tmp_path: Path) -> None:
    core = _core(tmp_path)
    _pretend_built(core)
    assert stale(core) == []
    (core / "events.py").write_text("# edited\n", encoding="utf-8")
    (core / "new.py").write_text("", encoding="utf-8")
    (core / "machine.py").unlink()
    assert stale(core) == ["events.py", "machine.py", "new.py"]


def test_a_build_without_its_manifest_counts_every_source_as_stale(tmp_path: Path) -> None:
    core = _core(tmp_path)
    _pretend_built(core)
    (core / MANIFEST).unlink()
    assert stale(core) == ["events.py", "machine.py"]


def test_remove_takes_the_manifest_too(tmp_path: Path) -> None:
    core = _core(tmp_path)
    _pretend_built(core)
    assert [p.name for p in remove(core)] == [f"machine{SUFFIX}"]
    assert not (core / MANIFEST).exists() and stale(core) == []
