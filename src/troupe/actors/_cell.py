"""The cell behind each actor: what outlives its instances, and the states it goes through.

A cell owns the ref, the name, the mailbox queue, the watchers and the
restart history. Each instance runs in a task of its own in the system's
nursery (`_instance`); a restart starts a new task for the same cell
(`_restarts`); a stop ends it for good (`_stopping`). The actor tree is kept
here, not in nested nurseries, so that an idle actor costs one parked task
and a few small objects.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Any, Final

import trio
from trio.lowlevel import Abort, Task, reschedule

from ..protocol import DeadLetterReason
from ._mailbox import Overflow
from ._reply import Reply
from ._supervision import OneForOne, Restart, SupervisorStrategy

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._actor import Actor
    from ._context import ActorContext
    from ._ref import ActorRef
    from ._system import ActorSystem
    from ._timers import Timers

log = logging.getLogger("troupe")
failure_log = logging.getLogger("troupe.failure")
"""Every actor failure is logged here at DEBUG, ``(path, exception)`` under the record's
``FAILURE_LOG_KEY`` attribute: the ``troupe.failed`` event carries only the path, and
``troupe run`` shows the reason."""
FAILURE_LOG_KEY = "troupe_failure"

STARTING: Final = 0
RUNNING: Final = 1
STOPPING: Final = 2
DOWN: Final = 3
DEAD: Final = 4


def _refs_not_ready(cell: _Cell) -> ActorRef[Any]:
    msg = f"troupe.actors._ref was not imported, so there is no ActorRef for {cell.path}"
    raise RuntimeError(msg)


make_ref: Callable[[_Cell], ActorRef[Any]] = _refs_not_ready
"""Makes an `ActorRef` for a cell: set by ``_ref`` (which imports this module) once ActorRef exists."""


class _Cell:
    __slots__ = (
        "abort_failure",
        "accepts",
        "actor",
        "backoff",
        "capacity",
        "child_numbers",
        "children",
        "context",
        "current",
        "cut",
        "deferred",
        "done",
        "down",
        "exiting",
        "factory",
        "failures",
        "fair",
        "final_reason",
        "generation",
        "guardian_strategy",
        "injected",
        "jobs",
        "jobs_done",
        "name",
        "overflow",
        "parent",
        "parked",
        "path",
        "q",
        "restart",
        "restart_pending",
        "restart_times",
        "self_stop",
        "state",
        "stop_requested",
        "subscribed",
        "supervising",
        "system",
        "task",
        "timers",
        "waiters",
        "waiting",
        "watchers",
        "watching",
    )

    def __init__(
        self,
        system: ActorSystem,
        parent: _Cell | None,
        name: str,
        factory: Callable[[], Actor[Any]] | None,
        accepts: tuple[type, ...] | None,
        capacity: int,
        overflow: Overflow,
        restart: Restart,
    ) -> None:
        self.system = system
        self.parent = parent
        self.name = name
        self.path: str = "" if parent is None else f"{parent.path}/{name}"
        self.factory = factory
        self.accepts = accepts
        self.capacity = capacity
        self.overflow = overflow
        self.restart = restart
        self.state = STARTING
        self.q: deque[Any] | None = None
        self.waiters: deque[Any] | None = None
        self.parked: Task | None = None
        self.task: Task | None = None
        self.children: dict[str, _Cell] | None = None
        self.child_numbers: dict[str, int] | None = None
        self.stop_requested = False
        self.self_stop = False
        self.restart_pending = False
        self.abort_failure: BaseException | None = None
        self.exiting = False  # any reason to leave the receive loop after this message
        self.current: Reply[Any] | None = None
        self.deferred: set[Reply[Any]] | None = None
        self.watchers: set[_Cell] | None = None
        self.watching: set[_Cell] | None = None
        self.done: trio.Event | None = None
        self.down: trio.Event | None = None
        self.timers: Timers[Any] | None = None
        self.jobs: set[trio.CancelScope] | None = None
        self.jobs_done: trio.Event | None = None
        self.actor: Actor[Any] | None = None
        self.context: ActorContext[Any] | None = None
        self.restart_times: deque[float] | None = None
        self.failures: deque[tuple[_Cell, BaseException | None, int]] | None = None
        self.supervising = False
        self.generation = 0
        self.final_reason: BaseException | None = None
        self.guardian_strategy: SupervisorStrategy | None = None
        # children of OneForAll/RestForOne supervisors only: the scope that lets
        # a group restart cut the instance off (an idle scope costs ~860 bytes)
        self.cut: trio.CancelScope | None = None
        self.backoff: trio.CancelScope | None = None  # a restart waiting out its backoff
        self.subscribed = False  # subscribed to the event bus: unsubscribed at termination
        self.waiting: object = None  # the ask (Reply) or blocked tell its instance waits on
        # the receive loop pauses once per `fair` messages (1 under exploration; 0 arms `injected`)
        self.fair: int = system._fairness
        self.injected: BaseException | None = None  # raised at the next message (testing.inject_failure)

    def __repr__(self) -> str:
        return f"<cell {self.path}>"

    @property
    def ref(self) -> ActorRef[Any]:
        """A ref to this actor, made on each call (refs compare by cell).

        Not kept on the cell: a cell holding its own ref is a reference
        cycle, so a stopped actor, with all its cell still held, waited for
        the cyclic GC. Each finished task left 15 objects for the collector,
        and 5000 tasks started at once (bench/jobs.py's untracked tasks)
        took 61-123 us each (median 89) against 53-86 us (median 66) now
        that nothing is left (tests/actors/test_garbage.py).
        """
        return make_ref(self)

    # -- small helpers used by refs, contexts and the loop ---------------------------

    def get_context(self) -> ActorContext[Any]:
        ctx = self.context
        if ctx is None:
            from ._context import ActorContext  # noqa: PLC0415 - context imports this module

            ctx = self.context = ActorContext._create(self)
        return ctx

    def abort_park(self, _: object) -> Abort:
        self.parked = None
        return Abort.SUCCEEDED

    def wake(self) -> None:
        task = self.parked
        if task is not None:
            self.parked = None
            reschedule(task)

    def strategy(self) -> SupervisorStrategy:
        if self.guardian_strategy is not None:
            return self.guardian_strategy
        actor = self.actor
        return actor.supervisor if actor is not None else OneForOne()

    def deliver_system(self, msg: object) -> None:
        """Queue a runtime message, ignoring capacity (``Terminated``)."""
        if self.state == DEAD:
            self.system._dead_letters._add(self.path, msg, DeadLetterReason.STOPPED)
            return
        q = self.q
        if q is None:
            q = self.q = deque()
        q.append(msg)
        self.wake()
