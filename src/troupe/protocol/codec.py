"""Turn messages into JSON-able data and back, exactly and strictly.

The wire name of the message sits under the key ``"type"``:

```pycon
>>> codec.encode(Increment(by=2))
{'type': 'counter.increment', 'by': 2}
>>> codec.decode({"type": "counter.increment", "by": 2})
Increment(by=2)
```

What a field may hold, and how it travels:

- ``str``, ``int``, ``bool``, ``None``: as they are, that type exactly
  (``True`` is not an ``int``);
- ``float``: a number (an ``int`` is taken and becomes a float; NaN and
  infinities are refused);
- an enum, a ``Literal[...]``: its value, a JSON scalar;
- ``list[X]``, ``tuple[X, ...]``, ``tuple[X, Y]``, ``set[X]``,
  ``frozenset[X]``: an array, back as the same type (sets sorted, so that
  equal sets encode alike);
- ``dict[str, X]``: an object;
- a message class, or a union of them: an object with its ``"type"``
  (``@message`` subclasses too);
- a union of those: the member the JSON kind of the data names (null,
  boolean, integer, float, string, array, object, message);
- ``Any``, ``object``: JSON scalars, lists, dicts with str keys, and
  messages, as they are.

``"type"`` on the wire always means a message's wire name. A field or
dict key of the user's named ``type``, ``type_``, ``type__``... travels
with one more ``_`` (``type_``, ``type__``...) and comes back as it was.

Both sides are strict. [`encode()`][troupe.protocol.codec.encode] takes
only values that decode back to an equal value of the same types, and
raises `TypeError` naming the path of anything else (a ref, a socket, a
``str`` in an ``int`` field, a tuple in an ``Any`` field, NaN).
[`decode()`][troupe.protocol.codec.decode] raises
[`DecodeError`][troupe.DecodeError] with the path for anything
``encode()`` would not produce: unknown tags, unknown or missing fields
(a missing field with a default takes its default), a wrong type (``"3"``,
``3.9`` or ``True`` for an ``int``, ``"abc"`` for a ``list[str]``), a
wrong tuple length, a duplicate set item. Containers may nest 100 levels
deep; deeper data is an error on both sides, whatever Python's recursion
limit.
"""

from __future__ import annotations

from typing import Any, TypeVar, overload

from ._errors import DecodeError
from ._message import is_message_class, wire_name
from ._schema import ANY_MESSAGE, Tagged
from ._walk import Bad, walk

__all__ = ["decode", "encode"]

T = TypeVar("T")


def encode(msg: object) -> dict[str, Any]:
    """Turn a message into JSON-able data, its wire name under ``"type"``.

    Args:
        msg: an instance of a ``@message`` class.

    Returns:
        A dict of str, int, float, bool, None, lists and dicts, which
        [`decode()`][troupe.protocol.codec.decode] turns back into a message
        equal to ``msg``, with the same types all the way down.

    Raises:
        TypeError: ``msg`` is not a message, or holds a value its field type
            cannot carry (an `ActorRef`, a socket, NaN, a tuple in an ``Any``
            field, data nested deeper than 100 levels...); the message says
            where, like ``$.items[2].by``.
    """
    name = wire_name(type(msg))  # raises TypeError for non-messages
    try:
        data: dict[str, Any] = walk(ANY_MESSAGE, msg, encoding=True)
    except Bad as bad:
        raise TypeError(f"cannot encode {name}: {bad.reason} at {bad.path}") from bad.__cause__
    return data


@overload
def decode(data: object) -> Any: ...
@overload
def decode(data: object, cls: type[T]) -> T: ...


def decode(data: object, cls: type[Any] | None = None) -> Any:
    """Turn wire data back into the message it encodes.

    Args:
        data: what [`encode()`][troupe.protocol.codec.encode] produced
            (possibly after a JSON round trip).
        cls: the expected message class (its ``@message`` subclasses are
            accepted too); by default, any message: the one named by
            ``"type"``.

    Returns:
        A new message instance.

    Raises:
        DecodeError: the data is not the encoding of a message (of ``cls``):
            not an object, an unknown ``"type"``, an unknown or missing
            field, a value of the wrong type, nesting deeper than 100
            levels...; ``.path`` says where.
        TypeError: ``cls`` is not a ``@message`` class.
    """
    node = ANY_MESSAGE
    if cls is not None:
        if not is_message_class(cls):
            raise TypeError(f"decode(data, cls) takes a @message class as cls, not {cls!r}")
        node = Tagged(cls.__name__, (cls,))
    try:
        return walk(node, data, encoding=False)
    except Bad as bad:
        raise DecodeError(bad.path, bad.reason) from bad.__cause__
