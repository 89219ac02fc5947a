"""A chat's recent sends (rules 2, 3 and 5): what the core remembers of its own last replies,
packed in one `bytes` per chat.

For each of a chat's last sends (`Assistant` keeps 8) one record of `SIZE` bytes: the request
number (`N` of the request id `rN`), an 8-byte hash of WhatsApp's id for the send once it is
confirmed (`id_hash`: the echo of a send, rule 3, and a group message quoting it, rule 5, are
recognised by that id, never by text), the chat's cooldown before this send set a new one (a
failed send gives it back, rule 2), and whether its echo came back already (a second copy is
the owner). The reply's text is not kept here: its context entry holds it while it matters
(rule 10), and data retention takes it there.

Reason: as objects these were a quarter of a chat's memory at steady state (eight records,
their request ids, WhatsApp ids, cooldown floats and a copy of each text: about 1.8 KB); packed
they are 200 bytes. Two different message ids collide with probability 2**-64 per pair, as the
remembered ids of rule 6 do (the same hash).

Saved as the hex of the bytes. States saved before (a list of `[request id, text, WhatsApp id,
cooldown before, echoed]` per send) restore into the same records (the texts are dropped).
"""

from __future__ import annotations

try:  # the builtin module itself: `import hashlib` would load OpenSSL just for blake2b
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - an interpreter without it
    from hashlib import blake2b
import struct
from typing import Final, NamedTuple

ID_BYTES: Final = 8  # (Final: compiled, read in place; core/machine.py)
# request number, id hash, cooldown before, flags
_RECORD: Final = struct.Struct(f"<q{ID_BYTES}sdB")
SIZE: Final = _RECORD.size
_CONFIRMED, _ECHOED = 1, 2  # flags


_HASHER: Final = blake2b(digest_size=ID_BYTES)  # copied for each id: cheaper than a new one


def id_hash(msg_id: str) -> bytes:
    """A message id as `ID_BYTES` bytes (blake2b)."""
    h = _HASHER.copy()
    h.update(msg_id.encode("utf-8", "surrogatepass"))
    return h.digest()


class SendRecord(NamedTuple):
    """One send, unpacked (`records`): for reading, never stored."""

    request_id: str
    message_hash: bytes  # `id_hash` of WhatsApp's id; b"" until confirmed
    prev_cooldown: float  # the chat's cooldown before this send set a new one
    echoed: bool  # its echo came back already: a second copy is the owner


def request_number(request_id: object) -> int:
    """N of a request id "rN" (as `Assistant` makes them), else -1."""
    if isinstance(request_id, str) and request_id[:1] == "r":
        digits = request_id[1:]
        if digits.isascii() and digits.isdigit() and len(digits) < 19:
            return int(digits)
    return -1


def add(sends: bytes, request_id: str, prev_cooldown: float, kept: int) -> tuple[bytes, list[str]]:
    """`sends` with a new unconfirmed send, keeping the last `kept`; and the request ids of the
    sends that made room."""
    n = request_number(request_id)
    if n < 0:
        raise ValueError(f"request id {request_id!r} is not rN")
    sends += _RECORD.pack(n, bytes(ID_BYTES), prev_cooldown, 0)
    extra = len(sends) - kept * SIZE
    if extra <= 0:
        return sends, []
    return sends[extra:], request_ids(sends[:extra])


def find(sends: bytes, request_id: object) -> int:
    """The index of the send of `request_id`, -1 if it is not one of them."""
    n = request_number(request_id)
    if n >= 0:
        for i, (number, *_) in enumerate(_RECORD.iter_unpack(sends)):
            if number == n:
                return i
    return -1


def confirm(sends: bytes, i: int, message_id: object) -> bytes:
    """Send `i` confirmed by WhatsApp as `message_id` (an id that is not a non-empty string
    is never matched, as before a confirmation)."""
    n, _, prev, flags = _RECORD.unpack_from(sends, i * SIZE)
    if isinstance(message_id, str) and message_id:
        digest, flags = id_hash(message_id), flags | _CONFIRMED
    else:
        digest, flags = bytes(ID_BYTES), flags & ~_CONFIRMED
    return _replace(sends, i, _RECORD.pack(n, digest, prev, flags))


def echo(sends: bytes, message_hash: bytes) -> bytes | None:
    """Rule 3: the first confirmed send with this id whose echo has not come back yet, marked
    echoed (the new `sends`); None when there is none."""
    for i, (n, digest, prev, flags) in enumerate(_RECORD.iter_unpack(sends)):
        if flags & _CONFIRMED and not flags & _ECHOED and digest == message_hash:
            return _replace(sends, i, _RECORD.pack(n, digest, prev, flags | _ECHOED))
    return None


def quoted(sends: bytes, message_hash: bytes) -> bool:
    """Rule 5: one of these sends, confirmed with this id (a group message quoting it)."""
    return any(
        flags & _CONFIRMED and digest == message_hash
        for _, digest, _, flags in _RECORD.iter_unpack(sends)
    )


def remove(sends: bytes, i: int) -> tuple[bytes, float]:
    """`sends` without send `i`, and that send's cooldown before it."""
    prev: float = _RECORD.unpack_from(sends, i * SIZE)[2]
    return sends[: i * SIZE] + sends[(i + 1) * SIZE :], prev


def count(sends: bytes) -> int:
    return len(sends) // SIZE


def request_ids(sends: bytes) -> list[str]:
    return [f"r{n}" for n, *_ in _RECORD.iter_unpack(sends)]


def records(sends: bytes) -> list[SendRecord]:
    return [
        SendRecord(f"r{n}", digest if flags & _CONFIRMED else b"", prev, bool(flags & _ECHOED))
        for n, digest, prev, flags in _RECORD.iter_unpack(sends)
    ]


def export(sends: bytes) -> str:
    return sends.hex()


def restore(saved: object) -> bytes:
    """The inverse of `export`; a list of `[request id, text, WhatsApp id, cooldown before,
    echoed]` (states saved before these records were packed) gives the same records."""
    if isinstance(saved, str):
        sends = bytes.fromhex(saved)
        if len(sends) % SIZE:
            raise ValueError(f"sends of {len(sends)} bytes, not a multiple of {SIZE}")
        return sends
    if not isinstance(saved, list | tuple):
        raise ValueError(f"sends saved as {type(saved).__name__}, expected hex or a list")
    out = b""
    for row in saved:
        request_id, _text, message_id, prev_cooldown, echoed = row
        out, _ = add(out, request_id, float(prev_cooldown), len(saved))
        i = count(out) - 1
        out = confirm(out, i, message_id)
        if echoed:
            n, digest, prev, flags = _RECORD.unpack_from(out, i * SIZE)
            out = _replace(out, i, _RECORD.pack(n, digest, prev, flags | _ECHOED))
    return out


def _replace(sends: bytes, i: int, record: bytes) -> bytes:
    return sends[: i * SIZE] + record + sends[(i + 1) * SIZE :]
