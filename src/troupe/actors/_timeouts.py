"""One deadline heap and one timer task per system, for ask timeouts.

A cancel scope per ask would cost more than the ask itself; instead every
ask with a timeout pushes its reply slot onto this heap, and one task wakes
at the earliest deadline.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Any

import trio
from trio.lowlevel import Abort, Task, checkpoint, current_task, reschedule, wait_task_rescheduled

from ._errors import ActorStopped
from ._explore import exploring

if TYPE_CHECKING:
    from ._reply import Reply

_COMPACT_AT = 256


class Deadlines:
    __slots__ = ("_clock", "_compact_at", "_explored", "_heap", "_nursery", "_parked", "_scope", "_started")

    def __init__(self) -> None:
        self._clock: trio.abc.Clock | None = None
        self._heap: list[Reply[Any]] = []
        self._compact_at = _COMPACT_AT
        self._explored = False
        self._parked: Task | None = None
        self._scope: trio.CancelScope | None = None
        self._started = False
        self._nursery: trio.Nursery | None = None

    def start(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._clock = trio.lowlevel.current_clock()
        self._explored = exploring() is not None  # then each expiry is a schedule point of its own

    def add(self, reply: Reply[Any], timeout: float) -> None:
        """Expire ``reply`` after ``timeout`` seconds of trio's clock."""
        # The run's clock, kept from start(): trio.current_time() per ask
        # went through two more calls (about 1.5k instructions of the ask's
        # 90k under callgrind).
        reply._deadline = self._clock.current_time() + timeout  # type: ignore[union-attr]
        heap = self._heap
        if not self._started:
            self._started = True
            assert self._nursery is not None  # noqa: S101 - started with the system
            self._nursery.start_soon(self._run, name="troupe ask timeouts")
        if len(heap) >= self._compact_at:
            heap[:] = [r for r in heap if not r._done]
            heapq.heapify(heap)
            self._compact_at = max(_COMPACT_AT, 2 * len(heap))
        heapq.heappush(heap, reply)
        if heap[0] is reply:
            task = self._parked
            if task is not None:
                self._parked = None
                reschedule(task)
            elif self._scope is not None:
                self._scope.deadline = reply._deadline

    def close(self) -> None:
        """The system has stopped: fail the asks still waiting on it (nothing can answer them now).

        Every path that ends an actor already fails the asks it holds; this
        is the net under them, so that no ask outlives its target's system.
        """
        heap = self._heap
        self._heap = []
        for reply in heap:
            if not reply._done:
                cell = reply._cell
                reply._fail_quietly(ActorStopped("" if cell is None else cell.path))

    def _unpark(self, _: object) -> Abort:
        self._parked = None
        return Abort.SUCCEEDED

    async def _run(self) -> None:
        while True:
            heap = self._heap
            while heap and heap[0]._done:
                heapq.heappop(heap)
            if not heap:
                self._parked = current_task()
                await wait_task_rescheduled(self._unpark)
                continue
            first = heap[0]
            if first._deadline <= trio.current_time():
                heapq.heappop(heap)
                first._expire()
                if self._explored:
                    await checkpoint()
                continue
            with trio.CancelScope(deadline=first._deadline) as scope:
                self._scope = scope
                await trio.sleep_forever()
            self._scope = None
