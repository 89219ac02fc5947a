"""Files holding messages are 0600, the folders made for them 0700 (adapters/filemodes.py).

Before: the database, its -wal and -shm, recordings and backups were 0644, backup folders 0755.
Every test runs under a permissive umask (0o022 and 0), as a container may have.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from wapa.adapters.filemodes import open_append, private_dir, private_file, private_sqlite
from wapa.adapters.recording import Recorder
from wapa.adapters.store import Store
from wapa.adapters.store.backup import backup_file
from wapa.core.policy import Persona, Policy

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def test_new_database_wal_and_shm_are_0600_in_a_0700_folder(tmp_path: Path, umask: int) -> None:
    db = tmp_path / "data" / "wapa.db"

    async def go() -> None:
        store = await Store.open(db)
        try:
            assert Path(f"{db}-wal").exists() and Path(f"{db}-shm").exists()
            for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
                assert mode(path) == 0o600, path
        finally:
            await store.close()

    asyncio.run(go())
    assert mode(db.parent) == 0o700


def test_an_existing_world_readable_database_is_tightened(tmp_path: Path, umask: int) -> None:
    db = tmp_path / "wapa.db"

    async def once() -> None:
        await (await Store.open(db)).close()

    asyncio.run(once())
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        if path.exists():
            path.chmod(0o644)
    asyncio.run(once())
    assert mode(db) == 0o600
    for side in ("-wal", "-shm"):
        if Path(f"{db}{side}").exists():
            assert mode(Path(f"{db}{side}")) == 0o600


def test_an_existing_folder_is_left_as_it_is(tmp_path: Path, umask: int) -> None:
    folder = tmp_path / "volume"
    folder.mkdir()
    folder.chmod(0o755)

    async def once() -> None:
        await (await Store.open(folder / "wapa.db")).close()

    asyncio.run(once())
    assert mode(folder) == 0o755 and mode(folder / "wapa.db") == 0o600


def test_backups_are_0600_in_0700_folders(tmp_path: Path, umask: int) -> None:
    db = tmp_path / "wapa.db"

    async def go() -> Path:
        store = await Store.open(db, clock=lambda: 1_700_000_000.0)
        try:
            return await store.backup()  # default: backups/ beside the database
        finally:
            await store.close()

    made = asyncio.run(go())
    assert made.parent == tmp_path / "backups"
    assert mode(made) == 0o600 and mode(made.parent) == 0o700
    other = backup_file(db, tmp_path / "elsewhere" / "deep" / "copy.db")
    assert mode(other) == 0o600
    assert mode(tmp_path / "elsewhere") == 0o700 and mode(tmp_path / "elsewhere" / "deep") == 0o700


def test_recordings_are_0600_and_an_old_one_is_tightened(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "rec" / "traffic.jsonl"
    Recorder(path, Policy(), Persona(), 0, start=0.0).close()
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    old = tmp_path / "old.jsonl"
    old.write_text("")
    old.chmod(0o644)  # e.g. made by `wapa import-export`, or by an older wapa
    Recorder(old, Policy(), Persona(), 0, start=0.0).close()
    assert mode(old) == 0o600


def test_session_database_helper(tmp_path: Path, umask: int) -> None:
    session = tmp_path / "session.db"
    private_sqlite(session)  # what the WhatsApp transport calls before neonize opens it
    assert session.exists() and session.stat().st_size == 0 and mode(session) == 0o600
    Path(f"{session}-wal").write_text("")
    Path(f"{session}-wal").chmod(0o644)
    session.chmod(0o640)
    private_sqlite(session)
    assert mode(session) == 0o600 and mode(Path(f"{session}-wal")) == 0o600
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for not_a_file in (":memory:", "postgres://u@h/db", "postgresql://h/db", "file:x?mode=ro"):
            private_sqlite(not_a_file)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["session.db", "session.db-wal"]
    finally:
        os.chdir(cwd)


def test_helpers(tmp_path: Path, umask: int) -> None:
    assert mode(private_file(tmp_path / "a")) == 0o600
    with open_append(tmp_path / "b") as f:
        f.write("x\n")
    assert mode(tmp_path / "b") == 0o600
    with open_append(tmp_path / "b") as f:
        f.write("y\n")
    assert (tmp_path / "b").read_text() == "x\ny\n"
    assert mode(private_dir(tmp_path / "c" / "d")) == 0o700 and mode(tmp_path / "c") == 0o700
