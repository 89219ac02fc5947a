"""`wapa ask` (in process and as a subprocess against the fake server), and its persona and
policy: the runner's, from the same environment."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from wapa.commands.ask import (
    EXIT_CONFIG,
    EXIT_MODEL,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_USAGE,
    build_messages,
    run,
)
from wapa.config import ConfigError, load_settings
from wapa.core.policy import Persona, Policy
from wapa.sim.fake_cloudflare import FakeCloudflare, default_reply

ROOT = Path(__file__).resolve().parents[2]
PREFIXES = ("CLOUDFLARE_", "AI_", "OPENAI_", "WAPA_")


@pytest.fixture
def server() -> Iterator[FakeCloudflare]:
    with FakeCloudflare() as fake:
        yield fake


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIXES)}
    return {**env, **extra}


def wapa(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wapa", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def in_process(  # noqa: ANN201
    text: str,
    env: dict[str, str],
    *,
    sender: str = "",
    as_json: bool = False,
    config: str | None = None,
):
    out, err = io.StringIO(), io.StringIO()
    args = argparse.Namespace(text=text, sender=sender, json=as_json, config=config)
    status = run(args, env=env, out=out, err=err)
    return status, out.getvalue(), err.getvalue()


# ---------------------------------------------------------------- persona


def test_persona_defaults() -> None:
    assert load_settings({}).persona == Persona()
    empty = {"WAPA_OWNER_NAME": "  ", "WAPA_OWNER_ID": "", "WAPA_LANGUAGES": ""}
    assert load_settings(empty).persona == Persona()  # empty means the default, as everywhere


def test_persona_from_variables() -> None:
    persona = load_settings(
        {
            "WAPA_OWNER_ID": "972500000000@s.whatsapp.net",
            "WAPA_OWNER_NAME": " Gilad ",
            "WAPA_ASSISTANT_NAME": "Dana",
            "WAPA_INTRODUCTION": "I'm Dana, Gilad's assistant.",
            "WAPA_LANGUAGES": "English, Hebrew,,",
            "WAPA_EXTRA_INSTRUCTIONS": "Be brief.\nNo emoji.",
        }
    ).persona
    assert persona == Persona(
        owner_id="972500000000@s.whatsapp.net",
        owner_name="Gilad",
        assistant_name="Dana",
        introduction="I'm Dana, Gilad's assistant.",
        languages=("English", "Hebrew"),
        extra_instructions="Be brief.\nNo emoji.",
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"WAPA_INTRODUCTION": "x" * 3000}, "WAPA_INTRODUCTION"),
        ({"WAPA_ASSISTANT_NAME": "Da\x00na"}, "WAPA_ASSISTANT_NAME"),
        ({"WAPA_OWNER_ID": "x" * 2001}, "WAPA_OWNER_ID"),
    ],
)
def test_persona_errors_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=f"^{variable}:"):
        load_settings(env)


PERSONA_ENVS = [
    {
        "WAPA_OWNER_NAME": "Gilad",
        "WAPA_ASSISTANT_NAME": "Dana",
        "WAPA_LANGUAGES": "Hebrew, English",
        "WAPA_INTRODUCTION": "I'm Dana.",
        "WAPA_EXTRA_INSTRUCTIONS": "Be brief.",
    },
    {"WAPA_OWNER_NAME": "", "WAPA_ASSISTANT_NAME": " ", "WAPA_INTRODUCTION": ""},  # the defaults
    {"WAPA_OWNER_NAME": "Gilad", "WAPA_MAX_MESSAGE_CHARS": "12"},  # the policy shapes the prompt
]


@pytest.mark.parametrize("persona_env", PERSONA_ENVS)
def test_ask_prompts_with_the_runners_persona_and_policy(
    server: FakeCloudflare, persona_env: dict[str, str]
) -> None:
    """`wapa ask` and `wapa run` read the same settings: the system prompt ask sends is the
    one the runner's persona and policy give."""
    env = server.env(**persona_env)
    status, _, err = in_process("Is he around this afternoon?", env, sender="Ruth")
    assert status == EXIT_OK, err
    settings = load_settings(env)  # what `wapa run` builds (app/commands/run.py)
    expected = build_messages(
        "Is he around this afternoon?", "Ruth", settings.persona, settings.policy
    )
    sent = server.generations()[-1].body["messages"]
    assert sent == [{"role": m.role, "content": m.content} for m in expected]


def test_ask_reads_the_config_file_like_run(server: FakeCloudflare, tmp_path: Path) -> None:
    config = tmp_path / "wapa.yaml"
    config.write_text("owner_name: Gilad\nassistant_name: Dana\n")
    assert in_process("Hi", server.env(), config=str(config))[0] == EXIT_OK
    system = server.generations()[-1].body["messages"][0]["content"]
    assert "Gilad" in system and "Dana" in system


def test_the_prompt_is_the_assistants_prompt() -> None:
    persona = Persona(owner_name="Gilad", assistant_name="Dana")
    messages = build_messages("Is he in?", "Ruth", persona, Policy())
    assert [m.role for m in messages] == ["system", "user", "user"]
    assert "Dana" in messages[0].content and "Ruth" not in messages[0].content
    assert [m.content for m in messages[1:]] == ['[Chat with "Ruth"]', "Is he in?"]


# ---------------------------------------------------------------- in process


def test_ask_prints_the_reply(server: FakeCloudflare) -> None:
    status, out, err = in_process("Is Gilad around?", server.env(WAPA_OWNER_NAME="Gilad"))
    assert status == EXIT_OK and err == ""
    messages = server.generations()[0].body["messages"]
    assert out.strip() == default_reply(messages)  # the fake provider's reply to that prompt
    assert "Is Gilad around" in out
    system = messages[0]["content"]
    assert "Gilad" in system


def test_ask_json(server: FakeCloudflare) -> None:
    status, out, _ = in_process("Hi", server.env(), sender="Ruth", as_json=True)
    data = json.loads(out)
    assert status == EXIT_OK and data["ok"] and data["reply"]
    assert data["model"] == "@cf/meta/llama-3.2-1b-instruct" and data["attempts"] == 1
    assert data["neurons"] > 0 and data["prompt_tokens_estimate"] > 0


def test_ask_refuses_a_reply_the_hygiene_rejects() -> None:
    with FakeCloudflare(reply=lambda messages: "Sorry, I could not generate a response.") as fake:
        status, out, err = in_process("Hi", fake.env())
    assert status == EXIT_REJECTED and out == ""
    assert "placeholder" in err and err.count("\n") == 1


def test_ask_strips_an_ai_opener() -> None:
    answer = "As an AI language model, I cannot know. He is in a meeting now."
    with FakeCloudflare(reply=lambda m: answer) as fake:
        status, out, _ = in_process("Hi", fake.env())
    assert status == EXIT_OK and out.strip() == "He is in a meeting now."


def test_ask_model_failures(server: FakeCloudflare) -> None:
    server.fail("daily_quota")
    status, out, err = in_process("Hi", server.env(), as_json=True)
    assert status == EXIT_MODEL
    assert "daily_quota" in err and "4006" in err and "00:00 UTC" in err
    assert json.loads(out)["kind"] == "daily_quota"


def test_ask_empty_text() -> None:
    assert in_process("  ", {})[0] == EXIT_USAGE


def test_ask_bad_setting_names_the_variable(server: FakeCloudflare) -> None:
    status, _, err = in_process("Hi", server.env(AI_TEMPERATURE="warm"))
    assert status == EXIT_CONFIG and "AI_TEMPERATURE" in err
    status, _, err = in_process("Hi", server.env(WAPA_OWNER_NAME="Gil\x07ad"))
    assert status == EXIT_CONFIG and "WAPA_OWNER_NAME" in err
    status, _, err = in_process("Hi", server.env(WAPA_MAX_REPLY_CHARS="lots"))
    assert status == EXIT_CONFIG and "WAPA_MAX_REPLY_CHARS" in err


# ---------------------------------------------------------------- as a subprocess


def test_wapa_ask_subprocess_against_the_fake_server(server: FakeCloudflare) -> None:
    env = clean_env(**server.env(WAPA_OWNER_NAME="Gilad", WAPA_ASSISTANT_NAME="Dana"))
    done = wapa("ask", "Can Gilad call me back?", "--from", "Ruth", "--json", env=env)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["ok"] and "Can Gilad call me back?" in data["reply"]
    assert done.stderr == ""


def test_wapa_ask_without_credentials_fails_clearly() -> None:
    done = wapa("ask", "Hi", env=clean_env())
    assert done.returncode == EXIT_CONFIG
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "CLOUDFLARE_API_TOKEN" in lines[0]
    assert lines[0].startswith("wapa ask: error:")
    assert done.stdout == ""


def test_wapa_ask_with_a_wrong_token_fails_clearly(server: FakeCloudflare) -> None:
    done = wapa("ask", "Hi", env=clean_env(**server.env(CLOUDFLARE_API_TOKEN="wrong")))
    assert done.returncode == EXIT_MODEL
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr  # one line, no traceback, no log noise
    assert "auth" in lines[0] and "code 10000" in lines[0] and "CLOUDFLARE_API_TOKEN" in lines[0]
    assert len(server.generations()) == 1  # not retried
