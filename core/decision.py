"""`Decision`: why the assistant did or did not act, the effect the core makes most (one or more
per event). Re-exported by core/events.py with the other effects, where drivers import it.

Its own module because the compiled core (bench/build_core.py) compiles it: a native class,
built and read by the compiled machine without a lookup by name, where the events stay Python
classes (a compiled class checks its fields' types when built, and the core must judge ill-typed
events, never raise on them: core/machine.py).

Annotations are evaluated here (no `from __future__ import annotations`): a compiled
dataclass sees a class variable as one only through a string annotation, and a string stays
that string only when annotations are evaluated (`Decision.__slots__`)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from wapa.core.records import Record

A = TypeVar("A")
B = TypeVar("B")


class _Sentence(Record):
    """What a `Decision` made by `Decision.later` keeps its sentence's parts in: not fields of
    the dataclass (declared here), slots all the same (declared by `Decision`: a compiled
    class may not inherit a non-empty `__slots__`)."""

    __slots__ = ()
    _render: Callable[[Any, Any], str]
    _a: Any
    _b: Any


@dataclass(eq=False, repr=False, init=False)
class Decision(_Sentence):
    """Why the assistant did or did not act: a machine-readable `code` (see `Reason`), the chat,
    the time, and a human sentence. Never carries message text.

    Not frozen, unlike the other records: the core makes one or more per event, and a frozen
    dataclass costs about four times as much to build (each field set through
    `object.__setattr__`). Nothing changes a decision once made (treat it as frozen); it stays
    hashable and comparable by value.

    A sentence with a time in it may be made when first read (`Decision.later`): formatting a
    time costs more than the decision itself, and where no one reads the sentence (the bench,
    the fuzzer's traffic, most tests) it is never made; the runner's log, the store's trace and
    the simulator's reports read every one, so there the cost moves, it does not vanish. Such a
    decision keeps the function and its two arguments, its `detail` slot empty, and its
    `detail` is `render(a, b)`, made at the first read and kept: the same value, equality,
    hash, repr and export as a decision given that text. (Compiled, that is Python's reading:
    compiled code that read an empty `detail` would get an AttributeError; the core reads the
    `detail` only of decisions it never makes later.)

    Written for mypyc too: the `__init__` (compiled, a generated one would stay Python) and the
    slots (its fields', then `_Sentence`'s) are written out; `request_id`'s default is the
    `__init__`'s (a class attribute would clash with its slot)."""

    # strings: compiled, a dataclass's class variable is known as one only so (module notes)
    __slots__: "ClassVar[Any]" = (
        *("t", "chat", "code", "detail", "request_id"),
        *("_render", "_a", "_b"),
    )
    __deletable__: "ClassVar[Any]" = ("detail",)  # for mypyc: `later` empties it
    t: float
    chat: str
    code: str  # a Reason (a StrEnum: equal to its plain string, serialised as one)
    detail: str
    request_id: str

    def __init__(self, t: float, chat: str, code: str, detail: str, request_id: str = "") -> None:
        self.t = t
        self.chat = chat
        self.code = code
        self.detail = detail
        self.request_id = request_id

    @classmethod
    def later(
        cls, t: float, chat: str, code: str, render: Callable[[A, B], str], a: A, b: B
    ) -> "Decision":
        """A decision whose `detail` is `render(a, b)`, made when first read. `a` and `b` must
        be values that never change (numbers, strings), so the sentence is the one of now."""
        d = Decision(t, chat, code, "")
        del d.detail
        d._render, d._a, d._b = render, a, b
        return d

    def _sentence_when_read(self, name: str) -> str:
        """`__getattr__` (set below): Python calls it only for an empty slot, a `later`
        decision's `detail`."""
        if name != "detail":
            raise AttributeError(f"'Decision' object has no attribute {name!r}")
        self.detail = text = self._render(self._a, self._b)
        return text


# set here, not in the class: mypy would allow any attribute of a class with a `__getattr__`
setattr(Decision, "__getattr__", Decision._sentence_when_read)  # noqa: B010
