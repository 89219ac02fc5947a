"""The async driver of `media.MediaPolicy`: one voice note or image, understood over HTTP.

    client = MediaClient(settings, cloudflare, meter=chain.meter)   # the replies' meter
    outcome = await client.understand(job)     # never raises (a CancelledError excepted)
    event = media_event(outcome)               # MediaText for the core, or None

`understand` is the small interface a transport calls after downloading a voice note or an
image (`Understand`); the runner feeds the event to the driver like any other.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import httpx
from wapa.adapters.llm.base import transport_timeout
from wapa.adapters.llm.config import CloudflareSettings
from wapa.adapters.llm.errors import BadResponseError, ModelError, UnreachableError
from wapa.adapters.llm.media import (
    MediaDone,
    MediaJob,
    MediaOutcome,
    MediaPolicy,
    MediaSettings,
    outcome_kind,
    parse_media,
    request,
)
from wapa.adapters.llm.policy import Call
from wapa.adapters.llm.usage import NeuronMeter

log = logging.getLogger("wapa.media")


class Understand(Protocol):
    """What a transport needs: a downloaded voice note or image in, an outcome out."""

    async def understand(self, job: MediaJob) -> MediaOutcome: ...


class MediaClient:
    def __init__(
        self,
        settings: MediaSettings,
        cloudflare: CloudflareSettings,
        *,
        meter: NeuronMeter | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        seed: int | None = None,
    ) -> None:
        self.settings = settings
        self.cf = cloudflare
        self.policy = MediaPolicy(settings, meter=meter, seed=seed)
        self.clock = clock or (lambda: time.time())
        self.sleep = sleep or asyncio.sleep
        self.http = httpx.AsyncClient(
            transport=transport, headers={"User-Agent": "wapa"}, follow_redirects=False
        )

    def url(self, model: str) -> str:
        if self.cf.gateway_url:
            return f"{self.cf.gateway_url}/{model}"
        return f"{self.cf.api_base}/accounts/{self.cf.account_id}/ai/run/{model}"

    async def understand(self, job: MediaJob) -> MediaOutcome:
        run = self.policy.begin(job, self.clock())
        step = run.step
        try:
            while True:
                if isinstance(step, Call):
                    model = run.models[step.provider]
                    try:
                        text, seconds = await self.send(model, job, step.timeout)
                    except ModelError as exc:
                        step = run.on_error(exc, self.clock())
                    else:
                        step = run.on_reply(text, seconds, self.clock())
                elif isinstance(step, MediaDone):
                    return step.outcome
                else:
                    await self.sleep(step.seconds)
                    step = run.resume(self.clock())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: the placeholder stays, the runner goes on
            log.error("media understanding crashed: %s", type(exc).__name__, exc_info=True)
            return MediaOutcome(
                job.chat, job.message_id, outcome_kind(job), "", "internal", detail=repr(exc)[:200]
            )
        finally:
            run.close()

    async def send(self, model: str, job: MediaJob, timeout: float) -> tuple[str, float | None]:
        """One request; (text, reported seconds) or a ModelError."""
        body, raw = request(model, job, self.settings)
        headers = {"Authorization": f"Bearer {self.cf.api_token}", "Accept": "application/json"}
        if raw is not None:
            headers["Content-Type"] = job.mime or "application/octet-stream"
        try:
            async with asyncio.timeout(timeout):
                response = await self.http.post(
                    self.url(model), headers=headers, json=body, content=raw, timeout=timeout
                )
                data = await response.aread()
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise transport_timeout(
                timeout, provider="cloudflare", model=model, cause=type(exc).__name__
            ) from None
        except httpx.TransportError as exc:
            raise UnreachableError(
                f"{type(exc).__name__}: {exc}".split("\n")[0], provider="cloudflare", model=model
            ) from None
        except httpx.HTTPError as exc:
            raise BadResponseError(type(exc).__name__, provider="cloudflare", model=model) from None
        try:
            decoded: Any = json.loads(data) if data else None
        except ValueError:
            decoded = data.decode("utf-8", "replace")
        return parse_media(
            response.status_code,
            decoded,
            response.headers,
            model=model,
            kind=outcome_kind(job),
        )

    async def aclose(self) -> None:
        await self.http.aclose()
