"""Per-actor timers on trio's clock (virtual under ``autojump_clock``)."""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, final

import trio

from .._util import NoPublicConstructor
from . import _cell as cells
from ._actor import describe_accepts
from ._errors import MessageTypeError

if TYPE_CHECKING:
    from ._cell import _Cell

M = TypeVar("M")


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan  # refused by the caller's check, with the value in the message
    return value


@final
class Timers(Generic[M], metaclass=NoPublicConstructor):
    """Messages an actor sends itself later (``self.context.timers``).

    A key names each timer; starting a key again replaces the old timer. A
    restart or a stop cancels them all. Timer messages are checked against
    the actor's ``M`` when the timer starts, and delivered like ``await tell``.

    Example:
        ```python
        async def on_start(self) -> None:
            self.context.timers.start_periodic("tick", 1.0, Tick())
        ```
    """

    __slots__ = ("_cell", "_scopes")

    def __init__(self, cell: _Cell) -> None:
        self._cell = cell
        self._scopes: dict[Hashable, trio.CancelScope] = {}

    def _start(self, key: Hashable, first: float, interval: float | None, msg: M) -> None:
        cell = self._cell
        if cell.accepts is not None and not isinstance(msg, cell.accepts):
            raise MessageTypeError(cell.path, msg, describe_accepts(cell.accepts))
        if not _seconds(first) >= 0 or (interval is not None and not _seconds(interval) > 0):  # NaN too
            what = (
                f"delay must be >= 0, got {first!r}"
                if interval is None
                else f"interval must be > 0, got {interval!r}"
            )
            msg_ = f"timer {key!r} of {cell.path}: {what} seconds"
            raise ValueError(msg_)
        self.cancel(key)
        scope = trio.CancelScope()
        self._scopes[key] = scope
        cell.system._nursery.start_soon(
            self._run, key, scope, first, interval, msg, name=f"{cell.path} timer {key!r}"
        )

    def start_single(self, key: Hashable, delay: float, msg: M) -> None:
        """Send ``msg`` to this actor once, ``delay`` seconds from now.

        Raises:
            ValueError: ``delay`` is negative or not a number (NaN included).
            MessageTypeError: the actor does not accept ``type(msg)``.
        """
        self._start(key, delay, None, msg)

    def start_periodic(self, key: Hashable, interval: float, msg: M) -> None:
        """Send ``msg`` to this actor every ``interval`` seconds.

        Raises:
            ValueError: ``interval`` is not a number > 0 (NaN included).
            MessageTypeError: the actor does not accept ``type(msg)``.
        """
        self._start(key, interval, interval, msg)

    def cancel(self, key: Hashable) -> None:
        """Cancel the timer named ``key`` (a no-op if there is none)."""
        scope = self._scopes.pop(key, None)
        if scope is not None:
            scope.cancel()

    def cancel_all(self) -> None:
        """Cancel every timer of this actor."""
        scopes = self._scopes
        self._scopes = {}
        for scope in scopes.values():
            scope.cancel()

    def active(self) -> list[Hashable]:
        """The keys of the timers still pending."""
        return list(self._scopes)

    async def _run(
        self, key: Hashable, scope: trio.CancelScope, first: float, interval: float | None, msg: Any
    ) -> None:
        cell = self._cell
        with scope:
            deadline = trio.current_time() + first
            while True:
                await trio.sleep_until(deadline)
                if cell.state == cells.DEAD:
                    break
                await cell.ref.tell(msg)
                if interval is None:
                    break
                deadline += interval
        if self._scopes.get(key) is scope:
            del self._scopes[key]
