"""``@message``: frozen attrs classes registered under a stable wire name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform, overload

import attrs

T = TypeVar("T", bound=type)

_WIRE_ATTR = "__troupe_wire_name__"
_by_name: dict[str, type] = {}
"""Wire name -> message class, for the codec.

One process-wide table, like pickle's view of importable classes: it maps
names to immutable class objects and holds no actor state.
"""


def _same_definition(a: type, b: type) -> bool:
    # A class defined again from the same source (a reloaded module, a
    # class defined inside a function called twice) replaces the old one.
    return (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)


def _register(cls: type, name: str) -> None:
    old = _by_name.get(name)
    if old is not None and old is not cls and not _same_definition(old, cls):
        msg = (
            f"wire name {name!r} is already taken by "
            f"{old.__module__}.{old.__qualname__}; give "
            f"{cls.__module__}.{cls.__qualname__} another one with "
            "@message(name=...)"
        )
        raise ValueError(msg)
    _by_name[name] = cls
    setattr(cls, _WIRE_ATTR, name)


@overload
def message(cls: T, /) -> T: ...
@overload
def message(*, name: str | None = None) -> Callable[[T], T]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(attrs.field,))
def message(cls: T | None = None, /, *, name: str | None = None) -> T | Callable[[T], T]:
    """Make ``cls`` a message: a frozen attrs class with a wire name.

    Messages are immutable (``attrs.frozen``: slots, equality, hashing,
    ``__match_args__``), so sharing one between actors is safe. The wire
    name, used by [`troupe.protocol.codec`][troupe.protocol.codec], defaults
    to ``module.QualName``.

    Args:
        cls: the class to decorate (when used as ``@message``).
        name: a stable wire name (when used as ``@message(name=...)``).

    Returns:
        The frozen class, or a decorator that makes one.

    Raises:
        ValueError: another class already uses this wire name.

    Example::

        @message
        class Increment:
            by: int = 1

        @message(name="counter.get")
        class GetCount:
            pass
    """

    def wrap(c: T) -> T:
        frozen: T = attrs.frozen(c)
        _register(frozen, name or f"{c.__module__}.{c.__qualname__}")
        return frozen

    if cls is None:
        return wrap
    return wrap(cls)


def wire_name(cls: type) -> str:
    """The wire name of a message class.

    Raises:
        TypeError: ``cls`` is not a ``@message`` class.
    """
    try:
        name: str = cls.__dict__[_WIRE_ATTR]
    except (KeyError, AttributeError):
        msg = f"{cls!r} is not a @message class; decorate it with @troupe.message"
        raise TypeError(msg) from None
    return name


def is_message_class(cls: object) -> bool:
    """Whether ``cls`` is a class decorated with ``@message``."""
    return isinstance(cls, type) and _WIRE_ATTR in cls.__dict__


def message_class(name: str) -> type[Any] | None:
    """The class registered under wire ``name``, or None."""
    return _by_name.get(name)
