"""The model clients' connection pool: httpcore's, with its bookkeeping pass made linear, its
keep-alive limit counted as documented, and each idle connection given to one request.

httpcore's `AsyncConnectionPool` runs `_assign_requests_to_connections` when a request is
queued, when its response is closed, and again whenever a request finds the connection it was
given taken. In httpcore 1.0.9 that pass has three faults, all reported upstream (encode/httpcore
PR 1035, open, and issue 1110; the same fixes merged in the pydantic/httpx2 fork, PRs 974 and
1075):

1. **The keep-alive limit counts every connection, not the idle ones**: it closes an idle
   connection whenever the pool holds more than `max_keepalive_connections` connections,
   active ones included (`len([c.is_idle() for c in connections])` is the length of the whole
   list). With 32 generations at once and httpx's default of 20, the pool closed the idle
   connections it had just used and opened new ones: 445 TCP connections for 550 requests in
   the runner's benchmark, against a server that keeps every connection alive (as
   Cloudflare does: docs/bench.md).
2. **An idle connection is given to every queued request**: giving it does not change its
   state until the request starts on it (after an `await`), so the next request started in the
   meantime gets the same connection, finds it taken, and is queued again with another full
   pass: 5.5 passes per request instead of 2 with 16 requests at a time.
3. **It is quadratic**: the whole list is rebuilt for every idle connection, and the lists of
   available and idle connections for every queued request.

`LinearPool` overrides only that pass (and skips the cancellation shield of closing when
there is nothing to close), for HTTP/1.1: one walk drops closed connections and closes
expired idle ones (only an idle HTTP/1.1 connection can expire), the idle connections are
counted once and the oldest beyond `max_keepalive_connections` closed, and each queued request
gets the oldest free idle connection to its origin, else a new connection when there is room,
else (the pool full) a new one in place of the oldest idle connection to another origin, else
it waits, in httpcore's order. A connection given to a request that has not started on it yet
is spoken for: not given again, not closed for room or as surplus (if it expires meanwhile it
is closed, and its request goes round the pool again, as in httpcore). A connection neither
idle nor closed that no request in the pool holds was made for a request cancelled (or timed
out) after a pass gave it that connection and before it started on it: httpcore keeps it,
never connected nor closed, in its slot for ever, until every request waits for a slot
(encode/httpcore issue 1093, fixed in pydantic/httpx2 PR 983); here it is closed and dropped.
Two costs of httpcore's own synchronization are cut (on asyncio; its primitives go through anyio):
a request given a connection by the pass that queued it has not waited yet, so the connection
is set on it without building and setting an anyio `Event` nobody waits on (`_give`); and a
connection's locks (its request lock, its HTTP/1.1 state lock, taken three times a request) are
anyio locks with `fast_acquire`, which take a free lock without also yielding to the event loop
(anyio's own option: every request otherwise went round the loop three more times, about 7% of
a model call's CPU). The state lock is made when the connection first connects, inside
httpcore, so the pass swaps it in when it next gives the idle connection to a request.
Everything else (retries, the response streams that give connections back, HTTP/1.1 itself) is
httpcore's, unchanged. `pool_for()` returns httpcore's own pool for HTTP/2, or when the
installed httpcore lacks the internals this pass relies on.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpcore
from httpcore._async.connection_pool import AsyncPoolRequest
from httpcore._async.interfaces import AsyncConnectionInterface
from httpcore._synchronization import AsyncLock as _AsyncLock

__all__ = ["LinearPool", "pool_for"]

_INTERNALS = ("_assign_requests_to_connections", "_close_connections", "create_connection")
_STATE = ("_connections", "_requests", "_max_connections", "_max_keepalive_connections")


class LinearPool(httpcore.AsyncConnectionPool):
    """httpcore's HTTP/1.1 pool with the assignment pass above."""

    def _assign_requests_to_connections(self) -> list[AsyncConnectionInterface]:
        # Connections a request in the pool holds: in use, or given to it and not started on
        # yet (still idle, but spoken for: not given to another request, not closed).
        held = {id(r.connection) for r in self._requests if r.connection is not None}
        closing: list[AsyncConnectionInterface] = []
        kept: list[AsyncConnectionInterface] = []
        idle: list[AsyncConnectionInterface] = []  # idle and free, oldest first
        for connection in self._connections:
            if connection.is_idle():  # (only an idle connection can expire: httpcore's http11)
                if connection.has_expired():  # idle past keepalive_expiry, or the server closed
                    closing.append(connection)  # (one spoken for: its request goes round again)
                    continue
                if id(connection) not in held:
                    idle.append(connection)
            elif connection.is_closed():  # (idle and closed are two states: asked if not idle)
                continue  # closed (by the server, an error, a failed connect): dropped
            elif id(connection) not in held:  # orphaned: made for a request that has gone
                closing.append(connection)
                continue
            kept.append(connection)
        surplus = len(idle) - self._max_keepalive_connections
        if surplus > 0:  # the oldest idle connections beyond the keep-alive limit
            evicted = {id(connection) for connection in idle[:surplus]}
            closing.extend(idle[:surplus])
            kept = [connection for connection in kept if id(connection) not in evicted]
            del idle[:surplus]
        self._connections = kept

        for pool_request in self._requests:
            if not pool_request.is_queued():
                continue
            origin = pool_request.request.url.origin
            reuse = next((c for c in idle if c.can_handle_request(origin)), None)
            if reuse is not None:
                idle.remove(reuse)  # one request per connection (HTTP/1.1)
                _fast_locks(reuse)
                _give(pool_request, reuse)
                continue
            if len(kept) >= self._max_connections:
                if not idle:
                    continue  # full and nothing idle to close: it waits for a release
                victim = idle.pop(0)  # close the oldest idle (another origin's) for room
                kept.remove(victim)
                closing.append(victim)
            connection = self.create_connection(origin)
            kept.append(connection)
            _give(pool_request, connection)
        return closing

    def create_connection(self, origin: httpcore.Origin) -> AsyncConnectionInterface:
        connection = super().create_connection(origin)
        connection._wapa_fast_locks = False  # type: ignore[attr-defined]  # see _fast_locks
        _fast_locks(connection)
        return connection

    async def _close_connections(self, closing: list[AsyncConnectionInterface]) -> None:
        if closing:  # httpcore enters a cancellation shield (anyio) even for none
            await super()._close_connections(closing)


def _give(pool_request: AsyncPoolRequest, connection: AsyncConnectionInterface) -> None:
    """`pool_request.assign_to_connection(connection)`, without its event when nothing waits on
    it: httpcore's `AsyncEvent` makes its anyio event when first set or waited on, and a
    request waits only when it found no connection (`wait_for_connection` looks at
    `connection` first)."""
    event = getattr(pool_request, "_connection_acquired", None)
    if getattr(event, "_backend", None) == "":  # never set nor waited on: nothing waits
        pool_request.connection = connection
    else:
        pool_request.assign_to_connection(connection)


def _fast_locks(connection: AsyncConnectionInterface) -> None:
    """The connection's request lock, and its HTTP/1.1 state lock once it has one, as anyio
    locks with `fast_acquire`: httpcore's `AsyncLock` makes a plain anyio lock when first
    entered; one entered already is replaced while free (the pass runs on the event loop's
    thread, between two steps: nothing holds it or waits for it then). Done once for each."""
    if getattr(connection, "_wapa_fast_locks", True):  # done, or not one `create_connection` made
        return
    _fast(getattr(connection, "_request_lock", None))
    state = getattr(getattr(connection, "_connection", None), "_state_lock", None)
    if state is not None:
        _fast(state)
        connection._wapa_fast_locks = True  # type: ignore[attr-defined]


def _fast(lock: object) -> None:
    if not isinstance(lock, _AsyncLock) or getattr(lock, "_backend", None) not in ("", "asyncio"):
        return
    held = getattr(lock, "_anyio_lock", None)
    if held is not None and (held.locked() or getattr(held, "_fast_acquire", True)):
        return  # taken now (cannot be swapped), or fast already
    try:  # anyio's lock for the running event loop, as httpcore's `setup` makes it
        fast = anyio.Lock(fast_acquire=True)
    except TypeError:  # an anyio before 4.5, without the option: httpcore's own lock
        return
    lock._backend, lock._anyio_lock = "asyncio", fast


def pool_for(**kwargs: Any) -> httpcore.AsyncConnectionPool:
    """A `LinearPool` with `kwargs` (httpcore's AsyncConnectionPool arguments), or httpcore's
    own pool for HTTP/2 or when this httpcore lacks the internals `LinearPool` relies on."""
    base = httpcore.AsyncConnectionPool
    if not kwargs.get("http2") and all(callable(getattr(base, name, None)) for name in _INTERNALS):
        pool: httpcore.AsyncConnectionPool = LinearPool(**kwargs)
        if all(hasattr(pool, name) for name in _STATE):
            return pool
    return base(**kwargs)
