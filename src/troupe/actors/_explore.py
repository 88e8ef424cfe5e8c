"""The runtime's side of schedule exploration (`troupe.testing.explore`).

Outside exploration the receive loop hands control back to trio once every
``FAIRNESS`` messages, the ask-timeout heap expires every due ask in one
step, and troupe's own blocking calls (SQLite, parsing a task list, sync
task bodies) go to worker threads. Under exploration (a run whose
``EXPLORING`` run variable holds an `Explorer`) the loop may yield before
every message (the schedule's seed decides: a plain run drains several in
one turn, so both must be reachable) and tells the explorer which message
it takes, the heap yields after every expiry, and those blocking calls run
inline on the trio thread: the orders of message deliveries trio could
produce are reachable, and nothing leaves the one thread whose schedule is
being explored.

Nothing here is on a hot path: the loop reaches `pause` once per
``cell.fair`` messages, the same comparison it always made against its
fairness bound.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Protocol

import trio
from trio.lowlevel import RunVar, checkpoint

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._cell import _Cell

FAIRNESS: Final = 1024
"""Messages an actor handles back to back before it yields to others (outside exploration)."""


class Explorer(Protocol):
    """What the runtime reports to an exploration (implemented by ``troupe.testing``)."""

    def yields(self) -> bool:
        """Whether an actor about to take its next message yields first (drawn from the seed)."""

    def took(self, path: str, item: object) -> None:
        """The actor at ``path`` takes ``item`` (a message, or an ask's reply slot) to handle it next."""

    def failed(self, path: str, item: object, failure: BaseException) -> None:
        """The actor at ``path`` failed: ``item`` is the message it failed on (or a sentinel)."""


EXPLORING: RunVar[Explorer | None] = RunVar("troupe_exploring", default=None)
"""The exploration running in this ``trio.run``, if any (set by ``troupe.testing.explore``)."""


def exploring() -> Explorer | None:
    """The exploration of the current ``trio.run``, or None (also outside trio)."""
    try:
        return EXPLORING.get()
    except RuntimeError:  # not in trio.run
        return None


async def _pause(cell: _Cell, item: object) -> None:  # noqa: ARG001 - the signature of every pause
    """The loop's yield every ``FAIRNESS`` messages (and after an injected failure was armed)."""
    cell.fair = FAIRNESS
    await checkpoint()


def pause_for(explorer: Explorer | None) -> Callable[[_Cell, object], Awaitable[None]]:
    """The receive loop's pause for a system: ``_pause``, or one that reports to ``explorer``."""
    if explorer is None:
        return _pause
    took = explorer.took
    yields = explorer.yields

    async def explored(cell: _Cell, item: object) -> None:
        cell.fair = 1
        if yields():  # a schedule point, or not: a plain run drains several messages in one turn
            await checkpoint()
        took(cell.path, item)

    return explored


def injected(cell: _Cell) -> Callable[[Any], Awaitable[Any]]:
    """A ``receive`` that raises the failure armed on ``cell`` (``troupe.testing.inject_failure``), once."""
    failure = cell.injected
    cell.injected = None

    async def fail(msg: object) -> Any:  # noqa: ARG001 - receive's signature
        assert failure is not None  # noqa: S101 - only made when one was armed
        raise failure

    return fail


async def run_blocking(fn: Callable[..., Any], *args: Any, **options: Any) -> Any:
    """``trio.to_thread.run_sync(fn, *args, **options)``; inline on the trio thread under exploration.

    For troupe's own blocking calls (a job store's SQLite, parsing a task
    list): under exploration a thread would make the schedule unreplayable,
    and these calls neither block for long nor call back into trio.
    """
    if exploring() is None:
        return await trio.to_thread.run_sync(fn, *args, **options)
    # as trio.to_thread.run_sync without abandon_on_cancel: cancellable only before the call starts
    await trio.lowlevel.checkpoint_if_cancelled()
    result = fn(*args)
    await trio.lowlevel.cancel_shielded_checkpoint()
    return result
