"""The codec's nodes for scalars, enums, literals, containers and unions.

Every node is strict both ways: `encode` takes only values that decode
back to an equal value of the same type, and `decode` takes only what
`encode` produces (plus an int where a float is expected).
"""

from __future__ import annotations

import contextlib
import enum
import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast, final

from ._message import is_message_class
from ._walk import Bad, Node, Open

NULL, BOOL, INT, FLOAT, STR, ARRAY, OBJECT, TAGGED = (
    "null",
    "boolean",
    "integer",
    "float",
    "string",
    "array",
    "object",
    "message",
)
"""The kinds of JSON data; a dict with a ``"type"`` key is a message (`TAGGED`), else an `OBJECT`."""

ALL_KINDS = frozenset({NULL, BOOL, INT, FLOAT, STR, ARRAY, OBJECT, TAGGED})

SCALAR_KINDS: Mapping[type, str] = {type(None): NULL, bool: BOOL, int: INT, float: FLOAT, str: STR}
_KIND_OF_BASE: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, BOOL),
    (int, INT),
    (float, FLOAT),
    (str, STR),
    ((list, tuple, set, frozenset), ARRAY),
    (dict, OBJECT),
)

NOT_WIRE_DATA = "is not wire data (refs and other live objects cannot be sent; send a message or plain data)"


def data_kind(data: object) -> str | None:
    """The JSON kind of decoded JSON ``data``, or None if it is not JSON data."""
    kind = SCALAR_KINDS.get(type(data))
    if kind is not None:
        return kind
    if isinstance(data, list):
        return ARRAY
    if isinstance(data, dict):
        return TAGGED if "type" in data else OBJECT
    return None


def value_kind(value: object) -> str | None:
    """The JSON kind ``value`` would be encoded as, or None if it is nothing like wire data.

    Subclasses (an OrderedDict, a str subclass) get their base's kind, so
    that the node of that kind can say what exactly it expected.
    """
    kind = SCALAR_KINDS.get(type(value))
    if kind is not None:
        return kind
    if is_message_class(type(value)):
        return TAGGED
    if getattr(type(value), "__troupe_ref__", False):  # a ref travels as its address, an object
        return OBJECT
    if isinstance(value, enum.Enum):
        return SCALAR_KINDS.get(type(value.value))
    return next((kind for base, kind in _KIND_OF_BASE if isinstance(value, base)), None)


_SHOWN = 40  # characters of a scalar's repr in an error message


def show(value: object) -> str:
    """A short description of a value for error messages: ``str '3'``, ``list``."""
    if value is None:
        return "None"
    if type(value) in SCALAR_KINDS:
        text = repr(value)
        return f"{type(value).__name__} {text if len(text) <= _SHOWN else text[: _SHOWN - 3] + '...'}"
    return type(value).__name__


def unexpected(expected: str, value: object, *, encoding: bool) -> Bad:
    """The error for a value of the wrong type (one that is not wire data says so)."""
    if encoding and value_kind(value) is None:
        return Bad(f"{type(value).__name__} {NOT_WIRE_DATA}")
    if not encoding and data_kind(value) is None:
        return Bad(f"{type(value).__name__} is not JSON data")
    return Bad(f"expected {expected}, got {show(value)}")


def checked_float(value: object, *, encoding: bool) -> float:
    """``value`` as a finite float: a float as it is, an int converted."""
    if type(value) is float:
        if not math.isfinite(value):
            raise Bad(f"{value!r} is not a JSON number (NaN and infinities are not wire data)")
        return value
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            raise Bad(f"int {value} is too large for a float") from None
    raise unexpected("a float", value, encoding=encoding)


_ARTICLE = {str: "a str", int: "an int", bool: "a bool", type(None): "None"}


@final
class Exact(Node):
    """``str``, ``int``, ``bool`` or ``None``: that type exactly (no ``True`` for an int)."""

    __slots__ = ("cls",)

    def __init__(self, cls: type) -> None:
        super().__init__(_ARTICLE[cls], frozenset({SCALAR_KINDS[cls]}))
        self.cls = cls

    def encode(self, value: Any) -> Any:
        if type(value) is self.cls:
            return value
        raise unexpected(self.name, value, encoding=True)

    def decode(self, data: Any) -> Any:
        if type(data) is self.cls:
            return data
        raise unexpected(self.name, data, encoding=False)


@final
class Float(Node):
    """``float``: finite floats; an int is taken and becomes a float."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("a float", frozenset({FLOAT}))

    def encode(self, value: Any) -> Any:
        return checked_float(value, encoding=True)

    def decode(self, data: Any) -> Any:
        return checked_float(data, encoding=False)


def _scalar_kind(value: object) -> str | None:
    if type(value) is float and not math.isfinite(value):
        return None
    return SCALAR_KINDS.get(type(value))


@final
class Choice(Node):
    """An enum (by value) or a ``Literal``: one of a fixed set of JSON scalars, type included."""

    __slots__ = ("to_python", "to_wire", "types")

    def __init__(self, name: str, pairs: Iterable[tuple[object, object]]) -> None:
        """``pairs``: (Python value, wire value); every wire value is a JSON scalar."""
        pairs = list(pairs)
        self.to_wire = {(type(python), python): wire for python, wire in pairs}
        self.to_python = {(type(wire), wire): python for python, wire in pairs}
        self.types = frozenset(type(python) for python, _ in pairs)
        super().__init__(name, frozenset(SCALAR_KINDS[t] for t, _ in self.to_python))

    def encode(self, value: Any) -> Any:
        if type(value) in self.types:  # only then hash it: a stranger's __hash__ may raise anything
            try:
                return self.to_wire[type(value), value]
            except KeyError:
                pass
        raise unexpected(self.name, value, encoding=True)

    def decode(self, data: Any) -> Any:
        if type(data) in SCALAR_KINDS:
            try:
                return self.to_python[type(data), data]
            except KeyError:
                pass
        elif data_kind(data) is None:
            raise Bad(f"{type(data).__name__} is not JSON data")
        wires = [wire for _, wire in self.to_python]
        raise Bad(f"expected one of {wires!r} ({self.name}), got {show(data)}")


def enum_choice(cls: type[enum.Enum]) -> Choice | str:
    """The node of an enum type, or why it cannot be one."""
    members = list(cls.__members__.values())
    bad = [m for m in members if _scalar_kind(m.value) is None]
    if bad:
        return f"the value of {bad[0]!r} is not a JSON scalar (str, int, float, bool or None)"
    return Choice(cls.__name__, [(m, m.value) for m in members])


def literal_choice(name: str, values: Iterable[object]) -> Choice | str:
    """The node of a ``Literal[...]`` type, or why it cannot be one."""
    values = list(values)
    bad = [v for v in values if type(v) not in (str, int, bool, type(None))]
    if bad:
        return f"the literal {bad[0]!r} is not a str, int, bool or None"
    return Choice(name, [(v, v) for v in values])


def _as_list(values: list[Any]) -> list[Any]:
    return values


def _sorted(values: list[Any]) -> list[Any]:
    # Sets have no order: sort their wire items so that equal sets encode
    # alike; items that do not compare (objects, mixed types) by their JSON.
    try:
        values.sort()
    except TypeError:
        with contextlib.suppress(RecursionError):  # only under a tiny recursion limit: keep the order
            values.sort(key=_json_text)
    return values


def _json_text(value: object) -> str:
    return json.dumps(value, sort_keys=True)


def _unique(cls: type[set[Any] | frozenset[Any]]) -> Callable[[list[Any]], Any]:
    def build(values: list[Any]) -> Any:
        out: set[Any] = set()
        for i, value in enumerate(values):
            try:
                if value in out:
                    raise Bad(f"duplicate item {show(value)} in a set", i)
                out.add(value)
            except TypeError:
                raise Bad(f"{type(value).__name__} cannot be a set item (it is not hashable)", i) from None
        return out if cls is set else frozenset(out)

    return build


@final
class Sequence(Node):
    """``list[X]``, ``tuple[X, ...]``, ``set[X]``, ``frozenset[X]``: a JSON array, the exact type back."""

    __slots__ = ("cls", "item", "to_python", "to_wire")

    def __init__(self, name: str, cls: type, item: Node) -> None:
        super().__init__(name, frozenset({ARRAY}))
        self.cls = cls
        self.item = item
        sets = cls in (set, frozenset)
        self.to_wire = _sorted if sets else _as_list
        self.to_python: Callable[[list[Any]], Any] = (
            _unique(cls) if sets else (tuple if cls is tuple else _as_list)
        )

    def encode(self, value: Any) -> Any:
        if type(value) is not self.cls:
            raise unexpected(self.name, value, encoding=True)
        items = cast("Iterable[Any]", value)  # `type(value) is self.cls` narrowed it to object
        return Open(((i, self.item, x) for i, x in enumerate(items)), self.to_wire)

    def decode(self, data: Any) -> Any:
        if not isinstance(data, list):
            raise unexpected(f"an array ({self.name})", data, encoding=False)
        return Open(((i, self.item, x) for i, x in enumerate(data)), self.to_python)


@final
class Tuple(Node):
    """``tuple[X, Y]``: a JSON array of exactly that many items."""

    __slots__ = ("items",)

    def __init__(self, name: str, items: list[Node]) -> None:
        super().__init__(name, frozenset({ARRAY}))
        self.items = items

    def _open(self, values: Any, build: Callable[[list[Any]], Any]) -> Open:
        return Open(zip(range(len(values)), self.items, values, strict=True), build)

    def encode(self, value: Any) -> Any:
        if type(value) is not tuple:
            raise unexpected(self.name, value, encoding=True)
        if len(value) != len(self.items):
            raise Bad(f"expected {self.name}, {_items(len(self.items))}, got {_items(len(value))}")
        return self._open(value, _as_list)

    def decode(self, data: Any) -> Any:
        if not isinstance(data, list):
            raise unexpected(f"an array ({self.name})", data, encoding=False)
        if len(data) != len(self.items):
            raise Bad(
                f"expected an array of {_items(len(self.items))} ({self.name}), got {_items(len(data))}"
            )
        return self._open(data, tuple)


def _items(n: int) -> str:
    return "1 item" if n == 1 else f"{n} items"


def escape(key: str) -> str:
    """A user's key on the wire: ``type``, ``type_``, ... get one more ``_`` (``"type"`` is the tag)."""
    return key + "_" if key.rstrip("_") == "type" else key


def unescape(key: str) -> str:
    """The user's key for a wire key (`escape` undone)."""
    return key[:-1] if key != "type" and key.rstrip("_") == "type" else key


def _str_keys(mapping: dict[Any, Any]) -> None:
    for key in mapping:
        if type(key) is not str:
            raise Bad(f"key {show(key)} is not a str (JSON object keys are strings)")


@final
class Dict(Node):
    """``dict[str, X]``: a JSON object whose keys may not be the message tag ``"type"``."""

    __slots__ = ("value",)

    def __init__(self, name: str, value: Node) -> None:
        super().__init__(name, frozenset({OBJECT}))
        self.value = value

    def encode(self, value: Any) -> Any:
        if type(value) is not dict:
            raise unexpected(self.name, value, encoding=True)
        _str_keys(value)
        keys = [escape(k) for k in value]
        return Open(
            ((k, self.value, x) for k, x in value.items()), lambda done: dict(zip(keys, done, strict=True))
        )

    def decode(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise unexpected(f"an object ({self.name})", data, encoding=False)
        _str_keys(data)
        if "type" in data:
            raise Bad(
                f"a 'type' key marks a message, not a {self.name} (a key 'type' travels as 'type_')", "type"
            )
        keys = [unescape(k) for k in data]
        return Open(
            ((k, self.value, x) for k, x in data.items()), lambda done: dict(zip(keys, done, strict=True))
        )


@final
class Union(Node):
    """``X | Y | None``: the member is chosen by the JSON kind of the data (messages by their tag)."""

    __slots__ = ("by_kind",)

    def __init__(self, name: str, by_kind: dict[str, Node]) -> None:
        super().__init__(name, frozenset(by_kind))
        self.by_kind = by_kind

    def encode(self, value: Any) -> Any:
        member = self.by_kind.get(value_kind(value))  # type: ignore[arg-type] # None finds nothing
        if member is None:
            raise unexpected(self.name, value, encoding=True)
        return member.encode(value)

    def decode(self, data: Any) -> Any:
        member = self.by_kind.get(data_kind(data))  # type: ignore[arg-type] # None finds nothing
        if member is None:
            raise unexpected(self.name, data, encoding=False)
        return member.decode(data)


def union(name: str, members: list[Node]) -> Union | str:
    """The node of a union of distinct JSON kinds, or why its members cannot be told apart."""
    by_kind: dict[str, Node] = {}
    for member in members:
        for kind in member.kinds:
            other = by_kind.setdefault(kind, member)
            if other is not member:
                return (
                    f"{other.name} and {member.name} are both JSON {kind}s: the data cannot tell them apart"
                )
    if INT not in by_kind and FLOAT in by_kind:
        by_kind[INT] = by_kind[FLOAT]  # a float member takes ints too
    return Union(name, by_kind)


@final
class Unsupported(Node):
    """A type the codec cannot carry (a ref, a socket...): an error on both sides, with the reason."""

    __slots__ = ("reason",)

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(name, frozenset())
        self.reason = reason

    def encode(self, value: Any) -> Any:  # noqa: ARG002 - no value fits
        raise Bad(f"a field typed {self.name} cannot be encoded: {self.reason}")

    def decode(self, data: Any) -> Any:  # noqa: ARG002 - no data fits
        raise Bad(f"a field typed {self.name} cannot be decoded: {self.reason}")
