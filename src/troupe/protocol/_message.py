"""``@message``: frozen attrs classes registered under a stable wire name."""

from __future__ import annotations

import inspect
import sys
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform, overload

import attrs

T = TypeVar("T", bound=type)

_WIRE_ATTR = "__troupe_wire_name__"
_SCOPE_ATTR = "__troupe_scope__"
"""Where a message class was defined: (globals, locals or None), for its annotations.

Captured when ``@message`` runs, because ``__module__`` may be rewritten
later (troupe's own classes report ``troupe``), and
``typing.get_type_hints`` would then look the names up in the wrong module.
"""
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

    Example:
        ```python
        @message
        class Increment:
            by: int = 1

        @message(name="counter.get")
        class GetCount:
            pass
        ```
    """
    scope = _scope_of_caller()

    def wrap(c: T) -> T:
        frozen: T = attrs.frozen(c)
        _register(frozen, name or f"{c.__module__}.{c.__qualname__}")
        module = sys.modules.get(c.__module__)
        globalns = module.__dict__ if module is not None else scope[0]
        setattr(frozen, _SCOPE_ATTR, (globalns, scope[1]))
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


def _scope_of_caller() -> tuple[dict[str, Any], dict[str, Any] | None]:
    # The frame that wrote `@message`: its globals, and a snapshot of its
    # locals when it is a function or class body (so that a message defined
    # in a function may name the function's other local classes).
    # Only what an annotation may name is kept: a function's other locals
    # (a system, a big list) must not live as long as the class.
    frame = sys._getframe(2)  # our caller is message(); its caller wrote the decorator
    try:
        if frame.f_locals is frame.f_globals:
            return frame.f_globals, None
        local = {k: v for k, v in frame.f_locals.items() if _type_like(v)}
        return frame.f_globals, local
    finally:
        del frame


def _type_like(value: object) -> bool:
    return (
        isinstance(value, type | typing.TypeVar | typing.NewType)
        or typing.get_origin(value) is not None  # an alias: list[int], int | None, Literal[...]
    )


@attrs.frozen
class Unresolved:
    """A field annotation that could not be evaluated, and why."""

    annotation: object
    error: Exception


def field_types(cls: type) -> dict[str, object]:
    """The evaluated types of a message class's attrs fields, by name (missing: untyped).

    Each field's annotation is evaluated in the scope of the class that
    declared it, so forward references (to classes defined later in the same
    module, or to the class itself) work. An annotation that cannot be
    evaluated maps to an `Unresolved`.
    """
    hints: dict[str, object] = {}
    for field in attrs.fields(cls):
        if field.type is None:
            continue
        owner = next((k for k in cls.__mro__ if field.name in inspect.get_annotations(k)), cls)
        globalns, localns = _scope_of(owner)
        hints[field.name] = _evaluate(field.type, globalns, {**(localns or {}), owner.__name__: owner})
    return hints


def _scope_of(klass: type) -> tuple[dict[str, Any], dict[str, Any] | None]:
    scope: tuple[dict[str, Any], dict[str, Any] | None] | None = klass.__dict__.get(_SCOPE_ATTR)
    if scope is not None:
        return scope
    module = sys.modules.get(klass.__module__)
    return (module.__dict__ if module is not None else {}), None


def _evaluate(annotation: object, globalns: dict[str, Any], localns: dict[str, Any]) -> object:
    # get_type_hints on a stand-in object evaluates one annotation, nested
    # string forward references (list["Item"]) included.
    holder = types.SimpleNamespace(__annotations__={"x": annotation})
    try:
        return typing.get_type_hints(holder, globalns, localns)["x"]
    except Exception as exc:  # noqa: BLE001 - an annotation is arbitrary code: any error means "unresolved"
        return Unresolved(annotation, exc)
