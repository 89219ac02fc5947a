"""A chat's context is kept packed (`core.context.Context`, one bytes object per entry) and
reads back exactly what was put in: times, who wrote, names, ids and texts in any script,
lone surrogates included; trimmed, filtered, replaced and exported as lists did."""

from __future__ import annotations

import json
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wapa.core.context import ASSISTANT, CONTACT, OWNER, Context, Entry, trim
from wapa.core.policy import Policy

T0 = 1_700_000_000.0

entries = st.builds(
    Entry,
    st.floats(min_value=0, max_value=1e11, allow_nan=False),
    st.sampled_from((CONTACT, OWNER, ASSISTANT)),
    st.text(max_size=40),  # surrogates included: names and ids are not cleaned
    st.text(max_size=300),
    st.text(max_size=40),
)


@given(st.lists(entries, max_size=12))
def test_what_goes_in_reads_back_exactly(given_entries: list[Entry]) -> None:
    context = Context(given_entries)
    assert list(context) == given_entries and context == given_entries
    assert len(context) == len(given_entries)
    assert list(reversed(context)) == given_entries[::-1]
    assert context.export() == [e.export() for e in given_entries]
    assert Context.restore(context.export()) == context
    for i, e in enumerate(given_entries):
        assert context[i] == e and context.time(i) == e.t


def test_hebrew_emoji_and_a_lone_surrogate() -> None:
    e = Entry(T0, CONTACT, "דנה \ud800", "שלום 👋 are you there?", "3EB0\udfff")
    (back,) = Context([e])
    assert back == e


def test_an_entry_from_no_known_writer_is_refused() -> None:
    with pytest.raises(ValueError, match="'someone'"):
        Context([Entry(T0, "someone", "", "hi", "m1")])


def test_add_append_replace_keep() -> None:
    context = Context()
    context.add(T0, CONTACT, "Alice", "hello", "m1", 10, 86400.0)
    context.append(Entry(T0 + 1, ASSISTANT, "", "Hi Alice!", "r1"))
    context[0] = Entry(T0, CONTACT, "Alice", "[voice message] hello", "m1")
    assert [e.text for e in context] == ["[voice message] hello", "Hi Alice!"]
    assert context.keep(e.id != "r1" for e in context) is True
    assert context == [Entry(T0, CONTACT, "Alice", "[voice message] hello", "m1")]
    assert context.keep([True]) is False


def test_trim_drops_the_too_old_and_the_too_many_oldest_first() -> None:
    policy = Policy()
    context = Context(
        Entry(T0 + i, CONTACT, "Bob", f"message {i}", f"m{i}")
        for i in range(policy.max_context + 3)
    )
    trim(context, T0 + 20, policy)
    assert [e.id for e in context] == [f"m{i}" for i in range(3, policy.max_context + 3)]
    trim(context, T0 + 5 + policy.context_ttl + 0.5, policy)  # m3..m5 older than the ttl
    assert [e.id for e in context][0] == "m6"


def test_add_trims_as_it_appends() -> None:
    policy = Policy()
    limits = policy.max_context, policy.context_ttl
    context, alone = Context(), Context()
    for i in range(policy.max_context + 3):
        context.add(T0 + i, CONTACT, "Bob", f"message {i}", f"m{i}", *limits)
        alone.append(Entry(T0 + i, CONTACT, "Bob", f"message {i}", f"m{i}"))
        trim(alone, T0 + i, policy)
        assert context == list(alone)
    late = T0 + 20 + policy.context_ttl
    context.add(late, OWNER, "", "back", "m99", *limits)  # the others are too old now
    assert [e.id for e in context] == ["m99"]


def test_packed_is_smaller_than_the_objects_it_replaces() -> None:
    e = Entry(T0 + 0.25, CONTACT, "Alice", "x" * 80, "3EB0C767D26A1D1B2C8F")
    (packed,) = Context([e])._items
    objects = sum(sys.getsizeof(x) for x in (e, e.t, e.text, e.id))  # the name is shared
    assert sys.getsizeof(packed) < objects - 120
    assert json.loads(json.dumps(Context([e]).export())) == [e.export()]


def test_entries_stay_apart_through_trim_keep_and_replace() -> None:
    """A lone high surrogate ending one entry and a lone low one starting the next stay two
    entries' characters, through replace, keep and the trim of every append."""
    policy = Policy()
    first = Entry(T0, CONTACT, "A", "ends high \ud800", "m1")
    second = Entry(T0 + 1, CONTACT, "\udc00 B", "שלום 👋", "\udfffm2")
    context = Context([first, second])
    assert list(context) == [first, second]
    assert context.export() == [first.export(), second.export()]
    third = Entry(T0 + 2, OWNER, "", "é" * 3, "m3")
    context[0] = third
    assert list(context) == [third, second]
    assert context.keep([False, True]) and list(context) == [second]
    for i in range(policy.max_context + 1):
        context.add(
            T0 + 3 + i, ASSISTANT, "", f"ü{i}", f"r{i}", policy.max_context, policy.context_ttl
        )
    assert [e.text for e in context] == [f"ü{i}" for i in range(1, policy.max_context + 1)]
    assert Context.restore(json.loads(json.dumps(context.export()))) == context


def test_the_age_check_of_add_sees_the_first_entry_whatever_changed_it() -> None:
    """`add` compares with the first entry's time as the context keeps it: built, appended,
    replaced, kept or trimmed, the entry too old goes at the next `add`."""
    ttl = 3600.0
    old, new = (
        Entry(T0 - 2 * ttl, CONTACT, "Bob", "old", "m1"),
        Entry(T0, CONTACT, "Bob", "new", "m2"),
    )
    for made in ("built", "appended", "replaced", "kept", "trimmed"):
        if made == "built":
            context = Context([old, new])
        elif made == "appended":
            context = Context()
            context.append(old)
            context.append(new)
        elif made == "replaced":
            context = Context([new, new])
            context[0] = old
        elif made == "kept":
            context = Context([new, old, new])
            assert context.keep([False, True, True])
        else:
            context = Context([new, old, new])
            context.trim(T0, 2, ttl * 10)  # one too many: the first goes, `old` is first now
        assert context[0] == old, made
        context.add(T0 + 1, CONTACT, "Bob", "later", "m3", 10, ttl)
        assert [e.id for e in context][-1] == "m3" and old not in list(context), made
