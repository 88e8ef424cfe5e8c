"""The ``Actor[M]`` base class and the runtime reading of ``M``."""

from __future__ import annotations

import inspect
import types
import typing
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from ._supervision import OneForOne, SupervisorStrategy

if TYPE_CHECKING:
    from ._cell import _Cell
    from ._context import ActorContext
    from ._ref import ActorRef

M = TypeVar("M")


def _flatten(tp: object, owner: str) -> tuple[type, ...] | None:
    """The classes a type expression accepts; None means everything."""
    if tp is Any or tp is object:
        return None
    if isinstance(tp, TypeVar):
        bound = tp.__bound__
        return None if bound is None else _flatten(bound, owner)
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        out: list[type] = []
        for arg in typing.get_args(tp):
            sub = _flatten(arg, owner)
            if sub is None:
                return None
            out.extend(sub)
        return tuple(dict.fromkeys(out))
    if tp is None:
        return (type(None),)
    if isinstance(tp, type) and origin is None:
        return (tp,)
    if isinstance(tp, str | typing.ForwardRef):
        what = "a string or forward reference"
    elif origin is not None:
        what = f"the parameterised generic {tp!r}"
    else:
        what = repr(tp)
    msg = (
        f"{owner}: Actor[...] was given {what}, which cannot be checked with "
        "isinstance at runtime; use classes, X | Y, Union[...], Any or object"
    )
    raise TypeError(msg)


def _read_accepts(cls: type) -> tuple[tuple[type, ...] | None, bool]:
    """``(accepts, found)`` from the ``Actor[...]`` in ``cls``'s own bases."""
    for base in cls.__dict__.get("__orig_bases__", ()):
        origin = typing.get_origin(base)
        if isinstance(origin, type) and issubclass(origin, Actor):
            args = typing.get_args(base)
            return _flatten(args[0] if args else Any, cls.__qualname__), True
    return None, False


_HOOKS = ("receive", "on_start", "on_stop")


def _check_hooks(cls: type) -> None:
    """``receive``, ``on_start`` and ``on_stop`` defined by ``cls`` must be ``async def``.

    A plain ``def receive`` would be accepted here and fail only when the
    first message arrives (its result cannot be awaited), bringing its
    supervisor down: refuse it now, where the mistake is.
    """
    for name in _HOOKS:
        method = cls.__dict__.get(name)
        if method is None:
            continue
        function = method.__func__ if isinstance(method, staticmethod | classmethod) else method
        if not inspect.iscoroutinefunction(function):
            msg = (
                f"{cls.__qualname__}.{name} must be a coroutine function: write `async def {name}(...)` "
                f"(troupe awaits it), not {'`def`' if inspect.isfunction(function) else repr(method)}"
            )
            raise TypeError(msg)


def accepts_type(accepts: tuple[type, ...] | None, tp: type) -> bool:
    """Whether an actor accepting ``accepts`` accepts instances of ``tp``."""
    return accepts is None or issubclass(tp, accepts)


def describe_accepts(accepts: tuple[type, ...] | None) -> str:
    """``accepts`` in words, for error messages."""
    if accepts is None:
        return "any message"
    return " | ".join(t.__qualname__ for t in accepts)


class Actor(Generic[M]):
    """Subclass this and implement [`receive()`][troupe.Actor.receive].

    ``M`` (the message types the actor accepts) is checked at the sender:
    telling it anything else raises [`MessageTypeError`][troupe.MessageTypeError].

    Example:
        ```python
        class Counter(troupe.Actor[Increment | GetCount]):
            def __init__(self, start: int = 0) -> None:
                self.count = start

            async def receive(self, msg: Increment | GetCount) -> int | None:
                match msg:
                    case Increment(by=n):
                        self.count += n
                    case GetCount():
                        return self.count
                return None
        ```

    The base class keeps its own attribute names few: ``ref``, ``context``
    and ``supervisor``. It needs no ``super().__init__()`` call.
    """

    supervisor: SupervisorStrategy = OneForOne()
    """How this actor supervises its children; set it on the class or in ``__init__``."""

    __troupe_accepts__: ClassVar[tuple[type, ...] | None] = None
    __troupe_on_start__: ClassVar[bool] = False
    __troupe_on_stop__: ClassVar[bool] = False
    _troupe_cell: _Cell

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        accepts, found = _read_accepts(cls)
        if found:
            cls.__troupe_accepts__ = accepts
        _check_hooks(cls)
        cls.__troupe_on_start__ = cls.on_start is not Actor.on_start
        cls.__troupe_on_stop__ = cls.on_stop is not Actor.on_stop

    async def receive(self, msg: M, /) -> Any:  # noqa: ARG002 - the signature subclasses implement
        """Handle one message; the return value answers an ask.

        An exception fails the actor: its supervisor decides what happens,
        and an asker gets [`ActorCrashed`][troupe.ActorCrashed].
        """
        msg_ = (
            f"{type(self).__qualname__} does not implement receive(); define `async def receive(self, msg)`"
        )
        raise TypeError(msg_)

    async def on_start(self) -> None:
        """Runs before the first message (``self.ref`` and ``self.context`` work).

        If it raises at spawn, [`spawn()`][troupe.ActorSystem.spawn] raises
        [`SpawnError`][troupe.SpawnError]; at a restart it is an ordinary failure.
        """

    async def on_stop(self) -> None:
        """Run once after the last message, also after a failure.

        Not run if ``on_start`` failed. An exception here is published as
        ``troupe.failed`` and logged, never raised.
        """

    @property
    def ref(self) -> ActorRef[M]:
        """This actor's own [`ActorRef`][troupe.ActorRef] (from ``on_start`` on)."""
        return self._cell_or_raise("ref").ref

    @property
    def context(self) -> ActorContext[M]:
        """This actor's [`ActorContext`][troupe.ActorContext] (from ``on_start`` on)."""
        return self._cell_or_raise("context").get_context()

    def _troupe_stop_self(self) -> None:
        """``self.context.stop()`` without making a context (for troupe's own actors)."""
        cell = self._troupe_cell
        cell.self_stop = True
        cell.exiting = True
        cell.wake()

    def _cell_or_raise(self, what: str) -> _Cell:
        try:
            return self._troupe_cell
        except AttributeError:
            msg = (
                f"{type(self).__qualname__}.{what} is not available yet: troupe sets it "
                "after the factory returns; use it from on_start() on, not in __init__"
            )
            raise RuntimeError(msg) from None
