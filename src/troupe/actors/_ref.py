"""``ActorRef``: the only way to talk to an actor."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, final

import attrs
from trio.lowlevel import (
    Task,
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
    current_task,
    wait_task_rescheduled,
)

from .._util import NoPublicConstructor
from ..protocol import DeadLetterReason
from . import _cell as cells
from . import _stopping as stopping
from ._actor import describe_accepts
from ._current import CURRENT_ACTOR
from ._delivery import overflow, try_enqueue, wait_for_room
from ._errors import ActorStopped, MessageTypeError
from ._reply import Reply

if TYPE_CHECKING:
    from ._cell import _Cell

# Contravariant: a ref to an actor that accepts more can stand in for one that
# accepts less (an ActorRef[Answer | Other] is an ActorRef[Answer]), as for
# any sink; M only ever appears as what a ref takes, never as what it gives.
M = TypeVar("M", contravariant=True)  # noqa: PLC0105 - DESIGN and the docs call it ActorRef[M]

_new = type.__call__  # skips NoPublicConstructor on the hot path
# ask() reads trio's private Task._cancel_status when this trio has it (see there).
_READ_CANCEL_STATUS = "_cancel_status" in attrs.fields_dict(Task)
_DEAD = cells.DEAD
_STOPPING = cells.STOPPING


@final
@attrs.frozen
class ActorStatistics:
    """A snapshot of one actor, from [`ActorRef.statistics()`][troupe.ActorRef.statistics]."""

    path: str
    """The actor's path."""
    alive: bool
    """Whether it has not terminated for good."""
    queued: int
    """Messages waiting in its mailbox."""
    capacity: int
    """Its mailbox capacity."""
    blocked_senders: int
    """Senders waiting for room in its mailbox."""
    restarts: int
    """Restarts within its supervisor's current window."""
    children: int
    """How many children it has."""


class Ref(Protocol[M]):
    """What every ref offers: an `ActorRef`, and a cluster's `RemoteRef`.

    Annotate with ``Ref[M]`` where either may come, like the ``reply_to``
    field of a message that crosses a cluster: it arrives as a
    [`RemoteRef`][troupe.cluster.RemoteRef] pointing back at the sender's
    actor. Code written against these methods works with both.

    Example:
        ```python
        @troupe.message
        class GetQuote:
            item: str
            reply_to: troupe.Ref[Quote]

        async def quote(to: troupe.Ref[GetQuote], me: troupe.Ref[Quote]) -> None:
            await to.tell(GetQuote("apples", reply_to=me))
        ```
    """

    @property
    def path(self) -> str:
        """Where the actor lives, for people (logs, dead letters, errors)."""

    async def tell(self, msg: M) -> None:
        """Send ``msg``; see [`ActorRef.tell()`][troupe.ActorRef.tell]."""

    def tell_nowait(self, msg: M) -> None:
        """Send ``msg`` without waiting; see [`ActorRef.tell_nowait()`][troupe.ActorRef.tell_nowait]."""

    async def ask(self, msg: M, *, timeout: float | None = 5.0) -> Any:
        """Send ``msg`` and wait for the answer; see [`ActorRef.ask()`][troupe.ActorRef.ask]."""


@final
class ActorRef(Generic[M], metaclass=NoPublicConstructor):
    """A handle to an actor: cheap, hashable, safe to pass in messages.

    Refs to the same actor are equal. A ref keeps working across restarts.
    ``M`` is the messages the actor accepts, and a ref stands in for any ref
    that accepts fewer: an ``ActorRef[Answer | Done]`` is an
    ``ActorRef[Answer]`` (type checkers treat ``M`` as contravariant), so a
    collector's ref can go in a request's ``reply_to: ActorRef[Answer]``.

    Example:
        ```python
        counter = await system.spawn(Counter, name="counter")
        await counter.tell(Increment(2))
        assert await counter.ask(GetCount()) == 2
        ```
    """

    __slots__ = ("_cell",)
    __troupe_ref__ = True  # the codec carries it (as an address) across a cluster, nowhere else

    def __init__(self, cell: _Cell) -> None:
        self._cell = cell

    def __repr__(self) -> str:
        return f"<ActorRef {self._cell.path}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActorRef) and other._cell is self._cell

    def __hash__(self) -> int:
        return id(self._cell)

    @property
    def path(self) -> str:
        """The actor's path, like ``/user/jobs/worker-3``."""
        return self._cell.path

    @property
    def name(self) -> str:
        """The actor's name, unique among its siblings."""
        return self._cell.name

    @property
    def alive(self) -> bool:
        """False once the actor has terminated for good (restarts do not count)."""
        return self._cell.state != _DEAD

    def _reject(self, msg: object) -> MessageTypeError:
        cell = self._cell
        return MessageTypeError(cell.path, msg, describe_accepts(cell.accepts))

    async def tell(self, msg: M) -> None:
        """Queue ``msg``; wait while the mailbox is full (backpressure).

        Order is kept per sending task. Telling a stopped actor does not
        raise: the message becomes a dead letter. An actor telling its own
        ref into its full mailbox would wait for room only it can make, so
        that tell applies the overflow policy instead, as `tell_nowait` does.

        Raises:
            MessageTypeError: the actor does not accept ``type(msg)``;
                nothing was queued.
            MailboxFull: an actor told itself into its full mailbox under
                ``Overflow.BLOCK``.
        """
        cell = self._cell
        accepts = cell.accepts
        if accepts is not None and not isinstance(msg, accepts):
            raise self._reject(msg)
        await checkpoint_if_cancelled()
        if cell.state == _DEAD:
            cell.system._dead_letters._add(cell.path, msg, DeadLetterReason.STOPPED)
        elif not try_enqueue(cell, msg):
            if current_task() is cell.task:
                # Telling itself into a full mailbox: only this actor can make
                # room, so waiting would wait for ever. As tell_nowait.
                overflow(cell, msg)
            elif stopping.refuse_descendant(cell) is not None:  # it waits for us to stop: no room ever
                cell.system._dead_letters._add(cell.path, msg, DeadLetterReason.STOPPED)
            else:
                await wait_for_room(cell, msg)
                return
        await cancel_shielded_checkpoint()

    def tell_nowait(self, msg: M) -> None:
        """Queue ``msg`` without waiting; a full mailbox applies its overflow policy.

        Raises:
            MessageTypeError: the actor does not accept ``type(msg)``.
            MailboxFull: the mailbox is full and its policy is ``BLOCK``.
        """
        cell = self._cell
        accepts = cell.accepts
        if accepts is not None and not isinstance(msg, accepts):
            raise self._reject(msg)
        if cell.state == _DEAD:
            cell.system._dead_letters._add(cell.path, msg, DeadLetterReason.STOPPED)
        elif not try_enqueue(cell, msg):
            overflow(cell, msg)

    async def ask(self, msg: M, *, timeout: float | None = 5.0) -> Any:  # noqa: C901, PLR0912 - one check per refusal
        """Send ``msg`` and wait for the value ``receive`` returns for it.

        Args:
            msg: the question.
            timeout: seconds for the whole ask, waiting for mailbox room
                included; None waits for ever.

        Returns:
            What the actor's ``receive`` returned (or sent through a
            deferred [`Reply`][troupe.Reply]).

        Raises:
            MessageTypeError: the actor does not accept ``type(msg)``.
            AskTimeout: no answer within ``timeout`` seconds.
            ActorCrashed: ``receive`` raised; ``__cause__`` is the error.
            ActorStopped: the actor is stopped, or stopped before answering; or
                the asker is its descendant and it is stopping its children
                (it would not answer before they stopped).
            RuntimeError: an actor asked its own ref (it would wait for itself).
            ValueError: ``timeout`` is negative or NaN.
        """
        cell = self._cell
        accepts = cell.accepts
        if accepts is not None and not isinstance(msg, accepts):
            raise self._reject(msg)
        if timeout is not None and not timeout >= 0:  # NaN included
            msg_ = f"ask timeout is a number of seconds >= 0 or None, got {timeout!r}"
            raise ValueError(msg_)
        task = current_task()
        if task is cell.task and cell.state != _DEAD:
            msg_ = (
                f"{cell.path} asked itself {type(msg).__qualname__}: it would wait for "
                "its own answer for ever; call the handler directly or use tell()"
            )
            raise RuntimeError(msg_)
        if _READ_CANCEL_STATUS:
            # checkpoint_if_cancelled() is a coroutine of its own: creating and
            # running it was 3.2k of the ask's 90k instructions (callgrind,
            # bench/peers.py's ask). The same test, read straight off the task;
            # checkpoint() then raises Cancelled as it would have.
            if task._cancel_status.effectively_cancelled:
                await checkpoint()
        else:
            await checkpoint_if_cancelled()
        if cell.state >= _STOPPING:
            refused = ActorStopped(cell.path) if cell.state == _DEAD else stopping.refuse_descendant(cell)
            if refused is not None:
                cell.system._dead_letters._add(cell.path, msg, DeadLetterReason.STOPPED)
                await cancel_shielded_checkpoint()
                raise refused
        reply = _new(Reply, cell, msg, task, timeout)
        if timeout is not None:
            cell.system._deadlines.add(reply, timeout)
        if not try_enqueue(cell, reply):
            waiters = cell.waiters
            if waiters is None:
                waiters = cell.waiters = deque()
            reply._in_waiters = True
            waiters.append(reply)
            cell.wake()
        me = CURRENT_ACTOR.get()
        if me is None:
            return await wait_task_rescheduled(reply._abort)
        me.waiting = reply  # an actor asking: a cut above it can give the ask up (give_up_waiting)
        try:
            return await wait_task_rescheduled(reply._abort)
        finally:
            me.waiting = None

    async def stop(self) -> None:
        """Stop the actor for good and wait until it has.

        It finishes the current message, stops its children (last started
        first), runs ``on_stop``, and sends what is left in its mailbox to
        dead letters. Final for every restart type.

        Raises:
            RuntimeError: an actor awaited its own ``stop()``; use
                ``self.context.stop()``.
        """
        cell = self._cell
        if current_task() is cell.task and cell.state != _DEAD:
            msg = (
                f"{cell.path} awaited its own ref.stop(), which would wait for itself; "
                "call self.context.stop() to stop after the current message"
            )
            raise RuntimeError(msg)
        await stopping.stop_cell(cell)

    async def join(self) -> None:
        """Wait until the actor has terminated for good, without asking it to."""
        await stopping.join_cell(self._cell)

    def statistics(self) -> ActorStatistics:
        """A snapshot of the actor's mailbox and supervision state."""
        cell = self._cell
        return ActorStatistics(
            path=cell.path,
            alive=cell.state != _DEAD,
            queued=len(cell.q) if cell.q else 0,
            capacity=cell.capacity,
            blocked_senders=len(cell.waiters) if cell.waiters else 0,
            restarts=len(cell.restart_times) if cell.restart_times else 0,
            children=len(cell.children) if cell.children else 0,
        )


cells.make_ref = ActorRef._create
Ref.__troupe_ref__ = True  # type: ignore[attr-defined] # set after the class, so not a protocol member
