"""What the runner needs from a messaging transport (WhatsApp through neonize, or the console).

A transport turns the outside world into `core.Message` events (`on_message`) and carries out
the core's effects (read receipts, typing, sends, notices to the owner). Connection changes are
reported through `on_lifecycle(kind, detail)` with one of `LIFECYCLE_KINDS`; `detail` is for
people and never contains a phone number or message text.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, runtime_checkable

from wapa.core import Decision, Message

LIFECYCLE_KINDS: tuple[str, ...] = (
    "connected",  # online; sending allowed
    "disconnected",  # connection lost; the transport reconnects by itself
    "reconnecting",  # a reconnect attempt is under way
    "keepalive_lost",  # the server stopped answering keep-alives
    "keepalive_restored",  # ...and answers again
    "stream_replaced",  # another client took over the session: no sending, health red, state kept
    "logged_out",  # the phone unlinked this device: no sending, health red, state kept
    "temporary_ban",  # WhatsApp banned the account for a while: no sending until it lifts
    "ban_lifted",  # ...it lifted
    "pair_needed",  # no paired session: run `wapa pair` first; the runner stops
    "connect_failed",  # the library gave up connecting: the transport reconnects with backoff
    "stream_dead",  # the event stream ended unasked: the transport restarts the client
    "client_outdated",  # WhatsApp refuses this client version: no sending until an upgrade
)

OnMessage = Callable[[Message], Awaitable[None]]
OnLifecycle = Callable[[str, str], None]


class SendError(Exception):
    """A send was refused or failed; the message was not delivered (as far as we know)."""


@runtime_checkable
class Transport(Protocol):
    name: str

    async def start(self, on_message: OnMessage, on_lifecycle: OnLifecycle) -> None:
        """Connect and begin delivering messages; returns once connected (or raises)."""

    async def mark_read(self, chat: str, message_ids: Sequence[str], sender: str) -> None: ...

    async def typing(self, chat: str, on: bool) -> None: ...

    async def send(self, chat: str, text: str, quote_id: str = "") -> str:
        """Send `text` (quoting `quote_id` when set); return WhatsApp's message id.
        Raises `SendError` when the message was not accepted."""

    async def notify_owner(self, text: str) -> None:
        """Deliver a notice to the owner's chat with himself."""

    def can_send(self) -> bool:
        """False while logged out, banned or replaced: the runner then fails sends at once."""

    async def stop(self) -> None:
        """Disconnect explicitly and release everything (idempotent)."""


@runtime_checkable
class ShowsDecisions(Protocol):
    """A transport a person watches (the console): the runner shows it each decision."""

    def show_decision(self, d: Decision) -> None: ...


@runtime_checkable
class KnowsOwnAccount(Protocol):
    """A transport paired to an account (WhatsApp): its JID, "" until known."""

    @property
    def own_jid(self) -> str: ...
