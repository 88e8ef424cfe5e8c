"""Ending actors for good: stops, the final termination, and what a stopping actor refuses.

A stop finishes the current message, then tears the instance down
(`_instance.teardown`); `finalize` is the one place a cell becomes dead:
its queue is dead-lettered, its watchers told, its name freed.
"""

from __future__ import annotations

import trio
from trio.lowlevel import Task

from ..protocol import DeadLetterReason, Terminated
from ._cell import DEAD, DOWN, RUNNING, STARTING, STOPPING, _Cell
from ._current import CURRENT_ACTOR
from ._delivery import dead_letter, release_senders
from ._errors import ActorStopped


def drop_instance(cell: _Cell, reply_error: BaseException | None) -> None:
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


def finalize(cell: _Cell, reason: BaseException | None, *, announce: bool = True) -> None:  # noqa: C901, PLR0912 - each branch frees one lazily made part
    """Final termination: dead-letter what is queued, tell watchers, free the name."""
    if cell.state == DEAD:
        return
    cell.state = DEAD
    cell.final_reason = reason
    system = cell.system
    if cell.parent is not None and cell.guardian_strategy is None:  # spawned: not the root, not a guardian
        system._stats_ended += 1
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
        drop_instance(cell, None)
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


def descendants(cell: _Cell) -> list[_Cell]:
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
    return {below.task for below in descendants(cell) if below.task is not None}


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
