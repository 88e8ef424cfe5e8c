"""One instance's life: on_start, the receive loop, teardown, and what starts it.

An instance runs in a task of its own in the system's nursery, over its
cell (`_cell`). It ends by a failure (handed to its parent, `_restarts`), by
a stop (`_stopping`), or cut off by a bound running out (the shutdown
timeout, a group restart's ``shutdown_timeout``, a cancelled spawn).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio
from outcome import Error, Value
from trio.lowlevel import Abort, Task, current_task, reschedule, wait_task_rescheduled

from ..protocol import DeadLetterReason
from . import _restarts as restarts
from . import _stopping as stopping
from ._actor import Actor
from ._cell import DEAD, DOWN, FAILURE_LOG_KEY, RUNNING, STARTING, STOPPING, _Cell, failure_log
from ._current import CURRENT_ACTOR
from ._delivery import _admit, _take_waiter, dead_letter, give_up_waiting
from ._errors import ActorCrashed, ActorStopped, SpawnError
from ._explore import injected
from ._reply import Reply
from ._supervision import OneForAll, OneForOne, Restart, RestForOne

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger("troupe")

_NOTHING: Any = object()


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
            receive = actor.receive if cell.injected is None else injected(cell)
            abort_park = cell.abort_park
            pause = cell.system._pause
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
                    if cell.injected is not None:  # armed while idle
                        receive = injected(cell)
                    continue
                inflight = item
                n += 1
                if n >= cell.fair:  # FAIRNESS; 1 under exploration; 0 once a failure is armed
                    n = 0
                    await pause(cell, item)  # a cut here makes `item` a dead letter (INTERRUPTED)
                    if cell.injected is not None:
                        receive = injected(cell)
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
        stopping.drop_instance(cell, None)
        stopping.finalize(cell, None)


async def _after_cut(cell: _Cell) -> None:
    """End an instance its supervisor cut off: no on_stop; children stopped; then down.

    What its descendants wait for elsewhere (an ask of the failed sibling,
    room in a full mailbox) is given up first: the cut bounds the whole
    subtree's stop, not only the instance's own code.
    """
    cell.state = STOPPING
    stopping.drop_instance(cell, ActorCrashed(cell.path, None))
    if cell.children:
        for below in stopping.descendants(cell):
            give_up_waiting(below, cell.path)
        await stopping.stop_children(cell)
    if cell.state == DEAD:
        return
    cell.state = DOWN
    if cell.restart_pending and not cell.stop_requested:
        if cell.down is not None:
            cell.down.set()
        return
    stopping.finalize(cell, None)


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
    if failure is not None:  # the failure first, then what it cost: listeners learn the cause first
        system._stats_failures += 1
        if system._explorer is not None:
            system._explorer.failed(cell.path, None if failed_item is _NOTHING else failed_item, failure)
        failure_log.debug(
            "%s failed", cell.path, exc_info=failure, extra={FAILURE_LOG_KEY: (cell.path, failure)}
        )
        system._emit("troupe.failed", cell.path)
    if failed_item is not _NOTHING:
        dead_letter(cell, failed_item, DeadLetterReason.FAILED, crashed)
    if failure is None and cell.restart_pending:
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
        stopping.finalize(cell, failure)
        raise
    if starter is not None and starter.spawn:
        # on_start failed at spawn (or the actor was stopped while starting)
        stopping.finalize(cell, failure, announce=started)
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
        stopping.finalize(cell, failure)  # nothing for the supervisor to decide
        return
    await restarts.supervise(parent, cell, failure)


async def teardown(
    cell: _Cell, actor: Actor[Any], *, run_on_stop: bool, reply_error: BaseException | None
) -> None:
    """End an instance: timers, jobs, children (last first), then on_stop."""
    stopping.drop_instance(cell, reply_error)
    if cell.jobs:
        cell.jobs_done = trio.Event()
        await cell.jobs_done.wait()
        cell.jobs_done = None
    if cell.children:
        await stopping.stop_children(cell)
    if run_on_stop and actor.__troupe_on_stop__:
        try:
            await actor.on_stop()
        except Exception as exc:
            log.warning("%s: on_stop raised %s: %s", cell.path, type(exc).__name__, exc, exc_info=exc)
            cell.system._emit("troupe.failed", cell.path)


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
