"""Voice notes and images understood (issue 13, part B): the media policy through respx with
real-shaped Whisper and LLaVA bodies, the bounds, the budget, and corrupt files."""

from __future__ import annotations

import base64
import json
import struct

import httpx
import pytest
import respx
from wapa.adapters.llm.config import CloudflareSettings, MediaSettings, media_settings_from_env
from wapa.adapters.llm.media import (
    MediaJob,
    audio_seconds,
    language_hint,
    media_event,
    worst_cost,
)
from wapa.adapters.llm.media_client import MediaClient
from wapa.adapters.llm.usage import LLMStats, NeuronMeter
from wapa.core.events import MediaText

from tests.support.llm import ACCOUNT, BASE, T0, VirtualTime, fixture, reply

TURBO = "@cf/openai/whisper-large-v3-turbo"
WHISPER = "@cf/openai/whisper"
LLAVA = "@cf/llava-hf/llava-1.5-7b-hf"
CF = CloudflareSettings(account_id=ACCOUNT, api_token="test-token", api_base=BASE)
ON = MediaSettings(transcribe=True, describe_images=True, language="en")
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60


def url(model: str) -> str:
    return f"{BASE}/accounts/{ACCOUNT}/ai/run/{model}"


def ogg(seconds: float, size: int = 200) -> bytes:
    """The smallest thing that reads as an Ogg/Opus voice note: pages whose last granule
    position says `seconds` at 48 kHz."""
    page = b"OggS\x00\x04" + struct.pack("<q", int(seconds * 48_000)) + b"\x00" * 14
    return b"OggS\x00\x02" + b"\x00" * 22 + b"\x01" * max(0, size - 56) + page


def client(vt: VirtualTime, settings: MediaSettings = ON, budget: float | None = 10_000.0):
    meter = NeuronMeter(budget, vt.clock, LLMStats())
    return MediaClient(settings, CF, meter=meter, clock=vt.clock, sleep=vt.sleep, seed=1), meter


def voice(data: bytes, seconds: float = 0.0) -> MediaJob:
    return MediaJob("alice@s.whatsapp.net", "v1", "voice", data, seconds=seconds)


@respx.mock
async def test_a_voice_note_is_transcribed_and_metered_per_audio_minute() -> None:
    route = respx.post(url(TURBO)).mock(return_value=reply("whisper_turbo_success.json", 200))
    vt = VirtualTime()
    media, meter = client(vt)
    data = ogg(6.2)
    outcome = await media.understand(voice(data, seconds=6))
    assert outcome.reason == "ok" and outcome.model == TURBO and outcome.kind == "transcript"
    assert outcome.text == "Hi, it is Ruth. Call me back as soon as you can, it is urgent."
    body = json.loads(route.calls.last.request.content)
    assert body == {
        "audio": base64.b64encode(data).decode(),
        "task": "transcribe",
        "language": "en",
    }
    assert route.calls.last.request.headers["authorization"] == "Bearer test-token"
    assert outcome.neurons == pytest.approx(46.63 * 6.2 / 60, abs=1e-4)  # its own duration
    assert meter.spent == pytest.approx(outcome.neurons, abs=1e-4) and meter.reserved == 0
    assert media_event(outcome) == MediaText(
        "alice@s.whatsapp.net", "v1", outcome.text, "transcript"
    )
    await media.aclose()


@respx.mock
async def test_a_failing_turbo_model_hands_over_to_whisper_with_raw_bytes() -> None:
    turbo = respx.post(url(TURBO)).mock(return_value=reply("run_internal_500.json", 500))
    plain = respx.post(url(WHISPER)).mock(return_value=reply("whisper_success.json", 200))
    vt = VirtualTime()
    media, _ = client(vt)
    data = ogg(6.0)
    outcome = await media.understand(voice(data))
    assert outcome.reason == "ok" and outcome.model == WHISPER
    assert turbo.call_count == 2 and plain.call_count == 1  # one retry, then the fallback
    assert plain.calls.last.request.content == data
    assert len(vt.sleeps) == 1


@respx.mock
async def test_a_corrupt_or_oversized_voice_note_keeps_the_placeholder_without_a_request() -> None:
    route = respx.post(url(TURBO)).mock(return_value=reply("whisper_turbo_success.json", 200))
    media, meter = client(VirtualTime())
    corrupt = await media.understand(voice(b"\x00garbage" * 20))
    assert (corrupt.reason, corrupt.text) == ("undecodable", "")
    assert media_event(corrupt) is None
    long = await media.understand(voice(ogg(400.0)))
    assert long.reason == "too_long"
    big = MediaSettings(transcribe=True, max_audio_bytes=1_000)
    media2, _ = client(VirtualTime(), big)
    assert (await media2.understand(voice(ogg(5.0, size=5_000)))).reason == "too_big"
    assert route.call_count == 0 and meter.spent == 0


@respx.mock
async def test_off_by_default_and_stickers_never() -> None:
    route = respx.post(url(LLAVA))
    media, _ = client(VirtualTime(), MediaSettings())
    assert (await media.understand(voice(ogg(3.0)))).reason == "off"
    sticker = MediaJob("alice@s.whatsapp.net", "s1", "sticker", JPEG)
    media2, _ = client(VirtualTime())
    assert (await media2.understand(sticker)).reason == "off"
    assert route.call_count == 0


@respx.mock
async def test_the_budget_stops_transcription_before_any_request() -> None:
    route = respx.post(url(TURBO)).mock(return_value=reply("whisper_turbo_success.json", 200))
    vt = VirtualTime()
    media, meter = client(vt, budget=10.0)
    meter.record_cost(TURBO, 9.9, T0)
    outcome = await media.understand(voice(ogg(60.0)))
    assert outcome.reason == "budget" and outcome.text == "" and route.call_count == 0
    meter.block_until_midnight(T0)
    assert (await media.understand(voice(ogg(1.0)))).reason == "daily_quota"


@respx.mock
async def test_an_image_is_described_by_llava() -> None:
    route = respx.post(url(LLAVA)).mock(return_value=reply("llava_success.json", 200))
    media, meter = client(VirtualTime())
    job = MediaJob("alice@s.whatsapp.net", "p1", "image", JPEG)
    outcome = await media.understand(job)
    assert outcome.kind == "description" and outcome.reason == "ok"
    assert outcome.text == "The image shows a parking ticket tucked under a car windshield wiper."
    body = json.loads(route.calls.last.request.content)
    assert body["image"] == list(JPEG) and "prompt" in body and body["max_tokens"] == 80
    assert meter.spent == pytest.approx(11.0)
    assert (await media.understand(MediaJob("a", "p2", "image", b"not an image"))).reason == (
        "undecodable"
    )


@respx.mock
async def test_an_invalid_data_answer_keeps_the_placeholder() -> None:
    respx.post(url(TURBO)).mock(return_value=reply("whisper_invalid_data_400.json", 400))
    respx.post(url(WHISPER)).mock(return_value=reply("whisper_invalid_data_400.json", 400))
    outcome = await client(VirtualTime())[0].understand(voice(ogg(2.0)))
    assert outcome.reason == "bad_request" and outcome.text == "" and outcome.attempts == 2


@respx.mock
async def test_a_transport_failure_never_raises() -> None:
    respx.post(url(TURBO)).mock(side_effect=httpx.ConnectError("refused"))
    respx.post(url(WHISPER)).mock(side_effect=httpx.ConnectError("refused"))
    outcome = await client(VirtualTime())[0].understand(voice(ogg(2.0)))
    assert outcome.reason == "unreachable"


def test_settings_and_helpers() -> None:
    s = media_settings_from_env({"WAPA_TRANSCRIBE": "1"}, "Hebrew, English")
    assert s.transcribe and not s.describe_images and s.language == "he"
    assert language_hint("") == "" and language_hint("fr") == "fr"
    assert audio_seconds(ogg(7.5)) == pytest.approx(7.5) and audio_seconds(b"RIFF") is None
    assert worst_cost(TURBO, voice(ogg(60.0))) == pytest.approx(46.63)
    assert fixture("whisper_turbo_success.json")["success"] is True
