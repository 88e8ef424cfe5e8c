"""Messages whose fields are all scalars take the codec's short way; it must agree with the general one.

The general way walks every field as a part of an opened container; a flat
message (str, int, bool, None, float, enum and Literal fields only) is coded
in one loop. These tests hold the two to the same data and the same errors
by coding each flat class next to a twin with one non-scalar field that
forces the general way.
"""

from __future__ import annotations

import enum
from typing import Any, Literal

import attrs
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from troupe import message
from troupe.protocol import DecodeError, _schema, codec


class Mood(enum.Enum):
    CALM = "calm"
    LOUD = "loud"


def _positive(_: object, __: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise ValueError(f"n must be >= 0, got {value}")


@message(name="flat.item")
class Item:
    n: int = attrs.field(validator=_positive)
    text: str
    type: str = "plain"  # travels as "type_"
    ratio: float = 0.5
    on: bool = False
    nothing: None = None
    mood: Mood = Mood.CALM
    size: Literal["s", "m"] = "s"
    _hidden: str = "x"  # attrs's alias: the constructor takes `hidden`


@message(name="flat.twin")
class Twin:
    """Item's fields, and one list: never flat."""

    n: int = attrs.field(validator=_positive)
    text: str
    type: str = "plain"
    ratio: float = 0.5
    on: bool = False
    nothing: None = None
    mood: Mood = Mood.CALM
    size: Literal["s", "m"] = "s"
    _hidden: str = "x"
    tail: list[int] = attrs.field(factory=list)


def _as_twin(data: Any) -> Any:
    if not isinstance(data, dict):
        return data
    return {**data, "type": "flat.twin"} if data.get("type") == "flat.item" else data


def _outcome(fn: Any, *args: Any) -> tuple[str, str]:
    try:
        out = fn(*args)
    except (DecodeError, TypeError) as exc:
        return type(exc).__name__, str(exc).replace("flat.twin", "flat.item").replace("Twin", "Item")
    fields = attrs.asdict(out, recurse=False) if attrs.has(type(out)) else dict(out)
    fields.pop("tail", None)  # the twin's own field
    return "ok", repr(fields).replace("flat.twin", "flat.item")


def test_every_field_kind_round_trips_with_its_type() -> None:
    item = Item(n=3, text="a", type="odd", ratio=2.0, on=True, mood=Mood.LOUD, size="m", hidden="s")  # type: ignore[call-arg]  # mypy: no alias
    data = codec.encode(item)
    assert data == {
        "type": "flat.item",
        "n": 3,
        "text": "a",
        "type_": "odd",
        "ratio": 2.0,
        "on": True,
        "nothing": None,
        "mood": "loud",
        "size": "m",
        "_hidden": "s",
    }
    back = codec.decode(data)
    assert back == item
    assert type(back.ratio) is float
    assert back.mood is Mood.LOUD


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"type": "flat.item", "text": "a"}, "missing required field 'n' of flat.item at $.n"),
        ({"type": "flat.item", "n": 1, "text": "a", "extra": 1}, "unknown field 'extra' for flat.item"),
        ({"type": "flat.item", "n": True, "text": "a"}, "expected an int, got bool True at $.n"),
        ({"type": "flat.item", "n": 1, "text": "a", "ratio": "1"}, "at $.ratio"),
        ({"type": "flat.item", "n": 1, "text": "a", "mood": "sad"}, "at $.mood"),
        ({"type": "flat.item", "n": 1, "text": "a", "size": "xl"}, "at $.size"),
        ({"type": "flat.item", "n": -1, "text": "a"}, "refused these values (ValueError: n must be >= 0"),
        ({"type": "flat.item", 1: 2, "text": "a"}, "key int 1 is not a str"),
        ({"type": "flat.item", "n": 1, "text": "a", "type_": 2}, "expected a str, got int 2 at $.type_"),
    ],
)
def test_irregular_data_is_refused_with_the_general_ways_errors(data: dict[Any, Any], error: str) -> None:
    with pytest.raises(DecodeError) as refused:
        codec.decode(data)
    assert error in str(refused.value)
    assert _outcome(codec.decode, data) == _outcome(codec.decode, _as_twin(data))


def test_a_missing_optional_field_takes_its_default() -> None:
    assert codec.decode({"type": "flat.item", "n": 1, "text": "a"}) == Item(n=1, text="a")


def test_in_a_container_a_flat_message_error_has_the_whole_path() -> None:
    @message(name="flat.box")
    class Box:
        items: dict[str, list[Item]]

    with pytest.raises(TypeError, match=r"expected a str, got int 7 at \$\.items\[\"a b\"\]\[1\]\.text"):
        codec.encode(Box({"a b": [Item(n=1, text="ok"), Item(n=1, text=7)]}))  # type: ignore[arg-type]
    bad = {"type": "flat.box", "items": {"k": [{"type": "flat.item", "n": "1", "text": "a"}]}}
    with pytest.raises(DecodeError, match=r"at \$\.items\.k\[0\]\.n"):
        codec.decode(bad)


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.sampled_from(["calm", "loud", "s", "m", "plain"]),
)
_keys = st.sampled_from(["n", "text", "type_", "ratio", "on", "nothing", "mood", "size", "_hidden", "other"])


@given(st.dictionaries(_keys, _scalars, max_size=10))
def test_any_data_decodes_as_the_general_way_decodes_it(fields: dict[str, Any]) -> None:
    data = {"type": "flat.item", **fields}
    event("decoded" if _outcome(codec.decode, data)[0] == "ok" else "refused")
    assert _outcome(codec.decode, data) == _outcome(codec.decode, _as_twin(data))


@given(st.dictionaries(st.sampled_from(["n", "text", "type", "ratio", "on", "mood", "size"]), _scalars))
def test_any_values_encode_as_the_general_way_encodes_them(values: dict[str, Any]) -> None:
    base = {"n": 1, "text": "a", **values}
    try:
        item = Item(**base)
        twin = Twin(**base)
    except (ValueError, TypeError):
        return  # the validator refused: nothing to encode
    flat, general = _outcome(codec.encode, item), _outcome(codec.encode, twin)
    assert flat[0] == general[0]
    if flat[0] != "ok":
        assert flat[1] == general[1]


# -- the shortcuts hot paths take (the cluster's tells): never a different answer from the codec's ----------


@given(st.dictionaries(_keys, _scalars, max_size=10))
def test_the_decode_shortcut_gives_the_codecs_message_or_steps_aside(fields: dict[str, Any]) -> None:
    codec.decode({"type": "flat.item", "n": 1, "text": "a"})  # the class has been coded once
    data = {"type": "flat.item", **fields}
    got = _schema.decode_flat(data)
    if got is _schema.IRREGULAR:
        event("stepped aside")
        return
    event("decoded")
    assert _outcome(lambda: got) == _outcome(codec.decode, data)


@given(st.dictionaries(st.sampled_from(["n", "text", "type", "ratio", "on", "mood", "size"]), _scalars))
def test_the_encode_shortcut_gives_the_codecs_data_or_steps_aside(values: dict[str, Any]) -> None:
    codec.encode(Item(n=1, text="a"))
    try:
        item = Item(**{"n": 1, "text": "a", **values})
    except (ValueError, TypeError):
        return
    got = _schema.encode_flat(item)
    if got is None:
        event("stepped aside")
        with pytest.raises(TypeError):
            codec.encode(item)  # only what the codec refuses
        return
    event("encoded")
    assert got == codec.encode(item)


def test_the_shortcuts_step_aside_for_classes_not_coded_yet_not_flat_or_unknown() -> None:
    @message(name="flat.fresh")
    class Fresh:
        n: int

    assert _schema.encode_flat(Fresh(1)) is None  # its fields are worked out by the codec, once
    assert _schema.decode_flat({"type": "flat.fresh", "n": 1}) is _schema.IRREGULAR
    codec.encode(Fresh(1))
    assert _schema.encode_flat(Fresh(1)) == {"type": "flat.fresh", "n": 1}
    assert _schema.decode_flat({"type": "flat.fresh", "n": 1}) == Fresh(1)
    codec.encode(Twin(n=1, text="a"))
    assert _schema.encode_flat(Twin(n=1, text="a")) is None
    assert _schema.decode_flat({"type": "flat.twin", "n": 1, "text": "a"}) is _schema.IRREGULAR
    for data in ({}, {"type": 3}, {"type": "no.such"}, {"type": "flat.fresh", "n": "1"}):
        assert _schema.decode_flat(data) is _schema.IRREGULAR
    assert _schema.encode_flat(object()) is None
