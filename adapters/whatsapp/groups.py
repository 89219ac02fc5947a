"""A small cache of group titles and participant counts (not carried by message events).

`GroupCache(fetch)` calls `fetch(chat) -> (title, participants)` at most once per group per
`ttl`, one call at a time per group, bounded by `timeout`; a failure is logged (group id
redacted), remembered for `retry_after` so a broken lookup is not hammered, and answered with
the last good value or None. It never raises.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from wapa.adapters.logs import log_event

log = logging.getLogger("wapa.whatsapp")


@dataclass(frozen=True, slots=True)
class GroupMeta:
    title: str
    participants: int


class GroupCache:
    def __init__(
        self,
        fetch: Callable[[str], Awaitable[tuple[str, int]]],
        *,
        ttl: float = 3600.0,
        retry_after: float = 300.0,
        timeout: float = 5.0,
        limit: int = 512,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl, self._retry_after, self._timeout, self._limit = ttl, retry_after, timeout, limit
        self._clock = clock
        self._entries: OrderedDict[str, tuple[GroupMeta | None, float]] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        self.failures = 0

    def peek(self, chat: str) -> GroupMeta | None:
        entry = self._entries.get(chat)
        return entry[0] if entry else None

    async def get(self, chat: str) -> GroupMeta | None:
        entry = self._entries.get(chat)
        if entry and entry[1] > self._clock():
            return entry[0]
        lock = self._locks.setdefault(chat, asyncio.Lock())
        async with lock:
            entry = self._entries.get(chat)
            if entry and entry[1] > self._clock():
                return entry[0]
            last = entry[0] if entry else None
            try:
                title, count = await asyncio.wait_for(self._fetch(chat), self._timeout)
                meta: GroupMeta | None = GroupMeta(str(title)[:200], max(0, int(count)))
                expires = self._clock() + self._ttl
            except Exception as exc:  # noqa: BLE001 - a lookup failure must not cost the message
                self.failures += 1
                log_event(
                    log,
                    logging.WARNING,
                    "whatsapp_group_info_failed",
                    error=type(exc).__name__,
                    using="cached" if last else "none",
                )
                meta, expires = last, self._clock() + self._retry_after
            self._entries[chat] = (meta, expires)
            self._entries.move_to_end(chat)
            while len(self._entries) > self._limit:
                old, _ = self._entries.popitem(last=False)
                self._locks.pop(old, None)
            return meta

    def forget(self, chat: str) -> None:
        """Drop a group (its title or members changed)."""
        self._entries.pop(chat, None)
