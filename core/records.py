"""`Record`: value equality, hashing and repr for frozen records, written once.

The core's events and effects are slotted dataclasses, most of them frozen (and so are the
model policy's steps and the simulator's records). `@dataclass` writes every method it adds
as source text and compiles it while the module is imported, at every start of every
process: about 0.1 ms per method, six methods for a frozen record (issue 18: building
dataclasses was about 60 % of the core's import). So a record asks `@dataclass` only for
what must be its own, `__init__` (and, frozen, the `__setattr__` and `__delattr__` that
refuse changes), and inherits these three from `Record`, which behave as dataclass's do:

- `a == b` when both are of the same class and their fields are equal, in order (a record
  compared with anything else is `NotImplemented`, so never equal);
- `hash(a)` is the hash of the tuple of its fields;
- `repr(a)` is `Name(field=value!r, ...)`.

    @dataclass(frozen=True, slots=True, eq=False, repr=False)
    class Send(Record):
        ...

Fields declared with `field(compare=False)` or `field(repr=False)` are not supported (no
record has one; `shape` refuses them rather than compare or show them wrongly).

A record pickles and copies as its class called with its fields (`__reduce__`), as a
dataclass without custom state would.

The compiled core (bench/build_core.py) compiles this module and core/decision.py: `Record`
is then a native class that Python classes may subclass (`allow_interpreted_subclasses`:
the events, the simulator's and the model policy's records), so that a `Decision`, native
too, is built and read by the compiled core without a lookup by name. `mypyc_attr` says so to
mypyc; at run time it is a decorator that does nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from operator import attrgetter
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # read by mypy and mypyc (bench/build_core.py): never imported at run time
    from mypy_extensions import mypyc_attr


def _no_flags(*_names: str, **_flags: object) -> Callable[[type], type]:
    """`mypyc_attr` at run time: a decorator that does nothing (mypyc has read it)."""
    return _same


def _same(cls: type) -> type:
    return cls


# not in an `else:` of the import: mypyc compiles that as unreachable code, raising if reached
globals().setdefault("mypyc_attr", _no_flags)

Getter = Callable[[Any], tuple[Any, ...]]
_SHAPES: dict[type, tuple[tuple[str, ...], Getter]] = {}


def shape(cls: type) -> tuple[tuple[str, ...], Getter]:
    """A record class's field names, in order, and the function giving its fields' values as
    a tuple (made once a class, at its first comparison, hash or repr)."""
    known = _SHAPES.get(cls)
    if known is not None:
        return known
    declared = fields(cls)
    if any(not (f.compare and f.repr and f.hash is None) for f in declared):
        raise TypeError(f"{cls.__qualname__}: Record supports plain fields only")
    names = tuple(f.name for f in declared)
    getter: Getter
    if len(names) > 1:
        getter = attrgetter(*names)
    elif names:
        one = attrgetter(names[0])
        getter = lambda record: (one(record),)  # noqa: E731
    else:
        getter = lambda record: ()  # noqa: E731
    _SHAPES[cls] = names, getter
    return names, getter


@mypyc_attr(allow_interpreted_subclasses=True)
class Record:
    """The base of a record; see the module docstring."""

    __slots__: ClassVar[tuple[str, ...]] = ()  # a ClassVar: mypyc sets no other on its class

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        values = shape(self.__class__)[1]
        return bool(values(self) == values(other))

    def __hash__(self) -> int:
        return hash(shape(self.__class__)[1](self))

    def __repr__(self) -> str:
        names, values = shape(self.__class__)
        shown = ", ".join(f"{n}={v!r}" for n, v in zip(names, values(self), strict=True))
        return f"{self.__class__.__qualname__}({shown})"

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        return self.__class__, shape(self.__class__)[1](self)
