"""Reply hygiene stays as it judged before issue 18's matching work: `clean_reply` over a seeded
sample of replies is pinned, one digest per case, in tests/data/replies/hygiene_pin.json.

The sample is built from the phrase tables' own words (so that fragments match), the reply
corpus, names, the private tokens, template slots, markdown, quotes, invisible and odd Unicode
characters, with and without what the contact said (`heard`), under four system prompts and
reply lengths from 10 to 600 characters; plus every corpus reply under each prompt, and one
huge reply. The digests were written by the matching before that work (core/hygiene.py at
1d1f591) and checked against the current code before the old module was dropped.

When a hygiene rule changes on purpose, regenerate the pin with

    .venv/bin/python -m tests.core.test_core_hygiene_pin --write

and say in the commit which rule changed and which replies it now judges otherwise."""

from __future__ import annotations

import hashlib
import json
import random
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from wapa.core import phrases
from wapa.core.context import system_prompt
from wapa.core.hygiene import clean_reply
from wapa.core.policy import Persona

DATA = Path(__file__).resolve().parents[1] / "data" / "replies"
STORED = DATA / "hygiene_pin.json"
CORPUS = json.loads((DATA / "corpus.json").read_text("utf-8"))
SEED, SAMPLED = 11, 3000

PERSONA = Persona(
    owner_name=CORPUS["persona"]["owner_name"],
    assistant_name=CORPUS["persona"]["assistant_name"],
    introduction=CORPUS["persona"]["introduction"],
    languages=tuple(CORPUS["persona"]["languages"]),
    extra_instructions=CORPUS["persona"]["extra_instructions"],
)
ODD = Persona(owner_name="J.R. (Bob) Ünal", assistant_name="Ma*ry", extra_instructions="Code 0042.")
SYSTEMS: list[tuple[str, Persona | None]] = [
    (system_prompt(PERSONA, False), PERSONA),
    (system_prompt(PERSONA, True), None),
    (system_prompt(ODD, False), ODD),
    ("", None),
]
TABLES = (phrases.COMMITMENTS, phrases.AI_DISCLOSURES, phrases.REFUSALS, phrases.INSTRUCTION_TALK)
TABLE_WORDS = sorted(
    {w for t in TABLES for fs in t.values() for f in fs for w in re.findall(r"[^\W\d_]+'?", f)}
)
CORPUS_TEXTS = [item["text"] for item in CORPUS["bad"] + CORPUS["good"]]
NAMES = ["Gilad", "Dana", "Noa", "Alice", "4711", "Lisbon", "14 March", "Bob", "Ünal"]
TOKENS = ["<|eot_id|>", "[INST]", "[Name]", "[voice message]", "{x}", "<NAME>"]
ODD_CHARS = list(
    "\u200b\u00ad\u202e\u2066\ufeff\u2019\u201c\u201d\u00ab\u00bb*_~`#[]{}<>|\"'.!?…؟\n\t "
    "ﬁＡｂ①ßẞİıſK\u0301é\u05e9\u0627\u0416"
)
SEPARATORS = [" ", " ", ", ", ". ", "! ", "\n", " '", "' ", ' "', '" ', "**"]
HEARD = [None, "Hi, it's Alice. Is 4711 the code? Call me", ""]


@dataclass(frozen=True)
class Case:
    text: str
    prompt: int  # index into SYSTEMS
    max_chars: int
    heard: str | None


def _random_text(rng: random.Random) -> str:
    """Up to 8 characters, mostly printable, some from anywhere in Unicode (no surrogates)."""
    out = []
    for _ in range(rng.randrange(9)):
        c = rng.randrange(0x110000) if rng.random() < 0.3 else rng.randrange(0x20, 0x250)
        out.append(chr(c) if not 0xD800 <= c < 0xE000 else "?")
    return "".join(out)


def _piece(rng: random.Random) -> str:
    pool = rng.randrange(6)
    if pool == 5:
        return _random_text(rng)
    return rng.choice((TABLE_WORDS, CORPUS_TEXTS, NAMES, TOKENS, ODD_CHARS)[pool])


def _text(rng: random.Random, most: int) -> str:
    return "".join(_piece(rng) + rng.choice(SEPARATORS) for _ in range(rng.randrange(most + 1)))


def cases() -> Iterator[Case]:
    rng = random.Random(SEED)
    for _ in range(SAMPLED):
        heard = None if rng.random() < 0.4 else _text(rng, 6)
        yield Case(_text(rng, 14), rng.randrange(len(SYSTEMS)), rng.randint(10, 600), heard)
    for prompt in range(len(SYSTEMS)):
        for text in CORPUS_TEXTS:
            for heard in HEARD:
                yield Case(text, prompt, 600, heard)
    huge = " ".join(CORPUS_TEXTS) * 20 + " Gilad will pay you."
    yield Case(huge, 0, 4000, " ".join(CORPUS_TEXTS[:50]) * 5)


def judged(case: Case) -> tuple[str, str]:
    prompt, persona = SYSTEMS[case.prompt]
    return clean_reply(case.text, prompt, case.max_chars, persona=persona, heard=case.heard)


def digest(result: tuple[str, str]) -> str:
    data = json.dumps(result, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()[:16]


def test_clean_reply_judges_the_pinned_sample_as_before() -> None:
    stored = json.loads(STORED.read_text("utf-8"))
    assert stored["seed"] == SEED and stored["sampled"] == SAMPLED
    all_cases = list(cases())
    assert len(all_cases) == len(stored["digests"])
    for i, (case, want) in enumerate(zip(all_cases, stored["digests"], strict=True)):
        got = judged(case)
        assert digest(got) == want, f"case {i}: {case!r} is now judged {got!r}"


def _write() -> None:
    digests = [digest(judged(case)) for case in cases()]
    STORED.write_text(
        json.dumps({"seed": SEED, "sampled": SAMPLED, "digests": digests}, indent=0) + "\n",
        encoding="utf-8",
    )
    print(f"wrote {len(digests)} digests to {STORED}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m tests.core.test_core_hygiene_pin --write")
    _write()
