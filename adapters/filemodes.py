"""Files that hold messages are readable by their owner only: 0600, their folders 0700.

The database and its `-wal` / `-shm` files, the WhatsApp session database, recordings and
backups hold message text, names, numbers or keys. Every one is created 0600 whatever the
umask, and a file wapa opens again is tightened to 0600 (installs from before this rule made
them 0644). Folders wapa creates for them are 0700; folders that exist are left as they are
(a Docker volume, a home directory). SQLite gives its `-wal`, `-shm` and `-journal` files the
mode of the database file, so a 0600 database keeps them 0600.

On systems without POSIX modes (or a file owned by someone else) these are no-ops: they never
stop wapa from starting.

Files wapa reads whole (a recording, a chat export, a calendar) must be regular files:
`not_regular` names what else a path is, so a FIFO or a device is refused with its kind before
an open that would block or a read that would never end.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import IO

FILE_MODE = 0o600
DIR_MODE = 0o700
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "not_regular",
    "open_append",
    "private_dir",
    "private_file",
    "private_sqlite",
    "tighten",
]


def not_regular(mode: int) -> str:
    """ "" for a regular file's `st_mode`; else what it is ("a FIFO (named pipe)", ...)."""
    if stat.S_ISREG(mode):
        return ""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Make `path` (and missing parents) as folders 0700; an existing folder is left alone."""
    path = Path(path)
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by another process
            folder.mkdir(mode=DIR_MODE)
        _chmod(folder, DIR_MODE)  # mkdir's mode is filtered by the umask
    return path


def private_file(path: str | os.PathLike[str]) -> Path:
    """Create `path` empty with mode 0600 when it is missing; tighten it to 0600 when not."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        tighten(path)
    else:
        os.close(fd)
        _chmod(path, FILE_MODE)
    return path


def private_sqlite(path: str | os.PathLike[str]) -> None:
    """A SQLite database file and its side files 0600 (created empty if missing: SQLite takes
    an empty file as a new database; a missing folder is made 0700). Never raises: the
    database's own open reports a path that cannot be used. Not a file path (":memory:", a
    URI, a postgres URL): no-op.

    For the WhatsApp session database, call it before the client opens the session:
    `private_sqlite(session_db)`."""
    text = os.fspath(path)
    if not text or text == ":memory:" or text.startswith("file:") or "://" in text:
        return
    if text.startswith(("postgres:", "postgresql:")):
        return
    try:
        private_dir(Path(text).parent)
        private_file(text)
    except OSError:  # the database's own open reports what is wrong, in its words
        return
    for suffix in _SQLITE_SIDE_FILES:
        side = Path(text + suffix)
        if side.exists():
            tighten(side)


def open_append(path: str | os.PathLike[str]) -> IO[str]:
    """Open a text file for appending (UTF-8), created 0600, an existing one tightened."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    try:
        handle = os.fdopen(fd, "a", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise
    tighten(path)
    return handle


def tighten(path: str | os.PathLike[str]) -> None:
    """Drop group and other permissions of an existing file of ours."""
    with contextlib.suppress(OSError):
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & 0o077:
            _chmod(path, mode & 0o700)


def _chmod(path: str | os.PathLike[str], mode: int) -> None:
    with contextlib.suppress(OSError, NotImplementedError):
        os.chmod(path, mode)
