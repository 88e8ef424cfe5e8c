"""Which system and which actor the running code belongs to (context vars)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._cell import _Cell
    from ._ref import ActorRef
    from ._system import ActorSystem

CURRENT_SYSTEM: ContextVar[ActorSystem] = ContextVar("troupe.current_system")
# the cell, not a ref: a ref is made when asked for (see _Cell.ref)
CURRENT_ACTOR: ContextVar[_Cell | None] = ContextVar("troupe.current_actor", default=None)


def current_system() -> ActorSystem:
    """The actor system the calling code runs in.

    Works in the body of ``open_system``, in actors, and in everything they
    start.

    Raises:
        RuntimeError: no system is open around the caller.
    """
    try:
        return CURRENT_SYSTEM.get()
    except LookupError:
        msg = "no troupe system is running here: call this inside `async with troupe.open_system()`"
        raise RuntimeError(msg) from None


def current_actor() -> ActorRef[Any] | None:
    """The ref of the actor whose code is running, or None outside actors."""
    cell = CURRENT_ACTOR.get()
    return None if cell is None else cell.ref
