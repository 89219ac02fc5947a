"""`wapa backup` error lines: one prefix, naming the path and what to do."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from wapa.cli import main


def test_no_database_is_one_line_with_one_prefix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "wapa.db"
    assert main(["backup", str(tmp_path / "out.db"), "--db", str(missing)]) == 1
    err = capsys.readouterr().err
    assert err == f"wapa backup: no database at {missing}\n"


def test_an_existing_destination_is_named_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, dest = tmp_path / "wapa.db", tmp_path / "copy.db"
    sqlite3.connect(db).close()
    dest.write_bytes(b"")
    assert main(["backup", str(dest), "--db", str(db)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"wapa backup: {dest} already exists") and err.count("backup:") == 1
