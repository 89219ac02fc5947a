"""The one-pass composer (`safe_yaml._compose_values`) gives exactly what the two passes gave:
libyaml's composer plus PyYAML's constructors after the limits were checked on the event
stream. Same values (types, aliases as the same object), same line numbers in the scenario
loader's maps and lists, same bool words, and the same error, at the same line, for what it
refuses or leaves to PyYAML (merge keys, explicit tags, undefined or repeated anchors, a second
document, a constructor's refusal).
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from wapa.adapters import safe_yaml
from wapa.adapters.safe_yaml import SafeYAMLError, load_yaml
from wapa.sim import scenario

pytestmark = pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML without libyaml")

LOADERS = {"safe": yaml.SafeLoader, "scenario": scenario._Loader}


def shape(value: Any, seen: dict[int, int] | None = None) -> Any:
    """Everything the two paths must agree on: types, values (NaN by its repr), the line
    attributes of the scenario loader's maps and lists, and which values are one object."""
    seen = {} if seen is None else seen
    if isinstance(value, dict | list):
        first = seen.setdefault(id(value), len(seen))
        attrs = tuple(getattr(value, a, None) for a in ("line", "key_lines", "item_lines"))
        words = getattr(value, "bool_words", None)
        if isinstance(value, dict):
            body: Any = [(shape(k, seen), shape(v, seen)) for k, v in value.items()]
        else:
            body = [shape(v, seen) for v in value]
        return (type(value).__name__, first, attrs, words, body)
    return (type(value).__name__, repr(value))


def outcome(text: str, loader: type[yaml.SafeLoader], one_pass: bool) -> Any:
    safe_yaml.ONE_PASS = one_pass
    try:
        return ("value", shape(load_yaml(text, "f.yaml", loader=loader)))
    except SafeYAMLError as exc:
        return ("error", str(exc))
    except Exception as exc:  # noqa: BLE001 - a constructor's own error must match too
        return ("raised", type(exc).__name__, str(exc))
    finally:
        safe_yaml.ONE_PASS = True


def assert_same(text: str, loader: type[yaml.SafeLoader]) -> Any:
    one = outcome(text, loader, True)
    assert one == outcome(text, loader, False), text
    return one


DOCUMENTS = [
    "",
    "---\n...\n",
    "just a scalar\n",
    "a: 1\nb: [1, 2, {c: d}]\nc:\n  - x\n  - y: z\n",
    "t: yes\nf: [no, off, On, TRUE]\nn: ~\ne:\nnull: 1\n",
    "ints: [0x1f, 0o17, 017, 1_000, 1:30, +5, -0, 0b101]\nfloats: [1.5, .inf, -.Inf, .nan, 1e3, 6.8523015e+5]\n",
    "when: 2026-01-05T09:00:00+01:00\nday: 2026-01-05\nbad: 2026-02-30\n",
    'q: \'yes\'\nr: "12"\ns: !!str 5\ni: !!int "7"\nb: ! yes\n',
    "block: |\n  two\n  lines\nfolded: >\n  one\n  line\nafter: x\n",
    "base: &b {x: 1, y: [1, 2]}\nother:\n  <<: *b\n  z: 3\nlist: [*b, *b]\n",
    "base: &b {x: 1}\nother: {<<: *b, x: 2}\n",
    "s: &s [1, 2]\nt: *s\nu: {k: *s}\n",
    "k: &k key\n*k : value\n",
    "a: &x 1\nb: &x 2\n",
    "a: *nowhere\n",
    "a: 1\n---\nb: 2\n",
    "[1]: x\n",
    "? {a: 1}\n: x\n",
    "? complex\n: value\n? [a, b]\n",
    "a: 1\na: 2\n",
    "1: one\ntrue: t\n~: n\n1.5: f\n",
    "=: value\n",
    "x: =\n",
    "s: !!set {a, b}\no: !!omap [{a: 1}]\n",
    "b: !!binary aGk=\n",
    "c: !custom thing\n",
    "m: !!map {a: 1}\nq: !!seq [1]\n",
    "a: 1\nb: [\n",
    "a: 1\n  b: 2\n",
    "x: 0x" + "f" * 500 + "\n",
    "x: 2026-02-30\ny: &a [1]\n"
    + "\n".join(f"k{i}: [{', '.join(['*a'] * 100)}]" for i in range(120)),
    "a: &a [*a]\n",
    "nested: " + "[" * 63 + "]" * 63 + "\n",
    "nested: " + "[" * 64 + "]" * 64 + "\n",
    "a: &a " + "[" * 40 + "1" + "]" * 40 + "\nb: " + "[" * 40 + "*a" + "]" * 40 + "\n",
    "text: no\ncrash: yes\n{on: off}: 1\n",
    'name: Direct\nscript:\n  - {at: 0s, chat: alice, text: "Hi"}\n  - {at: 1m, chat: alice, text: no}\n',
]


@pytest.mark.parametrize("loader", sorted(LOADERS))
@pytest.mark.parametrize("text", DOCUMENTS)
def test_one_pass_gives_what_the_two_passes_gave(text: str, loader: str) -> None:
    assert_same(text, LOADERS[loader])


def test_the_one_pass_is_taken_for_ordinary_documents() -> None:
    """Not a fallback that hides a broken composer: an ordinary scenario is composed in one pass
    (and a merge key is left to PyYAML)."""
    fast = safe_yaml._c_bounded(scenario._Loader)
    assert fast is not None
    values = safe_yaml._one_pass_values(scenario._Loader)
    assert values is not None
    data = safe_yaml._compose_values("name: x\nexpect: [{reply: a}]\n", fast, values)
    assert data == {"name": "x", "expect": [{"reply": "a"}]}
    assert data.key_lines == {"name": 1, "expect": 2} and data["expect"].item_lines == [2]
    with pytest.raises(safe_yaml.Fallback):
        safe_yaml._compose_values("b: &b {x: 1}\nc: {<<: *b}\n", fast, values)
    assert safe_yaml._one_pass_values(type("Sub", (scenario._Loader,), {})) is None


SCALARS = [
    "a", "yes", "no", "On", "~", "null", "", "12", "0x1f", "1.5", ".nan", "2026-01-05",
    "2026-13-45", "'quoted'", '"7"', "=", "<<", "!!str 3", "x y", "-1", "1:30",
]  # fmt: skip


@st.composite
def documents(draw: st.DrawFn) -> str:
    """Block and flow YAML of random shape, with anchors and aliases, as text."""
    anchors: list[str] = []

    def node(depth: int, indent: int, flow: bool = False) -> str:
        choice = draw(st.integers(0, (3 if flow else 5) if depth < 4 else 1))
        anchor = ""
        if draw(st.integers(0, 5)) == 0:
            anchor = f"&a{len(anchors)} "
        if choice == 0 and anchors:
            return "*" + draw(st.sampled_from(anchors))
        if choice <= 1:
            text = anchor + draw(st.sampled_from(SCALARS))
        elif choice == 2:
            items = draw(st.lists(st.integers(0, 0), max_size=3))
            text = anchor + "[" + ", ".join(node(depth + 1, indent, True) for _ in items) + "]"
        elif choice == 3:
            keys = draw(st.lists(st.sampled_from(SCALARS[:12]), max_size=3, unique=True))
            flow_items = (f"{k}: {node(depth + 1, indent, True)}" for k in keys)
            text = anchor + "{" + ", ".join(flow_items) + "}"
        else:
            pad = " " * (indent + 2)
            keys = draw(
                st.lists(
                    st.sampled_from(["k", "x", "at", "1", "yes"]),
                    min_size=1,
                    max_size=3,
                    unique=True,
                )
            )
            body = "".join(f"\n{pad}{k}: {node(depth + 1, indent + 2)}" for k in keys)
            text = (anchor.strip() + body) if anchor else body
        if anchor:
            anchors.append(anchor[1:].strip())
        return text

    keys = draw(
        st.lists(
            st.sampled_from(["name", "a", "b", "no", "3"]), min_size=1, max_size=4, unique=True
        )
    )
    return "".join(f"{k}: {node(0, 0)}\n" for k in keys)


@settings(max_examples=300, deadline=None)
@given(documents(), st.sampled_from(sorted(LOADERS)))
def test_random_documents_match(text: str, loader: str) -> None:
    assert_same(text, LOADERS[loader])
