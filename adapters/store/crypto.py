"""Encryption at rest: AES-256-GCM per value, HMAC-SHA256 row keys for chat ids.

`WAPA_DB_KEY` is either a random 32-byte key in base64 (`openssl rand -base64 32`) or any
other string, taken as a passphrase and stretched with scrypt. Either way, per-purpose keys
are derived from it with HKDF over a random salt stored in the database (the salt is not
secret; the key never touches the disk). A key check value (an HMAC of a fixed label)
lets a wrong key fail clearly instead of decrypting garbage.

A sealed value is `0x01 | nonce (12 random bytes) | ciphertext+tag`, with associated data
naming what it is (e.g. `chat:<row key>`), so a value copied into another row will not open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

# cryptography is imported where a key is used (below), not here: a store without
# WAPA_DB_KEY (the default, and every simulated store) never loads it.

SALT_BYTES = 16
NONCE_BYTES = 12
FORMAT = b"\x01"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_CHECK_LABEL = b"wapa key check v1"
_ROW_KEYS_KEPT = 16384  # cached row keys (a chat id and its HMAC: about 250 bytes each)


class SealError(ValueError):
    """A sealed value does not open: damaged, or sealed with another key."""


def new_salt() -> bytes:
    return os.urandom(SALT_BYTES)


def raw_key(secret: str | bytes) -> bytes | None:
    """The 32 key bytes if `secret` is a raw key (32 bytes, or their base64), else None."""
    if isinstance(secret, bytes):
        return secret if len(secret) == 32 else None
    text = secret.strip()
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        try:
            data = base64.urlsafe_b64decode(text) if len(text) == 44 else b""
        except (binascii.Error, ValueError):
            return None
    return data if len(data) == 32 else None


def kdf_name(secret: str | bytes) -> str:
    return "raw" if raw_key(secret) is not None else "scrypt"


def master_key(secret: str | bytes, salt: bytes) -> bytes:
    """32 bytes from a raw key (as is) or a passphrase (scrypt over the salt)."""
    raw = raw_key(secret)
    if raw is not None:
        return raw
    data = secret if isinstance(secret, bytes) else secret.encode("utf-8")
    if not data:
        raise ValueError("WAPA_DB_KEY is empty")
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(data)


def _subkey(master: bytes, salt: bytes, purpose: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=purpose).derive(master)


class Sealer:
    """No key: values stay as they are, chat ids are row keys. `encrypted` is False."""

    encrypted = False

    def seal(self, data: bytes, aad: bytes) -> bytes:
        return data

    def open(self, blob: bytes, aad: bytes) -> bytes:
        return bytes(blob)

    def row_key(self, chat_id: str) -> str:
        return chat_id


class AesGcmSealer(Sealer):
    """AES-256-GCM with a fresh random nonce per value; chat ids become HMAC-SHA256 hex."""

    encrypted = True

    def __init__(self, secret: str | bytes, salt: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        master = master_key(secret, salt)
        self._aead = AESGCM(_subkey(master, salt, b"wapa aes-256-gcm v1"))
        self._id_key = _subkey(master, salt, b"wapa chat id v1")
        self._row_keys: dict[str, str] = {}  # chat id -> row key: one HMAC per chat, not per row
        self.check = hmac.new(
            _subkey(master, salt, b"wapa key check v1"), _CHECK_LABEL, hashlib.sha256
        ).hexdigest()

    def seal(self, data: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return FORMAT + nonce + self._aead.encrypt(nonce, data, aad)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        blob = bytes(blob)
        if len(blob) < 1 + NONCE_BYTES + 16 or blob[:1] != FORMAT:
            raise SealError("not an encrypted value (was it written without a key?)")
        from cryptography.exceptions import InvalidTag  # loaded by __init__ already

        nonce, body = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, aad)
        except InvalidTag as exc:
            raise SealError("authentication failed (damaged, or another key)") from exc

    def row_key(self, chat_id: str) -> str:
        key = self._row_keys.get(chat_id)
        if key is None:
            if len(self._row_keys) >= _ROW_KEYS_KEPT:
                self._row_keys.clear()
            key = hmac.digest(self._id_key, chat_id.encode("utf-8"), "sha256").hex()
            self._row_keys[chat_id] = key
        return key

    def matches(self, check: str) -> bool:
        return hmac.compare_digest(self.check, check)
