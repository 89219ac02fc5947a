"""`wapa ask "message text" [--from NAME] [--json] [--config FILE]`: one reply to one message,
through the configured model, with the real persona and policy (the same settings `wapa run`
builds from the same environment and config file: `app.config.load_settings`) and the real
prompt and reply hygiene. For checking credentials and persona before running the assistant.

Exit status: 0 a reply was printed; 1 the model failed (auth, quota, budget, retries
exhausted...: the one-line error names the kind, the code and what to do); 2 bad usage;
3 a setting is missing or malformed (the error names the variable); 4 the model answered but
the reply hygiene refused to send it.

`wapa ask --audio FILE` transcribes a voice note (OGG/Opus, as WhatsApp sends it) and `wapa ask
--image FILE` describes an image, each with one real call to the configured media model
(whatever WAPA_TRANSCRIBE / WAPA_DESCRIBE_IMAGES say: this is the check before turning them on);
the text and its cost in neurons are printed, and exit status 1 means it was not understood
(the reason: too_long, too_big, undecodable, or the model error's kind). `wapa ask --agree
MODEL` accepts a model's license terms once for the account (it sends `{"prompt": "agree"}`,
as Cloudflare asks before the first use of Llama 3.2 Vision: error 5016 until then).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TextIO

EXIT_OK, EXIT_MODEL, EXIT_USAGE, EXIT_CONFIG, EXIT_REJECTED = 0, 1, 2, 3, 4


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "ask",
        help="get one reply to one message from the configured model (checks credentials)",
        description="Send one message through the configured model with the real persona and "
        "prompt, and print the reply the assistant would send.",
    )
    parser.add_argument("text", nargs="?", default="", help="the contact's message")
    parser.add_argument("--audio", metavar="FILE", help="transcribe this voice note instead")
    parser.add_argument("--image", metavar="FILE", help="describe this image instead")
    parser.add_argument(
        "--agree", metavar="MODEL", help="accept MODEL's license terms once (sends 'agree')"
    )
    parser.add_argument(
        "--from",
        dest="sender",
        default="",
        metavar="NAME",
        help="the contact's name, as the prompt would name them",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON object")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="YAML file of VARIABLE: value, as for `wapa run` (env wins)",
    )
    parser.set_defaults(func=run)


def build_messages(text: str, sender: str, persona: Any, policy: Any) -> tuple[Any, ...]:
    """The prompt the assistant would send for a one-message chat."""
    from wapa.core.context import CONTACT, Entry, build_prompt

    entry = Entry(t=0.0, who=CONTACT, name=sender, text=text, id="ask-1")
    return build_prompt([entry], persona, policy, is_group=False, contact_name=sender)


async def ask(
    text: str,
    sender: str,
    env: Mapping[str, str],
    *,
    transport: Any = None,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    config_file: str | None = None,
) -> dict[str, Any]:
    """Ask once; returns the JSON-able outcome. Raises app.config.ConfigError or the model
    adapter's ConfigError (a bad setting) and ModelError."""
    from wapa.adapters.llm import client_from_env
    from wapa.config import load_settings
    from wapa.core.context import prompt_tokens
    from wapa.core.hygiene import clean_reply

    settings = load_settings(env, config_file)
    persona, policy = settings.persona, settings.policy
    messages = build_messages(text, sender, persona, policy)
    client = client_from_env(settings.env, transport=transport, clock=clock, sleep=sleep)
    try:
        result = await client.generate(messages)
    finally:
        await client.aclose()
    reply, why = clean_reply(result.text, messages[0].content, policy.max_reply_chars)
    return {
        "ok": not why,
        "reply": reply,
        "rejected": why,
        "model": result.model,
        "provider": result.provider,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "usage_estimated": result.usage_estimated,
        "neurons": round(result.neurons, 4),
        "attempts": result.attempts,
        "latency_s": round(result.latency_s, 3),
        "prompt_tokens_estimate": prompt_tokens(messages),
    }


def run(
    args: argparse.Namespace,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    from wapa.adapters.llm import ConfigError, ModelError
    from wapa.config import ConfigError as SettingError

    env = os.environ if env is None else env
    out = out or sys.stdout
    err = err or sys.stderr
    if getattr(args, "audio", None) or getattr(args, "image", None) or getattr(args, "agree", None):
        return run_media(args, env, out, err)
    if not args.text.strip():
        print("wapa ask: error: the message text is empty", file=err)
        return EXIT_USAGE

    def fail(exit_status: int, kind: str, message: str, **extra: Any) -> int:
        print(f"wapa ask: error: {message}", file=err)
        if args.json:
            print(json.dumps({"ok": False, "kind": kind, "error": message, **extra}), file=out)
        return exit_status

    try:
        outcome = asyncio.run(
            ask(args.text, args.sender, env, config_file=getattr(args, "config", None))
        )
    except (ConfigError, SettingError) as exc:
        return fail(EXIT_CONFIG, "config", str(exc))
    except ModelError as exc:
        return fail(
            EXIT_MODEL, exc.kind, str(exc), status=exc.status, code=exc.code, attempts=exc.attempts
        )
    if args.json:
        print(json.dumps(outcome, ensure_ascii=False), file=out)
    if outcome["rejected"]:
        print(
            f"wapa ask: error: the model answered, but the reply would not be sent "
            f"({outcome['rejected']}); try again or adjust WAPA_EXTRA_INSTRUCTIONS",
            file=err,
        )
        return EXIT_REJECTED
    if not args.json:
        print(outcome["reply"], file=out)
    return EXIT_OK


async def understand(
    path: str,
    kind: str,
    env: Mapping[str, str],
    *,
    transport: Any = None,
    config_file: str | None = None,
) -> dict[str, Any]:
    """One voice note (`kind` "voice") or image ("image") through the media model. Raises
    OSError (unreadable file) and the ConfigErrors."""
    from dataclasses import asdict, replace

    from wapa.adapters.llm.config import ConfigError, media_settings_from_env, settings_from_env
    from wapa.adapters.llm.media import MediaJob
    from wapa.adapters.llm.media_client import MediaClient
    from wapa.config import load_settings

    with open(path, "rb") as f:
        data = f.read()
    settings = load_settings(env, config_file)
    model = settings_from_env(settings.env)
    if model.cloudflare is None:
        raise ConfigError("CLOUDFLARE_API_TOKEN: not set; media understanding uses Workers AI")
    media = replace(
        media_settings_from_env(settings.env, ", ".join(settings.persona.languages)),
        transcribe=True,
        describe_images=True,
    )
    client = MediaClient(media, model.cloudflare, transport=transport)
    try:
        outcome = await client.understand(MediaJob("ask", "ask-1", kind, data))
    finally:
        await client.aclose()
    return {"ok": bool(outcome.text), **asdict(outcome)}


async def agree(model: str, env: Mapping[str, str], *, transport: Any = None) -> dict[str, Any]:
    """Send {"prompt": "agree"} to `model` once (Cloudflare's license acceptance)."""
    import httpx
    from wapa.adapters.llm.config import ConfigError, settings_from_env

    cf = settings_from_env(env).cloudflare
    if cf is None:
        raise ConfigError("CLOUDFLARE_API_TOKEN: not set; --agree is for a Workers AI model")
    url = f"{cf.api_base}/accounts/{cf.account_id}/ai/run/{model}"
    async with httpx.AsyncClient(transport=transport, timeout=30.0) as http:
        response = await http.post(
            url, headers={"Authorization": f"Bearer {cf.api_token}"}, json={"prompt": "agree"}
        )
    try:
        body = response.json()
    except ValueError:
        body = {}
    ok = 200 <= response.status_code < 300 and body.get("success") is not False
    return {"ok": ok, "model": model, "status": response.status_code, "body": body}


def run_media(args: argparse.Namespace, env: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    from wapa.adapters.llm import ConfigError
    from wapa.config import ConfigError as SettingError

    try:
        if args.agree:
            outcome = asyncio.run(agree(args.agree, env))
        else:
            kind, path = ("voice", args.audio) if args.audio else ("image", args.image)
            outcome = asyncio.run(
                understand(path, kind, env, config_file=getattr(args, "config", None))
            )
    except OSError as exc:
        print(f"wapa ask: error: cannot read {exc.filename}: {exc.strerror}", file=err)
        return EXIT_USAGE
    except (ConfigError, SettingError) as exc:
        print(f"wapa ask: error: {exc}", file=err)
        return EXIT_CONFIG
    if args.json:
        print(json.dumps(outcome, ensure_ascii=False), file=out)
    elif args.agree:
        print(f"{args.agree}: {'terms accepted' if outcome['ok'] else outcome['body']}", file=out)
    elif outcome["ok"]:
        print(outcome["text"], file=out)
        print(f"({outcome['model']}, {outcome['neurons']:g} neurons)", file=err)
    if not outcome["ok"] and not args.agree:
        print(
            f"wapa ask: error: not understood ({outcome['reason']}): {outcome['detail']}",
            file=err,
        )
    return EXIT_OK if outcome["ok"] else EXIT_MODEL
