"""The codec under fuzzing (issue 17, item 3): exact round trips, and nothing but the documented errors.

(a) message classes built at random (fields named ``type``, ``type_``...,
    every supported field type, nested messages, optional fields) with
    random values round-trip through JSON with the same types all the way
    down; (b) random JSON, and mutations of valid encodings, make ``decode``
    return or raise `DecodeError`, nothing else; whatever it returns
    re-encodes to itself; (c) random Python values in ``Any`` fields make
    ``encode`` return an exact round trip or raise `TypeError`, nothing else.
"""

from __future__ import annotations

import collections
import enum
import itertools
import json
import typing
from collections.abc import Callable
from typing import Any, Literal

import attrs
from hypothesis import given
from hypothesis import strategies as st

import troupe
from troupe import codec

import faultkit

_ids = itertools.count()


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mixed(enum.Enum):
    TEXT = "t"
    NUMBER = 7
    REAL = 2.5
    YES = True
    NOTHING = None


@troupe.message(name="fuzz.codec.point")
class Point:
    x: int
    y: int


@attrs.frozen
class Spec:
    """A field type, values for it, and what a union needs to know about it."""

    tp: Any
    values: st.SearchStrategy[Any]
    kinds: frozenset[str]
    """The JSON kinds its values encode as ("message" may repeat within a union)."""
    hashable: bool


def _scalar(tp: Any, values: st.SearchStrategy[Any], *kinds: str) -> Spec:
    return Spec(tp, values, frozenset(kinds), hashable=True)


_FLOATS = st.floats(allow_nan=False, allow_infinity=False)
_KEYS = st.sampled_from(["type", "type_", "type__", "a", "a b", "", "_x"]) | st.text(max_size=4)
_JSON_SCALARS = st.none() | st.booleans() | st.integers() | _FLOATS | st.text(max_size=6)
_JSON = st.recursive(
    _JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3),
    max_leaves=8,
)
_ANY_VALUES = _JSON | st.builds(Point, st.integers(), st.integers())
_ANY_HASHABLE = _JSON_SCALARS | st.builds(Point, st.integers(), st.integers())

LEAVES = [
    _scalar(str, st.text(max_size=6), "string"),
    _scalar(int, st.integers(), "integer"),
    _scalar(float, _FLOATS, "float"),
    _scalar(bool, st.booleans(), "boolean"),
    _scalar(type(None), st.none(), "null"),
    _scalar(Colour, st.sampled_from(Colour), "string"),
    _scalar(Level, st.sampled_from(Level), "integer"),
    _scalar(Mixed, st.sampled_from(Mixed), "string", "integer", "float", "boolean", "null"),
    _scalar(Literal["a", "b"], st.sampled_from(["a", "b"]), "string"),
    _scalar(Literal[1, True], st.sampled_from([1, True]), "integer", "boolean"),
    Spec(Any, _ANY_VALUES, frozenset({"any"}), hashable=False),
    Spec(object, _ANY_HASHABLE, frozenset({"any"}), hashable=True),
    _scalar(Point, st.builds(Point, st.integers(), st.integers()), "message"),
]
_FIELD_NAMES = ["type", "type_", "type__", "a", "b", "value", "_hidden", "items", "kind"]


def _can_be_optional(spec: Spec) -> bool:
    # `Mixed | None` is ambiguous (Mixed.NOTHING is null too), and the codec refuses it;
    # `int | None | None` is `int | None`.
    return "null" not in spec.kinds or type(None) in typing.get_args(spec.tp) or spec.tp is type(None)


_made: dict[tuple[tuple[str, Any], ...], type] = {}
"""The classes built so far, by their fields: a class is built once per shape (each costs ~18 KB)."""


def _make_message(fields: list[tuple[str, Spec]], optional_from: int) -> Spec:
    optional = [i >= optional_from and _can_be_optional(spec) for i, (_, spec) in enumerate(fields)]
    required = [f for f, o in zip(fields, optional, strict=True) if not o]
    fields = required + [f for f, o in zip(fields, optional, strict=True) if o]  # attrs: defaults come last
    annotations = {
        name: spec.tp if i < len(required) else spec.tp | None for i, (name, spec) in enumerate(fields)
    }
    shape = tuple(annotations.items())
    cls = _made.get(shape)
    if cls is None:
        n = next(_ids)
        namespace: dict[str, Any] = dict.fromkeys(annotations.keys() - {name for name, _ in required})
        namespace["__annotations__"] = annotations
        cls = _made[shape] = troupe.message(name=f"fuzz.codec.gen{n}")(type(f"Gen{n}", (), namespace))
    by_alias = {}
    for (_, spec), field in zip(fields, attrs.fields(cls), strict=True):
        values = spec.values if field.default is attrs.NOTHING else st.none() | spec.values
        by_alias[field.alias] = values
    hashable = all(spec.hashable for _, spec in fields)
    return Spec(cls, st.builds(cls, **by_alias), frozenset({"message"}), hashable)


@st.composite
def _messages(draw: st.DrawFn, inner: st.SearchStrategy[Spec]) -> Spec:
    names = draw(st.lists(st.sampled_from(_FIELD_NAMES), unique=True, max_size=4))
    fields = [(name, draw(inner)) for name in names]
    return _make_message(fields, draw(st.integers(0, len(fields))))


@st.composite
def _unions(draw: st.DrawFn, inner: st.SearchStrategy[Spec]) -> Spec:
    drawn = draw(st.lists(inner, min_size=2, max_size=3))
    members: list[Spec] = []
    for spec in drawn:
        taken = frozenset().union(*(m.kinds for m in members)) - {"message"}
        if "any" not in spec.kinds and not spec.kinds & taken and spec.tp not in [m.tp for m in members]:
            members.append(spec)
    if len(members) <= 1:
        return members[0] if members else drawn[0]
    tp = members[0].tp
    for m in members[1:]:
        tp = tp | m.tp
    kinds = frozenset().union(*(m.kinds for m in members))
    return Spec(tp, st.one_of([m.values for m in members]), kinds, all(m.hashable for m in members))


def _of(origin: Any, *args: Any) -> Any:
    """``origin[args]``, for types built at run time."""
    return origin[args if len(args) > 1 else args[0]]


def _containers(inner: st.SearchStrategy[Spec]) -> st.SearchStrategy[Spec]:
    def hashable_only(spec: Spec) -> Spec:
        return spec if spec.hashable else LEAVES[0]

    array = frozenset({"array"})
    return st.one_of(
        inner.map(lambda s: Spec(_of(list, s.tp), st.lists(s.values, max_size=3), array, hashable=False)),
        inner.map(
            lambda s: Spec(
                _of(tuple, s.tp, ...), st.lists(s.values, max_size=3).map(tuple), array, s.hashable
            )
        ),
        st.lists(inner, min_size=0, max_size=3).map(
            lambda ss: Spec(
                _of(tuple, *(s.tp for s in ss)) if ss else tuple[()],
                st.tuples(*(s.values for s in ss)),
                array,
                all(s.hashable for s in ss),
            )
        ),
        inner.map(hashable_only).map(
            lambda s: Spec(
                _of(set, s.tp), st.frozensets(s.values, max_size=3).map(set), array, hashable=False
            )
        ),
        inner.map(hashable_only).map(
            lambda s: Spec(_of(frozenset, s.tp), st.frozensets(s.values, max_size=3), array, hashable=True)
        ),
        inner.map(
            lambda s: Spec(
                _of(dict, str, s.tp),
                st.dictionaries(_KEYS, s.values, max_size=3),
                frozenset({"object"}),
                hashable=False,
            )
        ),
        inner.filter(_can_be_optional).map(
            lambda s: Spec(s.tp | None, st.none() | s.values, s.kinds | {"null"}, s.hashable)
        ),
        _unions(inner),
        _messages(inner),
    )


SPECS = st.recursive(st.sampled_from(LEAVES), _containers, max_leaves=6)
MESSAGES = _messages(SPECS)


def _exact(value: Any, *, ints_as_floats: bool = False) -> Any:
    """``value`` as nested (type, contents) pairs: equal only if equal with the same types throughout.

    With ``ints_as_floats``, an int and the float it becomes compare equal
    (what a float field does to an int).
    """
    cls = type(value)
    if cls in (list, tuple):
        return cls, tuple(_exact(v, ints_as_floats=ints_as_floats) for v in value)
    if cls in (set, frozenset):
        return cls, frozenset(_exact(v, ints_as_floats=ints_as_floats) for v in value)
    if cls is dict:
        return cls, frozenset((k, _exact(v, ints_as_floats=ints_as_floats)) for k, v in value.items())
    if attrs.has(cls):
        return cls, tuple(
            _exact(getattr(value, f.name), ints_as_floats=ints_as_floats) for f in attrs.fields(cls)
        )
    if ints_as_floats and cls is int and abs(value) < 2**1000:
        return float, float(value)
    return cls, value


def _assert_round_trip(msg: object, *, ints_as_floats: bool = False) -> int:
    """Encode, go through JSON text, decode: the same value with the same types; returns the wire size."""
    data = codec.encode(msg)
    text = json.dumps(data, allow_nan=False)
    back = codec.decode(json.loads(text))
    expected = _exact(msg, ints_as_floats=ints_as_floats)
    assert _exact(back, ints_as_floats=ints_as_floats) == expected, (msg, data, back)
    assert codec.encode(back) == data  # the wire form is stable
    assert _exact(codec.decode(data, type(msg)), ints_as_floats=ints_as_floats) == expected
    return len(text)


def test_generated_messages_round_trip_exactly() -> None:
    seen = collections.Counter[str]()

    @faultkit.fuzz_settings(ci=150, soak=10_000)
    @given(st.data())
    def run(data: st.DataObject) -> None:
        spec = data.draw(MESSAGES)
        msg = data.draw(spec.values)
        seen["examples"] += 1
        seen["classes"] = len(_made)
        seen["fields"] += len(attrs.fields(spec.tp))
        seen["wire_bytes"] += _assert_round_trip(msg)

    run()
    faultkit.report("codec round trip", **seen, mismatches=0)


KNOWN_TAGS = ["fuzz.codec.point", "troupe.BusEvent", "troupe.DeadLetter", "troupe.Terminated", "no.such.type"]
CLASSES: list[type] = [Point, troupe.BusEvent, troupe.DeadLetter, troupe.Terminated]
_WILD_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)


def _tagged(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    fields = st.sampled_from(["x", "y", "topic", "data", "recipient", "message", "reason", "ref", "type_"])
    return st.builds(
        lambda tag, rest: {"type": tag, **rest},
        st.sampled_from(KNOWN_TAGS) | st.integers() | st.none(),
        st.dictionaries(fields | _KEYS, inner, max_size=4),
    )


EDGES = st.sampled_from([float("nan"), float("inf"), -float("inf"), 10**400, -0.0, True, 0, "", [], {}])
"""Values at the edges of JSON and of the field types, drawn often on purpose."""

WILD_JSON = st.recursive(
    _WILD_SCALARS | st.sampled_from(["stopped", "dropped", "red"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3) | _tagged(inner),
    max_leaves=12,
)


def _nest(value: object, depth: int) -> object:
    for i in range(depth):
        value = [value] if i % 2 else {"type": "troupe.BusEvent", "topic": "t", "data": value}
    return value


def _places(doc: object) -> list[tuple[Any, Any]]:
    """Every (container, key) in a JSON document, found without recursion."""
    out: list[tuple[Any, Any]] = []
    stack = [doc]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            out.append((node, key))
            stack.append(value)
    return out


@st.composite
def _mutated(draw: st.DrawFn) -> object:
    spec = draw(MESSAGES)
    doc = json.loads(json.dumps(codec.encode(draw(spec.values))))
    for _ in range(draw(st.integers(1, 3))):
        places = _places(doc)
        if not places:
            doc[draw(_KEYS)] = draw(WILD_JSON)
            continue
        parent, key = draw(st.sampled_from(places))
        op = draw(st.sampled_from(["drop", "replace", "wrap", "retag", "deep", "add"]))
        if op == "drop":
            del parent[key]
        elif op == "replace":
            parent[key] = draw(EDGES | WILD_JSON)
        elif op == "wrap":
            parent[key] = draw(
                st.sampled_from([[parent[key]], {"type_": parent[key]}, {"type": parent[key]}])
            )
        elif op == "retag":
            parent[key] = draw(st.sampled_from([*KNOWN_TAGS, spec.tp and troupe.wire_name(spec.tp)]))
        elif op == "deep":
            parent[key] = _nest(parent[key], draw(st.integers(90, 260)))
        elif isinstance(parent, dict):
            parent[draw(_KEYS)] = draw(WILD_JSON)
    return doc


def _decode_or_decode_error(data: object, cls: type | None, seen: collections.Counter[str]) -> None:
    try:
        msg = codec.decode(data) if cls is None else codec.decode(data, cls)
    except troupe.DecodeError as exc:
        assert exc.path.startswith("$")  # noqa: PT017 - one of many outcomes of a fuzz loop
        seen["decode_errors"] += 1
        return
    seen["decoded"] += 1
    _assert_round_trip(msg)  # what decode accepts, encode carries back to the same


def test_random_json_and_mutated_encodings_decode_or_raise_decode_error() -> None:
    seen = collections.Counter[str]()
    documents = st.one_of(
        WILD_JSON,
        _tagged(WILD_JSON),
        _mutated(),
        st.integers(95, 400).map(lambda d: _nest({"type": "fuzz.codec.point", "x": 1, "y": 2}, d)),
    )

    @faultkit.fuzz_settings(ci=300, soak=30_000)
    @given(documents, st.sampled_from([None, *CLASSES]))
    def run(data: object, cls: type | None) -> None:
        seen["documents"] += 1
        _decode_or_decode_error(data, cls, seen)
        _decode_or_decode_error(data, None, seen)

    run()
    faultkit.report("codec decode fuzz", **seen, other_errors=0)


class _Strange:
    """An object whose comparisons raise while the codec looks at it (hypothesis may compare it too)."""

    armed = False

    def __eq__(self, other: object) -> bool:
        if _Strange.armed:
            raise RuntimeError("a stranger's __eq__")
        return self is other

    def __hash__(self) -> int:
        if _Strange.armed:
            raise RuntimeError("a stranger's __hash__")
        return id(self)


class _Text(str):
    __slots__ = ()


PY_SCALARS = st.one_of(
    _WILD_SCALARS,
    st.binary(max_size=4),
    st.complex_numbers(max_magnitude=10),
    st.decimals(allow_nan=True),
    st.fractions(),
    st.sampled_from([*Colour, *Level, *Mixed, object(), _Strange(), _Text("x"), Ellipsis, type, len]),
    st.builds(Point, st.integers(), st.integers()),
    st.integers().map(lambda n: 10**400 * (n or 1)),
)
PY_VALUES = st.recursive(
    PY_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.frozensets(_WILD_SCALARS, max_size=3),
        st.dictionaries(_KEYS | st.integers() | st.none(), inner, max_size=3),
        st.dictionaries(_KEYS, inner, max_size=3).map(collections.OrderedDict),
        st.builds(troupe.BusEvent, st.text(max_size=4), inner),
        st.builds(troupe.DeadLetter, st.text(max_size=4), inner, st.sampled_from(troupe.DeadLetterReason)),
    ),
    max_leaves=10,
)


@troupe.message(name="fuzz.codec.holder")
class Holder:
    value: Any
    items: list[Any] = attrs.field(factory=list)
    by: dict[str, object] = attrs.field(factory=dict)


def _looped() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


_WRAPS: list[Callable[[Any], object]] = [
    Holder,
    lambda v: Holder(None, [v]),
    lambda v: Holder(None, by={"k": v}),
    lambda v: troupe.BusEvent("t", v),
    lambda v: troupe.DeadLetter("/user/a", v, troupe.DeadLetterReason.DROPPED),
    troupe.Terminated,
]


@st.composite
def _misfits(draw: st.DrawFn) -> tuple[object, bool]:
    """A message holding a random value: in an ``Any`` field, or in a typed field of a generated class.

    The bool says whether the value sits in a typed field, where an int may become a float.
    """
    value = draw(EDGES | PY_VALUES | st.just(_looped()) | SPECS.flatmap(lambda s: s.values))
    spec = draw(MESSAGES)
    fields = attrs.fields(spec.tp)
    if fields and draw(st.booleans()):
        field = draw(st.sampled_from(fields))
        return attrs.evolve(draw(spec.values), **{field.alias: value}), True
    return draw(st.sampled_from(_WRAPS))(value), False


def test_random_python_values_encode_exactly_or_raise_type_error() -> None:
    seen = collections.Counter[str]()

    @faultkit.fuzz_settings(ci=300, soak=30_000)
    @given(_misfits())
    def run(case: tuple[object, bool]) -> None:
        msg, typed = case
        seen["values"] += 1
        seen["in_typed_fields"] += typed
        _Strange.armed = True
        try:
            codec.encode(msg)
        except TypeError as exc:
            assert " at $" in str(exc)  # noqa: PT017 - one of many outcomes of a fuzz loop
            seen["type_errors"] += 1
            return
        finally:
            _Strange.armed = False
        seen["encoded"] += 1
        _assert_round_trip(msg, ints_as_floats=typed)

    run()
    faultkit.report("codec encode fuzz", **seen, other_errors=0)
