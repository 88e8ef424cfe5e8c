"""Turn messages into JSON-able data and back, strictly.

The wire name of the message sits under the key ``"type"``::

    >>> codec.encode(Increment(by=2))
    {'type': 'counter.increment', 'by': 2}
    >>> codec.decode({"type": "counter.increment", "by": 2})
    Increment(by=2)

Decoding is strict: unknown tags, unknown or missing fields, and values of
the wrong type (``"3"``, ``3.9`` or ``True`` for an ``int``) raise
[`DecodeError`][troupe.DecodeError] naming the path of the bad field.
Fields typed ``object`` or ``Any`` pass through unchanged.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

from ._errors import DecodeError
from ._message import is_message_class, message_class, wire_name

__all__ = ["decode", "encode"]

_JSON_SCALARS = (str, int, float, bool, type(None))


def _strict_int(value: object, _: type) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an int, got {type(value).__name__} {value!r}")
    return value


def _strict_float(value: object, _: type) -> float:
    if type(value) not in (int, float):
        raise TypeError(f"expected a float, got {type(value).__name__} {value!r}")
    return float(value)  # type: ignore[arg-type]


def _strict_str(value: object, _: type) -> str:
    if type(value) is not str:
        raise TypeError(f"expected a str, got {type(value).__name__} {value!r}")
    return value


def _strict_bool(value: object, _: type) -> bool:
    if type(value) is not bool:
        raise TypeError(f"expected a bool, got {type(value).__name__} {value!r}")
    return value


def _passthrough(value: object, _: type) -> object:
    return value


def _is_message_union(tp: object) -> bool:
    origin = typing.get_origin(tp)
    if origin not in (typing.Union, types.UnionType):
        return False
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return bool(args) and all(is_message_class(a) for a in args)


def _make_converter() -> cattrs.Converter:  # noqa: C901 - the hooks are closures over one converter
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    conv.register_structure_hook(int, _strict_int)
    conv.register_structure_hook(float, _strict_float)
    conv.register_structure_hook(str, _strict_str)
    conv.register_structure_hook(bool, _strict_bool)
    conv.register_structure_hook_func(lambda t: t is Any or t is object, _passthrough)

    def unstructure_factory(cls: type) -> Callable[[Any], dict[str, Any]]:
        inner: Callable[[Any], dict[str, Any]] = cattrs.gen.make_dict_unstructure_fn(cls, conv)
        name = wire_name(cls)

        def unstructure(obj: Any) -> dict[str, Any]:
            return {"type": name, **inner(obj)}

        return unstructure

    def structure_factory(cls: type) -> Callable[[Any, type], Any]:
        inner: Callable[[Any, type], Any] = cattrs.gen.make_dict_structure_fn(
            cls, conv, _cattrs_forbid_extra_keys=True
        )
        name = wire_name(cls)

        def structure(data: Any, _: type) -> Any:
            if not isinstance(data, Mapping):
                raise TypeError(f"expected an object for {name}, got {type(data).__name__}")
            tag = data.get("type", name)
            if tag != name:
                raise TypeError(f"expected type {name!r}, got {tag!r}")
            return inner({k: v for k, v in data.items() if k != "type"}, cls)

        return structure

    def union_structure_factory(tp: Any) -> Callable[[Any, type], Any]:
        members = {wire_name(a): a for a in typing.get_args(tp) if a is not type(None)}
        optional = type(None) in typing.get_args(tp)

        def structure(data: Any, _: type) -> Any:
            if data is None and optional:
                return None
            if not isinstance(data, Mapping) or "type" not in data:
                raise TypeError(f"expected a message object with a 'type', got {data!r}")
            cls = members.get(data["type"])
            if cls is None:
                raise TypeError(f"type {data['type']!r} is not one of {sorted(members)}")
            return conv.structure(data, cls)

        return structure

    conv.register_unstructure_hook_factory(is_message_class, unstructure_factory)
    conv.register_structure_hook_factory(is_message_class, structure_factory)
    conv.register_structure_hook_factory(_is_message_union, union_structure_factory)
    return conv


_converter = _make_converter()


def _check_wire(value: object, path: str) -> None:
    if isinstance(value, _JSON_SCALARS):
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_wire(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                msg = f"cannot encode: key {key!r} at {path} is not a str"
                raise TypeError(msg)
            _check_wire(item, f"{path}.{key}")
        return
    msg = (
        f"cannot encode: {type(value).__name__} at {path} is not wire data "
        "(refs and other live objects cannot be sent; send a message or plain data)"
    )
    raise TypeError(msg)


def encode(msg: object) -> dict[str, Any]:
    """Turn a message into JSON-able data, its wire name under ``"type"``.

    Args:
        msg: an instance of a ``@message`` class.

    Returns:
        A dict of str, int, float, bool, None, lists and dicts.

    Raises:
        TypeError: ``msg`` is not a message, or holds a value that is not
            wire data (an `ActorRef`, a socket, ...).
    """
    cls = type(msg)
    wire_name(cls)  # raises TypeError for non-messages
    data: dict[str, Any] = _converter.unstructure(msg, cls)
    _check_wire(data, "$")
    return data


def _where(path: list[str]) -> str:
    return "$" + "".join(path)


def _first_error(exc: BaseException, path: list[str]) -> tuple[str, str]:
    if isinstance(exc, ForbiddenExtraKeysError):
        extra = sorted(exc.extra_fields)
        return _where([*path, f".{extra[0]}"]), f"unknown field {extra[0]!r}"
    if isinstance(exc, ClassValidationError | IterableValidationError):
        for sub in exc.exceptions:
            note = next(
                (n for n in getattr(sub, "__notes__", ()) if hasattr(n, "name") or hasattr(n, "index")),
                None,
            )
            step: list[str] = []
            if note is not None and hasattr(note, "name"):
                step = [f".{note.name}"]
            elif note is not None and hasattr(note, "index"):
                step = [f"[{note.index!r}]"]
            if isinstance(sub, KeyError) and note is not None and hasattr(note, "name"):
                return _where([*path, *step]), "missing required field"
            return _first_error(sub, [*path, *step])
    if isinstance(exc, KeyError):
        return _where(path), f"missing required field {exc.args[0]!r}"
    return _where(path), str(exc)


def decode(data: object, cls: type[Any] | None = None) -> Any:
    """Turn wire data back into the message it encodes.

    Args:
        data: what [`encode()`][troupe.protocol.codec.encode] produced
            (possibly after a JSON round trip).
        cls: the expected class; by default the one named by ``"type"``.

    Returns:
        A new message instance.

    Raises:
        DecodeError: an unknown ``"type"``, an unknown or missing field, or a
            value of the wrong type; ``.path`` says where.
    """
    if cls is None:
        if not isinstance(data, Mapping):
            raise DecodeError("$", f"expected an object, got {type(data).__name__}")
        tag = data.get("type")
        if not isinstance(tag, str):
            raise DecodeError("$.type", "missing or non-string message type tag")
        found = message_class(tag)
        if found is None:
            raise DecodeError("$.type", f"unknown message type {tag!r}")
        cls = found
    try:
        return _converter.structure(data, cls)
    except Exception as exc:  # cattrs reports through many exception types
        path, reason = _first_error(exc, [])
        raise DecodeError(path, reason) from exc


def _enum_value(e: enum.Enum) -> object:
    return e.value


_converter.register_unstructure_hook(enum.Enum, _enum_value)
_ = attrs  # attrs classes are what cattrs walks
