"""The runtime behind each actor: its cell, receive loop and lifecycle.

A cell outlives the actor instances it hosts: it owns the ref, the name,
the mailbox queue, the watchers and the restart history. Each instance runs
in a task of its own in the system's nursery; a restart starts a new task
for the same cell. The actor tree is kept here, not in nested nurseries, so
that an idle actor costs one parked task and a few small objects.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from typing import TYPE_CHECKING, Any, Final

import trio
from outcome import Error, Value
from trio.lowlevel import Abort, Task, current_task, reschedule, wait_task_rescheduled

from ..protocol import DeadLetterReason, Terminated
from ._actor import Actor
from ._current import CURRENT_ACTOR
from ._delivery import _admit, _take_waiter, dead_letter, give_up_waiting, release_senders
from ._errors import ActorCrashed, ActorStopped, SpawnError
from ._mailbox import Overflow
from ._reply import Reply
from ._supervision import OneForAll, OneForOne, Restart, RestForOne, SupervisorStrategy

if TYPE_CHECKING:
    from collections.abc import Callable

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

_NOTHING: Any = object()
_FAIRNESS: Final = 1024  # messages handled back to back before yielding to others


class _Starter:
    """Someone waiting for an instance's ``on_start`` to finish.

    A spawn's starter holds a cancel scope around ``on_start``: when the
    spawner is cancelled, ``on_start`` is cancelled too and the spawner
    waits until the instance has ended (as ``nursery.start`` does), so a
    cancelled spawn leaves nothing running.
    """

    __slots__ = ("cancelled", "scope", "spawn", "task")

    def __init__(self, task: Task, *, spawn: bool) -> None:
        self.task: Task | None = task
        self.spawn = spawn
        self.scope: trio.CancelScope | None = trio.CancelScope() if spawn else None
        self.cancelled = False

    def wake(self, result: Value[None] | Error) -> None:
        task = self.task
        if task is not None:
            self.task = None
            reschedule(task, result)

    def abort(self, _: object) -> Abort:
        scope = self.scope
        if scope is not None:
            # The spawner is cancelled: stop the instance first, then let the
            # cancellation through (start_instance re-raises it).
            self.cancelled = True
            scope.cancel()
            return Abort.FAILED
        self.task = None
        return Abort.SUCCEEDED


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
        "final_reason",
        "generation",
        "guardian_strategy",
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


# -- one instance's life --------------------------------------------------------------


def attach(actor: Actor[Any], cell: _Cell) -> None:
    object.__setattr__(actor, "_troupe_cell", cell)
    cell.actor = actor


def _start_task(cell: _Cell, actor: Actor[Any], starter: _Starter | None) -> None:
    """Start the instance's task: `_instance` itself, or inside its cut scope if it has one.

    No wrapper frame for the common case: a coroutine frame more per actor
    cost 250 bytes per idle actor and a fifth of the spawn rate.
    """
    cut = cell.cut
    if cut is None:
        cell.system._nursery.start_soon(_instance, cell, actor, starter, name=cell.path)
    else:
        cell.system._nursery.start_soon(_run_cut, cell, actor, starter, cut, name=cell.path)


async def _run_cut(cell: _Cell, actor: Actor[Any], starter: _Starter | None, cut: trio.CancelScope) -> None:
    """The task of an instance its supervisor may cut off (children of OneForAll/RestForOne)."""
    with cut:
        await _instance(cell, actor, starter)
    if cut.cancelled_caught and cell.state != DEAD:
        await _after_cut(cell)


def _cut_off(cut: trio.CancelScope | None, exc: BaseException, cell: _Cell) -> bool:
    """Whether ``exc`` is the instance's own cut (a group restart's bound), not the system's end."""
    return (
        cut is not None and cut.cancel_called and isinstance(exc, trio.Cancelled) and not cell.system._closing
    )


async def _instance(  # noqa: C901, PLR0912, PLR0915 - the hot loop stays in one frame
    cell: _Cell, actor: Actor[Any], starter: _Starter | None
) -> None:
    """One instance's life: on_start, the receive loop, teardown.

    An instance is never interrupted in the middle of a message by a stop,
    a restart of its group or an escalated failure: they take effect once
    the current message (or ``on_start``) is done, as in other actor
    runtimes. Only a bound running out cuts it off (the shutdown timeout, a
    group restart's ``shutdown_timeout``, a cancelled spawn): the message
    it was handling is then a dead letter (``INTERRUPTED``).
    """
    CURRENT_ACTOR.set(cell)
    task = current_task()
    cell.task = task
    failure: BaseException | None = None
    failed_item: object = _NOTHING
    inflight: object = _NOTHING
    started = False
    try:
        try:
            started = await _on_start(cell, actor, starter) if actor.__troupe_on_start__ else True
            if not cell.exiting:
                cell.state = RUNNING
            if starter is not None and not starter.cancelled:
                starter.wake(Value(None))
                starter = None
                cell.system._emit("troupe.started", cell.path)
            receive = actor.receive
            abort_park = cell.abort_park
            n = 0
            while not cell.exiting:
                q = cell.q
                if q:
                    item = q.popleft()
                    if cell.waiters:
                        _admit(cell)
                elif cell.waiters:
                    item = _take_waiter(cell)
                else:
                    n = 0
                    cell.parked = task
                    await wait_task_rescheduled(abort_park)
                    continue
                inflight = item
                if type(item) is Reply:
                    cell.current = item
                    try:
                        result = await receive(item._msg)
                    except Exception as exc:  # noqa: BLE001 - any failure goes to the supervisor
                        failure = exc
                        failed_item = item
                        break
                    if cell.current is item:
                        item._resolve(Value(result))
                    cell.current = None
                else:
                    try:
                        await receive(item)
                    except Exception as exc:  # noqa: BLE001 - any failure goes to the supervisor
                        failure = exc
                        failed_item = item
                        break
                inflight = _NOTHING
                n += 1
                if n >= _FAIRNESS:
                    n = 0
                    await trio.lowlevel.checkpoint()
        except Exception as exc:  # noqa: BLE001 - on_start failed
            failure = exc
        if cell.state == DEAD:  # stopped while idle: already finalized by the stopper
            return
        if failure is None:
            failure = cell.abort_failure
        cell.current = None
    except BaseException as exc:
        _interrupted(cell, starter, inflight, exc)
        raise  # a cut is caught by its scope: _run_cut goes on with _after_cut
    await _after_instance(cell, actor, starter, started=started, failure=failure, failed_item=failed_item)


async def _on_start(cell: _Cell, actor: Actor[Any], starter: _Starter | None) -> bool:
    """Run ``on_start``; whether it finished (a cancelled spawn cancels it, and stops the instance)."""
    scope = None if starter is None else starter.scope
    if scope is None:
        await actor.on_start()
        return True
    with scope:
        await actor.on_start()
    starter.scope = None  # type: ignore[union-attr] # the scope came from it
    if starter.cancelled:  # type: ignore[union-attr]
        cell.stop_requested = True
        cell.exiting = True
    return not scope.cancelled_caught


def _interrupted(cell: _Cell, starter: _Starter | None, inflight: object, exc: BaseException) -> None:
    """An instance cut off mid-flight (outside its ``except Exception``).

    By the shutdown timeout (the system's nursery is cancelled), by a group
    restart's bound (its cut scope), or by KeyboardInterrupt. No on_stop,
    but nothing is lost: the message being handled is a dead letter of its
    own kind, its ask fails.
    """
    cut_off = _cut_off(cell.cut, exc, cell)
    cell.current = None
    hook = getattr(cell.actor, "_troupe_cut_off", None)
    if hook is not None:
        hook()  # troupe's own actors (a task's) settle what they own, synchronously
    if inflight is not _NOTHING and cell.state != DEAD:
        error = ActorCrashed(cell.path, None) if cut_off else ActorStopped(cell.path)
        dead_letter(cell, inflight, DeadLetterReason.INTERRUPTED, error)
    if starter is not None:
        starter.wake(Value(None) if cut_off and not starter.spawn else Error(ActorStopped(cell.path)))
    if not cut_off or (starter is not None and starter.spawn):  # a spawn that failed leaves nothing
        _drop_instance(cell, None)
        finalize(cell, None)


async def _after_cut(cell: _Cell) -> None:
    """End an instance its supervisor cut off: no on_stop; children stopped; then down.

    What its descendants wait for elsewhere (an ask of the failed sibling,
    room in a full mailbox) is given up first: the cut bounds the whole
    subtree's stop, not only the instance's own code.
    """
    cell.state = STOPPING
    _drop_instance(cell, ActorCrashed(cell.path, None))
    if cell.children:
        for below in _descendants(cell):
            give_up_waiting(below, cell.path)
        await stop_children(cell)
    if cell.state == DEAD:
        return
    cell.state = DOWN
    if cell.restart_pending and not cell.stop_requested:
        if cell.down is not None:
            cell.down.set()
        return
    finalize(cell, None)


async def _after_instance(  # noqa: C901, PLR0912 - one exit path per way an instance can end
    cell: _Cell,
    actor: Actor[Any],
    starter: _Starter | None,
    *,
    started: bool,
    failure: BaseException | None,
    failed_item: object,
) -> None:
    system = cell.system
    cell.state = STOPPING
    crashed: ActorCrashed | None = None
    if failure is not None:
        crashed = ActorCrashed(cell.path, failure)
        crashed.__cause__ = failure
    if failed_item is not _NOTHING:
        dead_letter(cell, failed_item, DeadLetterReason.FAILED, crashed)
    if failure is not None:
        system._stats_failures += 1
        failure_log.debug(
            "%s failed", cell.path, exc_info=failure, extra={FAILURE_LOG_KEY: (cell.path, failure)}
        )
        system._emit("troupe.failed", cell.path)
    elif cell.restart_pending:
        crashed = ActorCrashed(cell.path, None)
    try:
        await teardown(cell, actor, run_on_stop=started, reply_error=crashed)
    except BaseException as exc:
        if _cut_off(cell.cut, exc, cell):  # on_stop cut off by a group restart's bound: _after_cut goes on
            if starter is not None:
                starter.wake(Error(ActorStopped(cell.path)) if starter.spawn else Value(None))
            raise
        if starter is not None:
            starter.wake(Error(ActorStopped(cell.path)))
        finalize(cell, failure)
        raise
    if starter is not None and starter.spawn:
        # on_start failed at spawn (or the actor was stopped while starting)
        finalize(cell, failure, announce=started)
        if failure is not None:
            error = SpawnError(cell.path, failure)
            error.__cause__ = failure
            starter.wake(Error(error))
        else:
            starter.wake(Error(ActorStopped(cell.path)))
        return
    if starter is not None:
        starter.wake(Value(None))
    cell.state = DOWN
    if cell.restart_pending and not cell.stop_requested:  # a stop meanwhile is final: no restart
        if cell.down is not None:
            cell.down.set()
        return
    parent = cell.parent
    kind = cell.restart
    if (
        cell.stop_requested
        or system._closing
        or parent is None
        or parent.state >= STOPPING
        or kind is Restart.TEMPORARY
        or (kind is Restart.TRANSIENT and failure is None)
    ):
        finalize(cell, failure)  # nothing for the supervisor to decide
        return
    await supervise(parent, cell, failure)


def _drop_instance(cell: _Cell, reply_error: BaseException | None) -> None:
    """Synchronously forget the instance's timers, jobs and deferred replies."""
    if cell.timers is not None:
        cell.timers.cancel_all()
    if cell.jobs:
        for job in cell.jobs:
            job.cancel()
    if cell.deferred:
        error = reply_error or ActorStopped(cell.path)
        for reply in list(cell.deferred):
            reply._fail_quietly(error)
        cell.deferred = None


async def teardown(
    cell: _Cell, actor: Actor[Any], *, run_on_stop: bool, reply_error: BaseException | None
) -> None:
    """End an instance: timers, jobs, children (last first), then on_stop."""
    _drop_instance(cell, reply_error)
    if cell.jobs:
        cell.jobs_done = trio.Event()
        await cell.jobs_done.wait()
        cell.jobs_done = None
    if cell.children:
        await stop_children(cell)
    if run_on_stop and actor.__troupe_on_stop__:
        try:
            await actor.on_stop()
        except Exception as exc:
            log.warning("%s: on_stop raised %s: %s", cell.path, type(exc).__name__, exc, exc_info=exc)
            cell.system._emit("troupe.failed", cell.path)


def finalize(cell: _Cell, reason: BaseException | None, *, announce: bool = True) -> None:  # noqa: C901, PLR0912 - each branch frees one lazily made part
    """Final termination: dead-letter what is queued, tell watchers, free the name."""
    if cell.state == DEAD:
        return
    cell.state = DEAD
    cell.final_reason = reason
    system = cell.system
    # What only this instance used goes now, so the actor's task, its
    # context (which holds the cell) and the factory's closure are freed by
    # reference counting rather than by the cyclic GC.
    cell.actor = None
    cell.factory = None
    cell.task = None
    cell.context = None
    cell.cut = None
    # A pending backoff is left to run: it may restart the rest of its group
    # (a dead member is skipped); only a decision that takes the group over cancels it.
    cell.backoff = None
    if cell.subscribed:  # its subscriptions go with it: events are not dead-lettered to it for ever
        cell.subscribed = False
        system._events._forget(cell)
    q = cell.q
    cell.q = None
    if q:
        error = ActorStopped(cell.path)
        for item in q:
            dead_letter(cell, item, DeadLetterReason.STOPPED, error)
    waiters = cell.waiters
    if waiters:
        cell.waiters = None
        error = ActorStopped(cell.path)
        for entry in waiters:
            dead_letter(cell, entry, DeadLetterReason.STOPPED, error)
    parent = cell.parent
    if parent is not None and parent.children is not None and parent.children.get(cell.name) is cell:
        del parent.children[cell.name]
    if cell.watching:
        for target in cell.watching:
            if target.watchers:
                target.watchers.discard(cell)
        cell.watching = None
    if cell.watchers:
        msg = Terminated(cell.ref, reason)
        for watcher in cell.watchers:
            if watcher.watching:
                watcher.watching.discard(cell)
            watcher.deliver_system(msg)
        cell.watchers = None
    if cell.done is not None:
        cell.done.set()
    if cell.down is not None:
        cell.down.set()
    if announce:
        system._emit("troupe.stopped", cell.path)


def stop_now(cell: _Cell) -> bool:
    """Stop ``cell`` synchronously if its stop runs no code; True if done."""
    if cell.state == DEAD:
        return True
    cell.stop_requested = True
    cell.exiting = True
    interrupt = getattr(cell.actor, "_troupe_interrupt", None)
    if interrupt is not None:
        interrupt()  # troupe's own busy actors (task bodies) end their work on a stop
    if cell.state == DOWN or (cell.parked is not None and _trivial(cell)):
        # Finish here; the parked task sees it is dead when it wakes.
        _drop_instance(cell, None)
        finalize(cell, None)
        cell.wake()
        return True
    return False


async def stop_cell(cell: _Cell) -> None:
    """Stop for good: finish the current message, tear down, return when dead."""
    if stop_now(cell):
        await trio.lowlevel.checkpoint()
        return
    cell.wake()
    await join_cell(cell)


def _descendants(cell: _Cell) -> list[_Cell]:
    """The cells below ``cell``."""
    found: list[_Cell] = []
    stack = list(cell.children.values()) if cell.children else []
    while stack:
        child = stack.pop()
        found.append(child)
        if child.children:
            stack.extend(child.children.values())
    return found


def descendant_tasks(cell: _Cell) -> set[Task]:
    """The trio tasks of the instances below ``cell``."""
    return {below.task for below in _descendants(cell) if below.task is not None}


def is_ancestor(cell: _Cell, of: _Cell | None) -> bool:
    """Whether ``cell`` is above ``of`` in the tree."""
    while of is not None:
        of = of.parent
        if of is cell:
            return True
    return False


async def stop_children(cell: _Cell) -> None:
    """Stop ``cell``'s children one at a time, last started first.

    First the asks (and blocked tells) they made of ``cell`` itself fail:
    ``cell`` will not answer before they have stopped, so a child waiting
    for it would never stop (a parent stopping or restarting, asked by its
    child with ``timeout=None``).
    """
    if cell.q or cell.waiters:
        tasks = descendant_tasks(cell)
        if tasks:
            release_senders(cell, tasks, _stopping_ancestor(cell))
    while cell.children:
        for child in reversed(list(cell.children.values())):
            if not stop_now(child):
                await stop_cell(child)


def _stopping_ancestor(cell: _Cell) -> ActorStopped:
    return ActorStopped(
        cell.path,
        f"{cell.path} is stopping its children, so it cannot answer one of them (or its "
        "descendants) before they have stopped; the message went to dead letters",
    )


def refuse_descendant(cell: _Cell) -> ActorStopped | None:
    """The error for an ask (or blocked tell) of ``cell`` by its descendant while it stops its children."""
    if cell.state < STOPPING or cell.state == DEAD:
        return None
    me = CURRENT_ACTOR.get()
    return _stopping_ancestor(cell) if is_ancestor(cell, me) else None


def _trivial(cell: _Cell) -> bool:
    """An idle instance whose stop runs no code: no on_stop, children or jobs."""
    actor = cell.actor
    return actor is not None and not actor.__troupe_on_stop__ and not cell.children and not cell.jobs


async def join_cell(cell: _Cell) -> None:
    if cell.state == DEAD:
        await trio.lowlevel.checkpoint()
        return
    if cell.done is None:
        cell.done = trio.Event()
    await cell.done.wait()


def fail_cell(cell: _Cell, exc: BaseException) -> None:
    """Make a running instance fail with ``exc`` after its current message."""
    if cell.state in {STARTING, RUNNING}:
        if cell.abort_failure is None:
            cell.abort_failure = exc
        cell.exiting = True
        cell.wake()


# -- starting and supervising ---------------------------------------------------------


def _group_supervised(cell: _Cell) -> bool:
    """Whether ``cell``'s supervisor restarts groups (so it may have to cut ``cell`` off)."""
    parent = cell.parent
    return parent is not None and isinstance(parent.strategy(), OneForAll | RestForOne)


async def start_instance(cell: _Cell, actor: Actor[Any], *, spawn: bool, schedule: bool = True) -> None:
    """Run ``actor`` in ``cell``; wait for its ``on_start`` if it has one.

    Without ``on_start`` it yields to the scheduler once, unless ``schedule``
    is False (the caller then provides the schedule point). A spawn
    cancelled while ``on_start`` runs cancels it, waits until the instance
    has ended, then raises the cancellation.
    """
    attach(actor, cell)
    cell.state = STARTING
    cell.cut = trio.CancelScope() if _group_supervised(cell) else None
    system = cell.system
    if not actor.__troupe_on_start__:
        _start_task(cell, actor, None)
        system._emit("troupe.started", cell.path)  # nothing to wait for: it is started
        if schedule:
            await trio.lowlevel.cancel_shielded_checkpoint()
        return
    starter = _Starter(current_task(), spawn=spawn)
    _start_task(cell, actor, starter)
    try:
        await wait_task_rescheduled(starter.abort)
    finally:
        if starter.cancelled:
            await trio.lowlevel.checkpoint()  # raises the spawner's cancellation


async def supervise(parent: _Cell, child: _Cell, failure: BaseException | None) -> None:
    """Hand a child's exit to its parent's strategy, one exit at a time."""
    failures = parent.failures
    if failures is None:
        failures = parent.failures = deque()
    failures.append((child, failure, child.generation))
    if parent.supervising:
        return
    parent.supervising = True
    try:
        while failures:
            c, exc, generation = failures.popleft()
            if generation == c.generation and c.state == DOWN:
                await _decide(parent, c, exc)
    finally:
        parent.supervising = False


def _strategy_or_fail(parent: _Cell) -> SupervisorStrategy | None:
    """The parent's strategy; None (and the parent fails) if its ``supervisor`` is not one."""
    strategy = parent.strategy()
    if isinstance(strategy, OneForOne | OneForAll | RestForOne):
        return strategy
    error = TypeError(
        f"{parent.path}.supervisor is {strategy!r}, not a supervisor strategy; set it to "
        "troupe.OneForOne(...), troupe.OneForAll(...) or troupe.RestForOne(...)"
    )
    fail_cell(parent, error)
    return None


async def _decide(parent: _Cell, child: _Cell, failure: BaseException | None) -> None:  # noqa: C901 - the OTP rules, in order
    system = child.system
    if child.stop_requested or system._closing or parent.state >= STOPPING:
        finalize(child, failure)
        return
    kind = child.restart
    if kind is Restart.TEMPORARY or (kind is Restart.TRANSIENT and failure is None):
        finalize(child, failure)
        return
    strategy = _strategy_or_fail(parent)
    if strategy is None:
        finalize(child, failure)
        return
    now = trio.current_time()
    history = child.restart_times
    if history is None:
        history = child.restart_times = deque()
    while history and history[0] <= now - strategy.within:
        history.popleft()
    if len(history) >= strategy.max_restarts:
        cause = failure if failure is not None else ActorStopped(child.path)
        finalize(child, failure)
        escalate(parent, child, cause)
        return
    history.append(now)
    siblings = list(parent.children.values()) if parent.children else [child]
    if isinstance(strategy, OneForAll):
        group = siblings
    elif isinstance(strategy, RestForOne):
        group = siblings[siblings.index(child) :] if child in siblings else [child]
    else:
        group = [child]
    for other in reversed(group):
        if other is not child:
            _cancel_backoff(other)  # its pending restart is this one's now
            await _abort_for_restart(other, strategy)
    delay = 0.0 if strategy.backoff is None else strategy.backoff.delay(len(history))
    if delay > 0:
        # Each child waits out its own backoff, in a task of its own: the
        # supervisor goes on deciding its other children's exits meanwhile.
        scope = child.backoff = trio.CancelScope()
        system._nursery.start_soon(
            _restart_later, parent, child, group, delay, scope, name=f"{child.path} backoff"
        )
        return
    await _restart_group(parent, child, group)


def _cancel_backoff(cell: _Cell) -> None:
    scope = cell.backoff
    if scope is not None:
        cell.backoff = None
        scope.cancel()


async def _restart_later(
    parent: _Cell, child: _Cell, group: list[_Cell], delay: float, scope: trio.CancelScope
) -> None:
    with scope:
        await trio.sleep(delay)
        if child.backoff is scope or child.state == DEAD:  # not taken over by another decision
            child.backoff = None
            await _restart_group(parent, child, group)


async def _restart_group(parent: _Cell, child: _Cell, group: list[_Cell]) -> None:
    for member in group:
        if member is not child and member.restart is Restart.TEMPORARY:
            finalize(member, None)
            continue
        await _restart(parent, member)


async def _abort_for_restart(cell: _Cell, strategy: SupervisorStrategy) -> None:
    """Stop a sibling for a group restart; cut it off after the strategy's ``shutdown_timeout``."""
    if cell.state in {DEAD, DOWN}:
        return
    cell.restart_pending = True
    cell.exiting = True
    cell.wake()
    down = cell.down = trio.Event()
    bound = getattr(strategy, "shutdown_timeout", math.inf)
    with trio.move_on_after(bound):
        await down.wait()
    if not down.is_set():
        cut = cell.cut
        if cut is not None:
            log.warning(
                "%s did not stop within %s s for its group's restart; cutting it off", cell.path, bound
            )
            cut.cancel()
        await down.wait()
    cell.down = None


async def _restart(parent: _Cell, cell: _Cell) -> None:
    system = cell.system
    if cell.state != DOWN:  # dead, or already restarted by a decision that came first
        return
    if cell.stop_requested or system._closing or parent.state >= STOPPING:
        finalize(cell, None)
        return
    cell.generation += 1
    cell.restart_pending = False
    cell.self_stop = False
    cell.exiting = False
    cell.abort_failure = None
    try:
        actor = make_actor(cell.factory, cell.path)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - a failing factory is a failure of the child
        system._stats_failures += 1
        failure_log.debug(
            "%s failed to restart", cell.path, exc_info=exc, extra={FAILURE_LOG_KEY: (cell.path, exc)}
        )
        system._emit("troupe.failed", cell.path)
        await supervise(parent, cell, exc)
        return
    system._stats_restarts += 1
    system._emit("troupe.restarted", cell.path)
    await start_instance(cell, actor, spawn=False)


def escalate(parent: _Cell, child: _Cell, cause: BaseException) -> None:
    """The restart limit was exceeded: the parent fails with the original error."""
    if parent.guardian_strategy is not None:
        parent.system._fail_root(child.path, cause)
        return
    fail_cell(parent, cause)


def make_actor(factory: Callable[[], object], path: str) -> Actor[Any]:
    actor = factory()
    if not isinstance(actor, Actor):
        msg = (
            f"the factory for {path} returned {type(actor).__qualname__} ({actor!r}), "
            "not an Actor; pass the class, a lambda or a functools.partial that builds one"
        )
        raise TypeError(msg)
    supervisor = actor.supervisor
    if not isinstance(supervisor, OneForOne | OneForAll | RestForOne):
        msg = (
            f"{type(actor).__qualname__}.supervisor ({path}) is {supervisor!r}, not a supervisor "
            "strategy; set it to troupe.OneForOne(...), troupe.OneForAll(...) or troupe.RestForOne(...)"
        )
        raise TypeError(msg)
    if type(actor).receive is Actor.receive:
        msg = (
            f"{type(actor).__qualname__} ({path}) does not implement receive(); "
            "define `async def receive(self, msg)`"
        )
        raise TypeError(msg)
    return actor
