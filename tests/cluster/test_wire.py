"""The wire format's JSON reading: exactly `json.loads`, value for value and error for error, only faster."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from troupe.cluster import _wire as wire


def _outcome(fn: Any, payload: bytes) -> tuple[str, Any]:
    try:
        return "ok", fn(payload)
    except (ValueError, RecursionError) as exc:
        return type(exc).__name__, None


@pytest.mark.parametrize(
    "payload",
    [
        b'{"type":"a","n":1}',
        b'  {"type":"a"}\r\n ',
        b'{"a":1} x',
        b'{"a":1}{"b":2}',
        b"",
        b"   ",
        b"\xff\xfe{}",
        b"\xef\xbb\xbf{}",  # a UTF-8 byte order mark: json.loads refuses it too
        b'"\xc3\xa9t\xc3\xa9"',
        b"NaN",
        b"[" * 100_000,
        b"1e999",
    ],
)
def test_it_reads_and_refuses_what_json_loads_does(payload: bytes) -> None:
    ours, theirs = _outcome(wire.loads, payload), _outcome(json.loads, payload)
    assert ours[0] == theirs[0]
    assert ours[1] == theirs[1] or ours[1] != ours[1]  # NaN is not equal to itself


@given(st.binary(max_size=40) | st.text(max_size=40).map(str.encode))
def test_any_bytes_read_as_json_loads_reads_them_or_are_refused_as_it_refuses_them(payload: bytes) -> None:
    ours, theirs = _outcome(wire.loads, payload), _outcome(json.loads, payload)
    assert ours[0] == theirs[0]
    assert repr(ours[1]) == repr(theirs[1])  # NaN too


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


def _encoded(fn: Any, data: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(data)
    except (ValueError, TypeError) as exc:
        return type(exc).__name__, None


@given(st.dictionaries(st.text(max_size=5), _json, max_size=5) | _json)
def test_it_writes_what_the_compact_json_encoder_writes_and_refuses_what_it_refuses(data: Any) -> None:
    expected = _encoded(json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode, data)
    assert _encoded(wire.dumps, data) == expected


@pytest.mark.parametrize("bad", [{"x": object()}, {"x": float("nan")}, {"x": 10**5000}, {"x": {1j: 2}}])
def test_it_refuses_what_is_not_json_data_as_json_does(bad: dict[str, Any]) -> None:
    expected = _encoded(json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode, bad)
    assert expected[0] != "ok"
    assert _encoded(wire.dumps, bad) == expected
