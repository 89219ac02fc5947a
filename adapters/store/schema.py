"""Versioned schema migrations, kept in `PRAGMA user_version`.

Each migration is one SQL script; `MIGRATIONS[n]` takes a database from version n-1 to n.
Never edit a shipped migration: add the next one. `Store.open` runs the steps a file lacks
in ONE transaction (`upgrade`): a new file gets v1, v2 and v3 in one commit instead of three
(the same statements, so the same schema), and an older file is either fully upgraded or
left as it was. A file whose version is newer than
`SCHEMA_VERSION` was written by a newer wapa and is refused, never rewritten.

v1: the initial layout: store_meta (salt, key check, encryption mode), assistant (the core's
    global state, one row), chats (one row per chat, keyed by chat id or its HMAC),
    outbox (sends: intent, then outcome) and traces (decisions).
v2: retention: chats.ctx_oldest (time of the oldest context entry, plain, so expired context
    can be found without decrypting every row). Rows from v1 get 0: the next purge decrypts
    them once and sets the real value.
v3: chats becomes a rowid table (key still its primary key, a unique index now). As a
    WITHOUT ROWID table it kept at most about 1 KB of a row in its page on 4 KB pages, and
    chat rows are 1-4 KB, so nearly every chat write also wrote an overflow page. Same rows
    with raw sqlite3 (docs/bench.md): 1.66x the messages per second on 1.4 KB rows, 1.72x on
    3.7 KB rows, files 10-35% smaller. The rows are copied unchanged (keys, sealed states,
    times); the old table's pages are zeroed (secure_delete), then freed by the incremental
    vacuum `Store.open` runs after a migration. A wapa that knows only v2 refuses a v3 file
    ("schema version 3 is newer than this wapa knows (2)").
"""

from __future__ import annotations

MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE store_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE assistant (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    state BLOB NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE chats (
    key TEXT PRIMARY KEY,
    state BLOB NOT NULL,
    updated REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE outbox (
    request_id TEXT PRIMARY KEY,
    chat_key TEXT NOT NULL,
    payload BLOB NOT NULL,
    intent_at REAL NOT NULL,
    outcome TEXT CHECK (outcome IN ('confirmed', 'failed', 'unknown')),
    outcome_at REAL,
    message_id TEXT NOT NULL DEFAULT '',
    detail BLOB
) WITHOUT ROWID;
CREATE INDEX outbox_open ON outbox (outcome, intent_at);
CREATE TABLE traces (
    id INTEGER PRIMARY KEY,
    t REAL NOT NULL,
    chat_key TEXT NOT NULL,
    code TEXT NOT NULL,
    request_id TEXT NOT NULL,
    detail BLOB NOT NULL
);
CREATE INDEX traces_t ON traces (t);
CREATE INDEX traces_chat ON traces (chat_key, t);
""",
    2: """
ALTER TABLE chats ADD COLUMN ctx_oldest REAL;
UPDATE chats SET ctx_oldest = 0;
CREATE INDEX chats_ctx_oldest ON chats (ctx_oldest) WHERE ctx_oldest IS NOT NULL;
""",
    3: """
CREATE TABLE chats_v3 (
    key TEXT PRIMARY KEY NOT NULL,
    state BLOB NOT NULL,
    updated REAL NOT NULL,
    ctx_oldest REAL
);
INSERT INTO chats_v3 (key, state, updated, ctx_oldest)
    SELECT key, state, updated, ctx_oldest FROM chats;
DROP TABLE chats;
ALTER TABLE chats_v3 RENAME TO chats;
CREATE INDEX chats_ctx_oldest ON chats (ctx_oldest) WHERE ctx_oldest IS NOT NULL;
""",
}

SCHEMA_VERSION = max(MIGRATIONS)


def script(version: int) -> str:
    """The migration to `version`, wrapped so that it and the version bump commit together."""
    return upgrade(version - 1, version)


def upgrade(current: int, target: int = SCHEMA_VERSION) -> str:
    """The migrations from `current` to `target`, in order, in one transaction with the
    version bump (nothing of them is committed unless all of them are)."""
    if not 0 <= current < target <= SCHEMA_VERSION:
        raise ValueError(f"no upgrade from schema version {current} to {target}")
    steps = "".join(MIGRATIONS[v] for v in range(current + 1, target + 1))
    return f"BEGIN IMMEDIATE;\n{steps}\nPRAGMA user_version = {target};\nCOMMIT;\n"
