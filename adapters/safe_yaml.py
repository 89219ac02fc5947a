"""Loading YAML and JSON from files a user (or an attacker) wrote, with bounded cost.

PyYAML's SafeLoader constructs only plain data, but it will still:

- expand aliases without limit when the result is printed or walked ("billion laughs": a
  328-byte scenario whose error message was 312 MB; a `--config` that never finished);
- recurse once per nesting level, so `[[[[...` 5,000 deep is a RecursionError traceback;
- build 5,000-digit integers (Python then refuses to print them: a ValueError traceback).

`load_yaml` bounds all of that and reports every refusal as `SafeYAMLError`, whose message is
`file:line: problem` (the line where the problem starts, when known):

| limit | default | refused as |
|---|---|---|
| size of the text | 5 MB | `file: too large` |
| nesting depth, counting what aliases bring in | 64 | `file:line: nested more than 64 levels deep` |
| nodes that aliases add (each alias counts the whole node it repeats) | 10,000 | `file:line: aliases expand to more than ...` |
| an alias of a node that is not finished (a recursive structure) | | `file:line: recursive alias` |
| digits of an integer | 100 | `file:line: integer of N digits` |

Ordinary YAML errors come out the same way (`file:line: bad YAML: ...`). `loader` may be a
subclass of `yaml.SafeLoader` with its own constructors (the scenario loader keeps line
numbers that way); it is never an unsafe loader.

Speed: where PyYAML was built with libyaml (`yaml.__with_libyaml__`, the case for its wheels),
the text is parsed and composed in C (`CParser`, about 5x faster than the pure-Python
parser) and only the constructors run in Python. libyaml composes nodes inside C, where the
depth and alias hooks above cannot run, so the limits are checked first on the C parser's
event stream, iteratively (`_check_events`: the same counts, the same messages); only a text
within them is composed, so C never recurses deeper than the depth limit. A loader with its
own `__init__` (or `USE_LIBYAML = False`, as the tests set it) uses the pure-Python path. libyaml words some syntax
errors differently from PyYAML's parser (same line, same `bad YAML:` prefix).

One pass: for `yaml.SafeLoader` and a loader that sets `one_pass_values` (the scenario
loader), `_compose_values` reads libyaml's events once, checks the same limits at the same
events and builds the values directly with the loader's own scalar constructors, without
composing nodes (2-3x faster than checking the events, then composing and constructing: the
suite's 78 scenario files in about 25 ms instead of 60).
Anything unusual (a merge key, a tag other than str, null, bool, int, float and timestamp on
a scalar or any tag on a collection, an undefined or repeated anchor, a second document, a
value a constructor refuses) raises `Fallback` and the text is loaded the two-pass
way above, so values and errors are PyYAML's own (tests/adapters/test_safe_yaml_one_pass.py
compares both paths, on fixed and random documents).

`load_json` does the same for one JSON text (a recording's line): depth, integer digits,
bounded length; errors are `JSONLimitError` (a ValueError) with a short message, for the
caller to prefix with `file:line`.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_CParser: Any
try:  # libyaml's parser and composer, in C (PyYAML's wheels have it)
    from yaml._yaml import CParser as _CParser
except ImportError:  # pragma: no cover - a PyYAML built without libyaml
    _CParser = None

__all__ = [
    "MAX_ALIAS_NODES",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_INT_DIGITS",
    "Fallback",
    "JSONLimitError",
    "SafeYAMLError",
    "Values",
    "load_json",
    "load_yaml",
]

MAX_BYTES = 5_000_000
MAX_DEPTH = 64
MAX_ALIAS_NODES = 10_000
MAX_INT_DIGITS = 100
MAX_JSON_CHARS = 1_000_000


class SafeYAMLError(ValueError):
    """A YAML text refused: `str()` is `file:line: problem` (or `file: problem`)."""

    def __init__(self, file: str, line: int | None, problem: str) -> None:
        self.file, self.line, self.problem = file, line, problem
        super().__init__(f"{file}:{line}: {problem}" if line else f"{file}: {problem}")


class _Refused(yaml.MarkedYAMLError):
    """A limit hit while composing or constructing (carries the mark of where)."""


def _refused(problem: str, mark: Any) -> _Refused:
    return _Refused(None, None, problem, mark)


def _digits(text: str) -> int:
    """Digits of an integer literal in any base (0x.., 0b.., 0o..): its letters and digits."""
    return sum(c.isalnum() for c in text)


class _Bounds:
    """Mixed into the caller's loader class: depth and alias accounting while composing, and
    a bounded integer constructor."""

    max_depth = MAX_DEPTH
    max_alias_nodes = MAX_ALIAS_NODES
    max_int_digits = MAX_INT_DIGITS

    def _setup_bounds(self) -> None:
        self._depth = 0
        self._alias_nodes = 0
        self._open: list[str | None] = []  # anchors of the collections being composed
        self._shape: dict[int, tuple[int, int]] = {}  # id(node) -> (nodes, depth), finished

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()  # type: ignore[attr-defined]
        if isinstance(event, AliasEvent):
            if event.anchor in self._open:
                raise _refused(f"recursive alias *{event.anchor}", event.start_mark)
            node = super().compose_node(parent, index)  # type: ignore[misc]
            nodes, depth = self._measure(node)
            if self._depth + depth > self.max_depth:
                raise _refused(
                    f"nested more than {self.max_depth} levels deep (through *{event.anchor})",
                    event.start_mark,
                )
            self._alias_nodes += nodes
            if self._alias_nodes > self.max_alias_nodes:
                raise _refused(
                    f"aliases expand to more than {self.max_alias_nodes:,} values "
                    f"(at *{event.anchor}); write the values out instead",
                    event.start_mark,
                )
            return node
        self._depth += 1
        if self._depth > self.max_depth:
            raise _refused(f"nested more than {self.max_depth} levels deep", event.start_mark)
        collection = isinstance(event, CollectionStartEvent)
        if collection:
            self._open.append(event.anchor)
        try:
            return super().compose_node(parent, index)  # type: ignore[misc]
        finally:
            self._depth -= 1
            if collection:
                self._open.pop()

    def _measure(self, node: Node) -> tuple[int, int]:
        """(values, depth) of a finished node, aliases expanded; memoised, and bounded in
        recursion by the depth limit (every composed node is within it)."""
        known = self._shape.get(id(node))
        if known is not None:
            return known
        nodes, depth = 1, 1
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        for child in children:
            n, d = self._measure(child)
            nodes += n
            depth = max(depth, d + 1)
        self._shape[id(node)] = (nodes, depth)
        return nodes, depth

    def construct_bounded_int(self, node: yaml.ScalarNode) -> Any:
        n = _digits(str(node.value))
        if n > self.max_int_digits:
            raise _refused(
                f"integer of {n:,} digits (at most {self.max_int_digits})",
                node.start_mark,
            )
        return yaml.SafeLoader.construct_yaml_int(self, node)  # type: ignore[arg-type]


_BOUNDED: dict[type[yaml.SafeLoader], type[yaml.SafeLoader]] = {}


def _bounded(loader: type[yaml.SafeLoader]) -> type[yaml.SafeLoader]:
    if not issubclass(loader, yaml.SafeLoader):
        raise TypeError(f"{loader.__name__} is not a yaml.SafeLoader")
    known = _BOUNDED.get(loader)
    if known is not None:
        return known

    class Bounded(_Bounds, loader):  # type: ignore[misc, valid-type]
        def __init__(self, stream: Any) -> None:
            super().__init__(stream)
            self._setup_bounds()

    Bounded.add_constructor("tag:yaml.org,2002:int", _Bounds.construct_bounded_int)
    Bounded.__name__ = f"Bounded{loader.__name__}"
    _BOUNDED[loader] = Bounded
    return Bounded


USE_LIBYAML = True  # False: always the pure-Python parser (tests run both)
ONE_PASS = True  # False: libyaml's composer and PyYAML's constructors (tests compare both)
_C_BOUNDED: dict[type[yaml.SafeLoader], type[yaml.SafeLoader]] = {}


def _c_bounded(loader: type[yaml.SafeLoader]) -> type[yaml.SafeLoader] | None:
    """`loader`'s constructors and resolvers over libyaml's C parser and composer (with the
    bounded integer constructor), or None where that is not possible."""
    if (
        _CParser is None
        or not USE_LIBYAML
        or loader.__init__ is not yaml.SafeLoader.__init__  # its own state: keep its parser
    ):
        return None
    known = _C_BOUNDED.get(loader)
    if known is not None:
        return known

    class CBounded(_CParser, loader):  # type: ignore[misc, valid-type]
        max_int_digits = MAX_INT_DIGITS

        def __init__(self, stream: Any) -> None:
            _CParser.__init__(self, stream)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

    CBounded.add_constructor("tag:yaml.org,2002:int", _Bounds.construct_bounded_int)
    CBounded.__name__ = f"CBounded{loader.__name__}"
    _C_BOUNDED[loader] = CBounded
    return CBounded


def _nesting_limit(exc: yaml.MarkedYAMLError) -> None:
    """libyaml's own nesting limit (1,000), when it comes first, is reported as ours."""
    if "maximum nesting depth" in str(exc.problem):
        raise _refused(f"nested more than {MAX_DEPTH} levels deep", exc.problem_mark) from None


def _next_event(get_event: Any) -> Any:
    """The next libyaml event (see `_nesting_limit`)."""
    try:
        return get_event()
    except yaml.MarkedYAMLError as exc:
        _nesting_limit(exc)
        raise


def _count_alias(
    anchor: str | None, open_depth: int, shape: tuple[int, int], counted: int, mark: Any
) -> int:
    """An alias of a finished node of `shape` (values, depth), met `open_depth` collections
    deep, against the depth and expansion limits; the values counted so far, with its own."""
    nodes, depth = shape
    if open_depth + depth > MAX_DEPTH:
        raise _refused(f"nested more than {MAX_DEPTH} levels deep (through *{anchor})", mark)
    counted += nodes
    if counted > MAX_ALIAS_NODES:
        raise _refused(
            f"aliases expand to more than {MAX_ALIAS_NODES:,} values "
            f"(at *{anchor}); write the values out instead",
            mark,
        )
    return counted


def _check_events(source: str | bytes) -> None:
    """The composing limits (depth, alias expansion, recursive aliases) on libyaml's event
    stream, without building anything: what `_Bounds` checks while composing, iteratively."""
    parser = _CParser(source)
    try:
        open_: list[list[Any]] = []  # per open collection: [anchor, values, depth]
        shapes: dict[str, tuple[int, int]] = {}  # anchor -> (values, depth) once finished
        alias_nodes = 0
        while True:
            event = _next_event(parser.get_event)
            if event is None or isinstance(event, StreamEndEvent):
                return
            if isinstance(event, AliasEvent):
                anchor = event.anchor
                if any(c[0] == anchor for c in open_):
                    raise _refused(f"recursive alias *{anchor}", event.start_mark)
                shape = shapes.get(anchor) if anchor is not None else None
                if shape is None:  # undefined: the composer says so in its own words
                    continue
                alias_nodes = _count_alias(anchor, len(open_), shape, alias_nodes, event.start_mark)
                finished: tuple[Any, int, int] | None = (None, *shape)
            elif isinstance(event, ScalarEvent | CollectionStartEvent):
                if len(open_) + 1 > MAX_DEPTH:
                    raise _refused(f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
                if isinstance(event, ScalarEvent):
                    finished = (event.anchor, 1, 1)
                else:
                    open_.append([event.anchor, 1, 1])
                    finished = None
            elif isinstance(event, CollectionEndEvent):
                closed = open_.pop()
                finished = (closed[0], closed[1], closed[2])
            else:
                finished = None
            if finished is not None:
                anchor, nodes, depth = finished
                if anchor is not None:
                    shapes[anchor] = (nodes, depth)
                if open_:
                    open_[-1][1] += nodes
                    open_[-1][2] = max(open_[-1][2], depth + 1)
    finally:
        parser.dispose()


# ---------------------------------------------------------------- one pass over the events


class Fallback(Exception):  # noqa: N818 - a signal, not an error
    """Raised by the one-pass composer, or by a `Values` method, for what it leaves to PyYAML's
    own composer and constructors: a merge key, another tag (see `_SCALAR_TAGS`), an undefined or
    repeated anchor, a second document, a value a constructor refuses. The text is then loaded
    the two-pass way, which gives PyYAML's own value or error, exactly as before."""


class Values:
    """How the one-pass composer builds collections from their finished items: plain dicts
    and lists, as `yaml.SafeLoader` does. A loader class opts in by setting `one_pass_values`
    to an instance (in its own class body: a subclass does not inherit it, its constructors may
    differ). `line` is the 1-based line where a node starts; an alias has the line of the node
    it repeats, as PyYAML's nodes do."""

    def mapping(
        self, loader: Any, line: int, keys: list[Any], key_lines: list[int], values: list[Any]
    ) -> Any:
        out: dict[Any, Any] = {}
        try:
            for key, value in zip(keys, values, strict=True):
                out[key] = value
        except TypeError:  # an unhashable key: PyYAML words the error
            raise Fallback from None
        return out

    def sequence(self, loader: Any, line: int, items: list[Any], item_lines: list[int]) -> Any:
        return items


_T = "tag:yaml.org,2002:"
_STR = _T + "str"
# Scalars the one-pass composer builds with the loader's own constructors (resolved or written
# out, as in `!!int "3"`), besides str; any other tag (merge `<<`, value `=`, binary, a local
# `!tag`, a tag on a collection) goes to PyYAML.
_SCALAR_TAGS = frozenset(_T + t for t in ("null", "bool", "int", "float", "timestamp"))


def _one_pass_values(loader: type[yaml.SafeLoader]) -> Values | None:
    if loader is yaml.SafeLoader:
        return _PLAIN
    values = loader.__dict__.get("one_pass_values")
    if (
        values is None
        or loader.yaml_path_resolvers
        or None in loader.yaml_implicit_resolvers
        or not isinstance(values, Values)
    ):
        return None
    return values


_PLAIN = Values()


def _compose_values(source: str | bytes, cls: type[yaml.SafeLoader], values: Values) -> Any:
    """The document's value in one pass over libyaml's events: the limits of `_check_events`
    (same counts, same messages, at the same event) checked while the values are built, with
    the loader's own resolver and scalar constructors; no nodes are composed. Raises
    `Fallback` for anything it leaves to PyYAML.

    The innermost open collection lives in local variables (`items`, `lines`, `nodes`,
    `depth`...) and the ones around it on `outer`: a scalar, the commonest event, touches
    locals only (issue 18: a third less time per event than a list per open collection)."""
    loader: Any = cls(source)
    get_event, resolve, constructors = loader.get_event, loader.resolve, cls.yaml_constructors
    implicit = cls.yaml_implicit_resolvers
    default_tag = cls.DEFAULT_SCALAR_TAG
    make_mapping, make_sequence = values.mapping, values.sequence
    # the open collections, outermost first: their anchors (for recursive aliases) and, but
    # for the innermost, their saved state
    open_anchors: list[str | None] = []
    outer: list[tuple[Any, ...]] = []
    # the innermost open collection: None at the top level
    items: list[Any] | None = None
    lines: list[int] = []
    own_anchor: str | None = None
    is_map, own_line, own_nodes, own_depth = False, 0, 1, 1
    anchors: dict[str, tuple[Any, int, int, int]] = {}  # anchor -> (value, line, values, depth)
    alias_nodes = 0
    documents = 0
    result: Any = None
    try:
        while True:
            event = get_event()
            kind = type(event)
            if kind is ScalarEvent:
                if len(open_anchors) >= MAX_DEPTH:
                    raise _refused(f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
                tag, text = event.tag, event.value
                if tag is None:  # `resolve` inlined: no path resolvers, no wildcard ones
                    tag = default_tag
                    if event.implicit[0]:  # plain: YAML 1.1's implicit types
                        for candidate, pattern in implicit.get(text[:1], ()):
                            if pattern.match(text):
                                tag = candidate
                                break
                elif tag == "!":
                    tag = resolve(ScalarNode, text, event.implicit)
                if tag == _STR:
                    value = text
                elif tag in _SCALAR_TAGS:
                    node = ScalarNode(tag, text, event.start_mark, event.end_mark, event.style)
                    try:
                        value = constructors[tag](loader, node)
                    except Exception:  # noqa: BLE001 - PyYAML's path raises it, in its order
                        raise Fallback from None
                else:
                    raise Fallback
                anchor, line = event.anchor, event.start_mark.line + 1
                if anchor is None and items is not None:  # the commonest case, in short
                    own_nodes += 1
                    if own_depth < 2:
                        own_depth = 2
                    items.append(value)
                    lines.append(line)
                    continue
                nodes = depth = 1
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                if len(open_anchors) >= MAX_DEPTH:
                    raise _refused(f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
                if event.tag is not None and event.tag != "!":
                    raise Fallback
                if items is not None:
                    outer.append((is_map, own_anchor, own_line, own_nodes, own_depth, items, lines))
                open_anchors.append(event.anchor)
                is_map, own_anchor = kind is MappingStartEvent, event.anchor
                own_line, own_nodes, own_depth = event.start_mark.line + 1, 1, 1
                items, lines = [], []
                continue
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                if items is None:  # pragma: no cover - libyaml ends only what it started
                    raise Fallback
                if is_map:
                    value = make_mapping(loader, own_line, items[0::2], lines[0::2], items[1::2])
                else:
                    value = make_sequence(loader, own_line, items, lines)
                anchor, line, nodes, depth = own_anchor, own_line, own_nodes, own_depth
                open_anchors.pop()
                if outer:
                    is_map, own_anchor, own_line, own_nodes, own_depth, items, lines = outer.pop()
                else:
                    items = None
            elif kind is AliasEvent:
                name = event.anchor
                if name in open_anchors:
                    raise _refused(f"recursive alias *{name}", event.start_mark)
                known = anchors.get(name)
                if known is None:  # undefined: PyYAML's composer says so in its own words
                    raise Fallback
                value, line, nodes, depth = known
                alias_nodes = _count_alias(
                    name, len(open_anchors), (nodes, depth), alias_nodes, event.start_mark
                )
                anchor = None
            elif kind is DocumentStartEvent:
                documents += 1
                if documents > 1:  # "expected a single document": PyYAML's words
                    raise Fallback
                continue
            elif kind is StreamEndEvent or event is None:
                return result
            elif kind is DocumentEndEvent or kind is StreamStartEvent:
                continue
            else:  # pragma: no cover - libyaml has no other event
                raise Fallback
            if anchor is not None:
                if anchor in anchors:  # a repeated anchor: PyYAML's composer refuses it
                    raise Fallback
                anchors[anchor] = (value, line, nodes, depth)
            if items is not None:
                own_nodes += nodes
                if depth >= own_depth:
                    own_depth = depth + 1
                items.append(value)
                lines.append(line)
            else:
                result = value
    except yaml.MarkedYAMLError as exc:
        _nesting_limit(exc)
        raise
    finally:
        loader.dispose()


def load_yaml(
    source: str | bytes,
    file: str = "<yaml>",
    *,
    loader: type[yaml.SafeLoader] = yaml.SafeLoader,
    max_bytes: int = MAX_BYTES,
) -> Any:
    """One YAML document, within the limits above; `SafeYAMLError` otherwise."""
    if len(source) > max_bytes:
        raise SafeYAMLError(file, None, f"too large ({len(source):,} bytes; at most {max_bytes:,})")
    try:
        fast = _c_bounded(loader)
        if fast is not None:
            values = _one_pass_values(loader) if ONE_PASS else None
            if values is not None:
                try:
                    return _compose_values(source, fast, values)
                except Fallback:
                    pass  # the two passes below give PyYAML's own value or error
            _check_events(source)
            return yaml.load(source, Loader=fast)  # noqa: S506 - SafeLoader constructors only
        return yaml.load(source, Loader=_bounded(loader))  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        if isinstance(exc, _Refused):
            raise SafeYAMLError(file, line, str(exc.problem)) from None
        what = " ".join(str(x) for x in (exc.context, exc.problem) if x) or "not valid"
        raise SafeYAMLError(file, line, f"bad YAML: {what}") from None
    except yaml.YAMLError as exc:
        raise SafeYAMLError(file, None, f"bad YAML: {exc}") from None
    except RecursionError:  # a last resort: the depth limit is far below Python's
        raise SafeYAMLError(file, None, "nested too deeply") from None


class YAMLFileError(SafeYAMLError):
    """A YAML file that could not be read at all (missing, unreadable, not UTF-8): `str()` is
    `cannot read FILE: reason` or `FILE is not UTF-8 text (reason)`."""

    def __init__(self, file: str, message: str) -> None:
        self.file, self.line, self.problem = file, None, message
        ValueError.__init__(self, message)


def load_yaml_file(path: str, *, max_bytes: int = MAX_BYTES) -> Any:
    """One YAML document from a small file, read no further than `max_bytes` (+1, to tell a
    larger file) and loaded within the limits above; `SafeYAMLError` (a `YAMLFileError` when
    the file itself cannot be read) otherwise."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(max_bytes + 1)
    except OSError as exc:
        raise YAMLFileError(path, f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise YAMLFileError(path, f"{path} is not UTF-8 text ({exc.reason})") from None
    return load_yaml(text, path, max_bytes=max_bytes)


# ---------------------------------------------------------------------------------- JSON


class JSONLimitError(ValueError):
    """A JSON text refused for its cost or for a value wapa never writes."""


def _int(text: str) -> int:
    n = _digits(text)
    if n > MAX_INT_DIGITS:
        raise JSONLimitError(f"integer of {n:,} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def load_json(text: str, *, max_depth: int = MAX_DEPTH, max_chars: int = MAX_JSON_CHARS) -> Any:
    """One JSON value. Raises `json.JSONDecodeError` for bad JSON and `JSONLimitError` for
    one too long, nested deeper than `max_depth`, or holding a huge integer. NaN and
    Infinity are read as floats: the caller's checks name the field that holds one."""
    if len(text) > max_chars:
        raise JSONLimitError(f"line of {len(text):,} characters (at most {max_chars:,})")
    try:
        value = json.loads(text, parse_int=_int)
    except RecursionError:
        raise JSONLimitError(f"nested more than {max_depth} levels deep") from None
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:  # iterative: the depth check itself never recurses
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise JSONLimitError(f"nested more than {max_depth} levels deep")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return value
