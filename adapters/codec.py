"""Core events and effects as plain JSON-able dicts, and back: `{"type": "Message", ...fields}`.

Used by the traffic recorder, replay, the simulator's JSON output and the store's outbox.
`decode` refuses unknown types and fields with a message naming them."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from wapa.core import events as ev

_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        ev.Message,
        ev.Generated,
        ev.GenerationFailed,
        ev.SendConfirmed,
        ev.SendFailed,
        ev.Command,
        ev.MediaText,
        ev.CalendarUpdate,
        ev.MarkRead,
        ev.Typing,
        ev.Generate,
        ev.Send,
        ev.Notice,
        ev.Decision,
    )
}


class CodecError(ValueError):
    pass


def encode(obj: ev.Event | ev.Effect) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type(obj).__name__}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.name == "messages":
            value = [{"role": m.role, "content": m.content} for m in value]
        elif f.name == "busy":
            value = [{"start": b.start, "end": b.end, "title": b.title} for b in value]
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def decode(data: Any) -> ev.Event | ev.Effect:
    if not isinstance(data, dict):
        raise CodecError(f"expected an object, got {type(data).__name__}")
    name = data.get("type")
    cls = _TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise CodecError(f"unknown type {name!r} (known: {', '.join(sorted(_TYPES))})")
    known = {f.name for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key == "type":
            continue
        if key not in known:
            raise CodecError(f"{name}: unknown field {key!r}")
        if key == "messages":
            if not isinstance(value, list) or not all(
                isinstance(m, dict) and "role" in m and "content" in m for m in value
            ):
                raise CodecError(f"{name}.messages: expected a list of {{role, content}}")
            value = tuple(ev.ChatMessage(str(m["role"]), str(m["content"])) for m in value)
        elif key == "busy":
            if not isinstance(value, list) or not all(isinstance(b, dict) for b in value):
                raise CodecError(f"{name}.busy: expected a list of {{start, end, title}}")
            try:
                value = tuple(ev.BusyInterval(**b) for b in value)
            except TypeError as exc:
                raise CodecError(f"{name}.busy: {exc}") from exc
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise CodecError(f"{name}: {exc}") from exc
