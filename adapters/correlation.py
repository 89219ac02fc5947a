"""Correlation ids: one per inbound message, followed to everything it causes.

A contact's message gets a new id when it arrives (`new`). The id is remembered for its chat
(`message`), and for the model call and the send that follow (`request`), so that a timer step
hours later, the model's answer and the send's confirmation are all logged with the id of the
message they concern. `lookup` answers in the order request -> chat -> fallback. Both tables
keep the newest 4096 entries (LRU): a busy runner never grows them without bound, and a
forgotten id costs a log line its `corr`, nothing else.

The id of the step being handled lives in `wapa.adapters.logs.correlation` (a ContextVar),
which stamps it on every log line; `bound(corr)` sets it for a block.
"""

from __future__ import annotations

import contextvars
import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from wapa.adapters.logs import correlation

KEPT = 4096


class Correlations:
    def __init__(self, kept: int = KEPT, prefix: str | None = None) -> None:
        self.kept = kept
        self._prefix = prefix if prefix is not None else os.urandom(3).hex()
        self._n = 0
        self._chats: OrderedDict[str, str] = OrderedDict()
        self._requests: OrderedDict[str, str] = OrderedDict()

    def new(self) -> str:
        """A fresh id: a random prefix per process, then a counter."""
        self._n += 1
        return f"{self._prefix}-{self._n}"

    def message(self, chat: str, corr: str) -> None:
        """A contact's message in `chat`: what happens next in the chat follows it."""
        self._remember(self._chats, chat, corr)

    def request(self, request_id: str, corr: str) -> None:
        """A generation or send started under `corr`: its outcome is logged with it."""
        self._remember(self._requests, request_id, corr)

    def done(self, request_id: str) -> None:
        """The request's story is over (sent, failed, stale)."""
        self._requests.pop(request_id, None)

    def of_request(self, request_id: str) -> str:
        return self._requests.get(request_id, "") if request_id else ""

    def lookup(self, request_id: str, chat: str, fallback: str) -> str:
        return (
            self.of_request(request_id) or (self._chats.get(chat, "") if chat else "") or fallback
        )

    def sizes(self) -> tuple[int, int]:
        """(chats, requests) remembered: bounded by `kept` each."""
        return len(self._chats), len(self._requests)

    def _remember(self, table: OrderedDict[str, str], key: str, corr: str) -> None:
        if not key or not corr:
            return
        table[key] = corr
        table.move_to_end(key)
        while len(table) > self.kept:
            table.popitem(last=False)


def context_with(corr: str) -> contextvars.Context:
    """A copy of the current context with `corr` set: a task created with it
    (`asyncio.create_task(coro, context=...)`) carries the id on its log lines, as one
    created inside `bound(corr)` does, without entering and leaving a block."""
    context = contextvars.copy_context()
    context.run(correlation.set, corr)
    return context


@contextmanager
def bound(corr: str) -> Iterator[None]:
    """Log lines (and tasks created) inside the block carry `corr`."""
    token = correlation.set(corr)
    try:
        yield
    finally:
        correlation.reset(token)
