"""A state saved by the core before the compact per-chat records of issue 18 (main at
738dc78: `tests/core/state_main.json`, made with the core's public API: ten answered rounds in
one chat, an echo, an urgent reply still unconfirmed, a failed send, a group reply, a
generation in flight) still loads, and the restored assistant decides exactly what that core
decided after restoring it (`decisions` in the file), through the current export too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wapa.core import (
    Assistant,
    Decision,
    Effect,
    Message,
    Persona,
    Policy,
    SendConfirmed,
    SendFailed,
)

SAVED = Path(__file__).with_name("state_main.json")
PERSONA = Persona(owner_id="owner@s.whatsapp.net", owner_name="Gilad", assistant_name="Dana")


def _saved() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SAVED.read_text(encoding="utf-8"))
    return data


def _restore(state: dict[str, Any], policy: dict[str, Any]) -> Assistant:
    return Assistant.restore(json.loads(json.dumps(state)), Policy.from_mapping(policy), PERSONA)


def _go_on(a: Assistant, t: float, script: list[list[Any]]) -> list[list[Any]]:
    """The file's script (the steps its maker ran after restoring), as decisions."""
    out: list[list[Any]] = []
    for step in script:
        t += 5
        effects: list[Effect]
        if step[0] == "recover":
            effects = a.recover(t)
        elif step[0] == "confirm":
            effects = a.handle(SendConfirmed(step[1], step[2]), t)
        elif step[0] == "failed":
            effects = a.handle(SendFailed(step[1], "gone"), t)
        elif step[0] == "message":
            effects = a.handle(Message(**step[1]), t)
        else:
            assert step[0] == "timer"
            t += step[1]
            effects = a.on_timer(t)
        out += [
            [d.t, d.chat, str(d.code), d.detail, d.request_id]
            for d in effects
            if isinstance(d, Decision)
        ]
    return out


def test_a_state_saved_before_goes_on_as_that_core_did() -> None:
    saved = _saved()
    a = _restore(saved["state"], saved["policy"])
    assert _go_on(a, saved["t"], saved["script"]) == saved["decisions"]


def test_the_same_state_exported_again_and_restored_goes_on_the_same() -> None:
    saved = _saved()
    again = json.loads(json.dumps(_restore(saved["state"], saved["policy"]).export()))
    a = _restore(again, saved["policy"])
    assert _go_on(a, saved["t"], saved["script"]) == saved["decisions"]
    assert json.loads(json.dumps(a.export())) != again  # the script did change something


def test_the_saved_state_exercises_what_it_should() -> None:
    chats = _saved()["state"]["chats"]
    bob = chats["bob@s.whatsapp.net"]
    assert len(bob["sends"]) == 8 and len(bob["context"]) == 10
    assert bob["sends"][-1][2] == "" and all(s[2] for s in bob["sends"][:-1])
    assert chats["carol@s.whatsapp.net"]["phase"] == "generating"
