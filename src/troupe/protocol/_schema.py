"""From field types to codec nodes; the nodes of messages and of ``Any``."""

from __future__ import annotations

import enum
import types
import typing
from typing import Any, Literal, final

import attrs

from ._message import Unresolved, field_types, is_message_class, message_class, wire_name
from ._nodes import (
    ALL_KINDS,
    ARRAY,
    FLOAT,
    NOT_WIRE_DATA,
    OBJECT,
    SCALAR_KINDS,
    TAGGED,
    Choice,
    Dict,
    Exact,
    Float,
    Sequence,
    Tuple,
    Unsupported,
    checked_float,
    data_kind,
    enum_choice,
    escape,
    literal_choice,
    show,
    unexpected,
    union,
)
from ._refs import RefNode, is_ref, is_ref_type
from ._walk import MAX_DEPTH, Bad, Node, Open

_FIELDS_ATTR = "__troupe_fields__"
_CARRIES = (
    "the codec carries str, int, float, bool, None, enums, Literal, list, tuple, set, frozenset, "
    "dict[str, X], unions told apart by their JSON kind, Any and messages"
)


@final
class _Field:
    __slots__ = ("alias", "exact", "key", "name", "node", "required")

    def __init__(self, field: attrs.Attribute[Any], node: Node) -> None:
        self.name = field.name
        self.alias: str = field.alias or field.name
        self.key = escape(field.name)  # a field named `type` travels as `type_`
        self.node = node
        self.required = field.default is attrs.NOTHING
        self.exact: type = node.cls if type(node) is Exact else _Never
        """A type whose values are their own wire data here (``str`` for a str field): no node call."""


@final
class _Never:
    """No value's type: a field without an ``exact`` type always goes through its node."""


@final
class _Fields:
    """A message class's fields as the codec sees them (built on first use, kept on the class)."""

    __slots__ = ("all", "by_key", "flat", "keys", "tag", "wire_keys")

    def __init__(self, cls: type) -> None:
        hints = field_types(cls)
        self.tag = wire_name(cls)
        self.all = [_Field(f, _field_node(hints.get(f.name, Any))) for f in attrs.fields(cls) if f.init]
        self.keys = [f.key for f in self.all]
        self.by_key = {f.key: f for f in self.all}
        self.wire_keys = frozenset({"type", *self.keys})
        """The keys of wire data that holds every field."""
        self.flat = all(type(f.node) in _FLAT_NODES for f in self.all)
        """Every field a scalar (its node never opens): coded here, without the walk's frames."""


_FLAT_NODES = (Exact, Float, Choice)
"""Nodes whose encode and decode give the value itself, never an `Open`, and raise `Bad` without ``at``."""


def _encode_flat(fields: _Fields, value: object) -> dict[str, Any]:
    """A flat message's wire data, field by field; a wrong value's `Bad` names its field."""
    out: dict[str, Any] = {"type": fields.tag}
    for f in fields.all:
        item = getattr(value, f.name)
        if type(item) is not f.exact:
            try:
                item = f.node.encode(item)
            except Bad as bad:
                bad.at = f.name
                raise
        out[f.key] = item
    return out


def _decode_flat(cls: type, fields: _Fields, data: dict[str, Any]) -> object:
    """A flat message from wire data holding every field and nothing else, else `_IRREGULAR`.

    Irregular data (a field missing, an unknown key) goes the general way,
    which says what is wrong; a wrong value's `Bad` names its key.
    """
    if data.keys() != fields.wire_keys:
        return _IRREGULAR
    values = {}
    for f in fields.all:
        item = data[f.key]
        if type(item) is not f.exact:
            try:
                item = f.node.decode(item)
            except Bad as bad:
                bad.at = f.key
                raise
        values[f.alias] = item
    return _construct(cls, values)


_IRREGULAR = object()
"""`_decode_flat`'s answer for data it leaves to the general way."""


def encode_flat(msg: object) -> dict[str, Any] | None:
    """``msg``'s wire data when its class is a flat message the codec has seen; else None.

    A shortcut for hot paths (the cluster's tells): no walk, no frames. None
    means "use `codec.encode`", which also gives every error: a class not
    coded yet, one with a field that is not a scalar, or a wrong value.
    """
    fields: _Fields | None = type(msg).__dict__.get(_FIELDS_ATTR)
    if fields is None or not fields.flat:
        return None
    try:
        return _encode_flat(fields, msg)
    except Bad:
        return None


def decode_flat(data: dict[str, Any]) -> object:
    """The flat message ``data`` encodes, if its class has been coded before; else `IRREGULAR`.

    The shortcut `encode_flat`'s other half: `IRREGULAR` means "use
    `codec.decode`", which says what is wrong, if anything is.
    """
    tag = data.get("type")
    cls = message_class(tag) if type(tag) is str else None
    fields: _Fields | None = None if cls is None else cls.__dict__.get(_FIELDS_ATTR)
    if fields is None or not fields.flat:
        return _IRREGULAR
    try:
        return _decode_flat(cls, fields, data)  # type: ignore[arg-type]  # cls is set with fields
    except Bad:
        return _IRREGULAR


IRREGULAR = _IRREGULAR
"""`decode_flat`'s answer for data the general way must decode."""


def _field_node(hint: object) -> Node:
    if isinstance(hint, Unresolved):
        reason = f"its annotation cannot be evaluated ({type(hint.error).__name__}: {hint.error})"
        return Unsupported(repr(hint.annotation), reason)
    return node_for(hint)


def _fields_of(cls: type) -> _Fields:
    found: _Fields | None = cls.__dict__.get(_FIELDS_ATTR)
    if found is None:
        found = _Fields(cls)
        setattr(cls, _FIELDS_ATTR, found)
    return found


def _construct(cls: type, values: dict[str, Any]) -> object:
    try:
        return cls(**values)
    except Exception as exc:  # a class's validators and __attrs_post_init__ may raise anything
        raise Bad(f"{wire_name(cls)} refused these values ({type(exc).__name__}: {exc})") from exc


@final
class Tagged(Node):
    """Messages: a JSON object with the wire name under ``"type"``.

    A field typed ``Item`` also takes the ``@message`` subclasses of ``Item``
    (the tag says which); a union of messages is one `Tagged` node.
    """

    __slots__ = ("bases",)

    def __init__(self, name: str, bases: tuple[type, ...]) -> None:
        super().__init__(name, frozenset({TAGGED}))
        self.bases = bases

    def encode(self, value: Any) -> Any:
        cls = type(value)
        if not (is_message_class(cls) and issubclass(cls, self.bases)):
            raise unexpected(self.name, value, encoding=True)
        fields = _fields_of(cls)
        if fields.flat:
            return _encode_flat(fields, value)
        return Open(
            ((f.name, f.node, getattr(value, f.name)) for f in fields.all),
            lambda done: {"type": fields.tag, **dict(zip(fields.keys, done, strict=True))},
        )

    def decode(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise unexpected(f"a message object ({self.name})", data, encoding=False)
        cls = self._class_of(data)
        fields = _fields_of(cls)
        if fields.flat:
            decoded = _decode_flat(cls, fields, data)
            if decoded is not _IRREGULAR:
                return decoded
        for key in data:
            if type(key) is not str:
                raise Bad(f"key {show(key)} is not a str (JSON object keys are strings)")
            if key != "type" and key not in fields.by_key:
                raise Bad(f"unknown field {key!r} for {fields.tag}", key)
        present = []
        for f in fields.all:
            if f.key in data:
                present.append(f)
            elif f.required:
                raise Bad(f"missing required field {f.key!r} of {fields.tag}", f.key)
        aliases = [f.alias for f in present]
        return Open(
            ((f.key, f.node, data[f.key]) for f in present),
            lambda done: _construct(cls, dict(zip(aliases, done, strict=True))),
        )

    def _class_of(self, data: dict[Any, Any]) -> type:
        if "type" not in data:
            raise Bad(f"missing message type tag (expected {self.name})", "type")
        tag = data["type"]
        if type(tag) is not str:
            raise Bad(f"the message type tag must be a str, got {show(tag)}", "type")
        cls = message_class(tag)
        if cls is None:
            raise Bad(f"unknown message type {tag!r}", "type")
        if not issubclass(cls, self.bases):
            raise Bad(f"expected {self.name}, got message type {tag!r}", "type")
        return cls


ANY_MESSAGE = Tagged("any message", (object,))


@final
class AnyValue(Node):
    """``Any`` and ``object``: JSON scalars, lists, dicts with str keys and messages, as they are."""

    __slots__ = ("dict", "list")

    def __init__(self) -> None:
        super().__init__("Any", ALL_KINDS)
        self.list = Sequence("list", list, self)
        self.dict = Dict("dict", self)

    def encode(self, value: Any) -> Any:
        kind = SCALAR_KINDS.get(type(value))
        if kind == FLOAT:
            return checked_float(value, encoding=True)
        if kind is not None:
            return value
        if type(value) is list:
            return self.list.encode(value)
        if type(value) is dict:
            return self.dict.encode(value)
        if is_message_class(type(value)):
            return ANY_MESSAGE.encode(value)
        raise _refused_in_any(value)

    def decode(self, data: Any) -> Any:
        kind = data_kind(data)
        if kind == FLOAT:
            return checked_float(data, encoding=False)
        if kind == ARRAY:
            return self.list.decode(data)
        if kind == OBJECT:
            return self.dict.decode(data)
        if kind == TAGGED:
            return ANY_MESSAGE.decode(data)
        if kind is None:
            raise Bad(f"{type(data).__name__} is not JSON data")
        return data


def _refused_in_any(value: object) -> Bad:
    name = type(value).__name__
    if is_ref(value):
        return Bad(
            f"{name} is not wire data in a field typed Any: type the field troupe.Ref[...] to send "
            "a ref between the nodes of a cluster (as an address)"
        )
    if isinstance(value, enum.Enum):
        return Bad(f"a {name} in a field typed Any would come back as its bare value; type the field {name}")
    if isinstance(value, tuple | set | frozenset):
        return Bad(f"a {name} in a field typed Any would come back as a list; type the field {name}[...]")
    for base in (str, int, float, list, dict):
        if isinstance(value, base):
            return Bad(
                f"a {name} in a field typed Any would come back as a {base.__name__}; send a {base.__name__}"
            )
    return Bad(f"{name} {NOT_WIRE_DATA}")


ANY = AnyValue()
_SCALARS: dict[object, Node] = {
    str: Exact(str),
    int: Exact(int),
    bool: Exact(bool),
    type(None): Exact(type(None)),
    None: Exact(type(None)),
    float: Float(),
    Any: ANY,
    object: ANY,
}


def type_name(tp: object, depth: int = 0) -> str:  # noqa: PLR0911 - one case per kind of type
    """A type as people write it: ``list[Item] | None``."""
    if depth > 5:  # noqa: PLR2004 - deeper parts of a type do not help an error message
        return "..."
    args = typing.get_args(tp)
    origin = typing.get_origin(tp)
    if tp is None or tp is type(None):
        return "None"
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a, depth + 1) for a in args)
    if origin is Literal:
        return f"Literal[{', '.join(map(repr, args))}]"
    if origin is not None:
        base = getattr(origin, "__name__", repr(origin))
        if not args:  # typing.List, or tuple[()]
            return f"{base}[()]" if origin is tuple and tp is not typing.Tuple else base  # noqa: UP006 - the bare alias
        inner = ", ".join("..." if a is Ellipsis else type_name(a, depth + 1) for a in args)
        return f"{base}[{inner}]"
    return tp.__name__ if isinstance(tp, type) else repr(tp).removeprefix("typing.")


def node_for(tp: object, depth: int = 0) -> Node:  # noqa: C901, PLR0911, PLR0912 - one dispatch over the kinds of types
    """The codec node of a field type (an `Unsupported` one if it cannot be carried)."""
    try:
        found = _SCALARS.get(tp)
    except TypeError:  # an unhashable annotation
        found = None
    if found is not None:
        return found
    name = type_name(tp)
    if depth > MAX_DEPTH:
        return Unsupported(name, f"it is nested deeper than {MAX_DEPTH} levels")
    if isinstance(tp, typing.NewType):
        return node_for(tp.__supertype__, depth + 1)
    if is_ref_type(tp):
        return RefNode(name)
    if isinstance(tp, type):
        if is_message_class(tp):
            return Tagged(name, (tp,))
        if issubclass(tp, enum.Enum):
            return _or_unsupported(name, enum_choice(tp))
        if tp in (list, tuple, set, frozenset):
            return Sequence(name, tp, ANY)
        if tp is dict:
            return ANY.dict
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return node_for(args[0], depth + 1)
    if origin is Literal:
        return _or_unsupported(name, literal_choice(name, args))
    if origin in (typing.Union, types.UnionType):
        return _union(name, args, depth)
    if origin in (list, set, frozenset) or (origin is tuple and tp is typing.Tuple):  # noqa: UP006 - the bare alias means tuple[Any, ...]
        return Sequence(name, origin, node_for(args[0], depth + 1) if args else ANY)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:  # noqa: PLR2004 - tuple[X, ...]
            return Sequence(name, tuple, node_for(args[0], depth + 1))
        return Tuple(name, [node_for(a, depth + 1) for a in args])
    if origin is dict:
        if args and args[0] is not str:
            return Unsupported(name, "JSON object keys are strings: type the keys str")
        return Dict(name, node_for(args[1], depth + 1)) if args else ANY.dict
    return Unsupported(name, f"{name} {NOT_WIRE_DATA}; {_CARRIES}")


def _or_unsupported(name: str, node: Node | str) -> Node:
    return Unsupported(name, node) if isinstance(node, str) else node


def _union(name: str, args: tuple[Any, ...], depth: int) -> Node:
    if any(a is Any or a is object for a in args):
        return ANY
    compiled = [node_for(a, depth + 1) for a in args]
    # A member the codec cannot carry (BaseException in `BaseException | None`)
    # takes no values: the others still travel.
    if ANY in compiled:  # Annotated[Any, ...] | int
        return ANY
    members = [m for m in compiled if not isinstance(m, Unsupported)]
    refused = [m for m in compiled if isinstance(m, Unsupported)]
    if not members:
        return Unsupported(name, f"none of its members can be carried; {refused[0].reason}")
    messages = [m for m in members if isinstance(m, Tagged)]
    choices = [m for m in members if isinstance(m, Choice)]
    rest = [m for m in members if not isinstance(m, Tagged | Choice)]
    if len(messages) > 1:
        names = " | ".join(m.name for m in messages)
        rest.append(Tagged(names, tuple(base for m in messages for base in m.bases)))
    else:
        rest += messages
    if len(choices) > 1:
        merged = _merged(choices)
        if isinstance(merged, str):
            return Unsupported(name, merged)
        rest.append(merged)
    else:
        rest += choices
    return rest[0] if len(rest) == 1 else _or_unsupported(name, union(name, rest))


def _merged(choices: list[Choice]) -> Choice | str:
    # Literal["a"] | Literal["b"] | Colour: one choice, as long as no wire value means two things.
    pairs: dict[tuple[type, object], tuple[object, object]] = {}
    for choice in choices:
        for key, python in choice.to_python.items():
            old = pairs.setdefault(key, (python, key[1]))
            if old[0] is not python:
                return f"{key[1]!r} is a value of two of its members, so the data cannot tell them apart"
    return Choice(" | ".join(c.name for c in choices), pairs.values())
