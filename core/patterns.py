"""Alias patterns that cannot stall the core: shapes that backtrack catastrophically are refused.

Python's `re` backtracks, and it cannot be interrupted. A group alias such as `(\\w+\\s?)+boss`
takes seconds on a 27-character message and hours on a longer one; `\\w*\\s*\\w*boss` takes
minutes on 4,000 characters (the core scans at most `urgency.SCAN_CHARS` of a message). So
`Policy` refuses, at start-up, with the pattern and the reason, the shapes behind those costs:

1. a repeat inside a repeat, both able to take more than one character each time
   (`(\\w+\\s?)+`, `(a*)*`, `(?:x+y?)+`): exponential;
2. an alternation inside a repeat (`(a|ab)+`, `(?:hi|hey)+`): exponential when the branches
   can match the same text (single characters, `(?:a|b)+`, are one class and are fine);
3. two unbounded repeats one after the other, with nothing required between them, whose
   characters overlap (`\\w*\\s*\\w*`, `.*.*`, `\\d+\\w+`): polynomial of a high degree.

Possessive repeats (`\\w++`) and atomic groups (`(?>...)`) never backtrack and are allowed, so
a refused pattern can usually be written safely: `(?>\\w+\\s?)+boss`, or simply `\\bboss\\b`.
This is a static check of the pattern's shape (the core reads no clock), deliberately strict
about those three shapes and silent about the rest.

The same reading of a pattern's parse tree also finds what every match of it must contain
(`required_text`), so that `Alternation` searches many patterns, `core.hygiene`'s phrase
tables, only where they can match: the same answer as one alternation of them all, for a
fraction of its cost.
"""

from __future__ import annotations

import importlib
import re
import string
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from functools import lru_cache
from typing import Any

_c: Any = None
_p: Any = None
try:  # the regular expression parser of the standard library (private, stable since 3.11)
    _c = importlib.import_module("re._constants")
    _p = importlib.import_module("re._parser")
except ImportError:  # pragma: no cover - a Python without it: the check is skipped
    pass

__all__ = ["Alternation", "backtracking_risk", "required_text"]

_PROBE = string.printable + "\u00a0\u00e9\u05e9\u0416\u4e2d"  # letters of a few scripts too


def backtracking_risk(pattern: str) -> str | None:
    """Why `pattern` may backtrack catastrophically, or None. Assumes it compiles."""
    if _p is None:  # pragma: no cover
        return None
    try:
        tree = _p.parse(pattern)
    except Exception:  # the compile check reports a bad pattern
        return None
    return _sequence(list(tree), inside_repeat=False)


def _repeat(op: Any, av: Any) -> tuple[int, int, list[Any]] | None:
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT):
        lo, hi, body = av
        return lo, hi, list(body)
    return None


def _sequence(items: list[Any], inside_repeat: bool) -> str | None:
    passed: list[list[Any]] = []  # bodies of the unbounded repeats since a required part
    for op, av in items:
        rep = _repeat(op, av)
        if rep is not None:
            lo, hi, body = rep
            many = hi > 1
            if many and hi > lo and inside_repeat:
                return "a repeat inside a repeat (like (\\w+\\s?)+) backtracks exponentially"
            if many and any(o == _c.BRANCH for o, _ in _walk(body)):
                return "an alternation inside a repeat (like (a|ab)+) backtracks exponentially"
            why = _sequence(body, inside_repeat or many)
            if why:
                return why
            if hi == _c.MAXREPEAT:
                if any(_overlap(before, body) for before in passed):
                    return (
                        "two unbounded repeats in a row that can match the same characters "
                        "(like \\w*\\s*\\w*) backtrack polynomially"
                    )
                passed = [*passed, body] if lo == 0 else [body]
            elif lo > 0:
                passed = []  # something required in between
            continue
        if op == _c.SUBPATTERN:
            why = _sequence(list(av[-1]), inside_repeat)
            if why:
                return why
            if _min_width(list(av[-1])) > 0:
                passed = []
            continue
        if op == _c.BRANCH:
            for branch in av[1]:
                why = _sequence(list(branch), inside_repeat)
                if why:
                    return why
            passed = []
            continue
        if op in (_c.ATOMIC_GROUP, _c.POSSESSIVE_REPEAT):
            passed = []  # never backtracks into: a safe wall
            continue
        if op in (_c.ASSERT, _c.ASSERT_NOT):
            why = _sequence(list(av[1]), inside_repeat)  # a lookaround backtracks too
            if why:
                return why
            continue  # zero width: separates nothing
        if op == _c.AT:
            continue
        passed = []  # a character (class) is required here
    return None


def _walk(items: list[Any]) -> list[tuple[Any, Any]]:
    """Every (op, av) under `items`, not descending into atomic or possessive parts."""
    out: list[tuple[Any, Any]] = []
    stack = list(items)
    while stack:
        op, av = stack.pop()
        out.append((op, av))
        if op in (_c.MAX_REPEAT, _c.MIN_REPEAT):
            stack.extend(av[2])
        elif op == _c.SUBPATTERN:
            stack.extend(av[-1])
        elif op == _c.BRANCH:
            for branch in av[1]:
                stack.extend(branch)
    return out


def _min_width(items: list[Any]) -> int:
    try:
        sub = _p.SubPattern(_p.State(), items)
        return int(sub.getwidth()[0])
    except Exception:
        return 0


def _chars(body: list[Any]) -> set[str] | None:
    """The probe characters one pass of a one-character `body` matches (case-insensitively,
    as aliases are matched), or None when the body is not one character."""
    if len(body) != 1:
        return None
    op, av = body[0]
    if op == _c.SUBPATTERN:
        return _chars(list(av[-1]))
    if op == _c.ANY:
        return set(_PROBE) - {"\n"}
    if op == _c.LITERAL:
        return {ch for ch in _PROBE if ch.lower() == chr(av).lower()}
    if op == _c.NOT_LITERAL:
        return {ch for ch in _PROBE if ch.lower() != chr(av).lower()}
    if op == _c.IN:
        return {ch for ch in _PROBE if _in(av, ch) or _in(av, ch.swapcase())}
    return None


def _in(items: list[Any], ch: str) -> bool:
    negate = False
    hit = False
    for op, av in items:
        if op == _c.NEGATE:
            negate = True
        elif op == _c.LITERAL:
            hit = hit or ord(ch) == av
        elif op == _c.RANGE:
            hit = hit or av[0] <= ord(ch) <= av[1]
        elif op == _c.CATEGORY:
            hit = hit or _category(av, ch)
        else:  # anything unusual: assume it matches (strict)
            hit = True
    return hit != negate


def _category(cat: Any, ch: str) -> bool:
    name = str(cat)
    word = ch.isalnum() or ch == "_"
    if "NOT_WORD" in name:
        return not word
    if "WORD" in name:
        return word
    if "NOT_DIGIT" in name:
        return not ch.isdigit()
    if "DIGIT" in name:
        return ch.isdigit()
    if "NOT_SPACE" in name:
        return not ch.isspace()
    if "SPACE" in name:
        return ch.isspace()
    return True


def _overlap(first: list[Any], second: list[Any]) -> bool:
    a, b = _chars(first), _chars(second)
    if a is None or b is None:
        return True  # not single characters: assume they can share text (strict)
    return bool(a & b)


def required_text(pattern: str, flags: int = 0) -> frozenset[str] | None:
    """Strings of which every match of `pattern` (compiled with `flags`) contains at least one,
    or None when no such set is found: a text holding none of them cannot match, so a search
    can be skipped by substring tests in C (`core.hygiene`'s phrase tables). Of the sets
    found (a run of literal characters, the union over an alternation's branches, a repeat's
    body taken at least once), the one whose shortest string is longest. Where case is
    ignored, only ASCII characters other than letters count as literal (they match only
    themselves); anything else gives no set (strict: never a wrong one)."""
    if _p is None:  # pragma: no cover
        return None
    try:
        tree = _p.parse(pattern, flags)
    except Exception:
        return None
    if tree.state.flags & _c.SRE_FLAG_LOCALE:
        return None
    return _required(list(tree), bool(tree.state.flags & _c.SRE_FLAG_IGNORECASE))


def _caseless(ch: str) -> bool:
    """Matched only by itself when case is ignored (tests/core/test_core_hygiene_fast.py asks
    `re` about every code point)."""
    return ch.isascii() and not ch.isalpha()


def _required(items: list[Any], icase: bool) -> frozenset[str] | None:
    found: list[frozenset[str]] = []
    run = ""
    for op, av in items:
        if op == _c.LITERAL and (not icase or _caseless(chr(av))):
            run += chr(av)
            continue
        if run:
            found.append(frozenset([run]))
            run = ""
        sub: frozenset[str] | None = None
        if op == _c.SUBPATTERN:
            _, add_flags, del_flags, body = av
            if not add_flags & _c.SRE_FLAG_LOCALE:
                inner = (icase or bool(add_flags & _c.SRE_FLAG_IGNORECASE)) and not (
                    del_flags & _c.SRE_FLAG_IGNORECASE
                )
                sub = _required(list(body), inner)
        elif op == _c.BRANCH:
            branches = [_required(list(b), icase) for b in av[1]]
            if all(b is not None for b in branches):
                sub = frozenset().union(*(b for b in branches if b is not None))
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
            lo, _, body = av
            if lo >= 1:
                sub = _required(list(body), icase)
        elif op == _c.ATOMIC_GROUP:
            sub = _required(list(av), icase)
        elif op == _c.IN and all(
            o == _c.LITERAL and (not icase or _caseless(chr(v))) for o, v in av
        ):
            sub = frozenset(chr(v) for _, v in av)
        if sub:
            found.append(sub)
    if run:
        found.append(frozenset([run]))
    if not found:
        return None
    return max(found, key=lambda s: (min(map(len, s)), -len(s)))


class Alternation:
    """Patterns searched as one: `search(text)` is whether `(?:p1)|(?:p2)|...`, compiled with
    `flags`, finds a match in `text` (it does when one of them does; each pattern is compiled
    alone, so its group numbers are its own). Each pattern is searched alone, and only when
    `text` holds one of the strings every match of it contains (`required_text`; substring
    tests in C), and those strings are tested only when `text` holds their least common
    character (a set intersection in C: an English text skips every Hebrew, Arabic or
    Cyrillic string, and most with a rare letter). One large alternation is tried branch by
    branch at every position of the text: `core.hygiene`'s phrase tables as one pattern
    cost about 80 µs a category on a 60-character sentence."""

    __slots__ = ("patterns", "flags", "_compiled", "_always", "_keys", "_by_key")

    def __init__(self, patterns: Iterable[str], flags: int = 0) -> None:
        self.patterns = tuple(patterns)
        self.flags = flags
        # each compiled when first searched: most never are in a run (nothing they need occurs)
        self._compiled: list[re.Pattern[str] | None] = [None] * len(self.patterns)
        always: list[int] = []
        by_key: dict[str, list[tuple[str, int]]] = {}
        for i, p in enumerate(self.patterns):
            needs = _needs(p, flags)
            if needs is None:
                always.append(i)
            for need in needs or ():
                by_key.setdefault(min(need, key=_commonness), []).append((need, i))
        self._always = tuple(always)
        self._keys = frozenset(by_key)
        self._by_key = {k: tuple(v) for k, v in by_key.items()}

    def search(self, text: str, chars: AbstractSet[str] | None = None) -> bool:
        """`chars`: the set of `text`'s characters, when the caller has it (several
        alternations searching one text)."""
        for i in self._always:
            if self._search(i, text):
                return True
        if chars is not None:
            keys: Iterable[str] = self._keys & chars
        elif len(self._keys) <= 8:  # a few substring tests cost less than reading every character
            keys = [key for key in self._keys if key in text]
        else:
            keys = self._keys.intersection(text)
        for key in keys:
            for need, i in self._by_key[key]:
                if need in text and self._search(i, text):
                    return True
        return False

    def _search(self, i: int, text: str) -> bool:
        pattern = self._compiled[i]
        if pattern is None:
            pattern = self._compiled[i] = re.compile(self.patterns[i], self.flags)
        return pattern.search(text) is not None


@lru_cache(maxsize=1024)
def _needs(pattern: str, flags: int) -> tuple[str, ...] | None:
    """`required_text`, without the strings that hold another (implied by it)."""
    need = required_text(pattern, flags)
    if not need:
        return None
    return tuple(sorted(n for n in need if not any(m != n and m in n for m in need)))


_COMMON = " etaoinsrhldcumwfgypbvkjxqz"  # letters by frequency; others are rarer still


def _commonness(ch: str) -> int:
    i = _COMMON.find(ch)
    return -1 if i < 0 else len(_COMMON) - i
