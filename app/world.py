"""The runner's `World` (core/driver.py): where committed effects meet asyncio and the adapters.

Every method returns at once; what it starts runs in tasks, and outcomes come back to the
runner's queue as events (`Generated` / `GenerationFailed` from the model service,
`SendConfirmed` / `SendFailed` from the transport), each with the correlation id of the
message it concerns.

- Transport effects (mark read, typing, sends) run in per-chat lanes: in order within a chat,
  concurrently across chats; notices to the owner in a lane of their own.
- A send is refused at once (`SendFailed`) when the transport cannot send (logged out,
  replaced, banned): nothing waits on a link that is gone.
- Generations go to the model service (adapters/llm/service.py: the concurrency bound,
  retries, fallback, budget, metering); it never raises, and its answer is the event.
- Decisions are logged, counted by reason and shown by the console.
- `begin_step` records the step (WAPA_RECORD: the event "in", then its effects "out", in the
  format of adapters/recording.py that `wapa replay` reads) and binds the step's correlation id.
- `arrived` is the other direction: an inbound message is counted and logged with a new
  correlation id before the runner queues it.
- While the runner drains its queue at shutdown (`executing = False`), decisions are still
  logged and recorded but no effect is carried out any more: the transport is gone.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections import deque
from collections.abc import Callable, Coroutine
from contextvars import Token
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from wapa.adapters.correlation import Correlations, context_with
from wapa.adapters.llm.service import ModelService
from wapa.adapters.logs import correlation, log_event
from wapa.adapters.metrics import Metrics
from wapa.adapters.transport import KnowsOwnAccount, SendError, ShowsDecisions, Transport
from wapa.adapters.whatsapp.link import LinkHealth
from wapa.config import Settings
from wapa.core import (
    Assistant,
    Decision,
    Event,
    Generate,
    MarkRead,
    Message,
    Notice,
    Persona,
    Reason,
    Send,
    SendConfirmed,
    SendFailed,
    Typing,
)
from wapa.core.driver import Step
from wapa.health import StartError, can_send

if TYPE_CHECKING:  # imported when WAPA_RECORD is set: not paid for otherwise
    from wapa.adapters.recording import Recorder
    from wapa.adapters.whatsapp.media import MediaFetch
    from wapa.media import MediaWorker

log = logging.getLogger("wapa.runner")

Enqueue = Callable[[Event, str], None]  # (outcome event, correlation id) into the runner's queue
_OWNER_LANE = "\x00owner"


@dataclass(slots=True)
class _Action:
    """A transport action waiting in its lane."""

    coro: Coroutine[Any, Any, None]
    corr: str  # its correlation id
    quietly: str  # "": it handles its own failures; else its name (`<name>_failed` logged)


Lane = deque[_Action]  # a lane's actions: the first is running
_LOUD = frozenset({Reason.BAD_EVENT, Reason.SEND_FAILED, Reason.SEND_UNKNOWN, Reason.CLOCK_SKEW})
_OVER = frozenset({Reason.SEND_CONFIRMED, Reason.SEND_FAILED, Reason.SEND_UNKNOWN, Reason.STALE})


class AsyncWorld:
    def __init__(
        self,
        transport: Transport,
        model: ModelService,
        enqueue: Enqueue,
        metrics: Metrics,
        link: LinkHealth,
        recorder: Recorder | None = None,
    ) -> None:
        self.transport, self.model, self.enqueue = transport, model, enqueue
        self.metrics, self.link = metrics, link
        self.recorder = recorder
        self.corr = Correlations()
        self.executing = True  # False while draining at shutdown: effects are not carried out
        self.inflight: set[asyncio.Task[Any]] = set()
        self._watched: set[asyncio.Task[Any]] = set()  # tasks `when_done` already watches
        self._lanes: dict[str, Lane] = {}
        self._step = ""  # the correlation id of the step being dispatched
        self._token: Token[str] | None = None
        # the console shows decisions
        self._show = transport.show_decision if isinstance(transport, ShowsDecisions) else None
        self.media: MediaWorker | None = None  # voice notes and images (app/media.py)
        self._decision_counts: dict[str, Any] = {}  # reason code -> its counter (a fixed set)
        self._inbound_counts: dict[str, Any] = {}  # owner / group / contact -> its counter

    # ------------------------------------------------------------------ inbound

    def arrived(self, msg: Message, now: float) -> str:
        """A message from the transport, before it is queued: counted, logged with a new
        correlation id (returned), and how long after it was written it arrived (`age_s`)."""
        if not isinstance(msg, Message):
            raise TypeError(f"expected a core Message, got {type(msg).__name__}")
        corr = self.corr.new()
        source = "owner" if msg.from_me else "group" if msg.is_group else "contact"
        counter = self._inbound_counts.get(source)
        if counter is None:  # labels() checks and locks at every call: one child per source
            counter = self._inbound_counts[source] = self.metrics.messages_in.labels(source)
        counter.inc()
        sent_at = msg.sent_at if isinstance(msg.sent_at, int | float) else 0.0
        age: dict[str, Any] = {"age_s": round(now - sent_at, 1)} if sent_at > 0 else {}
        log_event(
            log,
            logging.INFO,
            "message_in",
            corr=corr,
            chat=msg.chat,
            sender=msg.sender,
            id=msg.id,
            from_me=msg.from_me,
            group=msg.is_group,
            media=msg.media,
            kind=msg.kind,
            chars=len(msg.text) if isinstance(msg.text, str) else 0,
            text=msg.text,
            sender_name=msg.sender_name,
            **age,
        )
        return corr

    def media_arrived(self, fetch: MediaFetch) -> None:
        """A voice note or image the transport offers after its message: downloaded and
        understood in a background task (app/media.py), an effect under way like a send; its
        `MediaText` comes back through the queue under the chat's correlation id."""
        worker = self.media
        if worker is None or not self.executing:
            return
        corr = self.corr.lookup("", fetch.chat, "") or self.corr.new()
        work = worker.accept(fetch, corr)
        if work is not None:
            worker.track(self._spawn(work, corr))

    # ------------------------------------------------------------------ World

    def begin_step(self, step: Step) -> None:
        self._step = step.tag
        self._token = correlation.set(step.tag)
        ev = step.event
        if isinstance(ev, Message) and not ev.from_me and isinstance(ev.chat, str):
            self.corr.message(ev.chat, step.tag)  # what happens next in the chat follows it
        if step.error is not None:
            self.metrics.bad_events.inc()
            err = step.error
            log_event(
                log,
                logging.ERROR,
                "core_step_failed",
                error=f"{type(err).__name__}: {err}"[:300],
                kind=step.kind,
                traceback="".join(traceback.format_exception(err))[-4000:],
            )
        if self.recorder is not None:
            if ev is not None:
                self._record("in", step.t, ev)
            for e in step.effects:
                self._record("out", step.t, e)

    def end_step(self, step: Step) -> None:
        if self._token is not None:
            correlation.reset(self._token)
            self._token = None
        self._step = ""

    def decided(self, d: Decision) -> None:
        counter = self._decision_counts.get(d.code)
        if counter is None:  # prometheus_client's labels() checks and locks at every call
            counter = self._decision_counts[d.code] = self.metrics.decisions.labels(d.code)
        counter.inc()
        log_event(
            log,
            logging.WARNING if d.code in _LOUD else logging.INFO,
            "decision",
            corr=self.corr.lookup(d.request_id, d.chat, self._step),
            chat=d.chat,
            code=d.code,
            detail=d.detail,
            request_id=d.request_id,
        )
        if self._show is not None:
            self._show(d)
        if d.request_id and d.code in _OVER:
            self.corr.done(d.request_id)

    def mark_read(self, e: MarkRead) -> None:
        if self.executing:
            coro = self.transport.mark_read(e.chat, e.message_ids, e.sender)
            self._lane(e.chat, coro, self._for(e.chat), "mark_read")

    def typing(self, e: Typing) -> None:
        if self.executing:
            self._lane(e.chat, self.transport.typing(e.chat, e.on), self._for(e.chat), "typing")

    def start_generation(self, g: Generate) -> None:
        if self.executing:
            corr = self._for(g.chat, g.request_id)
            self.corr.request(g.request_id, corr)
            self._spawn(self._generate(g, corr), corr)

    def start_send(self, s: Send) -> None:
        if self.executing:
            corr = self._for(s.chat, s.request_id)
            self.corr.request(s.request_id, corr)
            self._lane(s.chat, self._send(s, corr), corr)

    def notify_owner(self, n: Notice) -> None:
        if self.executing:
            self._lane(_OWNER_LANE, self._notice(n.text), self._step)

    # ------------------------------------------------------------------ shutdown

    def busy(self) -> bool:
        return bool(self.inflight)

    def when_done(self, wake: Callable[[], None]) -> None:
        """Call `wake` as each effect under way now ends (once per task, however often asked):
        the runner's end-of-input check looks again then."""

        def ended(task: asyncio.Task[Any]) -> None:
            self._watched.discard(task)
            wake()

        for task in self.inflight - self._watched:
            self._watched.add(task)
            task.add_done_callback(ended)

    async def finish(self, timeout: float) -> None:
        """Give the sends and generations under way `timeout` seconds, then cancel the rest."""
        pending = set(self.inflight)
        if not pending:
            return
        log_event(log, logging.INFO, "shutdown_waiting", tasks=len(pending), timeout_s=timeout)
        _, not_done = await asyncio.wait(pending, timeout=timeout)
        for task in not_done:
            task.cancel()
        if not_done:
            await asyncio.wait(not_done, timeout=1.0)
            log_event(log, logging.WARNING, "shutdown_cancelled", tasks=len(not_done))

    # ------------------------------------------------------------------ the work

    async def _generate(self, g: Generate, corr: str) -> None:
        self.enqueue(await self.model.generate(g), corr)  # never raises

    async def _send(self, e: Send, corr: str) -> None:
        m = self.metrics
        if not can_send(self.transport):
            m.send_failures.inc()
            log_event(
                log,
                logging.WARNING,
                "send_refused",
                chat=e.chat,
                request_id=e.request_id,
                reason=self.link.state,
            )
            detail = f"WhatsApp cannot send now ({self.link.state})"
            self.enqueue(SendFailed(e.request_id, detail), corr)
            return
        sending = asyncio.ensure_future(self.transport.send(e.chat, e.text, e.quote_id))
        try:
            message_id = await asyncio.shield(sending)
        except asyncio.CancelledError:
            # Shutdown stopped waiting, not WhatsApp: the send's outcome still reaches the queue
            # (drained after the transport stops), so a send WhatsApp confirms is never lost.
            sending.add_done_callback(lambda t: self._late_outcome(e, corr, t))
            raise
        except SendError as exc:
            m.send_failures.inc()
            error = str(exc)[:200]
            log_event(
                log,
                logging.WARNING,
                "send_failed",
                chat=e.chat,
                request_id=e.request_id,
                error=error,
            )
            self.enqueue(SendFailed(e.request_id, error), corr)
        except Exception as exc:
            m.send_failures.inc()
            log_event(
                log,
                logging.ERROR,
                "send_error",
                chat=e.chat,
                request_id=e.request_id,
                error=f"{type(exc).__name__}: {exc}"[:300],
            )
            self.enqueue(SendFailed(e.request_id, type(exc).__name__), corr)
        else:
            m.replies_sent.inc()
            log_event(
                log,
                logging.INFO,
                "sent",
                chat=e.chat,
                request_id=e.request_id,
                message_id=str(message_id),
                chars=len(e.text),
                text=e.text,
            )
            self.enqueue(SendConfirmed(e.request_id, str(message_id or "")), corr)

    def _late_outcome(self, e: Send, corr: str, sending: asyncio.Future[str]) -> None:
        """A send whose wait shutdown cancelled has ended: its confirmation or failure."""
        error = "cancelled" if sending.cancelled() else sending.exception()
        if error is None:
            message_id = str(sending.result() or "")
            log_event(log, logging.INFO, "sent_at_shutdown", request_id=e.request_id)
            self.enqueue(SendConfirmed(e.request_id, message_id), corr)
            return
        log_event(log, logging.WARNING, "send_failed_at_shutdown", request_id=e.request_id)
        self.enqueue(SendFailed(e.request_id, f"stopping: {str(error)[:200]}"), corr)

    async def _notice(self, text: str) -> None:
        try:
            await self.transport.notify_owner(text)
            self.metrics.notices.inc()
            log_event(log, logging.INFO, "notice_sent", chars=len(text), notice=text)
        except Exception as exc:
            log_event(log, logging.WARNING, "notice_failed", error=f"{type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ tasks and lanes

    def _for(self, chat: str, request_id: str = "") -> str:
        return self.corr.lookup(request_id, chat, self._step)

    def _spawn(self, coro: Coroutine[Any, Any, None], corr: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, context=context_with(corr))  # its log lines carry corr
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)
        return task

    def _lane(
        self, key: str, coro: Coroutine[Any, Any, None], corr: str, quietly: str = ""
    ) -> None:
        """Run `coro` after the previous transport action of the same lane: a lane is one
        task that runs its actions in order while any wait (the read mark and typing of one
        step share it), each with its own correlation id; a new task starts when the lane
        is empty. Cancelled (shutdown), the actions that never started are closed.
        `quietly`: the action's name; its failure is logged (`<name>_failed`) and ignored."""
        lane = self._lanes.get(key)
        if lane is not None:
            lane.append(_Action(coro, corr, quietly))
            return
        lane = self._lanes[key] = deque([_Action(coro, corr, quietly)])

        def ended(_: asyncio.Task[None]) -> None:  # however it ended, even cancelled unstarted
            if self._lanes.get(key) is lane:
                del self._lanes[key]
            for action in lane:  # cancelled: these never ran (or ended: a no-op)
                action.coro.close()

        self._spawn(_run_lane(self._lanes, key, lane), corr).add_done_callback(ended)

    def _record(self, direction: str, t: float, obj: Any) -> None:
        if self.recorder is None:
            return
        try:
            self.recorder.record(t, direction, obj)
        except Exception as exc:  # recording is a debugging aid: never stop the runner for it
            log_event(log, logging.WARNING, "record_failed", error=f"{type(exc).__name__}: {exc}")
            self.recorder = None


async def _run_lane(lanes: dict[str, Lane], key: str, lane: Lane) -> None:
    """A lane's task: its actions in order, each with its correlation id, until none waits;
    then the lane is gone at once (an action added later starts a new one)."""
    while lane:
        action = lane[0]
        correlation.set(action.corr)  # in this task's own context: its log lines carry it
        try:
            await action.coro
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if action.quietly:  # typing, read marks: logged, otherwise ignored
                log_event(log, logging.WARNING, f"{action.quietly}_failed", error=error)
            else:  # sends and notices log their own failures: this is a bug
                log_event(log, logging.ERROR, "transport_action_failed", error=error[:300])
        lane.popleft()
    if lanes.get(key) is lane:
        del lanes[key]


def open_recorder(settings: Settings, seed: int, now: float) -> Recorder:
    """The recording WAPA_RECORD asks for, its header dated `now` on the runner's clock.
    A path that cannot be written raises `StartError` (the runner refuses to start: a
    recording asked for is never silently missing); a disk failing later only stops it."""
    from wapa.adapters.recording import Recorder

    try:
        return Recorder(
            settings.record,
            settings.policy,
            settings.persona,
            seed,
            redact=settings.record_redact,
            start=now,
        )
    except (OSError, ValueError) as exc:  # ValueError: e.g. a NUL byte in the path
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise StartError(f"WAPA_RECORD: cannot write {settings.record}: {reason}") from None


def adopt_owner(transport: Transport, a: Assistant | None, configured: Persona) -> None:
    """With WhatsApp, the owner is the paired account: when WAPA_OWNER_ID is left at its
    default, take the account's JID from the transport (owner commands are read there)."""
    own = transport.own_jid if isinstance(transport, KnowsOwnAccount) else ""
    if not isinstance(own, str) or not own or a is None or a.persona.owner_id == own:
        return
    if configured.owner_id == Persona().owner_id:
        a.persona = replace(a.persona, owner_id=own)
        log_event(log, logging.INFO, "owner_from_session", owner_id=own)
    else:
        hint = "WAPA_OWNER_ID is not the paired account"
        was = a.persona.owner_id
        log_event(log, logging.WARNING, "owner_id_differs", configured=was, paired=own, hint=hint)
