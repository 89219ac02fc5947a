"""Encryption at rest, checked on the raw bytes of the database file and its WAL."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

import pytest
from wapa.adapters.store import Store, StoreError, crypto
from wapa.core import Assistant, Generated, Message, Persona, Policy, Send, SendFailed

from tests.support.store import driver, step

T0 = 1_700_000_000.0
PHONE = "4915712345678"
CHAT = f"{PHONE}@s.whatsapp.net"
PHRASE = "the treasure is under the old oak tree"
NAME = "Zebulon Quixote"
REPLY = "Zebulon, he will ring you about the oak tree"
KEY = base64.b64encode(bytes(range(32))).decode()
PERSONA = Persona(owner_id="491700000000@s.whatsapp.net")


async def planted(path: Path, key: str | bytes | None) -> Store:
    """A store that has seen a message with PHRASE from NAME at PHONE, a reply, a failed send."""
    store = await Store.open(path, key)
    d = driver(a := Assistant(Policy(), PERSONA))
    await step(store, d, Message(CHAT, CHAT, "m1", PHRASE, sender_name=NAME), T0)
    await step(store, d, None, T0 + 120)
    await step(store, d, Generated(a.chats[CHAT].request_id, REPLY), T0 + 125)
    effects = await step(store, d, None, T0 + 200)
    (send,) = [e for e in effects if isinstance(e, Send)]
    await step(store, d, SendFailed(send.request_id, f"{PHONE} is not on WhatsApp"), T0 + 201)
    return store


def raw(path: Path) -> bytes:
    """Every byte on disk: the database, its WAL and its shared-memory index."""
    return b"".join(
        Path(f"{path}{s}").read_bytes() for s in ("", "-wal", "-shm") if Path(f"{path}{s}").exists()
    )


SECRETS = [PHRASE, PHONE, NAME, "treasure", "Zebulon"]


async def test_without_a_key_the_plaintext_is_on_disk(tmp_path: Path) -> None:
    # the control: proves the check below can see planted text when it is there
    store = await planted(tmp_path / "wapa.db", None)
    try:
        data = raw(tmp_path / "wapa.db")
        assert store.encrypted is False
        assert PHRASE.encode() in data and PHONE.encode() in data
    finally:
        await store.close()


@pytest.mark.parametrize("key", [KEY, bytes(range(32))], ids=["base64", "bytes"])
async def test_with_a_key_no_text_name_or_number_reaches_the_disk(
    tmp_path: Path, key: str | bytes
) -> None:
    store = await planted(tmp_path / "wapa.db", key)
    try:
        assert store.encrypted is True
        assert Path(f"{tmp_path / 'wapa.db'}-wal").stat().st_size > 0  # the WAL is checked too
        data = raw(tmp_path / "wapa.db")
        for secret in SECRETS:
            assert secret.encode() not in data, secret
            assert secret.encode("utf-16-le") not in data, secret
        a = await store.load(Policy(), PERSONA)  # and it all comes back with the key
        assert a is not None
        assert a.chats[CHAT].context[0].text == PHRASE and a.chats[CHAT].name == NAME
        assert [d.chat for d in await store.traces(CHAT)][:1] == [CHAT]
        assert {d.chat for d in await store.traces()} == {""}  # ids are not recoverable
        (entry,) = await store.outbox()
        assert (entry.chat, entry.text, entry.outcome) == (CHAT, REPLY, "failed")
    finally:
        await store.close()


async def test_the_checkpointed_file_alone_holds_no_secret_either(tmp_path: Path) -> None:
    store = await planted(tmp_path / "wapa.db", KEY)
    await store.close()  # the last close checkpoints the WAL into the main file
    data = raw(tmp_path / "wapa.db")
    for secret in SECRETS:
        assert secret.encode() not in data, secret


async def test_a_wrong_key_is_a_clear_error(tmp_path: Path) -> None:
    await (await planted(tmp_path / "wapa.db", KEY)).close()
    other = base64.b64encode(bytes(32)).decode()
    with pytest.raises(StoreError, match="WAPA_DB_KEY does not match this database"):
        await Store.open(tmp_path / "wapa.db", other)
    with pytest.raises(StoreError, match="is encrypted: set WAPA_DB_KEY"):
        await Store.open(tmp_path / "wapa.db", None)


async def test_a_passphrase_is_stretched_and_checked(tmp_path: Path) -> None:
    await (await planted(tmp_path / "wapa.db", "correct horse battery staple")).close()
    with pytest.raises(StoreError, match="keyed with a passphrase"):
        await Store.open(tmp_path / "wapa.db", "correct horse battery stapler")
    store = await Store.open(tmp_path / "wapa.db", "correct horse battery staple")
    try:
        a = await store.load(Policy(), PERSONA)
        assert a is not None and a.chats[CHAT].context[0].text == PHRASE
    finally:
        await store.close()
    assert b"correct horse" not in raw(tmp_path / "wapa.db")


async def test_a_key_on_an_unencrypted_database_with_data_is_refused(tmp_path: Path) -> None:
    await (await planted(tmp_path / "wapa.db", None)).close()
    with pytest.raises(StoreError, match="holds unencrypted data but WAPA_DB_KEY is set"):
        await Store.open(tmp_path / "wapa.db", KEY)


async def test_a_key_given_to_a_fresh_database_is_adopted(tmp_path: Path) -> None:
    await (await Store.open(tmp_path / "wapa.db")).close()  # created without a key, no data
    store = await Store.open(tmp_path / "wapa.db", KEY)
    try:
        assert store.encrypted
    finally:
        await store.close()


async def test_a_row_moved_to_another_key_does_not_open(tmp_path: Path) -> None:
    store = await planted(tmp_path / "wapa.db", KEY)
    a = await store.load(Policy(), PERSONA)
    assert a is not None
    m = Message("4915799999999@s.whatsapp.net", "x", "m9", "hi")
    await step(store, driver(a), m, T0 + 300)
    await store.close()
    con = sqlite3.connect(tmp_path / "wapa.db")
    (blob,) = con.execute("SELECT state FROM chats ORDER BY key LIMIT 1").fetchone()
    con.execute("UPDATE chats SET state = ?", (blob,))  # every row now holds one row's value
    con.commit()
    con.close()
    store = await Store.open(tmp_path / "wapa.db", KEY)
    try:
        with pytest.raises(StoreError, match="cannot decrypt chat row"):
            await store.load(Policy(), PERSONA)
    finally:
        await store.close()


def test_sealed_values_use_a_fresh_nonce_each_time() -> None:
    sealer = crypto.AesGcmSealer(KEY, crypto.new_salt())
    a, b = sealer.seal(b"same text", b"aad"), sealer.seal(b"same text", b"aad")
    assert a != b and a[1:13] != b[1:13]
    assert sealer.open(a, b"aad") == sealer.open(b, b"aad") == b"same text"
    with pytest.raises(crypto.SealError):
        sealer.open(a, b"other aad")
    assert sealer.row_key(CHAT) == sealer.row_key(CHAT) and PHONE not in sealer.row_key(CHAT)


def test_raw_keys_and_passphrases_are_told_apart() -> None:
    assert crypto.raw_key(KEY) == bytes(range(32))
    assert crypto.raw_key(base64.urlsafe_b64encode(b"\xff" * 32).decode()) == b"\xff" * 32
    assert crypto.raw_key("not base64 at all") is None
    assert crypto.raw_key(base64.b64encode(b"short").decode()) is None
    assert crypto.kdf_name("hunter2") == "scrypt" and crypto.kdf_name(KEY) == "raw"
