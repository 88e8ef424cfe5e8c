"""Sync code in worker threads: troupe's own slots, and the threads a cancel abandons.

trio cannot interrupt a thread. A cancelled ``trio.to_thread.run_sync(...,
abandon_on_cancel=True)`` returns at once and leaves its thread running,
and the limiter given to trio keeps that thread's token until the thread
returns: a few stuck threads abandoned by forced cancels would hold every
slot of a pool, and every later call would wait for ever.

So troupe keeps its own accounting. A call holds one of its pool's slots
(a `trio.CapacityLimiter`) while the thread is its own and gives it back
the moment the thread is abandoned. trio gets a limiter of one call that
never blocks and tells troupe when the thread really returned, so the
abandoned threads still running are known: each is logged when it is
abandoned, and those still running when the system shuts down are listed
then (`report_abandoned`). Abandoned threads are not bounded: holding new
work back until they return would bring back the stall this module
removes, and refusing it would turn a leak into an outage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import trio

from ..actors import ActorSystem, current_system
from ..actors._explore import exploring, run_blocking

log = logging.getLogger("troupe.tasks")

_KEY = "tasks.abandoned"


class _Call:
    """trio's limiter for one call: never blocks, and learns when the thread returned."""

    __slots__ = ("ended", "on_end", "started")

    def __init__(self) -> None:
        self.started = False
        self.ended = False
        self.on_end: Callable[[], None] | None = None  # set when the thread is abandoned

    async def acquire_on_behalf_of(self, borrower: object) -> None:  # noqa: ARG002 - trio's limiter API
        """The thread is about to start (troupe's slot is already held): never blocks."""
        self.started = True

    def release_on_behalf_of(self, borrower: object) -> None:  # noqa: ARG002 - trio's limiter API
        """Called on the trio thread once the thread has returned (abandoned or not)."""
        self.ended = True
        on_end, self.on_end = self.on_end, None  # the closure holds this call: no cycle left behind
        if on_end is not None:
            on_end()


class Threads:
    """Runs sync calls in worker threads with a pool's slots (or none), counting abandoned threads."""

    __slots__ = ("abandoned", "limiter")

    def __init__(self, limiter: trio.CapacityLimiter | None) -> None:
        self.limiter = limiter
        self.abandoned = 0
        """How many of the threads it abandoned are still running."""

    async def run(self, fn: Callable[..., Any], args: tuple[Any, ...], *, what: Callable[[], str]) -> Any:
        """``fn(*args)`` in a thread; a cancel abandons the thread and frees its slot at once.

        ``what()`` describes the call and why it was cancelled, for the log
        (asked only when a thread is abandoned).
        """
        if exploring() is not None:  # troupe.testing.explore: a thread could not be replayed
            return await run_blocking(fn, *args)
        call = _Call()
        limiter = self.limiter
        if limiter is not None:
            await limiter.acquire_on_behalf_of(call)
        try:
            return await trio.to_thread.run_sync(fn, *args, abandon_on_cancel=True, limiter=call)  # type: ignore[arg-type] # a limiter by trio's duck type
        except BaseException:
            if call.started and not call.ended:
                self._abandon(call, what())
            raise
        finally:
            if limiter is not None:
                limiter.release_on_behalf_of(call)

    def _abandon(self, call: _Call, what: str) -> None:
        self.abandoned += 1
        try:
            system: ActorSystem | None = current_system()
        except RuntimeError:  # called outside any system: counted here only
            system = None
        running: dict[_Call, str] | None = None
        if system is not None:
            running = system._extensions.setdefault(_KEY, {})
            running[call] = what

        def ended() -> None:
            self.abandoned -= 1
            if running is not None:
                running.pop(call, None)

        call.on_end = ended
        log.warning("%s: its thread was abandoned; it runs on until it returns", what)


def report_abandoned(system: ActorSystem) -> None:
    """Log the threads abandoned in ``system`` that are still running (at its shutdown)."""
    running: dict[_Call, str] | None = system._extensions.get(_KEY)
    if running:
        shown = list(running.values())[:_SHOWN]
        more = len(running) - len(shown)
        log.warning(
            "%d abandoned thread(s) still running at shutdown (they end when they return): %s%s",
            len(running),
            "; ".join(shown),
            f"; and {more} more" if more else "",
        )


_SHOWN = 20
"""How many abandoned threads the shutdown report names (it counts them all)."""
