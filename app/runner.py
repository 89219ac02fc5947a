"""The production runner: the pure core driven by real adapters on asyncio.

One inbound queue feeds the core; one timer waits for `assistant.next_deadline()`. Each step:

    effects = assistant.handle(event, now)   or   assistant.on_timer(now)
    await store.save_step(assistant, effects, events)      # committed...
    carry out the effects                                   # ...before what it allows

Group commit: when the loop wakes, it also takes the events already queued (up to 256 steps,
or 5 ms of core time; it never waits for more) and the timer if it came due, runs each through
the core, commits all their state in ONE store transaction, and only then carries out their
effects, step by step in order. Under load this is one fsync per group instead of one per
message; when traffic is light a group is one step, as before. The model's daily neuron
spend and quota block are saved in the commit that follows each generation (store value
`model_usage`) and loaded at start, so a restart does not hand the day's budget out again.

Transport effects run in per-chat lanes (in order within a chat, concurrently across chats);
model calls run concurrently up to `max_concurrent_generations`; their outcomes come back
through the same queue as `Generated` / `GenerationFailed`, send outcomes as `SendConfirmed` /
`SendFailed`. Every decision is logged (with the correlation id of the inbound message it
concerns) and counted by reason.

Shutdown (first SIGTERM/SIGINT): no more timers fire (so no new generation or send starts),
sends and generations under way get `shutdown_timeout` to finish, the transport stops, the
events still queued are handled and committed, the store closes; exit status 0. A second
signal exits at once (status 128 + signal number): every group is one committed SQLite
transaction (WAL), so an abrupt exit loses at most the group being written, whose effects were
not carried out yet; `recover()` handles the rest after the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import time
import tracemalloc
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from wapa.adapters.logs import correlation, flush_logging, log_event
from wapa.adapters.metrics import Metrics, resident_memory_bytes
from wapa.adapters.transport import SendError, Transport
from wapa.config import Settings
from wapa.core import (
    Assistant,
    Decision,
    Effect,
    Event,
    Generate,
    Generated,
    GenerationFailed,
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

log = logging.getLogger("wapa.runner")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
_MAX_SLEEP = 30.0  # re-read the clock at least this often (wall-clock jumps, NTP steps)
_CORR_KEPT = 4096
# Group commit: one store transaction for up to this many core steps, gathered from what is
# already queued within this much core time (the loop never waits for more).
_BATCH_MAX = 256
_BATCH_SECONDS = 0.005
USAGE_KEY = "model_usage"  # store value: the model's daily neuron spend and quota block
EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


class StoreLike(Protocol):
    encrypted: bool

    async def load(self, policy: Any, persona: Any) -> Assistant | None: ...

    async def save_step(
        self,
        assistant: Assistant,
        effects: Iterable[Effect],
        events: Iterable[Event] = (),
        *,
        values: Mapping[str, str] | None = None,
    ) -> None: ...

    async def close(self) -> None: ...


class ModelLike(Protocol):
    async def generate(self, messages: Sequence[Any]) -> Any: ...


class RecorderLike(Protocol):
    def record(self, t: float, direction: str, obj: Any) -> None: ...


@dataclass
class _Item:
    event: Event
    corr: str


_WA_STATE = {
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
}
_WA_RED = {"logged_out", "replaced", "not_paired"}
_LIFECYCLE_LEVEL = {
    "connected": logging.INFO,
    "keepalive_restored": logging.INFO,
    "ban_lifted": logging.INFO,
    "disconnected": logging.WARNING,
    "reconnecting": logging.WARNING,
    "keepalive_lost": logging.WARNING,
}
# What a lifecycle event means for the people running wapa: logged, and shown in /healthz
# while the state lasts.
_LIFECYCLE_HINT = {
    "logged_out": "the phone unlinked this device: no sending; run `wapa pair` again and "
    "restart (state is kept)",
    "stream_replaced": "another WhatsApp client (a second wapa, or a copy of the session "
    "database) took over this session: no sending; wapa keeps running with "
    "health red so that it does not fight the other client for the session. "
    "Stop the other client, then restart wapa",
    "temporary_ban": "WhatsApp banned the account for a while: no sending until it lifts",
    "pair_needed": "no paired WhatsApp session: run `wapa pair` first",
}


class Runner:
    def __init__(
        self,
        settings: Settings,
        transport: Transport,
        store: StoreLike,
        model: ModelLike | None,
        *,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        metrics: Metrics | None = None,
        recorder: RecorderLike | None = None,
        http: bool = True,
        install_signals: bool = True,
        monitor_interval: float = 5.0,
        housekeeping: Callable[[Runner], Coroutine[Any, Any, None]] | None = None,
        on_http_port: Callable[[int], None] | None = None,
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.store = store
        self.model = model
        self.clock = clock
        self.sleep = sleep
        self.metrics = metrics or Metrics()
        self.recorder = recorder
        self._http_enabled = http
        self._install_signals = install_signals
        self._monitor_interval = monitor_interval
        self._housekeeping = housekeeping
        self._on_http_port = on_http_port
        self.http_port: int | None = None
        self.assistant: Assistant | None = None
        self.state = "starting"
        self.whatsapp = "starting"
        self.whatsapp_reason = ""  # why WhatsApp cannot send, while that lasts (for /healthz)
        self.store_state = "ok"
        self.model_state = "unknown" if model is not None else "not_configured"
        self.exit_code = EXIT_OK
        self.start_error = ""
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._stop = asyncio.Event()
        self._signals = 0
        self._eof = False
        self._gen_slots = asyncio.Semaphore(settings.max_concurrent_generations)
        self._lanes: dict[str, asyncio.Task[None]] = {}
        self._inflight: set[asyncio.Task[Any]] = set()
        self._chat_corr: OrderedDict[str, str] = OrderedDict()
        self._req_corr: OrderedDict[str, str] = OrderedDict()
        self._corr_n = 0
        self._corr_prefix = os.urandom(3).hex()
        self._memory_warned = False
        self._started_at = time.monotonic()
        self._executing = True  # transport effects are carried out (False while draining)
        self._stepping = False
        self._usage_saved = ""  # the model usage JSON last committed
        self.commits = 0  # group commits (store transactions) made by steps
        self.committed_steps = 0  # core steps those commits held

    # ------------------------------------------------------------------ public

    async def run(self) -> int:
        """Run until stopped; returns the exit status."""
        loop = asyncio.get_running_loop()
        http = None
        if self._http_enabled:
            from wapa.adapters.http_server import HttpServer

            http = HttpServer(
                self.settings.http_host, self.settings.http_port, self.health, self.render_metrics
            )
            self.http_port = await http.start()
            log_event(
                log,
                logging.INFO,
                "http_listening",
                host=self.settings.http_host,
                port=self.http_port,
            )
            if self._on_http_port is not None:
                self._on_http_port(self.http_port)
        if self._install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._on_signal, sig)
        background: list[asyncio.Task[Any]] = []
        try:
            recovered = await self._load()
            if recovered is None:
                return self.exit_code
            if self.settings.record and self.recorder is None and self.assistant is not None:
                self.recorder = _open_recorder(self.settings, self.assistant.seed)
            if not getattr(self.store, "encrypted", True):
                log_event(
                    log,
                    logging.WARNING,
                    "store_not_encrypted",
                    hint="set WAPA_DB_KEY to encrypt message text and names at rest",
                )
            try:
                await self.transport.start(self._on_message, self._on_lifecycle)
            except Exception as exc:
                self.start_error = str(exc) or type(exc).__name__
                log_event(
                    log,
                    logging.ERROR,
                    "transport_start_failed",
                    transport=self.transport.name,
                    error=f"{type(exc).__name__}: {exc}",
                )
                if self.exit_code == EXIT_OK:
                    self.exit_code = EXIT_FAILED
                return self.exit_code
            self._adopt_owner()
            self.state = "running"
            log_event(
                log,
                logging.INFO,
                "started",
                transport=self.transport.name,
                chats=len(self.assistant.chats) if self.assistant else 0,
            )
            self._execute(recovered, "")
            if self._monitor_interval > 0:
                background.append(asyncio.create_task(self._monitor()))
            if self._housekeeping is not None:
                background.append(asyncio.create_task(self._housekeeping(self)))
            await self._main_loop()
            await self._shutdown()
        finally:
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if self._install_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            if http is not None:
                await http.stop()
            with contextlib.suppress(Exception):
                await self.store.close()
            close = getattr(self.model, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()
            log_event(log, logging.INFO, "stopped", exit_code=self.exit_code)
        return self.exit_code

    def _adopt_owner(self) -> None:
        """With WhatsApp, the owner is the paired account: when WAPA_OWNER_ID is left at its
        default, take the account's JID from the transport (owner commands are read there)."""
        own = getattr(self.transport, "own_jid", "")
        a = self.assistant
        if not isinstance(own, str) or not own or a is None or a.persona.owner_id == own:
            return
        if self.settings.persona.owner_id == Persona().owner_id:
            a.persona = replace(a.persona, owner_id=own)
            log_event(log, logging.INFO, "owner_from_session", owner_id=own)
        else:
            log_event(
                log,
                logging.WARNING,
                "owner_id_differs",
                configured=a.persona.owner_id,
                paired=own,
                hint="WAPA_OWNER_ID is not the paired account",
            )

    def request_stop(self, reason: str, exit_code: int = EXIT_OK) -> None:
        """Begin a graceful shutdown (idempotent; the first non-zero exit code sticks)."""
        if self.exit_code == EXIT_OK:
            self.exit_code = exit_code
        if not self._stop.is_set():
            log_event(log, logging.INFO, "stopping", reason=reason)
            self.state = "stopping"
            self._stop.set()

    def on_eof(self) -> None:
        """The console's stdin ended (`--exit-on-eof`): stop once no work is pending."""
        self._eof = True
        self._queue.put_nowait(_Item(_Wake(), ""))  # type: ignore[arg-type]

    def busy(self) -> bool:
        """True while a step runs, events wait in the queue, or effects are under way."""
        return self._stepping or not self._queue.empty() or bool(self._inflight)

    def health(self) -> tuple[bool, dict[str, Any]]:
        a = self.assistant
        now = self.clock()
        components = {
            "whatsapp": {
                "state": self.whatsapp,
                "transport": self.transport.name,
                "can_send": _safe_can_send(self.transport),
            }
            | ({"reason": self.whatsapp_reason} if self.whatsapp_reason else {}),
            "store": {
                "state": self.store_state,
                "encrypted": bool(getattr(self.store, "encrypted", False)),
            },
            "model": {"state": self.model_state},
            "runner": {
                "state": self.state,
                "uptime_s": round(time.monotonic() - self._started_at, 1),
                "paused": bool(a and a.paused),
                "chats": len(a.chats) if a else 0,
                "pending": _pending(a),
                "cooling": _cooling(a, now),
            },
        }
        stats = getattr(self.model, "stats", None)
        budget = getattr(stats, "budget_left", None)
        if budget is not None:
            components["model"]["budget_left"] = round(float(budget), 1)
        ok = (
            self.whatsapp not in _WA_RED
            and self.store_state == "ok"
            and self.model_state != "auth_rejected"
        )
        return ok, {"status": "ok" if ok else "fail", "components": components}

    def render_metrics(self) -> bytes:
        a, m = self.assistant, self.metrics
        if a is not None:
            m.pending_chats.set(_pending(a))
            m.cooling_chats.set(_cooling(a, self.clock()))
            m.known_chats.set(len(a.chats))
        ok, _ = self.health()
        m.component_ok.labels("whatsapp").set(self.whatsapp not in _WA_RED)
        m.component_ok.labels("store").set(self.store_state == "ok")
        m.component_ok.labels("model").set(self.model_state != "auth_rejected")
        m.rss.set(resident_memory_bytes())
        return m.render()

    # ------------------------------------------------------------------ transport callbacks

    async def _on_message(self, msg: Message) -> None:
        """Called by the transport for every inbound message; never raises."""
        try:
            if not isinstance(msg, Message):
                raise TypeError(f"expected a core Message, got {type(msg).__name__}")
            corr = self._new_corr()
            source = "owner" if msg.from_me else "group" if msg.is_group else "contact"
            self.metrics.messages_in.labels(source).inc()
            sent_at = msg.sent_at if isinstance(msg.sent_at, int | float) else 0.0
            age = {"age_s": round(self.clock() - sent_at, 1)} if sent_at > 0 else {}
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
            self._queue.put_nowait(_Item(msg, corr))
        except Exception as exc:
            self.metrics.bad_events.inc()
            log_event(log, logging.ERROR, "bad_inbound_event", error=f"{type(exc).__name__}: {exc}")

    def _on_lifecycle(self, kind: str, detail: str = "") -> None:
        """A WhatsApp connection change. Losing the session to another client (or to the
        phone) stops sending but not the runner: exiting would make a supervisor restart it,
        and a restarted client takes the session back, over and over."""
        try:
            self.metrics.lifecycle.labels(kind).inc()
            previous = self.whatsapp
            state = _WA_STATE.get(kind, previous)
            if previous in _WA_RED and state not in (previous, "connected", "not_paired"):
                state = previous  # lost for good: only a new connection clears it
            self.whatsapp = state
            hint = _LIFECYCLE_HINT.get(kind, "")
            if not (state in _WA_RED and state == previous):  # a red state is logged once
                level = _LIFECYCLE_LEVEL.get(kind, logging.ERROR)
                log_event(log, level, "whatsapp_" + kind, detail=detail, hint=hint)
            if state == "connected":
                self.whatsapp_reason = ""
            elif hint and state == _WA_STATE.get(kind):
                self.whatsapp_reason = hint
            if kind == "pair_needed":
                self.request_stop("not paired", EXIT_CONFIG)
        except Exception:
            log_event(log, logging.ERROR, "lifecycle_handler_failed", kind=kind, exc_info=True)

    # ------------------------------------------------------------------ the loop

    async def _load(self) -> list[Effect] | None:
        s = self.settings
        try:
            assistant = await self.store.load(s.policy, s.persona)
        except Exception as exc:
            self.store_state = "error"
            log_event(log, logging.ERROR, "store_load_failed", error=f"{type(exc).__name__}: {exc}")
            self.exit_code = EXIT_FAILED
            return None
        effects: list[Effect] = []
        if assistant is None:
            seed = s.seed if s.seed is not None else random.SystemRandom().randrange(2**31)
            assistant = Assistant(s.policy, s.persona, seed)
            log_event(log, logging.INFO, "state_new")
        else:
            effects = assistant.recover(self.clock())
            log_event(
                log,
                logging.INFO,
                "state_restored",
                chats=len(assistant.chats),
                pending=_pending(assistant),
            )
        self.assistant = assistant
        await self._load_usage()
        self._record_out(effects)
        if not await self._commit(effects, ()):
            return None
        return effects

    async def _main_loop(self) -> None:
        assert self.assistant is not None
        get: asyncio.Task[_Item] | None = None
        stop = asyncio.create_task(self._stop.wait())
        try:
            while not self._stop.is_set():
                deadline = self.assistant.next_deadline()
                if get is None:
                    get = asyncio.create_task(self._queue.get())
                waiters: set[asyncio.Future[Any]] = {get, stop}
                timer = None
                if deadline is not None:
                    delay = min(max(0.0, deadline - self.clock()), _MAX_SLEEP)
                    timer = asyncio.ensure_future(self.sleep(delay))
                    waiters.add(timer)
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                if timer is not None and not timer.done():
                    timer.cancel()
                if self._stop.is_set():
                    break
                if get.done():
                    item, get = get.result(), None
                    if not isinstance(item.event, _Wake):
                        await self._step(item)
                elif deadline is not None and self.clock() >= deadline:
                    await self._step(None)
                if self._eof and await self._idle():
                    self.request_stop("end of input")
        finally:
            stop.cancel()
            if get is not None:
                if get.done() and not get.cancelled():
                    self._queue.put_nowait(get.result())  # handled while draining
                else:
                    get.cancel()

    async def _idle(self) -> bool:
        def quiet() -> bool:
            a = self.assistant
            return (
                self._queue.empty()
                and not self._inflight
                and a is not None
                and a.next_deadline() is None
            )

        if not quiet():
            return False
        await asyncio.sleep(0.05)  # let echoes scheduled by the transport arrive
        return quiet()

    async def _step(self, item: _Item | None) -> bool:
        """One group commit: `item` (or the due timer when None), then the events already
        queued (up to `_BATCH_MAX` steps or `_BATCH_SECONDS` of core time; no waiting for
        more), then the timer if it came due. Their state is committed in ONE transaction,
        then their effects are carried out, step by step in order. Returns False when the
        store failed (then none of the group's effects is carried out)."""
        a = self.assistant
        assert a is not None
        self._stepping = True
        steps: list[tuple[list[Effect], str]] = []
        events: list[Event] = []
        try:
            began = time.perf_counter()
            self._compute(item, steps, events)
            queue = self._queue
            while (
                len(steps) < _BATCH_MAX
                and not queue.empty()
                and time.perf_counter() - began < _BATCH_SECONDS
            ):
                nxt = queue.get_nowait()
                if not isinstance(nxt.event, _Wake):
                    self._compute(nxt, steps, events)
            if (item is not None or len(steps) > 1) and not self._stop.is_set():
                deadline = a.next_deadline()
                if deadline is not None and self.clock() >= deadline:
                    self._compute(None, steps, events)
            if not steps:
                return True
            effects = steps[0][0] if len(steps) == 1 else [e for s, _ in steps for e in s]
            if not await self._commit(effects, events):
                return False
            self.commits += 1
            self.committed_steps += len(steps)
            for step_effects, corr in steps:
                token = correlation.set(corr)
                try:
                    self._execute(step_effects, corr)
                finally:
                    correlation.reset(token)
            return True
        finally:
            self._stepping = False

    def _compute(
        self, item: _Item | None, steps: list[tuple[list[Effect], str]], events: list[Event]
    ) -> None:
        """Run one event (or the timer, for None) through the core; append its effects (and
        the event) to the group. A core exception costs this one step, never the runner."""
        a = self.assistant
        assert a is not None
        now = self.clock()
        corr = item.corr if item is not None else ""
        token = correlation.set(corr)
        try:
            if item is None:
                effects = a.on_timer(now)
            else:
                self._record("in", now, item.event)
                ev = item.event
                if isinstance(ev, Message) and not ev.from_me and isinstance(ev.chat, str):
                    self._remember(self._chat_corr, ev.chat, corr)  # follows this message
                effects = a.handle(ev, now)
        except Exception as exc:  # the core never raises on bad input; a bug costs one event
            self.metrics.bad_events.inc()
            log_event(
                log, logging.ERROR, "core_step_failed", exc_info=True, error=f"{type(exc).__name__}"
            )
            return
        finally:
            correlation.reset(token)
        self._record_out(effects, now)
        steps.append((effects, corr))
        if item is not None:
            events.append(item.event)

    async def _commit(self, effects: Sequence[Effect], events: Sequence[Event]) -> bool:
        assert self.assistant is not None
        usage = self._usage_changed()
        try:
            if usage is None:
                await self.store.save_step(self.assistant, effects, events)
            else:
                await self.store.save_step(
                    self.assistant, effects, events, values={USAGE_KEY: usage}
                )
        except Exception as exc:
            # The effects of this step are NOT carried out: nothing happens without its state
            # committed. Stop; after the restart `recover()` continues from the last commit.
            self.metrics.store_errors.inc()
            self.store_state = "error"
            log_event(
                log,
                logging.ERROR,
                "store_commit_failed",
                exc_info=False,
                error=f"{type(exc).__name__}: {exc}",
                dropped=[type(e).__name__ for e in effects if not isinstance(e, Decision)],
            )
            self.request_stop("store failure", EXIT_FAILED)
            return False
        if usage is not None:
            self._usage_saved = usage
        if self.store_state != "ok":
            self.store_state = "ok"
        return True

    # ------------------------------------------------------------------ model budget

    def _meter(self) -> Any:
        meter = getattr(self.model, "meter", None)
        return meter if callable(getattr(meter, "export", None)) else None

    def _usage_changed(self) -> str | None:
        """The model's daily spend and quota block as JSON when they changed since the last
        commit (saved with the step that follows each generation), else None."""
        meter = self._meter()
        if meter is None:
            return None
        try:
            text = json.dumps(meter.export(), sort_keys=True)
        except Exception:  # accounting must never stop a commit
            return None
        return None if text == self._usage_saved else text

    async def _load_usage(self) -> None:
        """Today's model spend and any quota block, as saved before the last stop: a restart
        (or a restart loop) never hands the day's neuron budget out again."""
        meter = self._meter()
        get = getattr(self.store, "get_value", None)
        if meter is None or get is None:
            return
        try:
            text = await get(USAGE_KEY)
            if text is None:
                return
            meter.restore(json.loads(text))
            self._usage_saved = json.dumps(meter.export(), sort_keys=True)
        except Exception as exc:  # a damaged value costs the saved spend, never the start
            log_event(
                log,
                logging.WARNING,
                "model_usage_unreadable",
                error=f"{type(exc).__name__}: {exc}"[:300],
            )
            return
        state = meter.export()
        log_event(
            log,
            logging.INFO,
            "model_usage_restored",
            day=state.get("day"),
            neurons_today=round(float(state.get("spent", 0.0)), 2),
            blocked_until=state.get("blocked_until", 0.0),
        )

    # ------------------------------------------------------------------ effects

    def _execute(self, effects: Sequence[Effect], corr: str) -> None:
        status_asked = any(
            isinstance(e, Decision) and e.code == Reason.COMMAND and e.detail.endswith(": status")
            for e in effects
        )
        for e in effects:
            if isinstance(e, Decision):
                self._decision(e, corr)
                continue
            if not self._executing:
                continue
            chat = getattr(e, "chat", "")
            ecorr = self._corr_for(getattr(e, "request_id", ""), chat, corr)
            if isinstance(e, Generate):
                self._remember(self._req_corr, e.request_id, ecorr)
                self._spawn(self._generate(e), ecorr)
            elif isinstance(e, Send):
                self._remember(self._req_corr, e.request_id, ecorr)
                self._lane(chat, self._send(e), ecorr)
            elif isinstance(e, Typing):
                self._lane(chat, self._call("typing", self.transport.typing(chat, e.on)), ecorr)
            elif isinstance(e, MarkRead):
                coro = self.transport.mark_read(chat, e.message_ids, e.sender)
                self._lane(chat, self._call("mark_read", coro), ecorr)
            elif isinstance(e, Notice):
                text = e.text + (self._budget_note() if status_asked else "")
                self._lane("\x00owner", self._notice(text), corr)

    def _decision(self, d: Decision, corr: str) -> None:
        self.metrics.decisions.labels(d.code).inc()
        dcorr = self._corr_for(d.request_id, d.chat, corr)
        level = (
            logging.WARNING
            if d.code
            in (Reason.BAD_EVENT, Reason.SEND_FAILED, Reason.SEND_UNKNOWN, Reason.CLOCK_SKEW)
            else logging.INFO
        )
        log_event(
            log,
            level,
            "decision",
            corr=dcorr,
            chat=d.chat,
            code=d.code,
            detail=d.detail,
            request_id=d.request_id,
        )
        show = getattr(self.transport, "show_decision", None)
        if show is not None:
            show(d)
        if d.request_id and d.code in (
            Reason.SEND_CONFIRMED,
            Reason.SEND_FAILED,
            Reason.SEND_UNKNOWN,
            Reason.STALE,
        ):
            self._req_corr.pop(d.request_id, None)

    def _spawn(self, coro: Coroutine[Any, Any, Any], corr: str) -> asyncio.Task[Any]:
        token = correlation.set(corr)
        try:
            task = asyncio.create_task(coro)
        finally:
            correlation.reset(token)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return task

    def _lane(self, key: str, coro: Coroutine[Any, Any, None], corr: str) -> None:
        """Run `coro` after the previous transport action of the same chat."""
        previous = self._lanes.get(key)

        async def chained() -> None:
            try:
                if previous is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(previous)
            except BaseException:
                coro.close()  # cancelled before its turn: it never ran
                raise
            await coro

        task = self._spawn(chained(), corr)
        self._lanes[key] = task

        def done(t: asyncio.Task[None]) -> None:
            if self._lanes.get(key) is t:
                del self._lanes[key]

        task.add_done_callback(done)

    async def _call(self, what: str, coro: Awaitable[None]) -> None:
        try:
            await coro
        except Exception as exc:
            log_event(log, logging.WARNING, f"{what}_failed", error=f"{type(exc).__name__}: {exc}")

    async def _notice(self, text: str) -> None:
        try:
            await self.transport.notify_owner(text)
            self.metrics.notices.inc()
            log_event(log, logging.INFO, "notice_sent", chars=len(text), notice=text)
        except Exception as exc:
            log_event(log, logging.WARNING, "notice_failed", error=f"{type(exc).__name__}: {exc}")

    async def _send(self, e: Send) -> None:
        if not _safe_can_send(self.transport):
            detail = f"WhatsApp cannot send now ({self.whatsapp})"
            self.metrics.send_failures.inc()
            log_event(
                log,
                logging.WARNING,
                "send_refused",
                chat=e.chat,
                request_id=e.request_id,
                reason=self.whatsapp,
            )
            self._enqueue(SendFailed(e.request_id, detail))
            return
        try:
            message_id = await self.transport.send(e.chat, e.text, e.quote_id)
        except SendError as exc:
            self.metrics.send_failures.inc()
            log_event(
                log,
                logging.WARNING,
                "send_failed",
                chat=e.chat,
                request_id=e.request_id,
                error=str(exc)[:200],
            )
            self._enqueue(SendFailed(e.request_id, str(exc)[:200]))
        except Exception as exc:
            self.metrics.send_failures.inc()
            log_event(
                log,
                logging.ERROR,
                "send_error",
                chat=e.chat,
                request_id=e.request_id,
                error=f"{type(exc).__name__}: {exc}"[:300],
            )
            self._enqueue(SendFailed(e.request_id, type(exc).__name__))
        else:
            self.metrics.replies_sent.inc()
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
            self._enqueue(SendConfirmed(e.request_id, str(message_id or "")))

    async def _generate(self, e: Generate) -> None:
        m = self.metrics
        if self.model is None or self.model_state == "auth_rejected":
            why = (
                "no model configured"
                if self.model is None
                else "model credentials rejected earlier; fix them and restart"
            )
            m.model_failures.labels("auth" if self.model else "unavailable").inc()
            self._enqueue(
                GenerationFailed(e.request_id, "auth" if self.model else "unavailable", why)
            )
            return
        async with self._gen_slots:
            m.generations_in_flight.inc()
            m.model_requests.inc()
            started = time.monotonic()
            try:
                result = await self.model.generate(e.messages)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                kind = getattr(exc, "kind", None)
                if not isinstance(kind, str):
                    kind = "internal"
                    log_event(
                        log,
                        logging.ERROR,
                        "model_call_crashed",
                        exc_info=True,
                        request_id=e.request_id,
                    )
                m.model_failures.labels(kind).inc()
                m.model_latency.observe(time.monotonic() - started)
                if kind == "auth":
                    self.model_state = "auth_rejected"
                    log_event(
                        log,
                        logging.ERROR,
                        "model_auth_rejected",
                        request_id=e.request_id,
                        error=str(exc)[:1000],
                        hint="check CLOUDFLARE_API_TOKEN / CLOUDFLARE_ACCOUNT_ID (or OPENAI_API_KEY); "
                        "no more model calls until restart",
                    )
                else:
                    self.model_state = f"failing ({kind})"
                    log_event(
                        log,
                        logging.WARNING,
                        "model_failed",
                        request_id=e.request_id,
                        kind=kind,
                        error=str(exc)[:1000],
                    )
                self._enqueue(GenerationFailed(e.request_id, kind, str(exc)[:200]))
            else:
                attempts = int(getattr(result, "attempts", 1) or 1)
                latency = float(getattr(result, "latency_s", time.monotonic() - started))
                m.model_retries.inc(max(0, attempts - 1))
                m.model_latency.observe(max(0.0, latency))
                m.model_neurons.inc(max(0.0, float(getattr(result, "neurons", 0.0) or 0.0)))
                m.model_tokens.labels("input").inc(
                    max(0, int(getattr(result, "input_tokens", 0) or 0))
                )
                m.model_tokens.labels("output").inc(
                    max(0, int(getattr(result, "output_tokens", 0) or 0))
                )
                if self.model_state != "auth_rejected":
                    self.model_state = "ok"
                log_event(
                    log,
                    logging.INFO,
                    "generated",
                    request_id=e.request_id,
                    model=str(getattr(result, "model", "")),
                    attempts=attempts,
                    latency_s=round(latency, 3),
                    chars=len(result.text),
                    text=result.text,
                )
                self._enqueue(Generated(e.request_id, result.text))
            finally:
                m.generations_in_flight.dec()

    def _enqueue(self, event: Event) -> None:
        corr = self._req_corr.get(getattr(event, "request_id", ""), "") or correlation.get()
        self._queue.put_nowait(_Item(event, corr))

    def _budget_note(self) -> str:
        stats = getattr(self.model, "stats", None)
        left = getattr(stats, "budget_left", None)
        if isinstance(left, int | float):
            return f" Model budget left today: {left:.0f} neurons."
        if self.model_state == "auth_rejected":
            return " The model's credentials were rejected: fix them and restart."
        return ""

    # ------------------------------------------------------------------ correlation ids

    def _new_corr(self) -> str:
        self._corr_n += 1
        return f"{self._corr_prefix}-{self._corr_n}"

    @staticmethod
    def _remember(table: OrderedDict[str, str], key: str, corr: str) -> None:
        if not key or not corr:
            return
        table[key] = corr
        table.move_to_end(key)
        while len(table) > _CORR_KEPT:
            table.popitem(last=False)

    def _corr_for(self, request_id: str, chat: str, fallback: str) -> str:
        return (
            (self._req_corr.get(request_id, "") if request_id else "")
            or (self._chat_corr.get(chat, "") if chat else "")
            or fallback
        )

    # ------------------------------------------------------------------ recording

    def _record(self, direction: str, t: float, obj: Any) -> None:
        if self.recorder is None:
            return
        try:
            self.recorder.record(t, direction, obj)
        except Exception as exc:  # recording is a debugging aid: never stop the runner for it
            log_event(log, logging.WARNING, "record_failed", error=f"{type(exc).__name__}: {exc}")
            self.recorder = None

    def _record_out(self, effects: Sequence[Effect], t: float | None = None) -> None:
        if self.recorder is not None:
            now = self.clock() if t is None else t
            for e in effects:
                self._record("out", now, e)

    # ------------------------------------------------------------------ shutdown and signals

    def _on_signal(self, sig: signal.Signals) -> None:
        self._signals += 1
        if self._signals == 1:
            self.request_stop(f"signal {sig.name}")
            return
        log_event(log, logging.WARNING, "exit_now", reason=f"second signal {sig.name}")
        flush_logging()
        # Safe for the store: each step is one committed transaction in a WAL database.
        os._exit(128 + int(sig))

    async def _shutdown(self) -> None:
        self.state = "stopping"
        pending = set(self._inflight)
        if pending:
            log_event(
                log,
                logging.INFO,
                "shutdown_waiting",
                tasks=len(pending),
                timeout_s=self.settings.shutdown_timeout,
            )
            _, not_done = await asyncio.wait(pending, timeout=self.settings.shutdown_timeout)
            for task in not_done:
                task.cancel()
            if not_done:
                await asyncio.wait(not_done, timeout=1.0)
                log_event(log, logging.WARNING, "shutdown_cancelled", tasks=len(not_done))
        try:
            await asyncio.wait_for(
                self.transport.stop(), timeout=max(1.0, self.settings.shutdown_timeout)
            )
        except Exception as exc:
            log_event(
                log, logging.WARNING, "transport_stop_failed", error=f"{type(exc).__name__}: {exc}"
            )
        # Events still queued (send outcomes, echoes, late messages) are handled and committed;
        # their transport effects are not carried out any more (the transport is gone).
        self._executing = False
        if self.store_state == "ok":
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if isinstance(item.event, _Wake):
                    continue
                if not await self._step(item):
                    break
        self.state = "stopped"

    # ------------------------------------------------------------------ resource watch

    async def _monitor(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self._monitor_interval
        while True:
            before = loop.time()
            await asyncio.sleep(interval)
            lag = max(0.0, loop.time() - before - interval)
            self.metrics.loop_lag.set(lag)
            rss = resident_memory_bytes()
            self.metrics.rss.set(rss)
            self._memory_check(rss)

    def _memory_check(self, rss: int) -> None:
        limit = self.settings.memory_warn_mb * 1024 * 1024
        if limit <= 0 or self._memory_warned:
            return
        if rss > 0.8 * limit and not tracemalloc.is_tracing():
            tracemalloc.start(10)  # to name the allocation sites if it keeps growing
            log_event(log, logging.INFO, "memory_tracing_started", rss_mb=rss // 2**20)
        if rss > limit:
            self._memory_warned = True
            top = []
            if tracemalloc.is_tracing():
                stats = tracemalloc.take_snapshot().statistics("lineno")[:10]
                top = [
                    f"{s.traceback[0].filename}:{s.traceback[0].lineno} {s.size // 1024} KiB"
                    for s in stats
                ]
                tracemalloc.stop()
            log_event(
                log,
                logging.WARNING,
                "memory_high",
                rss_mb=rss // 2**20,
                limit_mb=self.settings.memory_warn_mb,
                top_allocations=top,
            )


class _Wake:
    """A queue item that only wakes the loop (end of input)."""


def _safe_can_send(transport: Transport) -> bool:
    try:
        return bool(transport.can_send())
    except Exception:
        return False


def _pending(a: Assistant | None) -> int:
    return sum(c.phase != "idle" for c in a.chats.values()) if a else 0


def _cooling(a: Assistant | None, now: float) -> int:
    return sum(c.cooldown_until > now for c in a.chats.values()) if a else 0


def _open_recorder(settings: Settings, seed: int) -> RecorderLike | None:
    try:
        from wapa.adapters.recording import Recorder  # type: ignore[import-not-found]
    except ImportError:
        log_event(
            log, logging.WARNING, "record_unavailable", hint="adapters/recording.py is missing"
        )
        return None
    return Recorder(
        settings.record,
        settings.policy,
        settings.persona,
        seed,  # type: ignore[no-any-return]
        redact=settings.record_redact,
    )
