"""Alias patterns that backtrack catastrophically are refused at start-up (core/patterns.py).

Before: `(\\w+\\s?)+boss` was accepted and stalled the core 15 s on a 27-character message.
"""

from __future__ import annotations

import re

import pytest
from wapa.config import ConfigError, load_settings
from wapa.core.patterns import backtracking_risk
from wapa.core.policy import Policy, PolicyError

REFUSED = [
    r"(\w+\s?)+boss",  # the pattern
    r"(a+)+b",
    r"(a*)*",
    r"(?:x+y?)+",
    r"(?:\w+,?)*!",
    r"(a|ab)+c",
    r"(?:hi|hey)+",
    r"\w*\s*\w*boss",  # cubic: minutes on 4,000 characters
    r"\w+\s*\w+",
    r".*.*x",
    r"\d+\w+",
    r"(?=(a+)+b)",  # inside a lookahead too
]
ACCEPTED = [
    "gilad",
    r"\bboss\b",
    r"(?<!\w)@?gilad(?!\w)",
    r"hey\s+g\w*",
    r"mr\.?\s*cohen",
    r"(?:dr|mr)\.?\s+\w+",
    r"g(?:ilad|ili)",
    r".*boss.*",
    r"\w+boss",
    r"\w+\s+\w+\s+\w+boss",
    r"[a-z]+\d+",
    r"(?:a|b)+x",  # one character class, not an alternation
    r"(ab?)+",
    r"(?:ab{2})+",
    r"(?>\w+\s?)+boss",  # atomic: the safe way to write the pattern
    r"\w++\s?boss",  # possessive
]


@pytest.mark.parametrize("pattern", REFUSED)
def test_refused(pattern: str) -> None:
    assert backtracking_risk(pattern)
    with pytest.raises(PolicyError, match=r"^aliases: pattern .* refused: .*backtrack"):
        Policy(aliases=(pattern,))


@pytest.mark.parametrize("pattern", ACCEPTED)
def test_accepted(pattern: str) -> None:
    re.compile(pattern)
    assert backtracking_risk(pattern) is None
    assert Policy(aliases=(pattern,)).aliases == (pattern,)


def test_refused_from_the_environment_with_the_variable_named() -> None:
    with pytest.raises(ConfigError, match=r"WAPA_ALIASES: .*refused"):
        load_settings({"WAPA_ALIASES": r"(\w+\s?)+boss"})


def test_a_bad_pattern_is_still_a_bad_pattern() -> None:
    with pytest.raises(PolicyError, match="bad pattern"):
        Policy(aliases=("(unclosed",))


def test_a_pattern_the_core_could_not_join_is_refused_at_start() -> None:
    # Before: both passed Policy and then Assistant(...) raised re.error at start-up, because
    # the core joins the aliases into one case-insensitive alternation.
    with pytest.raises(PolicyError, match=r"bad pattern '\(\?i\)boss': global flags"):
        Policy(aliases=("(?i)boss",))
    with pytest.raises(PolicyError, match="do not combine: redefinition of group name"):
        Policy(aliases=("(?P<who>boss)", "(?P<who>chief)"))


def test_every_accepted_alias_list_builds_an_assistant() -> None:
    from wapa.core import Assistant
    from wapa.core.policy import Persona

    policy = Policy(aliases=("(?:big )?boss", "(chief)", r"\bgilad\b"))
    assistant = Assistant(policy, Persona(owner_name="Gilad"), seed=1)
    assert assistant.policy.aliases == policy.aliases
