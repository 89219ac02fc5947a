"""Voice notes and images end to end through the runner (issue 13): a hand-built neonize
`audioMessage` / `imageMessage` through the real NeonizeTransport (neonize's client with the
network calls faked, `download_any` included), the real runner, core and SQLite store, and the
real MediaClient against a respx-mocked Workers AI."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import respx
from neonize.aioze.events import ConnectedEv, MessageEv
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa
from wapa.adapters.llm.config import CloudflareSettings, MediaSettings
from wapa.adapters.llm.media_client import MediaClient
from wapa.adapters.llm.usage import LLMStats, NeuronMeter
from wapa.adapters.store import Store
from wapa.adapters.whatsapp.client import NeonizeTransport
from wapa.config import load_settings
from wapa.core.events import MediaText
from wapa.media import MediaWorker
from wapa.runner import Runner

from tests.adapters.test_llm_media import ogg
from tests.adapters.test_whatsapp_mapping import ALICE, OWN, event
from tests.adapters.test_whatsapp_transport import FakeClient, _paired
from tests.support.llm import ACCOUNT, BASE, reply
from tests.support.runner import FakeModel, ManualClock, settle, until

TURBO = "@cf/openai/whisper-large-v3-turbo"
LLAVA = "@cf/llava-hf/llava-1.5-7b-hf"
CF = CloudflareSettings(account_id=ACCOUNT, api_token="test-token", api_base=BASE)
ON = MediaSettings(transcribe=True, describe_images=True, language="en")
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60
TRANSCRIPT = "Hi, it is Ruth. Call me back as soon as you can, it is urgent."


def url(model: str) -> str:
    return f"{BASE}/accounts/{ACCOUNT}/ai/run/{model}"


class MediaFakeClient(FakeClient):
    """The transport tests' neonize client, with `download_any` answering from `files`."""

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, bytes] = {}
        self.download_error: Exception | None = None

    async def download_any(self, message: Any, path: str | None = None) -> Any:
        self.calls.append(("download_any", message))
        if self.download_error is not None:
            raise self.download_error
        sub = message.audioMessage if message.HasField("audioMessage") else message.imageMessage
        return self.files[sub.directPath]


class Rig:
    def __init__(self, tmp_path: Path) -> None:
        self.settings = load_settings(
            {
                "WAPA_DB": str(tmp_path / "w.db"),
                "WAPA_OWNER_ID": OWN,
                "WAPA_OWNER_NAME": "Gilad",
                "WAPA_SEED": "7",
                "WAPA_RESPONSE_DELAY": "10m",
                "WAPA_URGENT_DELAY": "30s",
                "WAPA_TYPING_MIN": "1s",
                "WAPA_TYPING_MAX": "2s",
            }
        )
        self.clock = ManualClock()
        self.client = MediaFakeClient()
        self.transport = NeonizeTransport(
            "test-session.db",
            client_factory=lambda: self.client,
            paired_check=_paired,
            clock=self.clock,
            sleep=self.clock.sleep,
        )
        self.model = FakeModel()
        self.meter = NeuronMeter(10_000.0, self.clock, LLMStats())
        self.media_client = MediaClient(ON, CF, meter=self.meter, clock=self.clock, seed=1)
        self.worker = MediaWorker(self.media_client, ON)
        self.runner: Runner | None = None
        self.task: asyncio.Task[int] | None = None

    async def start(self) -> Runner:
        store = await Store.open(self.settings.db)
        self.runner = Runner(
            self.settings,
            self.transport,
            store,
            self.model,
            clock=self.clock,
            sleep=self.clock.sleep,
            install_signals=False,
            monitor_interval=0,
            http=False,
            media=self.worker,
        )
        self.task = asyncio.create_task(self.runner.run())
        await until(lambda: self.client.running is not None)
        await self.client.fire(ConnectedEv, ConnectedEv(status=True))
        await until(lambda: self.runner is not None and self.runner.state == "running")
        return self.runner

    async def deliver(self, msg: wa.Message, mid: str) -> None:
        ts = int(self.clock.t * 1000)
        await self.client.fire(MessageEv, event(msg, chat=ALICE, mid=mid, ts=ts))

    async def quiet(self) -> None:
        await settle(self.runner)
        await until(lambda: not self.worker.tasks)
        await settle(self.runner)

    def context(self) -> list[str]:
        assert self.runner is not None and self.runner.assistant is not None
        return [e.text for e in self.runner.assistant.chats[ALICE].context]

    async def stop(self) -> int:
        assert self.runner is not None and self.task is not None
        self.runner.request_stop("test")
        code = await asyncio.wait_for(self.task, 5)
        await self.media_client.aclose()
        return code


def voice_note(path: str, seconds: int = 6, size: int = 400) -> wa.Message:
    audio = wa.AudioMessage(
        URL=f"https://mmg.whatsapp.net{path}",
        directPath=path,
        mimetype="audio/ogg; codecs=opus",
        seconds=seconds,
        PTT=True,
        fileLength=size,
        mediaKey=b"k" * 32,
        fileSHA256=b"s" * 32,
        fileEncSHA256=b"e" * 32,
    )
    return wa.Message(audioMessage=audio)


def photo(path: str, caption: str = "") -> wa.Message:
    image = wa.ImageMessage(
        URL=f"https://mmg.whatsapp.net{path}",
        directPath=path,
        mimetype="image/jpeg",
        caption=caption,
        fileLength=len(JPEG),
        mediaKey=b"k" * 32,
        fileSHA256=b"s" * 32,
        fileEncSHA256=b"e" * 32,
    )
    return wa.Message(imageMessage=image)


@respx.mock
async def test_a_voice_note_is_transcribed_into_the_context_and_makes_the_reply_urgent(
    tmp_path: Path,
) -> None:
    whisper = respx.post(url(TURBO)).mock(return_value=reply("whisper_turbo_success.json", 200))
    rig = Rig(tmp_path)
    rig.client.files["/v/t62.7117-24/voice.enc"] = ogg(6.2, size=400)
    runner = await rig.start()
    await rig.deliver(voice_note("/v/t62.7117-24/voice.enc"), "VOICE1")
    await rig.quiet()

    assert whisper.call_count == 1
    body = json.loads(whisper.calls[0].request.content)
    assert body["language"] == "en" and body["audio"]  # base64 Ogg from download_any
    (downloaded,) = rig.client.of("download_any")
    assert downloaded.audioMessage.directPath == "/v/t62.7117-24/voice.enc"
    assert rig.context() == [f"[voice message] {TRANSCRIPT}"]
    assert rig.meter.spent > 0  # on the replies' budget
    assert rig.worker.done == {"ok": 1}
    # urgent in the transcript: the reply comes after the urgent delay, not the 10 minutes
    await rig.clock.advance(40, runner)
    sent = rig.client.of("send_message")  # the reply, and the escalation to the owner (rule 14)
    assert [m.conversation for _, m in sent] == [
        f'Urgent from Alice: "[voice message] {TRANSCRIPT}" (direct)',
        "Thanks, I will pass it on.",
    ]
    (call,) = rig.model.calls
    assert any(TRANSCRIPT in m.content for m in call)
    assert await rig.stop() == 0


@respx.mock
async def test_an_image_gets_its_description_next_to_its_caption(tmp_path: Path) -> None:
    llava = respx.post(url(LLAVA)).mock(return_value=reply("llava_success.json", 200))
    rig = Rig(tmp_path)
    rig.client.files["/v/image.enc"] = JPEG
    await rig.start()
    await rig.deliver(photo("/v/image.enc", caption="look at this"), "IMG1")
    await rig.quiet()
    assert llava.call_count == 1
    (entry,) = rig.context()
    assert entry.startswith("[photo: ") and entry.endswith("look at this")
    assert rig.worker.done == {"ok": 1}
    assert await rig.stop() == 0


@respx.mock
async def test_a_failed_download_keeps_the_placeholder_and_the_runner_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    whisper = respx.post(url(TURBO)).mock(return_value=reply("whisper_turbo_success.json", 200))
    rig = Rig(tmp_path)
    rig.client.download_error = RuntimeError("failed to download: 403 for +972501234567")
    runner = await rig.start()
    with caplog.at_level(logging.INFO, logger="wapa.media"):
        await rig.deliver(voice_note("/v/gone.enc"), "VOICE2")
        await rig.quiet()
    assert whisper.call_count == 0
    assert rig.context() == ["[voice message]"]
    assert rig.worker.done == {"download_failed": 1}
    lines = [r.getMessage() for r in caplog.records if "media_download_failed" in r.getMessage()]
    assert lines and "972501234567" not in lines[0]
    assert runner.state == "running"
    # the placeholder is still answered, after the normal delay
    await rig.clock.advance(11 * 60, runner)
    assert len(rig.client.of("send_message")) == 1
    assert await rig.stop() == 0


async def test_media_off_never_downloads(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path)
    rig.worker = MediaWorker(rig.media_client, MediaSettings())
    await rig.start()
    await rig.deliver(voice_note("/v/x.enc"), "VOICE3")
    await rig.quiet()
    assert rig.client.of("download_any") == []
    assert rig.context() == ["[voice message]"]
    assert await rig.stop() == 0


async def test_a_voice_note_over_the_byte_bound_is_never_downloaded(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    small = MediaSettings(transcribe=True, max_audio_bytes=100)
    seen: list[tuple[Any, str]] = []
    rig.worker = MediaWorker(rig.media_client, small, pending=1)
    await rig.start()
    rig.worker.enqueue = lambda ev, corr: seen.append((ev, corr))
    await rig.deliver(voice_note("/v/big.enc", size=5_000), "VOICE4")
    await rig.quiet()
    assert rig.client.of("download_any") == []
    assert rig.worker.done == {"too_big": 1}
    assert seen == []
    assert not any(isinstance(e, MediaText) for e, _ in seen)
    assert await rig.stop() == 0
