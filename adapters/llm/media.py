"""Voice notes and images understood: Workers AI speech-to-text and image description.

A voice note (WhatsApp `audioMessage`, OGG/Opus) becomes a transcript, an image
(`imageMessage`; stickers never) a one-sentence description; the core gets either as a
`MediaText` event a few seconds after the message itself (core/machine.py, rule 6) and the
context reads "[voice message] <transcript>" or "[photo: <description>] <caption>".

    job = MediaJob(chat, message_id, "voice", data, seconds=7)      # from the transport
    run = MediaPolicy(settings, meter=meter, seed=None).begin(job, now)
    step = run.step                                                 # sans-IO, like policy.py
    ... Call -> one request (MediaClient.send), Wait -> sleep, MediaDone -> the outcome
    event = media_event(step.outcome)                               # MediaText | None

The rules:

1. **Off by default.** `WAPA_TRANSCRIBE=1` and `WAPA_DESCRIBE_IMAGES=1` turn them on.
2. **Bounded before any request.** Over `WAPA_MAX_AUDIO_SECONDS` (WhatsApp's own `seconds`,
   else the Ogg stream's last granule position), `WAPA_MAX_AUDIO_BYTES` or
   `WAPA_MAX_IMAGE_BYTES`, or a file that is not Ogg audio / a JPEG, PNG, WebP or GIF image:
   no request, the placeholder stays, the outcome's `reason` says why (a trace, never a crash).
3. **Models in order.** Speech: `@cf/openai/whisper-large-v3-turbo` (JSON, base64 `audio`,
   `language` from the persona's first language), then `@cf/openai/whisper` (raw bytes).
   Images: `@cf/llava-hf/llava-1.5-7b-hf` (`image` as bytes, `prompt`, `max_tokens`). A
   retryable error is retried once after the chat policy's backoff; every model within
   `WAPA_MEDIA_TIMEOUT`; after an account-wide error (auth, quota, budget, blocked, routing)
   the next model is not tried.
4. **Metered on the same neuron budget** as the replies (`NeuronMeter.reserve_cost`): the
   worst case is held before the request (the audio's length at the model's per-minute price,
   the per-image estimate), the real cost recorded after (the `duration` Whisper reports).
   When the budget or the daily allocation is spent, media is not understood (the placeholder
   stays) and replies go on.
5. **Private.** Nothing here logs a transcript or a description; the text goes to the core,
   which stores it with the rest of the message text (encrypted at rest with it).
"""

from __future__ import annotations

import base64
import logging
import math
import random
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wapa.adapters.llm.base import bad_response, header
from wapa.adapters.llm.cloudflare import run_result
from wapa.adapters.llm.config import MediaSettings, language_hint
from wapa.adapters.llm.errors import ModelError, ModelTimeoutError
from wapa.adapters.llm.policy import ACCOUNT_WIDE, Call, Wait, backoff
from wapa.adapters.llm.usage import NeuronMeter
from wapa.core.events import MediaText

log = logging.getLogger("wapa.media")
log.addHandler(logging.NullHandler())

TRANSCRIBE_MODELS = MediaSettings().transcribe_models
DESCRIBE_MODEL = MediaSettings().describe_model
VISION_MODEL = "@cf/meta/llama-3.2-11b-vision-instruct"
# developers.cloudflare.com/workers-ai/platform/pricing/ (cloudflare-docs, pricing.mdx)
NEURONS_PER_AUDIO_MINUTE: dict[str, float] = {
    "@cf/openai/whisper-large-v3-turbo": 46.63,
    "@cf/openai/whisper": 41.14,
}
# Images: llava-1.5-7b-hf is a beta model with no price on the pricing page; it is counted at
# what Llama 3.2 11B Vision would cost for one image (about 1,600 input tokens at 4410 neurons
# per million, 60 output tokens at 61493: about 11 neurons), so the budget errs early.
NEURONS_PER_IMAGE: dict[str, float] = {DESCRIBE_MODEL: 11.0, VISION_MODEL: 11.0}
UNKNOWN_PER_MINUTE = 50.0
UNKNOWN_PER_IMAGE = 20.0
OPUS_BYTES_PER_SECOND = 2_000  # WhatsApp voice notes: Opus at about 16 kbit/s
DESCRIBE_PROMPT = (
    "Describe this image in one short sentence for someone who cannot see it. "
    "If it shows text that matters (a date, an amount, a name), quote it."
)
DESCRIBE_MAX_TOKENS = 80
AUDIO_KINDS = ("voice", "audio")
IMAGE_KINDS = ("image",)  # stickers are never described


@dataclass(frozen=True)
class MediaJob:
    chat: str
    message_id: str
    kind: str  # "voice", "audio" or "image"
    data: bytes = field(repr=False)
    seconds: float = 0.0  # WhatsApp's own duration of a voice note; 0 = unknown
    mime: str = ""


@dataclass(frozen=True)
class MediaOutcome:
    chat: str
    message_id: str
    kind: str  # "transcript" or "description"
    text: str = field(default="", repr=False)  # "" when not understood
    reason: str = "ok"  # ok | off | too_long | too_big | undecodable | empty | <error kind>
    model: str = ""
    neurons: float = 0.0
    attempts: int = 0
    detail: str = ""


@dataclass(frozen=True)
class MediaDone:
    outcome: MediaOutcome


MediaStep = Call | Wait | MediaDone


# ---------------------------------------------------------------------- pure helpers


def audio_seconds(data: bytes) -> float | None:
    """The length of an Ogg/Opus stream from its last page's granule position (48 kHz), or
    None when `data` is not an Ogg stream."""
    if not data.startswith(b"OggS"):
        return None
    at = data.rfind(b"OggS")
    if at < 0 or len(data) < at + 14:
        return None
    (granule,) = struct.unpack_from("<q", data, at + 6)
    return max(0.0, granule / 48_000) if granule >= 0 else None


def image_format(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


def outcome_kind(job: MediaJob) -> str:
    return "description" if job.kind in IMAGE_KINDS else "transcript"


def refusal(job: MediaJob, settings: MediaSettings) -> tuple[str, str] | None:
    """(reason, detail) when `job` must not be sent at all (rule 1 and 2), else None."""
    if job.kind in AUDIO_KINDS:
        if not settings.transcribe:
            return "off", "WAPA_TRANSCRIBE is off"
        if len(job.data) > settings.max_audio_bytes:
            return "too_big", f"{len(job.data)} bytes > WAPA_MAX_AUDIO_BYTES"
        length = audio_seconds(job.data)
        if length is None:
            return "undecodable", "not an Ogg audio stream"
        seconds = max(job.seconds, length)
        if seconds > settings.max_audio_seconds:
            return "too_long", f"{seconds:.0f}s > WAPA_MAX_AUDIO_SECONDS"
        return None
    if job.kind in IMAGE_KINDS:
        if not settings.describe_images:
            return "off", "WAPA_DESCRIBE_IMAGES is off"
        if len(job.data) > settings.max_image_bytes:
            return "too_big", f"{len(job.data)} bytes > WAPA_MAX_IMAGE_BYTES"
        if image_format(job.data) is None:
            return "undecodable", "not a JPEG, PNG, WebP or GIF image"
        return None
    return "off", f"{job.kind or 'this'} media is never understood"


def worst_cost(model: str, job: MediaJob) -> float:
    """Neurons to hold before the request (rule 4)."""
    if job.kind in IMAGE_KINDS:
        return NEURONS_PER_IMAGE.get(model, UNKNOWN_PER_IMAGE)
    seconds = max(job.seconds, audio_seconds(job.data) or 0.0)
    seconds = max(seconds, len(job.data) / OPUS_BYTES_PER_SECOND)
    return NEURONS_PER_AUDIO_MINUTE.get(model, UNKNOWN_PER_MINUTE) * max(1.0, seconds) / 60.0


def real_cost(model: str, job: MediaJob, reported_seconds: float | None) -> float:
    if job.kind in IMAGE_KINDS or reported_seconds is None:
        return worst_cost(model, job)
    rate = NEURONS_PER_AUDIO_MINUTE.get(model, UNKNOWN_PER_MINUTE)
    return rate * reported_seconds / 60.0


def request(
    model: str, job: MediaJob, settings: MediaSettings
) -> tuple[dict[str, Any] | None, bytes | None]:
    """(JSON body, raw body): one of them, in the shape the model's input schema asks for
    (cloudflare-docs, src/content/workers-ai-models/*.json)."""
    if job.kind in IMAGE_KINDS:
        body: dict[str, Any] = {
            "image": list(job.data),
            "prompt": DESCRIBE_PROMPT,
            "max_tokens": DESCRIBE_MAX_TOKENS,
        }
        return body, None
    if model.endswith("whisper-large-v3-turbo"):
        body = {"audio": base64.b64encode(job.data).decode("ascii"), "task": "transcribe"}
        if settings.language:
            body["language"] = settings.language
        return body, None
    return None, job.data  # @cf/openai/whisper: the audio file's bytes as the body


def parse_media(
    status: int, body: Any, headers: Mapping[str, str], *, model: str, kind: str
) -> tuple[str, float | None]:
    """(text, seconds of audio Whisper reports or None) from an /ai/run answer, or the
    ModelError it means. Pure (the simulator parses its fake answers with it)."""
    provider = "cloudflare"
    result = run_result(status, body, headers, model=model, provider=provider)
    key = "description" if kind == "description" else "text"
    text = result.get(key, result.get("response"))
    if not isinstance(text, str):
        raise bad_response(f"the answer has no {key}", status, provider=provider, model=model)
    info = result.get("transcription_info")
    seconds = info.get("duration") if isinstance(info, dict) else None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return " ".join(text.split()), None
    ok = math.isfinite(seconds) and seconds >= 0
    return " ".join(text.split()), float(seconds) if ok else None


def media_event(outcome: MediaOutcome) -> MediaText | None:
    """The core's event for an outcome with text; None when the placeholder stays."""
    if not outcome.text:
        return None
    return MediaText(outcome.chat, outcome.message_id, outcome.text, outcome.kind)


# ---------------------------------------------------------------------- the policy


class MediaPolicy:
    """The decisions for every voice note or image (sans-IO: `now` is passed in, the backoff
    jitter is seeded). Shares the reply chain's `NeuronMeter`."""

    def __init__(
        self, settings: MediaSettings, *, meter: NeuronMeter | None = None, seed: int | None = None
    ) -> None:
        self.settings = settings
        self.meter = meter
        self.rng = random.Random(seed)

    def models(self, job: MediaJob) -> tuple[str, ...]:
        if job.kind in IMAGE_KINDS:
            return (self.settings.describe_model,)
        return self.settings.transcribe_models

    def begin(self, job: MediaJob, now: float) -> MediaRun:
        return MediaRun(self, job, now)


class MediaRun:
    """One voice note or image: `step` is what to do (`Call(provider=model index)`, `Wait`,
    `MediaDone`); report with `on_reply(text, seconds, now)`, `on_error(error, now)` or
    `resume(now)`."""

    def __init__(self, policy: MediaPolicy, job: MediaJob, now: float) -> None:
        self.policy, self.job = policy, job
        self.models = policy.models(job)
        self.deadline = now + policy.settings.timeout
        self.index, self.tries, self.attempts = -1, 0, 0
        self.reserved = 0.0
        self.spent = 0.0
        self.last: ModelError | None = None
        refused = refusal(job, policy.settings)
        if refused is not None:
            self.step: MediaStep = self._done("", refused[0], refused[1])
        else:
            self.step = self._next(now)

    def _done(self, text: str, reason: str, detail: str = "", model: str = "") -> MediaDone:
        self._release()
        job = self.job
        outcome = MediaOutcome(
            job.chat,
            job.message_id,
            outcome_kind(job),
            text,
            reason,
            model,
            round(self.spent, 4),
            self.attempts,
            detail[:200],
        )
        # never the text: a transcript is as private as the message it stands for
        log.info(
            "media %s %s: %s (%d chars, %d attempts)",
            outcome.kind,
            job.message_id,
            reason,
            len(text),
            self.attempts,
        )
        return MediaDone(outcome)

    def _release(self) -> None:
        if self.reserved and self.policy.meter is not None:
            self.policy.meter.release(self.reserved)
        self.reserved = 0.0

    def _next(self, now: float) -> MediaStep:
        self.index += 1
        self.tries = 0
        if self.index >= len(self.models):
            error = self.last
            kind = error.kind if error is not None else "failed"
            return self._done("", kind, str(error) if error else "")
        return self._attempt(now)

    def _attempt(self, now: float) -> MediaStep:
        remaining = self.deadline - now
        model = self.models[self.index]
        if remaining <= 0:
            self.last = ModelTimeoutError("WAPA_MEDIA_TIMEOUT used up", model=model)
            return self._done("", "timeout", str(self.last))
        meter = self.policy.meter
        if meter is not None:
            try:
                self.reserved = meter.reserve_cost(model, worst_cost(model, self.job), now)
            except ModelError as exc:  # budget or quota: no request, no other model
                self.last = exc
                return self._done("", exc.kind, str(exc))
        self.tries += 1
        self.attempts += 1
        return Call(self.index, (), remaining)

    def on_reply(self, text: str, seconds: float | None, now: float) -> MediaStep:
        model = self.models[self.index]
        self._release()
        self._charge(model, seconds, now)
        if not text.strip():  # billed, but nothing said (silence) or seen
            self.step = self._done("", "empty", "", model)
        else:
            self.step = self._done(text.strip(), "ok", "", model)
        return self.step

    def on_error(self, error: ModelError, now: float) -> MediaStep:
        self._release()
        self.last = error
        if error.billed is not None:
            self._charge(self.models[self.index], None, now)
        if error.kind in ACCOUNT_WIDE:
            self.step = self._done("", error.kind, str(error))
        elif error.retryable and self.tries < 2:
            wait = backoff(self.tries, self.policy.rng)
            if now + wait < self.deadline:
                self.step = Wait(wait)
                return self.step
            self.step = self._next(now)
        else:
            self.step = self._next(now)
        return self.step

    def resume(self, now: float) -> MediaStep:
        self.step = self._attempt(now)
        return self.step

    def close(self) -> None:
        self._release()

    def _charge(self, model: str, seconds: float | None, now: float) -> None:
        amount = real_cost(model, self.job, seconds)
        self.spent += amount
        if self.policy.meter is not None:
            self.policy.meter.record_cost(model, amount, now)


__all__ = [
    "DESCRIBE_MODEL",
    "NEURONS_PER_AUDIO_MINUTE",
    "NEURONS_PER_IMAGE",
    "TRANSCRIBE_MODELS",
    "MediaDone",
    "MediaJob",
    "MediaOutcome",
    "MediaPolicy",
    "MediaRun",
    "MediaSettings",
    "audio_seconds",
    "header",
    "image_format",
    "language_hint",
    "media_event",
    "parse_media",
    "refusal",
    "request",
    "worst_cost",
]
