"""How items reach a mailbox: queueing, overflow, senders waiting for room, dead letters.

The queue and the waiting senders live on the cell (``cell.q``,
``cell.waiters``); these functions are the only ones that put items there
or take them out for the receive loop.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from trio.lowlevel import Abort, Task, current_task, reschedule, wait_task_rescheduled

from ..protocol import DeadLetterReason
from ._current import CURRENT_ACTOR
from ._errors import ActorStopped, MailboxFull
from ._mailbox import Overflow
from ._reply import Reply

if TYPE_CHECKING:
    from ._cell import _Cell


class _Blocked:
    """A ``tell`` waiting for room in a full mailbox (of ``cell``)."""

    __slots__ = ("cell", "item", "task")

    def __init__(self, task: Task, item: object, cell: _Cell) -> None:
        self.task: Task | None = task
        self.item = item
        self.cell = cell


def dead_letter(
    cell: _Cell, item: object, reason: DeadLetterReason, error: BaseException | None = None
) -> None:
    """Dead-letter a queued item; an ask's reply fails with ``error``."""
    if type(item) is Reply:
        item._fail_quietly(error or ActorStopped(cell.path))
        item = item._msg
    elif type(item) is _Blocked:
        task = item.task
        if task is not None:
            item.task = None
            reschedule(task)
        item = item.item
        if type(item) is Reply:
            dead_letter(cell, item, reason, error)
            return
    cell.system._dead_letters._add(cell.path, item, reason)


def try_enqueue(cell: _Cell, item: object) -> bool:
    """Queue ``item`` (a message or a Reply) if there is room, waking the actor.

    False when the mailbox is full (or senders already wait for room): the
    caller then waits, or applies the overflow policy.
    """
    q = cell.q
    if q is None:
        if not cell.capacity:
            return _hand_over(cell, item)
        q = cell.q = deque()
    if len(q) < cell.capacity and not cell.waiters:
        q.append(item)
        task = cell.parked
        if task is not None:
            cell.parked = None
            reschedule(task)
        return True
    if not cell.capacity:
        return _hand_over(cell, item)
    return False


def _hand_over(cell: _Cell, item: object) -> bool:
    """A rendezvous mailbox (capacity 0): hand ``item`` to the actor if it is waiting for one.

    As trio's 0-buffer channel accepts ``send_nowait`` while a receiver
    waits: the waiting actor takes it as it wakes; nobody else can be
    handed one before it has.
    """
    task = cell.parked
    if task is None or cell.q:
        return False
    q = cell.q
    if q is None:
        q = cell.q = deque()
    q.append(item)
    cell.parked = None
    reschedule(task)
    return True


def overflow(cell: _Cell, item: object) -> None:
    """``tell_nowait`` found no room: apply the mailbox's overflow policy."""
    q = cell.q
    if q is None:
        q = cell.q = deque()
    policy = cell.overflow
    if policy is Overflow.BLOCK:
        raise MailboxFull(cell.path, cell.capacity)
    if policy is Overflow.DROP_NEW:
        dead_letter(cell, item, DeadLetterReason.DROPPED, MailboxFull(cell.path, cell.capacity))
        return
    # DROP_OLD
    if q:
        dead_letter(cell, q.popleft(), DeadLetterReason.DROPPED, MailboxFull(cell.path, cell.capacity))
        q.append(item)
    else:  # capacity 0, or senders already waiting for room: drop the new one
        dead_letter(cell, item, DeadLetterReason.DROPPED, MailboxFull(cell.path, cell.capacity))
    cell.wake()


async def wait_for_room(cell: _Cell, item: object) -> None:
    """Park a ``tell`` until the loop moves ``item`` into the queue."""
    waiters = cell.waiters
    if waiters is None:
        waiters = cell.waiters = deque()
    blocked = _Blocked(current_task(), item, cell)
    waiters.append(blocked)
    cell.wake()  # a rendezvous (capacity 0) hands over directly
    me = CURRENT_ACTOR.get()
    if me is not None:
        me.waiting = blocked

    def abort(_: object) -> Abort:
        blocked.task = None
        try:
            waiters.remove(blocked)
        except ValueError:  # already taken by the actor
            return Abort.FAILED
        return Abort.SUCCEEDED

    try:
        await wait_task_rescheduled(abort)
    finally:
        if me is not None:
            me.waiting = None


def _admit(cell: _Cell) -> None:
    """After the loop took an item: move the first waiting sender's item in."""
    waiters = cell.waiters
    q = cell.q
    while waiters and q is not None and len(q) < cell.capacity:
        entry = waiters.popleft()
        if type(entry) is _Blocked:
            q.append(entry.item)
            task = entry.task
            if task is not None:
                entry.task = None
                reschedule(task)
        else:  # an ask waiting for room
            entry._in_waiters = False
            q.append(entry)


def _take_waiter(cell: _Cell) -> object:
    """Rendezvous: take an item straight from a waiting sender."""
    assert cell.waiters is not None  # noqa: S101 - the loop checked
    entry = cell.waiters.popleft()
    if type(entry) is _Blocked:
        task = entry.task
        if task is not None:
            entry.task = None
            reschedule(task)
        return entry.item
    entry._in_waiters = False
    return entry


def release_senders(cell: _Cell, tasks: set[Task], error: BaseException) -> None:
    """Dead-letter what the tasks in ``tasks`` wait on in ``cell``'s mailbox: their asks fail with ``error``.

    For an actor about to wait for its children to stop: a child waiting
    for its answer (or for room in its mailbox) would never stop.
    """

    def waiting(entry: object) -> bool:
        if type(entry) is Reply:
            return entry._task in tasks
        return type(entry) is _Blocked and entry.task in tasks

    for queue in (cell.q, cell.waiters):
        if not queue or not any(waiting(entry) for entry in queue):
            continue
        doomed = [entry for entry in queue if waiting(entry)]
        kept = [entry for entry in queue if not waiting(entry)]
        queue.clear()
        queue.extend(kept)
        for entry in doomed:
            if type(entry) is Reply:
                entry._in_waiters = False
            dead_letter(cell, entry, DeadLetterReason.STOPPED, error)


def give_up_waiting(asker: _Cell, cut: str) -> None:
    """``asker``'s instance is being stopped because ``cut`` was cut off: end what it waits for elsewhere.

    An ask it waits on fails with `ActorStopped` (its message stays where it
    is: processed later, the answer dropped); a tell waiting for room is
    dead-lettered. Without this, an actor below a cut-off sibling, asking
    the failed child, would keep the group's restart waiting for ever.
    """
    entry = asker.waiting
    asker.waiting = None
    if type(entry) is Reply:
        if not entry._done:
            target = entry._cell.path if entry._cell is not None else "?"
            entry._fail_quietly(
                ActorStopped(
                    target,
                    f"{asker.path} gave up its ask of {target}: it is being stopped because {cut} "
                    "was cut off for its group's restart",
                )
            )
    elif type(entry) is _Blocked and entry.task is not None:
        target_cell = entry.cell
        if target_cell.waiters and entry in target_cell.waiters:
            target_cell.waiters.remove(entry)
        dead_letter(target_cell, entry, DeadLetterReason.STOPPED)
