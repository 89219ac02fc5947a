"""The prompt-size table in docs/model.md: recomputed, so the documentation cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

from wapa.core.context import OWNER, build_prompt, estimate_tokens, prompt_tokens
from wapa.core.events import ChatMessage
from wapa.core.policy import Policy

from tests.adapters.test_llm_fake_server import PERSONA, ten_message_context

DOC = Path(__file__).resolve().parents[2] / "docs" / "model.md"


def sizes() -> dict[str, tuple[int, int, int]]:
    context = ten_message_context()
    prompt = build_prompt(context, PERSONA, Policy(), is_group=False, contact_name="Ruth")
    turns = sum(estimate_tokens(m.content) for m in prompt[1:])
    # the old design: the same turns, plus the whole conversation again in the system prompt
    names = {OWNER: PERSONA.owner_name}
    history = "\n".join(
        f"{e.name or names.get(e.who, PERSONA.assistant_name)}: {e.text}" for e in context
    )
    old_system = ChatMessage("system", f"{prompt[0].content}\n\nConversation so far:\n{history}")
    old = (old_system, *prompt[1:])
    return {
        "wapa": (estimate_tokens(prompt[0].content), turns, prompt_tokens(prompt)),
        "old": (estimate_tokens(old_system.content), turns, prompt_tokens(old)),
    }


def test_the_documented_table_matches() -> None:
    lines = DOC.read_text().splitlines()

    def row(prefix: str) -> tuple[int, ...]:
        line = next(text for text in lines if text.startswith(prefix))
        return tuple(int(n) for n in re.findall(r"\|\s*\**(\d+)\**\s*", line))

    rows = {"wapa": row("| wapa (each"), "old": row("| old design")}
    assert rows == sizes()


def test_wapa_states_the_context_once_and_is_smaller() -> None:
    s = sizes()
    assert s["wapa"][2] < s["old"][2]
    assert s["wapa"][2] <= Policy().prompt_token_budget
