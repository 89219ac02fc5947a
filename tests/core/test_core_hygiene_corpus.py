"""Issue 14's measure: the reply-safety corpus (tests/data/replies/corpus.json).

Bad model replies (every category, ten languages) must be stopped: refused, or sent without
the words that made them bad. Good secretary replies must pass unchanged. The figures are in
the README and docs/model.md; `python -m tests.core.test_core_hygiene_corpus` prints them,
with the hygiene's cost per reply.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wapa.core.context import system_prompt
from wapa.core.hygiene import clean_reply
from wapa.core.policy import Persona

CORPUS = Path(__file__).resolve().parents[1] / "data" / "replies" / "corpus.json"
Clean = Callable[[str, str, int], tuple[str, str]]


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(CORPUS.read_text(encoding="utf-8"))
    return data


def corpus_system(data: dict[str, Any]) -> str:
    p = data["persona"]
    persona = Persona(
        owner_name=p["owner_name"],
        assistant_name=p["assistant_name"],
        introduction=p["introduction"],
        languages=tuple(p["languages"]),
        extra_instructions=p["extra_instructions"],
    )
    return system_prompt(persona, False)


def stopped(item: dict[str, Any], result: tuple[str, str]) -> bool:
    text, why = result
    if why:
        return True
    gone: list[str] = item.get("gone") or []
    return bool(gone) and not any(g.casefold() in text.casefold() for g in gone)


def harmed(item: dict[str, Any], result: tuple[str, str]) -> bool:
    return result != (item["text"].strip(), "")


def measure(clean: Clean = clean_reply) -> dict[str, Any]:
    data = load()
    system = corpus_system(data)
    through = [b for b in data["bad"] if not stopped(b, clean(b["text"], system, 600))]
    hurt = [g for g in data["good"] if harmed(g, clean(g["text"], system, 600))]
    return {
        "bad": len(data["bad"]),
        "good": len(data["good"]),
        "through": through,
        "harmed": hurt,
        "stopped_share": 1 - len(through) / len(data["bad"]),
        "harmed_share": len(hurt) / len(data["good"]),
    }


def test_the_corpus_is_big_enough_in_every_language_and_category() -> None:
    data = load()
    assert len(data["bad"]) >= 150 and len(data["good"]) >= 80
    langs = {"en", "de", "es", "fr", "pt", "it", "nl", "he", "ar", "ru"}
    assert {b["lang"] for b in data["bad"]} == langs == {g["lang"] for g in data["good"]}
    for lang in langs:
        kinds = {b["kind"] for b in data["bad"] if b["lang"] == lang}
        assert {"commit", "ai", "echo", "leak", "placeholder", "refusal"} <= kinds, lang


def test_at_least_95_percent_of_bad_replies_are_stopped() -> None:
    m = measure()
    missed = "\n".join(f"{b['lang']} {b['kind']}: {b['text']}" for b in m["through"])
    assert m["stopped_share"] >= 0.95, f"got through:\n{missed}"


def test_at_most_2_percent_of_good_replies_are_harmed() -> None:
    m = measure()
    data = load()
    system = corpus_system(data)
    hurt = "\n".join(f"{g['text']} -> {clean_reply(g['text'], system, 600)}" for g in m["harmed"])
    assert m["harmed_share"] <= 0.02, f"harmed:\n{hurt}"


def cost_per_reply(clean: Clean = clean_reply, rounds: int = 20) -> float:
    """Seconds of hygiene per reply, over the whole corpus (warm caches, as in a chat)."""
    data = load()
    system = corpus_system(data)
    texts = [b["text"] for b in data["bad"]] + [g["text"] for g in data["good"]]
    for t in texts:
        clean(t, system, 600)
    start = time.perf_counter()
    for _ in range(rounds):
        for t in texts:
            clean(t, system, 600)
    return (time.perf_counter() - start) / (rounds * len(texts))


if __name__ == "__main__":
    m = measure()
    print(
        f"bad replies stopped: {m['bad'] - len(m['through'])}/{m['bad']} "
        f"({m['stopped_share']:.1%}); good replies harmed: {len(m['harmed'])}/{m['good']} "
        f"({m['harmed_share']:.1%}); hygiene cost per reply: {cost_per_reply() * 1e6:.0f} µs"
    )
    for b in m["through"]:
        print("THROUGH", b["lang"], b["kind"], b["text"])
    for g in m["harmed"]:
        print("HARMED", g["lang"], g["text"])
