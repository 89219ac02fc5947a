"""The WhatsApp connection's state, as a small pure object: which lifecycle kinds to report for
each neonize connection event, and whether sending is allowed. No I/O; the clock is passed in.

What each event means (whatsmeow, under neonize 0.5.2):

- Connected: online. After a ban this also reports `ban_lifted`.
- Disconnected: the socket dropped unexpectedly. whatsmeow reconnects by itself (delay grows
  2 s per failed attempt); we report `disconnected` then `reconnecting`. Sending waits briefly.
- KeepAliveTimeout / KeepAliveRestored: the server stopped / resumed answering pings (after
  3 minutes of silence whatsmeow forces a reconnect itself).
- StreamReplaced: another client opened this session. whatsmeow does not reconnect, and neither
  do we (reconnecting would only fight the other client): the client is stopped, no sending;
  the runner keeps running with health red until someone stops the other client and restarts.
- LoggedOut: the phone unlinked this device (or the session is invalid). No reconnect, no
  sending; the store and the session file are kept; `wapa pair` links again.
- TemporaryBan: WhatsApp refuses this account for `Expire` seconds. whatsmeow does not
  reconnect; the transport reconnects once the ban should be over.
- ClientOutdated: WhatsApp refuses this client version (upgrade neonize); no reconnect, red.
- ConnectFailure: final. whatsmeow dispatches it only after deciding *not* to reconnect
  (`connectionevents.go` `handleConnectFailure`: 503/500 and CAT refreshes reconnect without
  an event). The transport reconnects itself with backoff; health is red until it connects.
- The event stream itself can end (neonize's Go loop stops when an event fails to encode): the
  transport watches it, reports `stream_dead` (red) and restarts the client with backoff.

`LinkHealth` maps the lifecycle kinds the transport reports to what health shows: the state,
whether it is red (sticky until a new connection), the hint for people, how loud to log it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

Report = tuple[str, str]  # (lifecycle kind, detail for people)


@dataclass
class Link:
    connected: bool = False
    ever_connected: bool = False
    logged_out: bool = False
    replaced: bool = False
    outdated: bool = False
    banned_until: float = 0.0  # monotonic time the ban should lift; 0 when not banned
    keepalive_lost: bool = False
    failed: str = ""  # why the connection is down until a reconnect of ours succeeds
    history: list[Report] = field(default_factory=list)

    @property
    def fatal(self) -> str:
        """Why this connection will never send again without the user ("" when it may)."""
        if self.replaced:
            return "another WhatsApp client took over this session"
        if self.logged_out:
            return "logged out: the phone unlinked this device; run `wapa pair` to link again"
        if self.outdated:
            return "WhatsApp rejected this client version; upgrade neonize"
        return ""

    def banned(self, now: float) -> bool:
        return self.banned_until > now

    def can_send(self, now: float) -> bool:
        """False while logged out, replaced, outdated or banned. A transient disconnect keeps
        sending allowed: sends wait for the reconnect (bounded) instead of failing at once."""
        return not self.fatal and not self.failed and not self.banned(now) and self.ever_connected

    def _emit(self, kind: str, detail: str) -> list[Report]:
        self.history.append((kind, detail))
        del self.history[:-50]
        return [(kind, detail)]

    def on_connected(self, now: float) -> list[Report]:
        out: list[Report] = []
        if self.banned_until:
            self.banned_until = 0.0
            out += self._emit("ban_lifted", "the temporary ban is over: sending again")
        self.connected = self.ever_connected = True
        self.keepalive_lost = False
        self.failed = ""
        return out + self._emit("connected", "connected to WhatsApp")

    def on_disconnected(self) -> list[Report]:
        self.connected = False
        if self.fatal:
            return []
        return self._emit("disconnected", "connection lost") + self._emit(
            "reconnecting", "whatsmeow reconnects by itself"
        )

    def on_keepalive_timeout(self, errors: int) -> list[Report]:
        if self.keepalive_lost:
            return []
        self.keepalive_lost = True
        return self._emit("keepalive_lost", f"{errors} keep-alive ping(s) unanswered")

    def on_keepalive_restored(self) -> list[Report]:
        if not self.keepalive_lost:
            return []
        self.keepalive_lost = False
        return self._emit("keepalive_restored", "keep-alive answered again")

    def on_stream_replaced(self) -> list[Report]:
        self.connected, self.replaced = False, True
        return self._emit(
            "stream_replaced",
            "another WhatsApp Web client took over this session: sending stopped (stop the "
            "other client, then restart wapa)",
        )

    def on_logged_out(self, reason: str, on_connect: bool) -> list[Report]:
        self.connected, self.logged_out = False, True
        when = " at connect" if on_connect else ""
        return self._emit(
            "logged_out",
            f"logged out{when} ({reason}): sending stopped, state kept; run `wapa pair`",
        )

    def on_temporary_ban(self, now: float, code: str, seconds: float) -> list[Report]:
        self.connected = False
        seconds = max(0.0, float(seconds))
        self.banned_until = now + max(seconds, 1.0)
        minutes = max(1, round(seconds / 60))
        return self._emit(
            "temporary_ban",
            f"WhatsApp temporarily banned this account ({code}); no sending for about "
            f"{minutes} min, reconnecting after that",
        )

    def on_client_outdated(self) -> list[Report]:
        self.connected, self.outdated = False, True
        return self._emit(
            "client_outdated", "WhatsApp says this client is outdated: upgrade neonize"
        )

    def on_connect_failure(self, reason: str) -> list[Report]:
        self.connected = False
        self.failed = f"WhatsApp refused the connection ({reason}) and whatsmeow gave up"
        return self._emit("connect_failed", f"{self.failed}; reconnecting with backoff")

    def on_stream_dead(self) -> list[Report]:
        self.connected = False
        self.failed = "the WhatsApp event stream ended unexpectedly"
        return self._emit("stream_dead", f"{self.failed}; restarting the client")

    def on_restart(self, why: str) -> list[Report]:
        return self._emit("reconnecting", why)


# ---------------------------------------------------------------------- health of the link
#
# What a lifecycle kind (adapters/transport.py LIFECYCLE_KINDS) means for the people running
# wapa: the state shown in /healthz, whether it turns health red, how loud it is logged, and a
# hint shown while the state lasts.

LIFECYCLE_STATE = {
    "connected": "connected",
    "disconnected": "disconnected",
    "reconnecting": "disconnected",
    "keepalive_lost": "degraded",
    "keepalive_restored": "connected",
    "stream_replaced": "replaced",
    "logged_out": "logged_out",
    "temporary_ban": "banned",
    "ban_lifted": "connected",
    "pair_needed": "not_paired",
    "connect_failed": "failed",
    "stream_dead": "failed",
    "client_outdated": "outdated",
}
# Lost for good, or until our own reconnect succeeds (only a new connection clears them):
# health red while they last.
RED_STATES = frozenset({"logged_out", "replaced", "not_paired", "failed", "outdated"})
LIFECYCLE_LEVEL = {  # the others are logged as errors
    "connected": logging.INFO,
    "keepalive_restored": logging.INFO,
    "ban_lifted": logging.INFO,
    "disconnected": logging.WARNING,
    "reconnecting": logging.WARNING,
    "keepalive_lost": logging.WARNING,
}
LIFECYCLE_HINT = {
    "logged_out": "the phone unlinked this device: no sending; run `wapa pair` again and "
    "restart (state is kept)",
    "stream_replaced": "another WhatsApp client (a second wapa, or a copy of the session "
    "database) took over this session: no sending; wapa keeps running with "
    "health red so that it does not fight the other client for the session. "
    "Stop the other client, then restart wapa",
    "temporary_ban": "WhatsApp banned the account for a while: no sending until it lifts",
    "pair_needed": "no paired WhatsApp session: run `wapa pair` first",
    "connect_failed": "WhatsApp refused the connection and whatsmeow gave up: wapa reconnects "
    "with backoff; no sending until it is back",
    "stream_dead": "the WhatsApp event stream ended: wapa restarts the client; no sending "
    "until it is back",
    "client_outdated": "WhatsApp rejected this client version: upgrade neonize (and wapa), "
    "then restart",
}


@dataclass(frozen=True, slots=True)
class LifecycleNote:
    """What to log for one lifecycle event: `event` at `level` (a `logging` level)."""

    level: int
    event: str
    detail: str
    hint: str


@dataclass
class LinkHealth:
    """The link's state as health sees it, fed with the transport's lifecycle events. Pure:
    `on_lifecycle` returns what to log (None: nothing, e.g. a red state seen again).

    A red state (`RED_STATES`) is sticky: a later `disconnected` or `reconnecting` does not
    hide why sending stopped; only `connected` (or `pair_needed`) replaces it. `reason` holds
    the hint of the state while it lasts (shown in /healthz)."""

    state: str = "starting"
    reason: str = ""

    @property
    def red(self) -> bool:
        return self.state in RED_STATES

    def on_lifecycle(self, kind: str, detail: str = "") -> LifecycleNote | None:
        previous = self.state
        state = LIFECYCLE_STATE.get(kind, previous)
        if previous in RED_STATES and state not in RED_STATES and state != "connected":
            state = previous  # lost: only a new connection (or a worse red) replaces it
        self.state = state
        hint = LIFECYCLE_HINT.get(kind, "")
        if state == "connected":
            self.reason = ""
        elif hint and state == LIFECYCLE_STATE.get(kind):
            self.reason = hint
        if state in RED_STATES and state == previous:
            return None  # a red state is logged once
        level = LIFECYCLE_LEVEL.get(kind, logging.ERROR)
        return LifecycleNote(level, "whatsapp_" + kind, detail, hint)
