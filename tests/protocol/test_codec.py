from __future__ import annotations

import json
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
        price=st.floats(allow_nan=False),
        fragile=st.booleans(),
    )
)
def test_every_item_round_trips(item: Item) -> None:
    assert codec.decode(json.loads(json.dumps(codec.encode(item)))) == item
