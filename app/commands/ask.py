"""`wapa ask "message text" [--from NAME] [--json] [--config FILE]`: one reply to one message,
through the configured model, with the real persona and policy (the same settings `wapa run`
builds from the same environment and config file: `app.config.load_settings`) and the real
prompt and reply hygiene. For checking credentials and persona before running the assistant.

Exit status: 0 a reply was printed; 1 the model failed (auth, quota, budget, retries
exhausted...: the one-line error names the kind, the code and what to do); 2 bad usage;
3 a setting is missing or malformed (the error names the variable); 4 the model answered but
the reply hygiene refused to send it.
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
    parser.add_argument("text", help="the contact's message")
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
