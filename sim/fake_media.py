"""The simulated speech-to-text and image description: the production `MediaPolicy` on
virtual time, against fake Cloudflare answers parsed by the production parser.

A scenario's message with `transcript: "Call me, it's urgent"` (a voice note) or
`description: "a parking ticket"` (an image) starts one job when the message arrives; the
answer comes after `latency` as a `MediaText` event through the scheduler (lost in a crash,
like any answer of the dead process). The job's cost is held and recorded on the same
`NeuronMeter` as the replies' (`FakeModel.meter`), so a spent budget or a daily-quota block
stops it as in production. `failures` are scheduled like the fake model's (kinds:
`server_error`, `rate_limited`, `capacity`, `timeout`, `bad_request`, `auth`, `daily_quota`,
`bad_response`); a failed job keeps the placeholder, with its outcome in `outcomes`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from wapa.adapters.llm.base import transport_timeout
from wapa.adapters.llm.config import MediaSettings
from wapa.adapters.llm.errors import ModelError
from wapa.adapters.llm.media import (
    MediaDone,
    MediaJob,
    MediaOutcome,
    MediaPolicy,
    MediaRun,
    MediaStep,
    media_event,
    outcome_kind,
    parse_media,
)
from wapa.adapters.llm.policy import Call
from wapa.adapters.llm.usage import NeuronMeter
from wapa.sim.fake_cloudflare import cloudflare_response
from wapa.sim.fake_model import ANSWERS, HANGS, ScheduledFailure
from wapa.sim.scheduler import Scheduler

MEDIA_FAILURE_KINDS = (
    "server_error",
    "rate_limited",
    "capacity",
    "timeout",
    "bad_request",
    "auth",
    "daily_quota",
    "bad_response",
)
JPEG = b"\xff\xd8\xff\xe0" + bytes(60)


def fake_ogg(seconds: float) -> bytes:
    """Bytes that read as an Ogg/Opus voice note of `seconds` (its last granule position)."""
    last = b"OggS\x00\x04" + struct.pack("<q", int(seconds * 48_000)) + bytes(14)
    return b"OggS\x00\x02" + bytes(22) + bytes(int(seconds * 200)) + last


@dataclass
class FakeMedia:
    """`latency`: seconds before each answer; `failures`: scheduled answers, one per request;
    `meter`: the replies' NeuronMeter (None: not metered); `settings`: what production reads
    from WAPA_TRANSCRIBE and the rest (default here: both on)."""

    latency: float = 2.0
    failures: list[ScheduledFailure] = field(default_factory=list)
    meter: NeuronMeter | None = None
    settings: MediaSettings = field(
        default_factory=lambda: MediaSettings(transcribe=True, describe_images=True)
    )
    seed: int = 0
    scheduler: Scheduler | None = None
    requests: int = 0
    outcomes: list[MediaOutcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        for f in self.failures:
            if f.kind not in MEDIA_FAILURE_KINDS:
                raise ValueError(
                    f"media failure kind {f.kind!r} is unknown "
                    f"(known: {', '.join(MEDIA_FAILURE_KINDS)})"
                )
        self.policy = MediaPolicy(self.settings, meter=self.meter, seed=self.seed * 31 + 5)

    def bind(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    def start(self, job: MediaJob, answer: str, now: float) -> None:
        """Understand `job`; the fake model says `answer` when it succeeds."""
        if self.scheduler is None:
            raise RuntimeError("FakeMedia.start: bind(scheduler) first")
        run = self.policy.begin(job, now)
        self._drive(run, answer, run.step, now, self.scheduler)

    def _drive(
        self, run: MediaRun, answer: str, step: MediaStep, now: float, sched: Scheduler
    ) -> None:
        if isinstance(step, MediaDone):
            self.outcomes.append(step.outcome)
            event = media_event(step.outcome)
            if event is not None:
                sched.deliver_at(now, event)
        elif isinstance(step, Call):
            self._request(run, answer, step, now, sched)
        else:
            sched.call_at(
                now + step.seconds, lambda t: self._drive(run, answer, run.resume(t), t, sched)
            )

    def _request(
        self, run: MediaRun, answer: str, call: Call, now: float, sched: Scheduler
    ) -> None:
        self.requests += 1
        model = run.models[call.provider]
        kind = self._failure(now, model)
        if kind in HANGS or self.latency >= call.timeout:

            def timed_out(t: float) -> None:
                error = transport_timeout(call.timeout, provider="cloudflare", model=model)
                self._drive(run, answer, run.on_error(error, t), t, sched)

            sched.call_at(now + call.timeout, timed_out)
            return
        if kind:
            status, body, headers = cloudflare_response(ANSWERS[kind])
        else:
            status, body, headers = 200, self._body(run.job, answer), {}

        def arrived(t: float) -> None:
            try:
                text, seconds = parse_media(
                    status, body, headers, model=model, kind=outcome_kind(run.job)
                )
            except ModelError as exc:
                step = run.on_error(exc, t)
            else:
                step = run.on_reply(text, seconds, t)
            self._drive(run, answer, step, t, sched)

        sched.call_at(now + self.latency, arrived)

    @staticmethod
    def _body(job: MediaJob, answer: str) -> dict[str, object]:
        if outcome_kind(job) == "description":
            result: dict[str, object] = {"description": answer}
        else:
            result = {
                "text": answer,
                "word_count": len(answer.split()),
                "transcription_info": {"language": "en", "duration": job.seconds},
            }
        return {"result": result, "success": True, "errors": [], "messages": []}

    def _failure(self, now: float, model: str) -> str:
        for rule in self.failures:
            if rule.count > 0 and now >= rule.after and rule.model in (None, model):
                rule.count -= 1
                return rule.kind
        return ""


def voice_job(chat: str, message_id: str, seconds: float) -> MediaJob:
    return MediaJob(chat, message_id, "voice", fake_ogg(seconds), seconds=seconds)


def image_job(chat: str, message_id: str) -> MediaJob:
    return MediaJob(chat, message_id, "image", JPEG)


__all__ = ["MEDIA_FAILURE_KINDS", "FakeMedia", "fake_ogg", "image_job", "voice_job"]
