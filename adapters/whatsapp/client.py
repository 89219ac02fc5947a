"""`NeonizeTransport`: the runner's WhatsApp transport, around neonize's async client.

Inbound: every neonize event type the assistant cares about has one handler, registered with
`client.event(...)` before connecting. Each handler is wrapped (`_guard`): an exception is
logged with the handler's name and the event id (never text or numbers), counted in
`handler_errors`, and costs that one event only. Message events are handled one at a time, in
arrival order: LIDs resolved to phone numbers, mapped (`mapping.py`), group title and size
filled from a cached lookup, then handed to the runner's `on_message`.

Outbound: read receipts, typing (composing/paused), sends (as a reply quoting the original when
asked: id, participant and content come from the remembered inbound message), notices to the
owner's chat with himself. The neonize client is only touched while its Go side exists: after
`stop()` or before the first connect a call would crash the process.

Connection lifecycle: see `link.py`. whatsmeow reconnects by itself after an unexpected
disconnect (a delay of 2 s times the failed attempts), so the transport does not duplicate
that; it reconnects itself after a temporary ban (whose end whatsmeow does not watch), after a
`ConnectFailure` (whatsmeow's final word) and when the event stream (neonize's connect task)
ends unasked, with a backoff of `RECONNECT_BASE` doubling up to `RECONNECT_MAX`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from neonize.aioze.client import NewAClient
from neonize.aioze.events import (
    ClientOutdatedEv,
    ConnectedEv,
    ConnectFailureEv,
    DisconnectedEv,
    KeepAliveRestoredEv,
    KeepAliveTimeoutEv,
    LoggedOutEv,
    MessageEv,
    PairStatusEv,
    StreamReplacedEv,
    TemporaryBanEv,
)
from neonize.proto.Neonize_pb2 import JID, ConnectFailureReason, TemporaryBan
from neonize.proto.waCompanionReg.WAWebProtobufsCompanionReg_pb2 import DeviceProps
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import ContextInfo, ExtendedTextMessage
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message as WAMessage
from neonize.utils.enum import ChatPresence, ChatPresenceMedia, Presence, ReceiptType
from wapa.adapters.logs import log_event
from wapa.adapters.transport import OnLifecycle, OnMessage, SendError
from wapa.adapters.whatsapp import goprints, quiet_neonize_logs
from wapa.adapters.whatsapp import jid as J
from wapa.adapters.whatsapp.groups import GroupCache
from wapa.adapters.whatsapp.link import Link, Report
from wapa.adapters.whatsapp.mapping import (
    Mapped,
    Skip,
    learn_pairs,
    lids_in,
    message_from_event,
    unwrap,
)
from wapa.adapters.whatsapp.media import MediaDownloadError, MediaFetch, OnMedia, media_part
from wapa.adapters.whatsapp.session import describe_session, paired_accounts
from wapa.core.context import media_text
from wapa.core.events import Message

log = logging.getLogger("wapa.whatsapp")
T = TypeVar("T")

QUOTE_BYTES = 4096  # a remembered message bigger than this is quoted as text only
LIDS_PER_EVENT = 16
LID_MISS_TTL = 600.0  # an unresolved LID is asked again after this (whatsmeow learns pairs later)
NAMES = 4096  # display names remembered (for mentions written as @<digits>)
DEVICE_NAME = "wapa"
RECONNECT_BASE = 5.0  # seconds before the first reconnect of ours; doubles per failure
RECONNECT_MAX = 300.0
NO_PUSH_NAME = "without PushName"  # whatsmeow presence.go ErrNoPushName's text


class PairingRequired(RuntimeError):
    """The session is not paired: run `wapa pair`."""


class WhatsAppStartError(RuntimeError):
    """Could not get online (logged out, replaced, outdated, unreachable)."""


@dataclass(frozen=True, slots=True)
class _Origin:
    """How WhatsApp addressed one inbound message: for read receipts and reply quotes."""

    chat: str
    sender: str
    quoted: WAMessage


def quotable(msg: WAMessage, media: str, text: str) -> WAMessage:
    """A copy of `msg` fit to be quoted: without its own quote, without `messageContextInfo`
    (its `messageSecret` is the original's key for poll votes and edits: it must not travel in
    someone else's message), at most QUOTE_BYTES."""
    copy = WAMessage()
    copy.CopyFrom(unwrap(msg))
    copy.ClearField("messageContextInfo")
    for _field, value in copy.ListFields():
        if hasattr(value, "HasField"):
            try:
                if value.HasField("contextInfo"):
                    value.ClearField("contextInfo")
            except ValueError:  # this submessage has no contextInfo
                pass
    if copy.ByteSize() > QUOTE_BYTES:
        copy = WAMessage(conversation=media_text(media, text)[:1000])
    return copy


def _default_client(session_db: str) -> NewAClient:
    from wapa.adapters.filemodes import private_sqlite

    private_sqlite(session_db)  # device keys inside: 0600 before neonize opens it (issue 16)
    return NewAClient(
        session_db, props=DeviceProps(os=DEVICE_NAME, platformType=DeviceProps.SAFARI)
    )


async def _default_paired(session_db: str) -> list[str]:
    return await asyncio.to_thread(paired_accounts, session_db)


class NeonizeTransport:
    name = "whatsapp"

    def __init__(
        self,
        session_db: str,
        owner_jid: str | None = None,
        *,
        client_factory: Callable[[], NewAClient] | None = None,
        paired_check: Callable[[str], Awaitable[list[str]]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        connect_timeout: float = 90.0,
        send_wait: float = 30.0,
        stop_timeout: float = 10.0,
        call_grace: float = 3.0,
        presence_online: bool = True,
        group_ttl: float = 3600.0,
        remembered: int = 512,
        capture_go_prints: bool | None = None,
    ) -> None:
        quiet_neonize_logs()
        # Go's own prints into the log (goprints.py); by default only with neonize's real client
        self._capture_go_prints = (
            client_factory is None if capture_go_prints is None else capture_go_prints
        )
        self.session_db = session_db
        self._owner_jid = J.normalize(owner_jid) if owner_jid else ""
        self._factory = client_factory or (lambda: _default_client(session_db))
        self._paired_check = paired_check or _default_paired
        self._clock, self._sleep = clock, sleep
        self._connect_timeout, self._send_wait = connect_timeout, send_wait
        self._stop_timeout, self._presence_online = stop_timeout, presence_online
        self._call_grace = call_grace
        self._calls: dict[asyncio.Future[Any], str] = {}  # neonize calls Go is still running
        self.abandoned: Counter[str] = Counter()  # calls still running when the client stopped
        self._remembered = remembered
        self._client: NewAClient | None = None
        self._connect_task: asyncio.Future[Any] | None = None
        self._alive = False  # the Go side of the client exists: calls are safe
        self._stopping = self._stopped = False
        self.stopped_cleanly = True  # False: neonize's worker thread is stuck; os._exit
        self._link = Link()
        self._book = J.LidBook()
        self._lid_misses: OrderedDict[str, float] = OrderedDict()  # LID -> ask again after
        self._names: OrderedDict[str, str] = OrderedDict()  # JID (PN or LID) -> display name
        self._live_lid = ""  # the account's own LID as get_me last said
        self._told_no_push_name = False
        self._group_fetches = 0
        self._origins: OrderedDict[str, _Origin] = OrderedDict()
        self._chat_jids: OrderedDict[str, str] = OrderedDict()
        self._typing: set[str] = set()
        self._inbound = asyncio.Lock()
        self._connected = asyncio.Event()
        self._start_waiter: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ban_task: asyncio.Task[Any] | None = None
        self._reconnect_task: asyncio.Task[Any] | None = None
        self._reconnects = 0  # our reconnects since the last Connected
        self._planned_stop = False  # the connect task ends because we stopped it
        self._on_message: OnMessage | None = None
        self._on_lifecycle: OnLifecycle | None = None
        self._media_sink: OnMedia | None = None
        self._groups = GroupCache(self._fetch_group, ttl=group_ttl, clock=clock)
        self.handler_errors = 0
        self.skipped: Counter[str] = Counter()
        self.last_timestamp_ms = 0  # WhatsApp's time of the last message handed on

    # ------------------------------------------------------------------ identity and state

    @property
    def own_jid(self) -> str:
        """The paired account's phone-number JID (the owner); the configured one until known."""
        me = getattr(self._client, "me", None)
        if me is not None and me.JID.User and me.JID.Server == J.USER_SERVER:
            return J.jid_str(me.JID)
        return self._owner_jid

    @property
    def own_device(self) -> int:
        """This linked device's number in the account (-1 until known; the phone is 0)."""
        me = getattr(self._client, "me", None)
        return int(me.JID.Device) if me is not None and me.JID.User else -1

    @property
    def own_lid(self) -> str:
        """The account's LID: as `get_me` last said, else the connect-time snapshot."""
        if self._live_lid:
            return self._live_lid
        me = getattr(self._client, "me", None)
        return J.jid_str(me.LID) if me is not None and me.LID.User else ""

    async def _refresh_me(self) -> None:
        """Read the account live (`get_me`): the connect-time `client.me` may predate the LID
        (assigned or migrated later). Best effort, bounded; the name is kept for mentions."""
        client = self._client
        if client is None or not self._alive:
            return
        try:
            me = await asyncio.wait_for(self._go("get_me", client.get_me()), 2.0)
        except Exception:  # noqa: BLE001 - the snapshot stays in use
            return
        if me.LID.User and me.LID.Server == J.LID_SERVER:
            self._live_lid = J.jid_str(me.LID)
        if me.PushName:
            for who in (self.own_jid, self._live_lid):
                self._learn_name(who, me.PushName)

    @property
    def link(self) -> Link:
        return self._link

    def can_send(self) -> bool:
        return (
            self._client is not None and not self._stopping and self._link.can_send(self._clock())
        )

    async def is_connected(self) -> bool:
        """Ask neonize (`await client.is_connected`); False whenever the client is not alive."""
        if not self._alive or self._client is None:
            return False
        try:
            return bool(await self._go("is_connected", self._client.is_connected))
        except Exception:  # noqa: BLE001
            return False

    # ------------------------------------------------------------------ start and stop

    async def start(self, on_message: OnMessage, on_lifecycle: OnLifecycle) -> None:
        """Connect; return once connected (or banned for a while: it reconnects by itself).
        Raises PairingRequired when the session is not paired, WhatsAppStartError when
        WhatsApp refuses the session or stays unreachable for `connect_timeout`."""
        self._on_message, self._on_lifecycle = on_message, on_lifecycle
        where = describe_session(self.session_db)
        accounts = await self._paired_check(self.session_db)
        if not accounts:
            detail = f"no paired WhatsApp session in {where}: run `wapa pair` first"
            self._report([("pair_needed", detail)])
            raise PairingRequired(detail)
        if self._capture_go_prints:
            goprints.capture_go_prints()
        client = self._client = self._factory()
        self._register(client)
        loop = asyncio.get_running_loop()
        self._start_waiter = loop.create_future()
        deadline = self._clock() + self._connect_timeout
        attempt = 0
        while True:
            task = self._connect_task = await client.connect()
            remaining = max(0.0, deadline - self._clock())
            done, _ = await asyncio.wait(
                {self._start_waiter, task}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            if self._start_waiter.done():
                exc = self._start_waiter.exception()
                if exc is not None:
                    await self.stop()
                    raise exc
                self._watch(task)
                return
            if task not in done:
                await self.stop()
                raise WhatsAppStartError(
                    f"not connected to WhatsApp after {self._connect_timeout:.0f} s; "
                    "check the network"
                )
            attempt += 1
            error = task.exception() if not task.cancelled() else None
            reason = J.redact_numbers(str(error))[:200] if error else "connection ended"
            if self._clock() >= deadline:
                await self.stop()
                raise WhatsAppStartError(f"could not connect to WhatsApp: {reason}")
            log_event(log, logging.WARNING, "whatsapp_connect_retry", attempt=attempt, error=reason)
            await self._sleep(min(2.0**attempt, 30.0, max(0.0, deadline - self._clock())))

    async def stop(self) -> None:
        """Disconnect explicitly and wait (bounded) for neonize's worker to end. Idempotent."""
        if self._stopped:
            return
        self._stopping = True
        self._connected.set()  # wake waiting sends: they fail with "stopping"
        for task in [*self._tasks, self._ban_task, self._reconnect_task]:
            if task is not None and not task.done() and task is not asyncio.current_task():
                task.cancel()
        await self._stop_client()
        self._stopped = True

    async def _go(self, name: str, call: Awaitable[T]) -> T:
        """Await one neonize call, counted while Go runs it. Cancelling the caller (a timeout,
        shutdown) stops the wait, not the Go call: it stays counted until it returns, so the
        client is never stopped under it (`Stop` deletes the client from Go's unlocked map)."""
        task: asyncio.Future[T] = asyncio.ensure_future(call)
        self._calls[task] = name
        task.add_done_callback(self._call_ended)
        return await asyncio.shield(task)

    def _call_ended(self, task: asyncio.Future[Any]) -> None:
        self._calls.pop(task, None)
        if not task.cancelled():
            task.exception()  # retrieved: a caller that stopped waiting is not told

    async def _settle_calls(self) -> Counter[str]:
        """Wait up to `call_grace` for the neonize calls in flight; the names of those still
        running (abandoned: their outcome is unknown) are logged and returned."""
        if self._calls:
            await asyncio.wait(set(self._calls), timeout=self._call_grace)
        left = Counter(self._calls.values())
        if left:
            self.abandoned.update(left)
            log_event(
                log,
                logging.WARNING,
                "whatsapp_calls_abandoned",
                calls=dict(sorted(left.items())),
                waited_s=self._call_grace,
                detail="still running in Go; the client is not stopped under them",
            )
        return left

    async def _stop_client(self) -> bool:
        """Stop the Go client once no neonize call is in flight (bounded by `call_grace`).
        False: calls are still running, so the client was left alone (when stopping for good,
        the process exits without waiting for it: `stopped_cleanly` is False)."""
        client, task = self._client, self._connect_task
        self._alive = False
        self._connected.clear()
        if client is None or task is None:
            return True
        if await self._settle_calls():
            if self._stopping:
                self._planned_stop = True
                self.stopped_cleanly = False
            return False
        self._planned_stop = True
        try:
            await asyncio.wait_for(client.stop(), self._stop_timeout)
        except Exception as exc:  # noqa: BLE001
            log_event(log, logging.WARNING, "whatsapp_stop_failed", error=type(exc).__name__)
        done, _ = await asyncio.wait({task}, timeout=self._stop_timeout)
        if task in done:
            if not task.cancelled() and task.exception() is not None:
                log_event(
                    log,
                    logging.INFO,
                    "whatsapp_client_ended",
                    error=type(task.exception()).__name__,
                )
        else:
            self.stopped_cleanly = False
            log_event(
                log,
                logging.WARNING,
                "whatsapp_stop_hung",
                detail="neonize's worker thread did not end; the process must exit with os._exit",
            )
        self._connect_task = None
        return True

    async def _restart_client(self, why: str) -> None:
        """Stop the Go client and connect again with the same session (after a ban)."""
        if self._stopping or self._client is None:
            return
        self._report(self._link.on_restart(why))
        if not await self._stop_client():
            if not self._stopping:  # calls still hang in Go: try again after the next backoff
                self._reconnect_task = None
                self._reconnect_later(why)
            return
        if not self._stopping:
            self._planned_stop = False
            self._connect_task = await self._client.connect()
            self._watch(self._connect_task)

    def _watch(self, task: asyncio.Future[Any]) -> None:
        """Notice when neonize's event loop ends unasked (defect: nothing watched it)."""
        task.add_done_callback(self._connect_task_ended)

    def _connect_task_ended(self, task: asyncio.Future[Any]) -> None:
        if self._stopping or self._planned_stop or task is not self._connect_task:
            return
        error = task.exception() if not task.cancelled() else None
        log_event(
            log,
            logging.ERROR,
            "whatsapp_stream_ended",
            error=_err(error) if error else "ended without an error",
        )
        self._alive = False
        self._connected.clear()
        self._report(self._link.on_stream_dead())
        self._reconnect_later("the event stream ended")

    def _reconnect_later(self, why: str) -> None:
        """One reconnect of ours at a time, after a backoff that doubles per failure."""
        if self._stopping or (self._reconnect_task and not self._reconnect_task.done()):
            return
        delay = min(RECONNECT_BASE * 2.0**self._reconnects, RECONNECT_MAX)
        self._reconnects += 1

        async def later() -> None:
            await self._sleep(delay)
            await self._restart_client(f"{why}: reconnecting (attempt {self._reconnects})")

        self._reconnect_task = asyncio.ensure_future(later())

    # ------------------------------------------------------------------ handlers

    def _register(self, client: NewAClient) -> None:
        on = client.event
        on(MessageEv)(self._guard("message", self._handle_message))
        on(ConnectedEv)(self._guard("connected", self._handle_connected))
        on(DisconnectedEv)(self._guard("disconnected", self._handle_disconnected))
        on(KeepAliveTimeoutEv)(self._guard("keepalive_timeout", self._handle_keepalive_timeout))
        on(KeepAliveRestoredEv)(self._guard("keepalive_restored", self._handle_keepalive_restored))
        on(StreamReplacedEv)(self._guard("stream_replaced", self._handle_stream_replaced))
        on(LoggedOutEv)(self._guard("logged_out", self._handle_logged_out))
        on(TemporaryBanEv)(self._guard("temporary_ban", self._handle_temporary_ban))
        on(ConnectFailureEv)(self._guard("connect_failure", self._handle_connect_failure))
        on(ClientOutdatedEv)(self._guard("client_outdated", self._handle_client_outdated))
        on(PairStatusEv)(self._guard("pair_status", self._handle_pair_status))
        on.qr(self._guard("qr", self._handle_qr))

    def _guard(
        self, name: str, body: Callable[[Any], Awaitable[None]]
    ) -> Callable[[NewAClient, Any], Awaitable[None]]:
        """Wrap a handler: neonize swallows exceptions from async handlers silently."""

        async def handler(_client: NewAClient, event: Any) -> None:
            try:
                await body(event)
            except Exception as exc:  # noqa: BLE001 - one bad event must not stop the runner
                self.handler_errors += 1
                log_event(
                    log,
                    logging.ERROR,
                    "whatsapp_handler_failed",
                    handler=name,
                    event_id=_event_id(event),
                    error=type(exc).__name__,
                    exc_info=True,
                )

        handler.__name__ = f"on_{name}"
        return handler

    async def _handle_message(self, ev: Any) -> None:
        async with self._inbound:
            learn_pairs(ev, self._book)
            lids = lids_in(ev)
            if lids:
                await self._refresh_me()
                await self._resolve_lids(lids)
                await self._learn_from_group(ev, lids)
                await self._name_mentions(lids)
            self._learn_sender_name(ev)
            result = message_from_event(
                ev,
                self.own_jid,
                self.own_lid,
                self._book,
                own_device=self.own_device,
                names=self._names,
            )
            if isinstance(result, Skip):
                self.skipped[result.reason] += 1
                log_event(log, logging.DEBUG, "whatsapp_skip", id=ev.Info.ID, reason=result.reason)
                return
            msg = result.message
            self._remember(result, ev)
            if msg.is_group and msg.kind == "message":
                meta = await self._groups.get(msg.chat)
                if meta is not None:
                    msg = replace(msg, group_title=meta.title, participants=meta.participants)
            self.last_timestamp_ms = result.timestamp_ms
            if self._on_message is not None:
                await self._on_message(msg)
            self._offer_media(msg, ev)

    # ------------------------------------------------------------------ media

    def set_media_sink(self, sink: OnMedia | None) -> None:
        """Where a contact's voice notes and images are offered after their message (the
        runner's background downloads, app/media.py); None: never."""
        self._media_sink = sink

    def _offer_media(self, msg: Message, ev: Any) -> None:
        sink = self._media_sink
        if (
            sink is None
            or msg.from_me
            or msg.kind != "message"
            or msg.media not in ("voice", "image")
        ):
            return
        part = media_part(unwrap(ev.Message))
        if part is None:
            return

        async def download() -> bytes:
            client = self._client
            if client is None or not self._alive or self._stopping:
                raise MediaDownloadError("not connected to WhatsApp")
            try:
                data = await self._go("download_any", client.download_any(part.message))
            except Exception as exc:  # noqa: BLE001 - neonize's DownloadError and the rest
                raise MediaDownloadError(_err(exc)) from None
            return bytes(data or b"")

        fetch = MediaFetch(
            msg.chat, msg.id, part.kind, download, part.seconds, part.mime, part.size
        )
        try:
            sink(fetch)
        except Exception as exc:  # noqa: BLE001 - the message went on; its media is lost
            log_event(log, logging.ERROR, "whatsapp_media_offer_failed", id=msg.id, error=_err(exc))

    async def _handle_connected(self, _ev: Any) -> None:
        self._alive = True
        self._reconnects = 0
        self._report(self._link.on_connected(self._clock()))
        self._connected.set()
        if self._start_waiter is not None and not self._start_waiter.done():
            self._start_waiter.set_result(None)
        own = self.own_jid
        if self._owner_jid and own and own != self._owner_jid:
            log_event(
                log,
                logging.WARNING,
                "whatsapp_owner_mismatch",
                detail="the configured owner is not the paired account; the paired one is used",
            )
        await self._presence(Presence.UNAVAILABLE)  # publishes the push name, stays "offline"

    async def _handle_disconnected(self, _ev: Any) -> None:
        self._connected.clear()
        self._report(self._link.on_disconnected())

    async def _handle_keepalive_timeout(self, ev: Any) -> None:
        self._report(self._link.on_keepalive_timeout(int(ev.ErrorCount)))

    async def _handle_keepalive_restored(self, _ev: Any) -> None:
        self._report(self._link.on_keepalive_restored())

    async def _handle_stream_replaced(self, _ev: Any) -> None:
        reports = self._link.on_stream_replaced()
        self._fatal(WhatsAppStartError(reports[0][1]), reports)

    async def _handle_logged_out(self, ev: Any) -> None:
        reason = _enum_name(ConnectFailureReason, ev.Reason)
        reports = self._link.on_logged_out(reason, bool(ev.OnConnect))
        self._fatal(WhatsAppStartError(reports[0][1]), reports)

    async def _handle_client_outdated(self, _ev: Any) -> None:
        reports = self._link.on_client_outdated()
        self._fatal(WhatsAppStartError(reports[0][1]), reports)

    async def _handle_temporary_ban(self, ev: Any) -> None:
        self._connected.clear()
        seconds = max(0, int(ev.Expire))
        code = _enum_name(TemporaryBan.TempBanReason, ev.Code)
        self._report(self._link.on_temporary_ban(self._clock(), code, seconds))
        if self._start_waiter is not None and not self._start_waiter.done():
            self._start_waiter.set_result(None)  # start() returns; sending waits for the lift
        if self._ban_task is not None and not self._ban_task.done():
            self._ban_task.cancel()
        self._ban_task = asyncio.create_task(self._after_ban(seconds))

    async def _after_ban(self, seconds: float) -> None:
        await self._sleep(seconds + 5.0)
        await self._restart_client("the temporary ban should be over: reconnecting")

    async def _handle_connect_failure(self, ev: Any) -> None:
        """whatsmeow's final word: it sends ConnectFailure only when it will not reconnect."""
        self._alive = False
        self._connected.set()  # wake waiting sends: they re-check can_send and fail at once
        reports = self._link.on_connect_failure(_enum_name(ConnectFailureReason, ev.Reason))
        self._report(reports)
        if self._start_waiter is not None and not self._start_waiter.done():
            self._start_waiter.set_exception(WhatsAppStartError(reports[0][1]))
            return
        self._connected.clear()
        self._reconnect_later("whatsmeow gave up connecting")

    async def _handle_pair_status(self, ev: Any) -> None:
        log_event(log, logging.INFO, "whatsapp_pair_status", status=int(ev.Status))

    async def _handle_qr(self, _data: Any) -> None:
        """A QR code during `run` means the session is not (or no longer) paired."""
        detail = (
            f"the WhatsApp session in {describe_session(self.session_db)} is not paired: "
            "run `wapa pair` first"
        )
        self._fatal(PairingRequired(detail), [("pair_needed", detail)])

    def _fatal(self, exc: Exception, reports: list[Report]) -> None:
        """No sending any more: report, fail a pending start, stop the Go client."""
        self._alive = False
        self._connected.set()  # wake waiting sends: they re-check can_send and fail
        self._report(reports)
        if self._start_waiter is not None and not self._start_waiter.done():
            self._start_waiter.set_exception(exc)
        else:
            self._spawn(self._stop_client())

    # ------------------------------------------------------------------ effects

    async def mark_read(self, chat: str, message_ids: Sequence[str], sender: str) -> None:
        """Read receipts, one per original (chat, sender) pair. Failures are logged, not raised."""
        client = self._client
        if not message_ids or client is None or not self._alive:
            return
        groups: dict[tuple[str, str], list[str]] = {}
        for mid in message_ids:
            origin = self._origins.get(mid)
            key = (origin.chat, origin.sender) if origin else (self._chat_jid(chat), sender)
            groups.setdefault(key, []).append(mid)
        for (chat_jid, sender_jid), ids in groups.items():
            if not sender_jid:
                # An id we no longer remember (a restart, or 512 newer messages): neonize
                # cannot encode an empty sender JID. whatsmeow ignores the sender in a direct
                # chat (receipt.go MarkRead), so the chat itself does; in a group the
                # participant is needed and unknown: no receipt rather than an error.
                if chat_jid.endswith("@" + J.GROUP_SERVER):
                    log_event(log, logging.INFO, "whatsapp_mark_read_skipped", count=len(ids))
                    continue
                sender_jid = chat_jid
            try:
                await self._go(
                    "mark_read",
                    client.mark_read(
                        *ids,
                        chat=J.parse_jid(chat_jid),
                        sender=J.parse_jid(sender_jid) if sender_jid else JID(),
                        receipt=ReceiptType.READ,
                    ),
                )
            except Exception as exc:  # noqa: BLE001
                log_event(log, logging.WARNING, "whatsapp_mark_read_failed", error=_err(exc))

    async def typing(self, chat: str, on: bool) -> None:
        """Composing / paused in `chat`. Appears "online" only while typing somewhere (an
        online linked device silences the phone's notifications). Failures are logged."""
        client = self._client
        if client is None or not self._alive:
            return
        try:
            jid = J.parse_jid(self._chat_jid(chat))
            if on:
                if self._presence_online and not self._typing:
                    await self._presence(Presence.AVAILABLE)
                self._typing.add(chat)
                state = ChatPresence.CHAT_PRESENCE_COMPOSING
            else:
                self._typing.discard(chat)
                state = ChatPresence.CHAT_PRESENCE_PAUSED
            media = ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT
            await self._go("send_chat_presence", client.send_chat_presence(jid, state, media))
            if not on and self._presence_online and not self._typing:
                await self._presence(Presence.UNAVAILABLE)
        except Exception as exc:  # noqa: BLE001
            log_event(log, logging.WARNING, "whatsapp_typing_failed", error=_err(exc))

    async def send(self, chat: str, text: str, quote_id: str = "") -> str:
        if not isinstance(text, str) or not text.strip():
            raise SendError("nothing to send (empty text)")
        try:
            jid = J.parse_jid(self._chat_jid(chat))
        except ValueError as exc:
            raise SendError(f"chat id {exc}") from exc
        message = WAMessage(conversation=text)
        origin = self._origins.get(quote_id) if quote_id else None
        if origin is not None:
            context = ContextInfo(
                stanzaID=quote_id, participant=origin.sender, quotedMessage=origin.quoted
            )
            message = WAMessage(
                extendedTextMessage=ExtendedTextMessage(text=text, contextInfo=context)
            )
        elif quote_id:
            log_event(log, logging.INFO, "whatsapp_quote_unknown", quote_id=quote_id)
        client = await self._ready()
        try:
            response = await self._go("send_message", client.send_message(jid, message))
        except Exception as exc:  # noqa: BLE001 - whatever neonize raises, the send failed
            raise SendError(f"WhatsApp did not take the message: {_err(exc)}") from exc
        message_id = str(getattr(response, "ID", "") or "")
        if not message_id:
            raise SendError("WhatsApp returned no message id")
        return message_id

    async def notify_owner(self, text: str) -> None:
        own = self.own_jid
        if not own:
            raise SendError("the owner's own chat is not known yet (not connected)")
        await self.send(own, text)

    async def _ready(self) -> NewAClient:
        """The client once sending is possible; waits up to `send_wait` for a reconnect."""
        if not self.can_send():
            raise SendError(self._why_not())
        if not (self._alive and self._link.connected):
            try:
                await asyncio.wait_for(self._connected.wait(), self._send_wait)
            except TimeoutError:
                raise SendError(
                    f"not connected to WhatsApp (waited {self._send_wait:.0f} s)"
                ) from None
        if not self.can_send() or not self._alive or self._client is None:
            raise SendError(self._why_not())
        return self._client

    def _why_not(self) -> str:
        if self._stopping:
            return "the transport is stopping"
        if self._link.fatal:
            return self._link.fatal
        if self._link.banned(self._clock()):
            return "temporarily banned by WhatsApp: no sending until the ban lifts"
        if self._link.failed:
            return f"not connected to WhatsApp: {self._link.failed}"
        return "not connected to WhatsApp"

    # ------------------------------------------------------------------ helpers

    async def _presence(self, presence: Presence) -> None:
        client = self._client
        if client is None or not self._alive:
            return
        try:
            await self._go("send_presence", client.send_presence(presence))
        except Exception as exc:  # noqa: BLE001
            if NO_PUSH_NAME in str(exc):
                if self._told_no_push_name:
                    return
                self._told_no_push_name = True
                log_event(
                    log,
                    logging.INFO,
                    "whatsapp_no_push_name",
                    detail="WhatsApp has not synced the account's name yet (it comes with the "
                    "first app-state sync after pairing): wapa cannot show online/offline until "
                    "then; typing and replies work",
                )
                return
            log_event(log, logging.DEBUG, "whatsapp_presence_failed", error=_err(exc))

    async def _fetch_group(self, chat: str) -> tuple[str, int]:
        client = self._client
        if client is None or not self._alive:
            raise ConnectionError("not connected")
        info = await self._go("get_group_info", client.get_group_info(J.parse_jid(chat)))
        self._group_fetches += 1
        for person in info.Participants:
            # whatsmeow stores each participant's LID/phone pair while parsing group info;
            # the same pairs (and display names) are learned here directly.
            addresses = [J.jid_str(person.JID), J.jid_str(person.LID)]
            addresses.append(J.jid_str(person.PhoneNumber))
            lid = next((a for a in addresses if J.is_lid(J.normalize(a))), "")
            pn = next((a for a in addresses if J.is_pn(J.normalize(a))), "")
            if lid and pn:
                self._book.learn(lid, pn)
                self._lid_misses.pop(J.normalize(lid), None)
            if person.DisplayName:
                for who in (lid, pn):
                    self._learn_name(who, person.DisplayName)
        return info.GroupName.Name, len(info.Participants)

    def _unresolved(self, lids: set[str]) -> list[str]:
        own_lid = self.own_lid
        return [x for x in sorted(lids) if x not in self._book and x != own_lid]

    async def _learn_from_group(self, ev: Any, lids: set[str]) -> None:
        """Before mapping a group message with LIDs still unknown: fetch the group's info when
        it is not cached (whatsmeow learns its members' LID/phone pairs from it), then ask the
        LID store again for those LIDs (their cached misses no longer count)."""
        chat = J.jid_str(ev.Info.MessageSource.Chat)
        if not chat.endswith("@" + J.GROUP_SERVER) or not self._unresolved(lids):
            return
        before = self._group_fetches
        await self._groups.get(chat)
        if self._group_fetches == before:
            return
        for lid in self._unresolved(lids):
            self._lid_misses.pop(lid, None)
        await self._resolve_lids(lids)

    async def _resolve_lids(self, lids: set[str]) -> None:
        """Ask neonize's local LID store for LIDs the book does not know (best effort). A miss
        is remembered for LID_MISS_TTL seconds, then asked again."""
        client = self._client
        if client is None or not self._alive:
            return
        now = self._clock()
        todo = [x for x in self._unresolved(lids) if self._lid_misses.get(x, now) <= now]
        for lid in todo[:LIDS_PER_EVENT]:
            try:
                pn = await asyncio.wait_for(
                    self._go("get_pn_from_lid", client.get_pn_from_lid(J.parse_jid(lid))), 2.0
                )
                found = J.jid_str(pn)
            except Exception:  # noqa: BLE001 - unknown LIDs stay LIDs
                found = ""
            if J.is_pn(found):
                self._book.learn(lid, found)
                self._lid_misses.pop(lid, None)
            else:
                self._lid_misses[lid] = now + LID_MISS_TTL
                self._lid_misses.move_to_end(lid)
                while len(self._lid_misses) > 1024:
                    self._lid_misses.popitem(last=False)

    def _learn_name(self, who: str, name: str) -> None:
        who, name = J.normalize(who), " ".join(str(name).split())[:100]
        if not who or not name or _looks_like_digits(name):
            return
        self._names[who] = name
        self._names.move_to_end(who)
        while len(self._names) > NAMES:
            self._names.popitem(last=False)

    def _learn_sender_name(self, ev: Any) -> None:
        """A contact's push name under each address the event gives him."""
        src = ev.Info.MessageSource
        if src.IsFromMe or not ev.Info.Pushname:
            return
        sender, alt = J.jid_str(src.Sender), J.jid_str(src.SenderAlt)
        for who in (sender, alt, J.resolve(sender, self._book)):
            if who:
                self._learn_name(who, ev.Info.Pushname)

    async def _name_mentions(self, lids: set[str]) -> None:
        """Ask neonize's contact store for the names of LIDs nobody named yet (best effort)."""
        client = self._client
        if client is None or not self._alive:
            return
        todo = []
        for lid in sorted(lids):
            pn = J.resolve(lid, self._book, self.own_lid, self.own_jid)
            if lid not in self._names and pn not in self._names:
                todo.append((lid, pn))
        for lid, pn in todo[:LIDS_PER_EVENT]:
            try:
                info = await asyncio.wait_for(
                    self._go("get_contact", client.get_contact(J.parse_jid(pn))), 2.0
                )
            except Exception:  # noqa: BLE001 - no name: the mention reads "@someone"
                continue
            if info.Found:
                name = info.FullName or info.FirstName or info.PushName or info.BusinessName
                for who in (lid, pn):
                    self._learn_name(who, name)

    def _remember(self, result: Mapped, ev: Any) -> None:
        msg = result.message
        origin = _Origin(
            result.raw_chat, result.raw_sender, quotable(ev.Message, msg.media, msg.text)
        )
        self._origins[msg.id] = origin
        self._origins.move_to_end(msg.id)
        while len(self._origins) > self._remembered:
            self._origins.popitem(last=False)
        if result.raw_chat != msg.chat:
            self._chat_jids[msg.chat] = result.raw_chat
            self._chat_jids.move_to_end(msg.chat)
            while len(self._chat_jids) > self._remembered:
                self._chat_jids.popitem(last=False)

    def _chat_jid(self, chat: str) -> str:
        """The JID to address `chat` with: as WhatsApp last addressed it (maybe a LID)."""
        return self._chat_jids.get(chat, chat)

    def _report(self, reports: list[Report]) -> None:
        for kind, detail in reports:
            level = logging.INFO if kind in ("connected", "keepalive_restored") else logging.WARNING
            log_event(log, level, "whatsapp_lifecycle", kind=kind, detail=detail)
            if self._on_lifecycle is not None:
                try:
                    self._on_lifecycle(kind, detail)
                except Exception as exc:  # noqa: BLE001
                    log_event(
                        log,
                        logging.ERROR,
                        "whatsapp_lifecycle_callback_failed",
                        kind=kind,
                        error=type(exc).__name__,
                        exc_info=True,
                    )

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _looks_like_digits(name: str) -> bool:
    return sum(c.isdigit() for c in name) >= 5


def _event_id(event: Any) -> str:
    try:
        return str(event.Info.ID)[:64]
    except Exception:  # noqa: BLE001
        return ""


def _enum_name(enum: Any, value: int) -> str:
    try:
        return str(enum.Name(value)).lower()
    except (ValueError, TypeError):
        return "unknown"


def _err(exc: BaseException) -> str:
    text = str(exc).strip()
    return J.redact_numbers(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:300]
