"""For the layers above: messages that arrive from elsewhere (another node), termination hooks.

A node's reader hands each arriving message to its actor without ever
waiting: waiting for room in one mailbox would stop every other message
the node receives. So an arrival applies the mailbox's overflow policy at
once, as ``tell_nowait`` does, and what cannot be delivered becomes a dead
letter here, on the receiving node (counted; never silently lost). An
arriving ask has no waiting task: its outcome goes to a callback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from outcome import Error, Outcome

from ..protocol import DeadLetterReason, Terminated
from . import _cell as cells
from ._actor import describe_accepts
from ._delivery import overflow, try_enqueue
from ._errors import ActorStopped, MailboxFull, MessageTypeError
from ._reply import Reply

if TYPE_CHECKING:
    from ._ref import ActorRef


def arrive_tell(ref: ActorRef[Any], msg: object) -> DeadLetterReason | None:
    """Queue a message that arrived for ``ref``; return the dead letter's reason if it became one."""
    cell = ref._cell
    reason = _refusal(cell, msg)
    if reason is None and not try_enqueue(cell, msg):
        try:
            overflow(cell, msg)
        except MailboxFull:  # Overflow.BLOCK refuses the newcomer: on arrival that is a drop
            reason = DeadLetterReason.DROPPED
    if reason is not None:
        cell.system._dead_letters._add(cell.path, msg, reason)
    return reason


def arrive_ask(
    ref: ActorRef[Any], msg: object, timeout: float | None, on_done: Callable[[Outcome[Any]], None]
) -> None:
    """Queue an ask that arrived for ``ref``; ``on_done`` gets its outcome, exactly once.

    The outcome is what a local ``ask`` would return or raise: the answer,
    `ActorCrashed`, `ActorStopped`, `AskTimeout`, `MailboxFull`, or
    `MessageTypeError` for a type the actor does not accept (then also a
    dead letter, ``REFUSED``).
    """
    cell = ref._cell
    reason = _refusal(cell, msg)
    if reason is not None:
        cell.system._dead_letters._add(cell.path, msg, reason)
        if reason is DeadLetterReason.REFUSED:
            on_done(Error(MessageTypeError(cell.path, msg, describe_accepts(cell.accepts))))
        else:
            on_done(Error(ActorStopped(cell.path)))
        return
    reply: Reply[Any] = Reply._create(cell, msg, None, timeout)
    reply._done = False
    reply._on_done = on_done
    if timeout is not None:
        cell.system._deadlines.add(reply, timeout)
    if not try_enqueue(cell, reply):
        try:
            overflow(cell, reply)  # a dropped ask fails with MailboxFull through on_done
        except MailboxFull as full:
            cell.system._dead_letters._add(cell.path, msg, DeadLetterReason.DROPPED)
            reply._resolve(Error(full))


def _refusal(cell: cells._Cell, msg: object) -> DeadLetterReason | None:
    accepts = cell.accepts
    if accepts is not None and not isinstance(msg, accepts):
        return DeadLetterReason.REFUSED
    if cell.state == cells.DEAD:
        return DeadLetterReason.STOPPED
    return None


class TerminationHook:
    """A watcher that is not an actor: ``callback(ref, reason)`` runs when a watched actor terminates.

    It runs synchronously as the actor is finalized (it must not raise or
    block), so nothing waits in a mailbox: a cluster forgets an actor other
    nodes could address the moment it ends, even while its own actor stops.
    """

    __slots__ = ("callback", "watching")

    def __init__(self, callback: Callable[[object, BaseException | None], None]) -> None:
        self.callback = callback
        self.watching = None  # what finalize() reads of a watcher

    def deliver_system(self, msg: Terminated) -> None:
        """Called by finalize() in place of queueing ``Terminated``."""
        self.callback(msg.ref, msg.reason)


def on_termination(ref: ActorRef[Any], hook: TerminationHook) -> None:
    """Have ``hook`` called when ``ref``'s actor terminates for good (at once if it has)."""
    cell = ref._cell
    if cell.state == cells.DEAD:
        hook.deliver_system(Terminated(ref, cell.final_reason))
        return
    if cell.watchers is None:
        cell.watchers = set()
    cell.watchers.add(cast("cells._Cell", hook))  # finalize() reads only .watching and .deliver_system
