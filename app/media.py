"""Voice notes and images in the runner: download, understand, and feed the text back.

    transport (after the message went to the core, with its placeholder)
      -> MediaFetch -> AsyncWorld.media_arrived -> MediaWorker.accept (settings, bounds)
      -> a background task: download (neonize) -> MediaClient.understand -> media_event
      -> the runner's queue, as a normal input (committed and recorded like any event)

The rules:

1. **Never on the message path.** The transport only schedules; the message reaches the core
   at once. What the task does, the runner does not wait for.
2. **Bounded.** At most `concurrent` downloads-and-understandings at a time, `pending` in all
   (more: dropped with a log line, the placeholder stays); a file WhatsApp says is over the
   media bounds (`WAPA_MAX_AUDIO_BYTES`, `WAPA_MAX_AUDIO_SECONDS`, `WAPA_MAX_IMAGE_BYTES`) is
   never downloaded; every download has `download_timeout`.
3. **Never fatal.** A failed download or a failed understanding keeps the placeholder with a
   log line (`media_download_failed`, `media_done` with the reason); nothing here raises into
   the runner. The tasks are the world's effects under way: shutdown gives them the
   shutdown timeout, then cancels them.
4. **Private.** Log lines carry the chat, the message id, the kind, the reason, the model and
   the neurons, and the text's length: never the text (it goes to the core, which stores it
   encrypted at rest with the rest of the message text).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from wapa.adapters.llm.config import MediaSettings
from wapa.adapters.llm.media import MediaJob, media_event
from wapa.adapters.llm.media_client import Understand
from wapa.adapters.logs import log_event
from wapa.adapters.whatsapp.media import MediaFetch, MediaSource, OnMedia
from wapa.core import Event

log = logging.getLogger("wapa.media")

Enqueue = Callable[[Event, str], None]
CONCURRENT = 2
PENDING = 32
DOWNLOAD_TIMEOUT = 60.0


class MediaWorker:
    def __init__(
        self,
        client: Understand,
        settings: MediaSettings,
        enqueue: Enqueue | None = None,  # the runner's queue; the Runner sets it
        *,
        concurrent: int = CONCURRENT,
        pending: int = PENDING,
        download_timeout: float = DOWNLOAD_TIMEOUT,
    ) -> None:
        self.client, self.settings, self.enqueue = client, settings, enqueue
        self.pending_max, self.download_timeout = max(1, pending), download_timeout
        self._slots = asyncio.Semaphore(max(1, concurrent))
        self.tasks: set[asyncio.Task[Any]] = set()
        self.done: dict[str, int] = {}  # outcomes by reason (and "download_failed", "dropped")

    @property
    def enabled(self) -> bool:
        return self.settings.transcribe or self.settings.describe_images

    def refusal(self, fetch: MediaFetch) -> str:
        """Why `fetch` is not downloaded ("" when it is): off, too big or long, busy."""
        s = self.settings
        if fetch.kind == "voice":
            if not s.transcribe:
                return "off"
            if fetch.size > s.max_audio_bytes:
                return "too_big"
            if fetch.seconds > s.max_audio_seconds:
                return "too_long"
        elif fetch.kind == "image":
            if not s.describe_images:
                return "off"
            if fetch.size > s.max_image_bytes:
                return "too_big"
        else:
            return "off"
        if len(self.tasks) >= self.pending_max:
            return "busy"
        return ""

    def accept(self, fetch: MediaFetch, corr: str) -> Coroutine[Any, Any, None] | None:
        """The work for `fetch` (the caller spawns it and `track`s the task), or None."""
        why = self.refusal(fetch)
        if why:
            if why != "off":
                self._count(why)
                self._log(logging.INFO, "media_skipped", fetch, reason=why, size=fetch.size)
            return None
        return self._run(fetch, corr)

    def track(self, task: asyncio.Task[Any]) -> None:
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, fetch: MediaFetch, corr: str) -> None:
        try:
            async with self._slots:
                try:
                    async with asyncio.timeout(self.download_timeout):
                        data = await fetch.download()
                except Exception as exc:  # noqa: BLE001 - the placeholder stays
                    self._count("download_failed")
                    error = "timed out" if isinstance(exc, TimeoutError) else str(exc)[:300]
                    self._log(logging.WARNING, "media_download_failed", fetch, error=error)
                    return
                job = MediaJob(
                    fetch.chat,
                    fetch.message_id,
                    fetch.kind,
                    data,
                    seconds=fetch.seconds,
                    mime=fetch.mime,
                )
                outcome = await self.client.understand(job)
            self._count(outcome.reason)
            level = logging.INFO if outcome.reason == "ok" else logging.WARNING
            self._log(
                level,
                "media_done",
                fetch,
                reason=outcome.reason,
                model=outcome.model,
                neurons=round(outcome.neurons, 2),
                attempts=outcome.attempts,
                bytes=len(data),
                chars=len(outcome.text),
                detail=outcome.detail[:200] or None,
            )
            event = media_event(outcome)
            if event is not None and self.enqueue is not None:
                self.enqueue(event, corr)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: logged, the runner goes on
            self._count("internal")
            self._log(logging.ERROR, "media_failed", fetch, error=type(exc).__name__, exc_info=True)

    def _count(self, reason: str) -> None:
        self.done[reason] = self.done.get(reason, 0) + 1

    def _log(self, level: int, name: str, fetch: MediaFetch, **fields: Any) -> None:
        log_event(
            log, level, name, chat=fetch.chat, id=fetch.message_id, media=fetch.kind, **fields
        )


def attach_media(transport: object, media: MediaWorker | None, sink: OnMedia) -> None:
    """Give a transport that offers downloads (WhatsApp) the sink, when media is on."""
    if media is not None and media.enabled and isinstance(transport, MediaSource):
        transport.set_media_sink(sink)
