"""Where a backup goes: a file, or a timestamped file in a folder (adapters/store/backup.py)."""

from __future__ import annotations

from pathlib import Path

from wapa.adapters.store.backup import backup_name, resolve_dest

NOW = 1_700_000_000.0


def test_a_missing_path_is_a_file_unless_a_folder_is_asked_for(tmp_path: Path) -> None:
    missing = tmp_path / "nightly"
    assert resolve_dest(missing, NOW) == missing
    assert resolve_dest(missing, NOW, folder=True) == missing / backup_name(NOW)
    assert resolve_dest(f"{missing}/", NOW) == missing / backup_name(NOW)
    assert resolve_dest(tmp_path, NOW) == tmp_path / backup_name(NOW)
