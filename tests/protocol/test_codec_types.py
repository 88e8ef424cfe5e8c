"""What each field type carries, and what it refuses, on both sides of the codec (issue 17, item 3)."""

from __future__ import annotations

import collections
import enum
import gc
import json
import socket
import typing
import weakref
from typing import Annotated, Any, Literal, NewType

import attrs
import pytest

import troupe
from troupe import codec


def _round_trip(msg: object) -> object:
    data = codec.encode(msg)
    back = codec.decode(json.loads(json.dumps(data, allow_nan=False)))
    assert back == msg
    assert codec.encode(back) == data  # the wire form is stable
    return back


def _evolve(msg: Any, **changes: Any) -> Any:
    return attrs.evolve(msg, **changes)  # without the checks a constructor call would get


class Colour(enum.Enum):
    RED = "red"
    ONE = 1


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Perm(enum.Flag):
    R = 1
    W = 2


class Point(enum.Enum):
    ORIGIN = (0, 0)


@troupe.message(name="test.types.scalars")
class Scalars:
    s: str = ""
    i: int = 0
    f: float = 0.0
    b: bool = False
    n: None = None
    colour: Colour = Colour.RED
    level: Level = Level.LOW
    mode: Literal["r", "w", 0] = "r"
    user: UserId = 0  # type: ignore[assignment] # a NewType of int


UserId = NewType("UserId", int)


def test_issue_17_3_scalars_enums_and_literals_round_trip() -> None:
    back = _round_trip(
        Scalars("a", 2, 1.5, b=True, colour=Colour.ONE, level=Level.HIGH, mode=0, user=UserId(7))
    )
    assert isinstance(back, Scalars)
    assert back.colour is Colour.ONE
    assert back.level is Level.HIGH
    assert codec.encode(back)["level"] == 2


def test_issue_17_3_an_int_in_a_float_field_travels_as_a_float() -> None:
    data = codec.encode(Scalars(f=2))
    assert data["f"] == 2.0
    assert type(data["f"]) is float
    with pytest.raises(TypeError, match=r"int 1\d+ is too large for a float at \$\.f"):
        codec.encode(Scalars(f=10**400))
    with pytest.raises(troupe.DecodeError, match="too large for a float"):
        codec.decode({"type": "test.types.scalars", "f": 10**400})


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("i", True, r"expected an int, got bool True at \$\.i"),
        ("i", 1.0, r"expected an int, got float 1.0"),
        ("f", True, r"expected a float, got bool True"),
        ("s", b"x", r"bytes is not wire data"),
        ("n", 0, r"expected None, got int 0"),
        ("colour", "red", r"expected Colour, got str 'red' at \$\.colour"),
        ("level", 1, r"expected Level, got int 1"),
        ("mode", "x", r"expected Literal\['r', 'w', 0\], got str 'x'"),
        ("mode", False, r"expected Literal\['r', 'w', 0\], got bool False"),
    ],
)
def test_issue_17_3_encode_refuses_a_value_of_another_type(field: str, value: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        codec.encode(_evolve(Scalars(), **{field: value}))


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("colour", "RED", "expected one of ['red', 1] (Colour), got str 'RED'"),
        ("colour", True, "got bool True"),  # True == 1, but is not 1
        ("colour", 1.0, "got float 1.0"),
        ("colour", [1], "expected one of ['red', 1] (Colour), got list"),
        ("colour", b"red", "bytes is not JSON data"),
        ("level", 3, "expected one of [1, 2] (Level), got int 3"),
        ("mode", 0.0, "got float 0.0"),
        ("mode", False, "got bool False"),
        ("b", 1, "expected a bool, got int 1"),
        ("s", 5, "expected a str, got int 5"),
        ("s", b"x", "bytes is not JSON data"),
        ("f", "1.5", "expected a float, got str '1.5'"),
        ("f", float("inf"), "inf is not a JSON number"),
        ("user", "7", "expected an int, got str '7'"),
    ],
)
def test_issue_17_3_decode_of_scalars_is_strict(field: str, value: object, reason: str) -> None:
    with pytest.raises(troupe.DecodeError) as info:
        codec.decode({"type": "test.types.scalars", field: value})
    assert info.value.path == f"$.{field}"
    assert reason in info.value.reason


@troupe.message(name="test.types.perm")
class Perms:
    perm: Perm


def test_issue_17_3_a_combined_flag_is_refused_not_mangled() -> None:
    _round_trip(Perms(Perm.W))
    with pytest.raises(TypeError, match=r"expected Perm, got Perm at \$\.perm"):
        codec.encode(Perms(Perm.R | Perm.W))


@troupe.message(name="test.types.circle")
class Circle:
    r: float


@troupe.message(name="test.types.square")
class Square:
    side: float


@troupe.message(name="test.types.unions")
class Unions:
    shape: Circle | Square
    maybe: Circle | None = None
    num: int | float | str | None = None
    flag: bool | list[int] | dict[str, int] | Circle = False
    named: Literal["a"] | Literal["b"] | Colour = "a"  # noqa: PYI030 - two Literals on purpose: they merge


@pytest.mark.parametrize(
    "msg",
    [
        Unions(Square(2.0)),
        Unions(Circle(1.0), Circle(0.5), 3, flag=True, named="b"),
        Unions(Circle(1.0), None, 2.5, [1, 2], Colour.ONE),
        Unions(Circle(1.0), None, "x", {"k": 1}, Colour.RED),
        Unions(Circle(1.0), None, None, Circle(3.0)),
    ],
)
def test_issue_17_3_unions_are_told_apart_by_json_kind_and_message_tag(msg: Unions) -> None:
    back = _round_trip(msg)
    assert isinstance(back, Unions)
    assert type(back.num) is type(msg.num)
    assert type(back.flag) is type(msg.flag)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"shape": None}, r"expected Circle \| Square, got None at \$\.shape"),
        ({"shape": Unions(Circle(1))}, r"expected Circle \| Square, got Unions"),
        ({"num": True}, r"expected int \| float \| str \| None, got bool True"),
        ({"flag": (1,)}, r"expected list\[int\], got tuple"),
        ({"named": "c"}, r"expected Literal\['a'\] \| Literal\['b'\] \| Colour, got str 'c'"),
    ],
)
def test_issue_17_3_encode_refuses_what_no_union_member_takes(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        codec.encode(_evolve(Unions(Circle(1)), **changes))


@pytest.mark.parametrize(
    ("field", "value", "path", "reason"),
    [
        (
            "shape",
            {"type": "test.types.unions"},
            "$.shape.type",
            "expected Circle | Square, got message type",
        ),
        ("shape", {"r": 1}, "$.shape.type", "missing message type tag (expected Circle | Square)"),
        ("maybe", {"r": 1}, "$.maybe", "expected Circle | None, got dict"),
        ("num", True, "$.num", "expected int | float | str | None, got bool True"),
        ("num", [], "$.num", "got list"),
        ("flag", {"type": "x"}, "$.flag.type", "unknown message type 'x'"),
        ("flag", {"k": "v"}, "$.flag.k", "expected an int, got str 'v'"),
        ("named", "c", "$.named", "expected one of ['a', 'b', 'red', 1]"),
    ],
)
def test_issue_17_3_decode_of_unions_is_strict(field: str, value: object, path: str, reason: str) -> None:
    data = codec.encode(Unions(Circle(1)))
    data[field] = value
    with pytest.raises(troupe.DecodeError) as info:
        codec.decode(data)
    assert info.value.path == path
    assert reason in info.value.reason


def _one_field(annotation: str) -> type:
    """A message class with one field ``x`` of this annotation (evaluated in this module)."""
    cls = type("One", (), {"__annotations__": {"x": annotation}})
    return troupe.message(name=f"test.types.one[{annotation}]")(cls)


@pytest.mark.parametrize(
    ("annotation", "value", "data", "reason"),
    [
        (
            "list[int] | tuple[int, ...] | None",
            None,
            None,
            "list[int] and tuple[int, ...] are both JSON arrays: the data cannot tell them apart",
        ),
        ("Literal['red'] | Colour", "red", "red", "'red' is a value of two of its members"),
        ("Literal['a'] | str", "a", "a", "a str and Literal['a'] are both JSON strings"),
        ("dict[int, str]", {1: "a"}, {"1": "a"}, "JSON object keys are strings: type the keys str"),
        ("socket.socket", None, None, "socket is not wire data"),
        ("socket.socket | bytes", b"", "", "socket is not wire data"),
        ("Point", Point.ORIGIN, [0, 0], "the value of <Point.ORIGIN: (0, 0)> is not a JSON scalar"),
        ("Literal[b'x']", b"x", "x", "the literal b'x' is not a str, int, bool or None"),
        ("NoSuchName", 1, 1, "its annotation cannot be evaluated (NameError"),
    ],
)
def test_issue_17_3_field_types_the_codec_cannot_carry_are_refused_on_both_sides(
    annotation: str, value: object, data: object, reason: str
) -> None:
    cls = _one_field(annotation)
    with pytest.raises(
        TypeError, match=r"cannot encode .*: a field typed .* cannot be encoded: .* at \$\.x"
    ) as info:
        codec.encode(cls(value))
    assert reason in str(info.value)
    with pytest.raises(troupe.DecodeError) as decode_info:
        codec.decode({"type": troupe.wire_name(cls), "x": data})
    assert decode_info.value.path == "$.x"
    assert reason in decode_info.value.reason


def test_issue_17_3_a_union_still_carries_the_members_it_can() -> None:
    cls = _one_field("socket.socket | None")
    _round_trip(cls(None))
    with socket.socket() as sock, pytest.raises(TypeError, match=r"socket is not wire data .* at \$\.x"):
        codec.encode(cls(sock))
    with pytest.raises(troupe.DecodeError, match="expected None, got str"):
        codec.decode({"type": troupe.wire_name(cls), "x": "a socket"})


def test_issue_17_3_a_type_nested_too_deeply_is_refused() -> None:
    deep: Any = int
    value: Any = 1
    for _ in range(150):
        deep = list[deep]
        value = [value]
    cls = _one_field("x")
    fields = attrs.fields(cls)
    object.__setattr__(fields.x, "type", deep)  # a field typed list[list[...[int]...]], 150 deep
    with pytest.raises(TypeError, match="nested deeper than 100 levels"):
        codec.encode(cls(value))
    with pytest.raises(troupe.DecodeError, match="nested deeper than 100 levels"):
        codec.decode({"type": troupe.wire_name(cls), "x": value})


def test_issue_17_3_fields_typed_through_attrs_field_are_typed_too() -> None:
    cls = troupe.message(name="test.types.made")(type("Made", (), {"n": attrs.field(type=int)}))
    _round_trip(cls(3))
    with pytest.raises(troupe.DecodeError, match="expected an int, got str '3'"):
        codec.decode({"type": "test.types.made", "n": "3"})


@troupe.message(name="test.types.any_values")
class AnyValues:
    value: Any
    obj: object = None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            Colour.RED,
            r"a Colour in a field typed Any would come back as its bare value; type the field Colour",
        ),
        (Level.LOW, r"a Level in a field typed Any would come back as its bare value"),
        (frozenset({1}), r"a frozenset in a field typed Any would come back as a list"),
        (collections.OrderedDict(a=1), r"an? OrderedDict in a field typed Any would come back as a dict"),
        (collections.UserString("x"), r"UserString is not wire data"),
        (type("S", (str,), {})("x"), r"a S in a field typed Any would come back as a str"),
        ([1, {"k": (1,)}], r"at \$\.value\[1\]\.k"),
        ({"a b": {"c": object()}}, r'at \$\.value\["a b"\]\.c'),
    ],
)
def test_issue_17_3_any_takes_only_what_comes_back_the_same(value: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        codec.encode(AnyValues(value))


def test_issue_17_3_any_carries_json_data_and_messages() -> None:
    value = {"type": "a dict key", "type_": [Circle(1.0), None, True, 1, 1.5, "s"], "": {}}
    back = _round_trip(AnyValues(value, obj=Square(2.0)))
    assert isinstance(back, AnyValues)
    assert type(back.value["type_"][0]) is Circle


@troupe.message(name="test.types.base")
class Base:
    x: int


@troupe.message(name="test.types.derived")
class Derived(Base):
    y: str = ""


@troupe.message(name="test.types.holder")
class Holder:
    base: Base
    bases: list[Base] = attrs.field(factory=list)


def test_issue_17_3_a_message_field_takes_message_subclasses() -> None:
    back = _round_trip(Holder(Derived(1, "a"), [Base(2), Derived(3)]))
    assert isinstance(back, Holder)
    assert type(back.base) is Derived
    with pytest.raises(TypeError, match=r"expected Base, got Holder at \$\.base"):
        codec.encode(Holder(Holder(Base(1))))  # type: ignore[arg-type]


def _positive(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0")


@troupe.message(name="test.types.checked")
class Checked:
    _count: int = attrs.field(validator=_positive)
    total: int = attrs.field(init=False, default=0)


def test_issue_17_3_private_fields_travel_by_name_and_validators_refusing_are_decode_errors() -> None:
    assert codec.encode(Checked(2)) == {"type": "test.types.checked", "_count": 2}
    _round_trip(Checked(3))
    with pytest.raises(troupe.DecodeError) as info:
        codec.decode({"type": "test.types.checked", "_count": -1})
    assert info.value.path == "$"
    assert "test.types.checked refused these values (ValueError: _count must be >= 0)" in info.value.reason
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(troupe.DecodeError, match="unknown field 'total'"):
        codec.decode({"type": "test.types.checked", "_count": 1, "total": 5})


@troupe.message(name="test.types.sets")
class Sets:
    mixed: set[int | str]
    loose: set[Any] = attrs.field(factory=set)


def test_issue_17_3_sets_that_do_not_sort_still_round_trip() -> None:
    _round_trip(Sets({1, "a", 2, "b"}, {Circle(1.0), 3}))
    with pytest.raises(troupe.DecodeError) as info:
        codec.decode({"type": "test.types.sets", "mixed": [], "loose": [1, [2]]})
    assert info.value.path == "$.loose[1]"
    assert "list cannot be a set item (it is not hashable)" in info.value.reason


def test_issue_17_3_forward_references_resolve_in_the_defining_scope() -> None:
    @troupe.message(name="test.types.local_tree")
    class Tree:
        children: list[Tree]
        leaf: Later | None = None

    back = _round_trip(Tree([Tree([], Later())]))
    assert isinstance(back, Tree)

    @troupe.message(name="test.types.local_leaf")
    class Leaf:
        n: int

    @troupe.message(name="test.types.local_branch")
    class Branch:
        leaves: list[Leaf]  # a local class of this function, defined before

    _round_trip(Branch([Leaf(1)]))


@troupe.message(name="test.types.later")
class Later:  # defined after a class that names it
    pass


@troupe.message(name="test.types.aliases")
class Aliases:
    old_list: typing.List = attrs.field(factory=list)  # type: ignore[type-arg] # noqa: UP006 - bare aliases are types too
    old_tuple: typing.Tuple = ()  # type: ignore[type-arg] # noqa: UP006
    old_dict: typing.Dict = attrs.field(factory=dict)  # type: ignore[type-arg] # noqa: UP006
    empty: tuple[()] = ()
    noted: Annotated[int, "a note"] = 0
    loose: Annotated[Any, "a note"] | int = 0


def test_issue_17_3_bare_typing_aliases_annotated_and_the_empty_tuple() -> None:
    back = _round_trip(Aliases([1, "a"], (None, 2.5), {"k": [1]}, (), 3, [{"x": None}]))
    assert isinstance(back, Aliases)
    assert type(back.old_tuple) is tuple
    with pytest.raises(
        troupe.DecodeError, match=r"expected an array of 0 items \(tuple\[\(\)\]\), got 1 item"
    ):
        codec.decode({"type": "test.types.aliases", "empty": [1]})
    with pytest.raises(TypeError, match=r"expected an int, got str 'x' at \$\.noted"):
        codec.encode(Aliases(noted="x"))  # type: ignore[arg-type]


def _define_local_message() -> tuple[type, weakref.ref[Later]]:
    data = [Later()]  # any object that is not a type
    pair_type = tuple[int, int]

    @troupe.message(name="test.types.local_pair")
    class Local:
        pair: pair_type  # a local alias

    return Local, weakref.ref(data[0])


def test_issue_17_3_a_message_defined_in_a_function_keeps_only_what_its_annotations_may_name() -> None:
    local, alive = _define_local_message()
    gc.collect()
    assert alive() is None  # the function's other locals do not live as long as the class
    _round_trip(local((1, 2)))


class _Echo(troupe.Actor[Any]):
    async def receive(self, msg: Any) -> Any:
        return msg


@pytest.mark.parametrize(
    "annotation", ["troupe.ActorRef[Any]", "troupe.Ref[int]", "troupe.ActorRef[Any] | None"]
)
async def test_issue_19_ref_fields_travel_only_between_the_nodes_of_a_cluster(
    annotation: str, system: troupe.ActorSystem
) -> None:
    cls = _one_field(annotation)
    ref = await system.spawn(_Echo)
    with pytest.raises(
        TypeError, match=r"cannot be encoded: refs travel only between the nodes of a cluster"
    ):
        codec.encode(cls(ref))
    with pytest.raises(troupe.DecodeError, match="refs travel only between the nodes of a cluster") as info:
        codec.decode({"type": troupe.wire_name(cls), "x": {"ref": "a.b"}})
    assert info.value.path == "$.x"
    with pytest.raises(TypeError, match=r"expected .*, got int"):
        codec.encode(cls(3))
