"""The production runner: a thin asyncio shell around the shared driver (core/driver.py).

The driver holds the order of everything (its rules are stated there, once); this shell only
supplies time, a queue and a commit. One inbound queue feeds it; one timer waits for
`driver.next_deadline()`. When the loop wakes:

    driver.feed(event, now, corr)        the event that woke it, then the events already
      ...                                queued (group commit: up to 256 steps or 5 ms, never
    driver.fire_due(now)                 waiting for more), then the timer if it came due
    batch = driver.take_batch()
    await store.save(batch, values=...)  ONE transaction (and the model's daily usage)...
    driver.committed(batch)              ...before the effects it allows go to the AsyncWorld

A failed commit is `driver.commit_failed(batch)`: none of its effects happens, health turns
red, the runner stops with exit status 1 (nothing happens without its state committed).
Under load a group is one fsync for many messages; when traffic is light it is one step.

Effects land in `app/world.py` (per-chat transport lanes, the model service); their outcomes
come back through the same queue as events. Health, metrics and the memory watch are in
`app/health.py`, correlation ids in `adapters/correlation.py`, what WhatsApp's lifecycle means
in `adapters/whatsapp/link.py` (`LinkHealth`), the model's policy and metering in
`adapters/llm/service.py`.

Shutdown (first SIGTERM/SIGINT): no more timers fire (so no new generation or send starts),
sends and generations under way get `shutdown_timeout`, the transport stops, the events still
queued are handled and committed (their transport effects are no longer carried out), the
store closes; exit status 0. A second signal exits at once (128 + signal number): every group
is one committed SQLite transaction (WAL), so an abrupt exit loses at most the group being
written, whose effects had not started; `Driver.recover` handles the rest after the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wapa.adapters.llm.base import LLMClient
from wapa.adapters.llm.service import ModelService
from wapa.adapters.logs import flush_logging, log_event
from wapa.adapters.metrics import Metrics
from wapa.adapters.store.protocol import StateStore
from wapa.adapters.transport import Transport
from wapa.adapters.whatsapp.link import LinkHealth
from wapa.config import Settings
from wapa.core import Assistant, Decision, Event, Message
from wapa.core.driver import Batch, Driver
from wapa.health import Health, Monitor, StartError, pending
from wapa.media import MediaWorker, attach_media
from wapa.world import AsyncWorld, adopt_owner, open_recorder

if TYPE_CHECKING:
    from wapa.adapters.recording import Recorder

__all__ = ["EXIT_CONFIG", "EXIT_FAILED", "EXIT_OK", "USAGE_KEY", "Runner"]

log = logging.getLogger("wapa.runner")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
_MAX_SLEEP = 30.0  # re-read the clock at least this often (wall-clock jumps, NTP steps)
USAGE_KEY = "model_usage"  # store value: the model's daily neuron spend and quota block
_BATCH_MAX = 256  # group commit: at most this many steps per store transaction...
_BATCH_SECONDS = 0.005  # ...gathered from what is already queued within this much core time
EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass(frozen=True, slots=True)
class _Item:
    event: Event | None  # None: only wakes the loop (end of input)
    corr: str


class Runner:
    def __init__(
        self,
        settings: Settings,
        transport: Transport,
        store: StateStore,
        model: ModelService | LLMClient | None,
        *,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        metrics: Metrics | None = None,
        recorder: Recorder | None = None,
        http: bool = True,
        install_signals: bool = True,
        monitor_interval: float = 5.0,
        housekeeping: Callable[[Runner], Coroutine[Any, Any, None]] | None = None,
        on_http_port: Callable[[int], None] | None = None,
        media: MediaWorker | None = None,
    ) -> None:
        self.settings, self.transport, self.store = settings, transport, store
        self.clock, self.sleep = clock, sleep
        # one registry: the model service's, when it comes with one and none is given
        self.metrics = metrics or (model.metrics if isinstance(model, ModelService) else Metrics())
        if not isinstance(model, ModelService):
            n = settings.max_concurrent_generations
            model = ModelService(model, metrics=self.metrics, max_concurrent=n)
        self.model = model
        self.link = LinkHealth()
        self.status = Health(transport, store, model, self.metrics, clock, self.link)
        self.monitor = Monitor(self.metrics, settings.memory_warn_mb)
        self.world = AsyncWorld(transport, model, self._enqueue, self.metrics, self.link, recorder)
        if media is not None:  # voice notes and images: their text comes back as events
            media.enqueue = self._enqueue
        self.world.media = media
        self.driver: Driver | None = None
        self.exit_code = EXIT_OK
        self.start_error = ""
        self.http_port: int | None = None
        self.commits = 0  # group commits (store transactions) made by steps
        self.committed_steps = 0  # core steps those commits held
        self._http_enabled, self._install_signals = http, install_signals
        self._monitor_interval = monitor_interval
        self._housekeeping, self._on_http_port = housekeeping, on_http_port
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._stop = asyncio.Event()
        self._signals, self._eof, self._stepping = 0, False, False
        self._recovered: Batch | None = None

    # ------------------------------------------------------------------ public

    @property
    def assistant(self) -> Assistant | None:
        return self.driver.assistant if self.driver is not None else None

    @property
    def state(self) -> str:
        return self.status.runner

    def health(self) -> tuple[bool, dict[str, Any]]:
        return self.status.health()

    def render_metrics(self) -> bytes:
        return self.status.render_metrics()

    async def run(self) -> int:
        """Run until stopped; returns the exit status."""
        loop = asyncio.get_running_loop()
        http = None
        background: list[asyncio.Task[Any]] = []
        try:  # every start-up failure ends here too: the store closes, the process can exit
            if self._install_signals:
                for sig in _SIGNALS:
                    loop.add_signal_handler(sig, self._on_signal, sig)
            if self._http_enabled:
                try:
                    http = await self.status.serve(self.settings.http_host, self.settings.http_port)
                except StartError as exc:
                    self._start_failed("http_start_failed", str(exc), EXIT_FAILED)
                    return self.exit_code
                self.http_port = http.port
                if self._on_http_port is not None:
                    self._on_http_port(self.http_port)
            if not await self._load() or not await self._start_transport():
                return self.exit_code
            self.status.runner = "running"
            chats = len(self.assistant.chats) if self.assistant else 0
            log_event(log, logging.INFO, "started", transport=self.transport.name, chats=chats)
            if self.driver is not None and self._recovered is not None:
                self.driver.committed(self._recovered)  # what recovery found goes on now
                self._recovered = None
            if self._monitor_interval > 0:
                background.append(asyncio.create_task(self.monitor.run(self._monitor_interval)))
            if self._housekeeping is not None:
                background.append(asyncio.create_task(self._housekeeping(self)))
            if self.settings.calendar_ics:  # busy times, loaded in the background (app/calendar.py)
                from wapa.calendar import calendar_task

                background.append(calendar_task(self))
            await self._main_loop()
            await self._shutdown()
        finally:
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            for sig in _SIGNALS if self._install_signals else ():
                loop.remove_signal_handler(sig)
            if http is not None:
                await http.stop()
            with contextlib.suppress(Exception):
                await self.store.close()
            with contextlib.suppress(Exception):
                await self.model.aclose()
            log_event(log, logging.INFO, "stopped", exit_code=self.exit_code)
        return self.exit_code

    def request_stop(self, reason: str, exit_code: int = EXIT_OK) -> None:
        """Begin a graceful shutdown (idempotent; the first non-zero exit code sticks)."""
        if self.exit_code == EXIT_OK:
            self.exit_code = exit_code
        if not self._stop.is_set():
            log_event(log, logging.INFO, "stopping", reason=reason)
            self.status.runner = "stopping"
            self._stop.set()

    def on_eof(self) -> None:
        """The console's stdin ended (`--exit-on-eof`): stop once no work is pending."""
        self._eof = True
        self._queue.put_nowait(_Item(None, ""))

    def busy(self) -> bool:
        """True while a step runs, events wait in the queue, or effects are under way."""
        return self._stepping or not self._queue.empty() or self.world.busy()

    # ------------------------------------------------------------------ start-up

    async def _load(self) -> bool:
        """The stored assistant (or a new one) and what recovery finds under way, committed;
        its effects wait in `_recovered` for the transport. False: stop."""
        s = self.settings
        try:
            assistant = await self.store.load(s.policy, s.persona)
        except Exception as exc:
            self.status.store_state = "error"
            return self._start_failed("store_load_failed", str(exc)[:500], EXIT_FAILED, exc)
        restored = assistant is not None
        if assistant is None:
            seed = s.seed if s.seed is not None else random.SystemRandom().randrange(2**31)
            assistant = Assistant(s.policy, s.persona, seed)
            log_event(log, logging.INFO, "state_new")
        self.driver = driver = Driver(assistant, self.world)
        self.status.assistant = assistant
        try:  # today's model spend and quota block: a restart never hands them out again
            self.model.restore_usage(await self.store.get_value(USAGE_KEY))
        except Exception as exc:
            log_event(log, logging.WARNING, "model_usage_unreadable", error=str(exc)[:300])
        if s.record and self.world.recorder is None:
            try:  # asked for and unusable: refused at start, never silently missing
                self.world.recorder = open_recorder(s, assistant.seed, self.clock())
            except StartError as exc:
                return self._start_failed("record_failed", str(exc), EXIT_CONFIG)
        if not self.store.encrypted:
            hint = "set WAPA_DB_KEY to encrypt message text and names at rest"
            log_event(log, logging.WARNING, "store_not_encrypted", hint=hint)
        if restored:
            driver.recover(self.clock())
            n = len(assistant.chats)
            log_event(log, logging.INFO, "state_restored", chats=n, pending=pending(assistant))
        return await self._commit(dispatch=False)

    async def _start_transport(self) -> bool:
        attach_media(self.transport, self.world.media, self.world.media_arrived)
        try:
            await self.transport.start(self._on_message, self._on_lifecycle)
        except Exception as exc:
            error = str(exc) or type(exc).__name__
            return self._start_failed("transport_start_failed", error, EXIT_FAILED, exc)
        adopt_owner(self.transport, self.assistant, self.settings.persona)
        return True

    def _start_failed(
        self, event: str, error: str, code: int, exc: BaseException | None = None
    ) -> bool:
        """Log a start-up failure; `start_error` is the line `wapa run` prints. False."""
        self.start_error = error
        detail = f"{type(exc).__name__}: {exc}" if exc is not None else error
        log_event(log, logging.ERROR, event, transport=self.transport.name, error=detail)
        if self.exit_code == EXIT_OK:
            self.exit_code = code
        return False

    # ------------------------------------------------------------------ transport callbacks

    async def _on_message(self, msg: Message) -> None:
        """Called by the transport for every inbound message; never raises."""
        try:
            corr = self.world.arrived(msg, self.clock())
            self._queue.put_nowait(_Item(msg, corr))
        except Exception as exc:
            self.metrics.bad_events.inc()
            log_event(log, logging.ERROR, "bad_inbound_event", error=f"{type(exc).__name__}: {exc}")

    def _on_lifecycle(self, kind: str, detail: str = "") -> None:
        """A WhatsApp connection change (see `Health.lifecycle`); only `pair_needed` stops."""
        self.status.lifecycle(kind, detail)
        if kind == "pair_needed":
            self.request_stop("not paired", EXIT_CONFIG)

    def _enqueue(self, event: Event, corr: str) -> None:
        self._queue.put_nowait(_Item(event, corr))

    # ------------------------------------------------------------------ the loop

    async def _main_loop(self) -> None:
        assert self.driver is not None
        get: asyncio.Task[_Item] | None = None
        stop = asyncio.create_task(self._stop.wait())
        try:
            while not self._stop.is_set():
                deadline = self.driver.next_deadline()
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
                    if item.event is not None:
                        await self._group(item)
                elif deadline is not None and self.clock() >= deadline:
                    await self._group(None)
                if self._eof and await self._idle():
                    self.request_stop("end of input")
                elif self._eof:  # look again when the effects under way end, however they end
                    self.world.when_done(lambda: self._queue.put_nowait(_Item(None, "")))
        finally:
            stop.cancel()
            if get is not None:
                if get.done() and not get.cancelled():
                    self._queue.put_nowait(get.result())  # handled while draining
                else:
                    get.cancel()

    async def _idle(self) -> bool:
        def quiet() -> bool:
            d = self.driver
            return not self.busy() and d is not None and d.next_deadline() is None

        if not quiet():
            return False
        await asyncio.sleep(0.05)  # let echoes scheduled by the transport arrive
        return quiet()

    async def _group(self, first: _Item | None) -> bool:
        """One group commit: `first` (or the due timer when None), the events already queued
        (up to `_BATCH_MAX` steps or `_BATCH_SECONDS`; no waiting for more), then the timer if
        it came due (not while stopping). False when the store failed."""
        d = self.driver
        assert d is not None
        self._stepping = True
        try:
            began = time.perf_counter()
            if first is None:
                d.fire_due(self.clock())
            elif first.event is not None:
                d.feed(first.event, self.clock(), first.corr)
            queue = self._queue
            while (
                d.pending() < _BATCH_MAX
                and not queue.empty()
                and time.perf_counter() - began < _BATCH_SECONDS
            ):
                item = queue.get_nowait()
                if item.event is not None:
                    d.feed(item.event, self.clock(), item.corr)
            if not self._stop.is_set():
                d.fire_due(self.clock())
            return await self._commit()
        finally:
            self._stepping = False

    async def _commit(self, *, dispatch: bool = True) -> bool:
        """Store the driver's batch in one transaction (with the model's daily usage when it
        changed), then hand its effects to the world; at start-up (`dispatch` False) they wait
        in `_recovered` for the transport. False: the store failed, and the runner stops."""
        d = self.driver
        assert d is not None
        batch = d.take_batch()
        if batch is None:
            return True
        usage = self.model.usage_json()
        try:
            await self.store.save(batch, values=None if usage is None else {USAGE_KEY: usage})
        except Exception as exc:  # nothing happens without its state committed
            d.commit_failed(batch)
            self.metrics.store_errors.inc()
            self.status.store_state = "error"
            dropped = [type(e).__name__ for e in batch.effects() if not isinstance(e, Decision)]
            error = f"{type(exc).__name__}: {exc}"
            log_event(log, logging.ERROR, "store_commit_failed", error=error, dropped=dropped)
            self.request_stop("store failure", EXIT_FAILED)
            return False
        if usage is not None:
            self.model.mark_saved(usage)
        self.status.store_state = "ok"
        self.commits += 1
        self.committed_steps += len(batch.steps)
        if dispatch:
            d.committed(batch)
        else:
            self._recovered = batch
        return True

    # ------------------------------------------------------------------ shutdown and signals

    def _on_signal(self, sig: signal.Signals) -> None:
        self._signals += 1
        if self._signals == 1:
            self.request_stop(f"signal {sig.name}")
            return
        log_event(log, logging.WARNING, "exit_now", reason=f"second signal {sig.name}")
        flush_logging()
        # Safe for the store: each group is one committed transaction in a WAL database.
        os._exit(128 + int(sig))

    async def _shutdown(self) -> None:
        self.status.runner = "stopping"
        timeout = self.settings.shutdown_timeout
        await self.world.finish(timeout)  # media under way included
        try:
            await asyncio.wait_for(self.transport.stop(), timeout=max(1.0, timeout))
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log_event(log, logging.WARNING, "transport_stop_failed", error=error)
        # Events still queued (send outcomes, late messages) are handled and committed; their
        # transport effects are no longer carried out (the transport is gone).
        self.world.executing = False
        while self.status.store_state == "ok" and not self._queue.empty():
            item = self._queue.get_nowait()
            if item.event is not None and not await self._group(item):
                break
        self.status.runner = "stopped"
