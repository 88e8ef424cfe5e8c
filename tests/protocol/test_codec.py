from __future__ import annotations

import collections
import inspect
import json
import sys
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import troupe
from troupe.protocol import codec


@troupe.message(name="test.codec.item")
class Item:
    name: str
    qty: int = 1
    price: float = 0.0
    fragile: bool = False


@troupe.message
class Order:
    items: list[Item]
    note: str | None = None
    extra: Any = None
    first: Item | None = None


def test_message_is_frozen_with_wire_name() -> None:
    item = Item("pen")
    assert troupe.wire_name(Item) == "test.codec.item"
    assert troupe.wire_name(Order) == f"{__name__}.Order"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        item.qty = 3  # type: ignore[misc]
    match item:
        case Item(name, qty):
            assert (name, qty) == ("pen", 1)


def test_round_trip_through_json() -> None:
    order = Order([Item("pen", 2, 1.5), Item("cup", fragile=True)], note="gift", extra={"k": [1, 2]})
    data = codec.encode(order)
    assert data["type"] == troupe.wire_name(Order)
    assert data["items"][0] == {
        "type": "test.codec.item",
        "name": "pen",
        "qty": 2,
        "price": 1.5,
        "fragile": False,
    }
    assert codec.decode(json.loads(json.dumps(data))) == order


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"type": "test.codec.item", "name": "a", "qty": "3"}, "$.qty"),
        ({"type": "test.codec.item", "name": "a", "qty": 3.9}, "$.qty"),
        ({"type": "test.codec.item", "name": "a", "qty": True}, "$.qty"),
        ({"type": "test.codec.item", "name": 5}, "$.name"),
        ({"type": "test.codec.item", "name": "a", "fragile": 1}, "$.fragile"),
        ({"type": "test.codec.item", "name": "a", "colour": "red"}, "$.colour"),
        ({"type": "test.codec.item"}, "$.name"),
        ({"type": "no.such.message"}, "$.type"),
        ({"name": "a"}, "$.type"),
        ([1, 2], "$"),
    ],
)
def test_strict_decoding_names_the_bad_field(data: object, path: str) -> None:
    with pytest.raises(troupe.DecodeError) as info:
        codec.decode(data)
    assert info.value.path == path
    assert isinstance(info.value, ValueError)
    assert path in str(info.value)


def test_nested_errors_carry_the_full_path() -> None:
    bad = {"type": troupe.wire_name(Order), "items": [{"type": "test.codec.item", "name": "a"}, {"name": 3}]}
    with pytest.raises(troupe.DecodeError) as info:
        codec.decode(bad)
    assert info.value.path.startswith("$.items[1]")


def test_float_field_accepts_int_but_int_field_refuses_float() -> None:
    assert codec.decode({"type": "test.codec.item", "name": "a", "price": 2}) == Item("a", price=2.0)


def test_refs_and_live_objects_are_not_wire_data() -> None:
    with pytest.raises(TypeError, match="not wire data"):
        codec.encode(Order([], extra=object()))
    with pytest.raises(TypeError, match="not a @message class"):
        codec.encode({"type": "x"})


def test_a_second_class_cannot_take_a_wire_name() -> None:
    with pytest.raises(ValueError, match="already taken"):

        @troupe.message(name="test.codec.item")
        class Other:
            x: int


def test_redefining_the_same_class_is_allowed() -> None:
    def make() -> type:
        @troupe.message
        class Local:
            x: int

        return Local

    first, second = make(), make()
    assert troupe.wire_name(first) == troupe.wire_name(second)
    assert codec.decode({"type": troupe.wire_name(second), "x": 1}) == second(1)


@given(
    st.builds(
        Item,
        name=st.text(),
        qty=st.integers(),
        price=st.floats(allow_nan=False, allow_infinity=False),
        fragile=st.booleans(),
    )
)
def test_every_item_round_trips(item: Item) -> None:
    assert codec.decode(json.loads(json.dumps(codec.encode(item)))) == item


# Issue 17, item 3: the codec round-trips every type it accepts, exactly.


@troupe.message(name="test.codec.shape")
class Shape:
    type: str
    type_: int = 0
    sides: dict[str, Any] = attrs.field(factory=dict)


def test_issue_17_3_a_field_named_type_round_trips() -> None:
    shape = Shape(type="triangle", type_=3, sides={"type": "equal", "type_": 1, "n": 3})
    data = codec.encode(shape)
    assert data == {
        "type": "test.codec.shape",
        "type_": "triangle",
        "type__": 3,
        "sides": {"type_": "equal", "type__": 1, "n": 3},
    }
    back = codec.decode(json.loads(json.dumps(data)))
    assert back == shape
    assert type(back) is Shape


@troupe.message(name="test.codec.bag")
class Bag:
    names: list[str] = attrs.field(factory=list)
    pair: tuple[int, str] = (0, "")
    rest: tuple[int, ...] = ()
    tags: set[str] = attrs.field(factory=set)
    frozen: frozenset[int] = frozenset()
    by: dict[str, int] = attrs.field(factory=dict)


def test_issue_17_3_tuple_set_and_frozenset_fields_round_trip_with_their_types() -> None:
    bag = Bag(["a"], (1, "b"), (2, 3), {"y", "x"}, frozenset({3, 1, 2}), {"k": 1})
    data = codec.encode(bag)
    assert data["pair"] == [1, "b"]
    assert data["tags"] == ["x", "y"]  # sets are sorted when their items sort: stable output
    assert data["frozen"] == [1, 2, 3]
    back = codec.decode(json.loads(json.dumps(data)))
    assert back == bag
    assert (type(back.pair), type(back.rest), type(back.tags), type(back.frozen)) == (
        tuple,
        tuple,
        set,
        frozenset,
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("pair", [1, "b"], r"expected tuple\[int, str\], got list at \$\.pair"),
        ("pair", (1, "b", "c"), r"expected tuple\[int, str\], 2 items, got 3 items at \$\.pair"),
        ("pair", (1, 2), r"expected a str, got int 2 at \$\.pair\[1\]"),
        ("rest", [1], r"expected tuple\[int, \.\.\.\], got list at \$\.rest"),
        ("tags", frozenset({"a"}), r"expected set\[str\], got frozenset at \$\.tags"),
        ("by", collections.OrderedDict(k=1), r"expected dict\[str, int\], got OrderedDict at \$\.by"),
        ("names", "x" * 100, r"expected list\[str\], got str 'x{36}\.\.\. at \$\.names"),
    ],
)
def test_issue_17_3_containers_encode_strictly(field: str, value: object, message: str) -> None:
    bag: Any = Bag()
    with pytest.raises(TypeError, match=message):
        codec.encode(attrs.evolve(bag, **{field: value}))


@pytest.mark.parametrize(
    ("field", "value", "path", "reason"),
    [
        ("names", "abc", "$.names", "expected an array (list[str]), got str 'abc'"),
        ("names", {"a": "b"}, "$.names", "expected an array (list[str]), got dict"),
        ("names", ["a", 1], "$.names[1]", "expected a str, got int 1"),
        ("pair", {}, "$.pair", "expected an array (tuple[int, str]), got dict"),
        ("pair", [1], "$.pair", "expected an array of 2 items (tuple[int, str]), got 1 item"),
        ("pair", [1, "a", "b"], "$.pair", "got 3 items"),
        ("rest", {}, "$.rest", "expected an array (tuple[int, ...]), got dict"),
        ("tags", "ab", "$.tags", "expected an array (set[str]), got str 'ab'"),
        ("tags", ["a", "b", "a"], "$.tags[2]", "duplicate item str 'a' in a set"),
        ("frozen", [1, 1.0], "$.frozen[1]", "expected an int, got float 1.0"),
        ("by", ["k", 1], "$.by", "expected an object (dict[str, int]), got list"),
        ("by", {"k": "1"}, "$.by.k", "expected an int, got str '1'"),
        ("by", {"type": 1}, "$.by.type", "a 'type' key marks a message"),
    ],
)
def test_issue_17_3_containers_decode_strictly(field: str, value: object, path: str, reason: str) -> None:
    data = {"type": "test.codec.bag", field: value}
    with pytest.raises(troupe.DecodeError) as info:
        codec.decode(data)
    assert info.value.path == path
    assert reason in info.value.reason


def test_issue_17_3_bus_events_and_dead_letters_round_trip() -> None:
    letters = [
        troupe.BusEvent("troupe.started", {"path": "/user/a", "n": [1, 2.5, None]}),
        troupe.BusEvent("shapes", Shape("square")),  # a message inside Any travels with its tag
        troupe.DeadLetter("/user/a", Item("pen"), troupe.DeadLetterReason.STOPPED),
        troupe.DeadLetter("/user/b", "hello", troupe.DeadLetterReason.DROPPED),
    ]
    for letter in letters:
        data = codec.encode(letter)
        back = codec.decode(json.loads(json.dumps(data)))
        assert back == letter
        assert type(back) is type(letter)
    assert codec.encode(letters[2])["reason"] == "stopped"  # an enum travels as its value


async def test_issue_17_3_terminated_with_a_ref_is_a_type_error_not_a_name_error() -> None:
    class Idle(troupe.Actor[Any]):
        async def receive(self, msg: Any) -> None:
            pass

    async with troupe.open_system() as system:
        ref = await system.spawn(Idle)
        with pytest.raises(TypeError, match=r"ActorRef is not wire data .* at \$\.ref"):
            codec.encode(troupe.Terminated(ref))
        with pytest.raises(TypeError, match=r"ValueError is not wire data .* at \$\.reason"):
            codec.encode(troupe.Terminated("a path", ValueError("boom")))
        await ref.stop()


@troupe.message(name="test.codec.node")
class Node:
    next: Node | None = None
    data: Any = None


def _chain(depth: int) -> Node:
    node = None
    for _ in range(depth):
        node = Node(node)
    assert node is not None
    return node


def test_issue_17_3_deep_nesting_is_a_decode_error_or_a_type_error_never_a_recursion_error() -> None:
    shallow = _chain(100)  # the deepest that travels: 100 levels of containers
    assert codec.decode(json.loads(json.dumps(codec.encode(shallow)))) == shallow
    deep_data: object = None
    for _ in range(10_000):
        deep_data = {"type": "test.codec.node", "next": deep_data}
    deep_list: list[object] = []
    for _ in range(10_000):
        deep_list = [deep_list]
    looped: list[object] = []
    looped.append(looped)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 40)  # whatever the recursion limit
    try:
        with pytest.raises(troupe.DecodeError, match="nested deeper than 100 levels") as info:
            codec.decode(deep_data)
        with pytest.raises(troupe.DecodeError, match="nested deeper than 100 levels"):
            codec.decode({"type": "test.codec.node", "data": deep_list})
        with pytest.raises(TypeError, match="nested deeper than 100 levels"):
            codec.encode(_chain(101))
        with pytest.raises(TypeError, match=r"nested deeper than 100 levels at \$\.data\[0\]\[0\]"):
            codec.encode(Node(data=looped))
    finally:
        sys.setrecursionlimit(limit)
    assert info.value.path == "$" + ".next" * 100


@pytest.mark.parametrize(
    ("data", "path", "reason"),
    [
        (None, "$", "expected a message object (any message), got None"),
        ("text", "$", "got str 'text'"),
        (b"{}", "$", "bytes is not JSON data"),
        ({"type": 3}, "$.type", "the message type tag must be a str, got int 3"),
        ({"type": "test.codec.node", 1: 2}, "$", "key int 1 is not a str"),
        ({"type": "test.codec.node", "data": b"x"}, "$.data", "bytes is not JSON data"),
        ({"type": "test.codec.node", "data": (1, 2)}, "$.data", "tuple is not JSON data"),
        ({"type": "test.codec.node", "data": {1: 2}}, "$.data", "key int 1 is not a str"),
        ({"type": "test.codec.node", "data": float("nan")}, "$.data", "nan is not a JSON number"),
        ({"type": "test.codec.node", "data": {"type": "no.such"}}, "$.data.type", "unknown message type"),
        ({"type": "test.codec.node", "next": {"type": "test.codec.item", "name": "a"}}, "$.next.type", ""),
        ({"type": "test.codec.node", "next": {"data": 1}}, "$.next", "expected Node | None, got dict"),
        ({"type": "test.codec.node", "next": {"type": "test.codec.node", "data": 1, "x": 2}}, "$.next.x", ""),
    ],
)
def test_issue_17_3_what_is_not_an_encoding_is_a_decode_error_with_its_path(
    data: object, path: str, reason: str
) -> None:
    with pytest.raises(troupe.DecodeError) as info:
        codec.decode(data)
    assert info.value.path == path
    assert reason in info.value.reason


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), r"nan is not a JSON number .* at \$\.data"),
        (float("inf"), r"inf is not a JSON number .* at \$\.data"),
        ([1, -float("inf")], r"at \$\.data\[1\]"),
        ((1, 2), r"a tuple in a field typed Any would come back as a list"),
        ({1, 2}, r"a set in a field typed Any would come back as a list"),
        ({1: "a"}, r"key int 1 is not a str .* at \$\.data"),
        (b"x", r"bytes is not wire data"),
        (object(), r"object is not wire data"),
    ],
)
def test_issue_17_3_what_cannot_travel_is_a_type_error_with_its_path(value: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        codec.encode(Node(data=value))


def test_issue_17_3_decode_takes_only_message_classes_as_cls() -> None:
    with pytest.raises(TypeError, match="takes a @message class"):
        codec.decode({"type": "test.codec.node"}, list)
    assert codec.decode({"type": "test.codec.node"}, Node) == Node()
    with pytest.raises(
        troupe.DecodeError, match=r"expected Node, got message type 'test\.codec\.item'"
    ) as info:
        codec.decode({"type": "test.codec.item", "name": "a"}, Node)
    assert info.value.path == "$.type"
    with pytest.raises(troupe.DecodeError, match="missing message type tag") as info:
        codec.decode({"next": None}, Node)
    assert info.value.path == "$.type"
