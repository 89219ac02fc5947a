"""`wapa ask --audio FILE`, `--image FILE` and `--agree MODEL`: one real call each (respx)."""

from __future__ import annotations

import argparse
import io
import json
import struct
from pathlib import Path

import httpx
import respx
from wapa.commands.ask import run

from tests.support.llm import ACCOUNT, BASE, cf_env, reply

TURBO = f"{BASE}/accounts/{ACCOUNT}/ai/run/@cf/openai/whisper-large-v3-turbo"
LLAVA = f"{BASE}/accounts/{ACCOUNT}/ai/run/@cf/llava-hf/llava-1.5-7b-hf"
VISION = "@cf/meta/llama-3.2-11b-vision-instruct"


def ask(env: dict[str, str], **kw: object) -> tuple[int, str, str]:
    fields = {"text": "", "sender": "", "json": False, "config": None}
    fields.update({"audio": None, "image": None, "agree": None, **kw})
    out, err = io.StringIO(), io.StringIO()
    status = run(argparse.Namespace(**fields), env=env, out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def voice_note(tmp_path: Path, seconds: float = 6.2) -> Path:
    path = tmp_path / "note.ogg"
    last = b"OggS\x00\x04" + struct.pack("<q", int(seconds * 48_000)) + bytes(14)
    path.write_bytes(b"OggS\x00\x02" + bytes(200) + last)
    return path


@respx.mock
def test_ask_audio_prints_the_transcript_and_its_cost(tmp_path: Path) -> None:
    route = respx.post(TURBO).mock(return_value=reply("whisper_turbo_success.json", 200))
    env = cf_env(WAPA_LANGUAGES="English, Hebrew")  # WAPA_TRANSCRIBE off: ask checks anyway
    status, out, err = ask(env, audio=str(voice_note(tmp_path)))
    assert status == 0, err
    assert out.strip() == "Hi, it is Ruth. Call me back as soon as you can, it is urgent."
    assert "neurons" in err
    assert json.loads(route.calls.last.request.content)["language"] == "en"


@respx.mock
def test_ask_image_json(tmp_path: Path) -> None:
    respx.post(LLAVA).mock(return_value=reply("llava_success.json", 200))
    image = tmp_path / "ticket.jpg"
    image.write_bytes(b"\xff\xd8\xff\xe0" + bytes(100))
    status, out, _ = ask(cf_env(), image=str(image), json=True)
    outcome = json.loads(out)
    assert status == 0 and outcome["ok"] and outcome["kind"] == "description"
    assert "parking ticket" in outcome["text"]


@respx.mock
def test_ask_audio_failures(tmp_path: Path) -> None:
    respx.post(TURBO).mock(return_value=reply("run_auth_401.json", 401))
    status, _, err = ask(cf_env(), audio=str(voice_note(tmp_path)))
    assert status == 1 and "not understood (auth)" in err
    bad = tmp_path / "bad.ogg"
    bad.write_bytes(b"not audio at all")
    status, _, err = ask(cf_env(), audio=str(bad))
    assert status == 1 and "undecodable" in err
    status, _, err = ask(cf_env(), audio=str(tmp_path / "missing.ogg"))
    assert status == 2 and "cannot read" in err
    status, _, err = ask({}, audio=str(voice_note(tmp_path)))
    assert status == 3 and "CLOUDFLARE_API_TOKEN" in err


@respx.mock
def test_ask_agree_accepts_the_models_terms() -> None:
    route = respx.post(f"{BASE}/accounts/{ACCOUNT}/ai/run/{VISION}").mock(
        return_value=httpx.Response(
            200,
            json={
                "result": {"response": "Thank you for agreeing to this model's terms."},
                "success": True,
                "errors": [],
                "messages": [],
            },
        )
    )
    status, out, _ = ask(cf_env(), agree=VISION)
    assert status == 0 and "terms accepted" in out
    assert json.loads(route.calls.last.request.content) == {"prompt": "agree"}
