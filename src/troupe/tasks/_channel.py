"""Kore's task channels: a bounded two-way channel between a task and its owner.

`run_task(fn, channel=True)` makes a `_Channel`: two bounded pipes (owner to
task, task to owner) and the binding of a callback or an event stream. Its
actor, ``/system/tasks/<task>-channel``, is Kore's owner-side event loop: it
calls the bound callback (or feeds ``events()``) once per message the task
wrote and once when the task ended, in that order, and stops after that.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, final

import trio
from trio.lowlevel import ParkingLot, cancel_shielded_checkpoint, checkpoint_if_cancelled

from .._util import NoPublicConstructor
from ..actors import Actor, ActorSystem
from ..protocol import DeadLetterReason, message
from ._errors import ChannelClosed, TaskStateError

if TYPE_CHECKING:
    from ._handle import TaskHandle

log = logging.getLogger("troupe.tasks")

DEFAULT_CAPACITY = 64
"""Messages each direction buffers before writes wait (``channel=True``)."""


def channel_capacity(channel: object) -> int | None:
    """``channel=`` of a task constructor as a capacity (None: no channel)."""
    if channel is False or channel is None:
        return None
    if channel is True:
        return DEFAULT_CAPACITY
    if isinstance(channel, int) and channel > 0:
        return channel
    msg = f"channel= takes True, False or a positive number of messages to buffer, got {channel!r}"
    raise ValueError(msg)


class _Pipe:
    """One direction: a bounded FIFO of messages, closed for writes at the end."""

    __slots__ = ("buf", "capacity", "closed", "lot")

    def __init__(self, capacity: int) -> None:
        self.buf: collections.deque[object] = collections.deque()
        self.capacity = capacity
        self.closed = False
        self.lot = ParkingLot()  # readers waiting for a message, writers for room

    def take(self, check: Callable[[object], None] | None) -> object:
        """The next message, or WouldBlock; ``check`` may refuse it without taking it."""
        buf = self.buf
        if buf:
            if check is not None:
                check(buf[0])
            item = buf.popleft()
            if self.lot:
                self.lot.unpark_all()
            return item
        if self.closed:
            raise trio.ClosedResourceError
        raise trio.WouldBlock

    async def get(self, check: Callable[[object], None] | None) -> object:
        await checkpoint_if_cancelled()
        while True:
            try:
                item = self.take(check)
            except trio.WouldBlock:
                await self.lot.park()  # a cancel here has taken nothing
                continue
            await cancel_shielded_checkpoint()  # taken: a cancel must not lose it now
            return item

    async def put(self, item: object) -> None:
        await checkpoint_if_cancelled()
        while True:
            if self.closed:
                raise trio.ClosedResourceError
            if len(self.buf) < self.capacity:
                self.buf.append(item)
                if self.lot:
                    self.lot.unpark_all()
                await cancel_shielded_checkpoint()
                return
            await self.lot.park()

    def close(self) -> None:
        self.closed = True
        if self.lot:
            self.lot.unpark_all()


def _bytes_only(item: object) -> None:
    if not isinstance(item, bytes | bytearray):
        msg = (
            f"read_bytes() found a {type(item).__name__} message, not bytes; "
            "it is still in the channel: read it with read()"
        )
        raise TypeError(msg)


def _check_length(max_length: object) -> int:
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length <= 0:
        msg = f"read_bytes() needs a positive max_length, got {max_length!r}"
        raise ValueError(msg)
    return max_length


@final
class TaskChannel(metaclass=NoPublicConstructor):
    """One end of a task's channel: ``t.channel`` for the owner, ``ctx.channel`` in the task.

    Messages keep their order and boundaries; each direction buffers up to
    the channel's capacity, then writes wait. When the task ends the
    channel closes: what the task wrote stays readable, then reads raise
    `ChannelClosed`; the owner's writes raise it at once. Ends of the same
    side of the same channel compare equal (``t.channel == t.channel``).

    Example:
        ```python
        async def worker(ctx: troupe.TaskContext) -> None:
            request = await ctx.channel.read()
            await ctx.channel.write(f"hello {request}")

        t = await troupe.run_task(worker, channel=True)
        await t.channel.write("owner")
        assert await t.channel.read() == "hello owner"
        ```
    """

    __slots__ = ("_chan", "_inbox", "_is_task", "_outbox")

    def __init__(self, chan: _Channel, inbox: _Pipe, outbox: _Pipe, *, is_task: bool) -> None:
        self._chan = chan
        self._inbox = inbox
        self._outbox = outbox
        self._is_task = is_task

    def __repr__(self) -> str:
        side = "task" if self._is_task else "owner"
        return f"<TaskChannel {side} end of {self._chan.task_name}>"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TaskChannel) and other._chan is self._chan and other._is_task == self._is_task
        )

    def __hash__(self) -> int:
        return hash((id(self._chan), self._is_task))

    @property
    def capacity(self) -> int:
        """How many messages each direction buffers before writes wait."""
        return self._outbox.capacity

    async def write(self, obj: object) -> None:
        """Send ``obj`` to the other end; waits while the channel is full.

        Raises:
            ChannelClosed: the task has ended (or this end was closed); ``obj`` was not sent.
        """
        try:
            await self._outbox.put(obj)
        except trio.ClosedResourceError:
            raise self._closed_for_write() from None
        if self._is_task:
            self._chan.task_wrote()

    async def read(self) -> Any:
        """The next message from the other end; waits for one.

        Raises:
            ChannelClosed: the channel is closed and everything in it was read.
        """
        try:
            return await self._inbox.get(None)
        except trio.ClosedResourceError:
            raise self._closed_for_read() from None

    def read_nowait(self) -> Any:
        """The next message if one is waiting (for callbacks, which cannot await).

        Raises:
            trio.WouldBlock: no message is waiting yet.
            ChannelClosed: the channel is closed and everything in it was read.
        """
        try:
            return self._inbox.take(None)
        except trio.ClosedResourceError:
            raise self._closed_for_read() from None

    async def read_bytes(self, max_length: int) -> tuple[bytes, int]:
        """Kore's bytes read: ``(data[:max_length], original_length)``.

        ``original_length > max_length`` means the message was truncated;
        the rest of it is discarded, so the next read gets the next whole
        message.

        Raises:
            ValueError: ``max_length`` is not positive.
            TypeError: the next message is not bytes (it stays in the channel).
            ChannelClosed: the channel is closed and everything in it was read.
        """
        limit = _check_length(max_length)
        try:
            data = await self._inbox.get(_bytes_only)
        except trio.ClosedResourceError:
            raise self._closed_for_read() from None
        return _cut(data, limit)

    def read_bytes_nowait(self, max_length: int) -> tuple[bytes, int]:
        """`read_bytes` if a message is waiting, else `trio.WouldBlock`."""
        limit = _check_length(max_length)
        try:
            data = self._inbox.take(_bytes_only)
        except trio.ClosedResourceError:
            raise self._closed_for_read() from None
        return _cut(data, limit)

    def write_sync(self, obj: object) -> None:
        """`write` from a sync task body running in a worker thread."""
        trio.from_thread.run(self.write, obj)

    def read_sync(self) -> Any:
        """`read` from a sync task body running in a worker thread."""
        return trio.from_thread.run(self.read)

    def read_bytes_sync(self, max_length: int) -> tuple[bytes, int]:
        """`read_bytes` from a sync task body running in a worker thread."""
        return trio.from_thread.run(self.read_bytes, max_length)

    def close(self) -> None:
        """Close this end for writing: the other end reads what was sent, then `ChannelClosed`."""
        self._outbox.close()

    def _closed_for_write(self) -> ChannelClosed:
        name = self._chan.task_name
        if self._is_task:
            return ChannelClosed(f"task {name} closed its channel end; the message was not sent")
        why = "the task has ended" if self._chan.ended else "the owner closed its end"
        return ChannelClosed(f"cannot write to the channel of task {name}: {why}; the message was not sent")

    def _closed_for_read(self) -> ChannelClosed:
        name = self._chan.task_name
        if self._is_task:
            return ChannelClosed(
                f"the owner of task {name} closed its channel end and everything it sent was read"
            )
        return ChannelClosed(
            f"the channel of task {name} is closed and drained: "
            "the task ended and everything it wrote was read"
        )


def _cut(data: object, limit: int) -> tuple[bytes, int]:
    assert isinstance(data, bytes | bytearray)  # noqa: S101 - checked by _bytes_only
    return bytes(data[:limit]), len(data)


@final
class TaskContext(metaclass=NoPublicConstructor):
    """What a task started with ``channel=`` gets as its first argument.

    Example:
        ```python
        async def count(ctx: troupe.TaskContext, n: int) -> None:
            for i in range(n):
                await ctx.channel.write(i)
        ```
    """

    __slots__ = ("channel", "task")

    def __init__(self, channel: TaskChannel, task: TaskHandle[Any]) -> None:
        self.channel = channel
        """The task's end of the channel."""
        self.task = task
        """The task's own handle."""


@final
@message(name="troupe.ChannelEvent")
class ChannelEvent:
    """What ``t.events()`` yields: one per message the task wrote, then one when it finished."""

    task: Any
    """The [`TaskHandle`][troupe.TaskHandle] of the task."""
    finished: bool
    """False for a write; True once, last, when the task has finished."""


class _Events:
    """The async iterator ``t.events()`` returns; fed by the channel actor."""

    def __init__(self) -> None:
        self.queue: collections.deque[ChannelEvent] = collections.deque()
        self.lot = ParkingLot()
        self.done = False

    def push(self, event: ChannelEvent) -> None:
        self.queue.append(event)
        self.lot.unpark_all()

    def __aiter__(self) -> AsyncIterator[ChannelEvent]:
        return self

    async def __anext__(self) -> ChannelEvent:
        if self.done:
            raise StopAsyncIteration
        await checkpoint_if_cancelled()
        while not self.queue:
            await self.lot.park()
        event = self.queue.popleft()
        if event.finished:
            self.done = True
        await cancel_shielded_checkpoint()
        return event


class _Channel:
    """A task's channel: both pipes, both ends, the binding and what is to deliver."""

    def __init__(self, system: ActorSystem, task_name: str, capacity: int) -> None:
        self.system = system
        self.task_name = task_name
        self.to_task, self.to_owner = _Pipe(capacity), _Pipe(capacity)
        # The task's handle while something is bound and not yet told the task
        # finished (the handle holds the record, which holds this channel: a
        # cycle, so it is dropped once the binding has nothing more to say).
        self.handle: TaskHandle[Any] | None = None
        self.callback: Callable[[TaskHandle[Any]], object] | None = None
        self.events: _Events | None = None
        self.pending = 0  # writes not yet announced to the binding
        self.ended = False
        self.finish_pending = False
        self.wake = ParkingLot()  # the channel actor, waiting for something to deliver

    # The ends are made when asked for (they compare equal), not kept: an end
    # holds the channel, so keeping them here made every channel task leave a
    # reference cycle (18 objects) for the cyclic GC.
    @property
    def owner_end(self) -> TaskChannel:
        """The end ``t.channel`` gives the task's owner."""
        return TaskChannel._create(self, self.to_owner, self.to_task, is_task=False)

    @property
    def task_end(self) -> TaskChannel:
        """The end the task's body gets in its `TaskContext`."""
        return TaskChannel._create(self, self.to_task, self.to_owner, is_task=True)

    def task_wrote(self) -> None:
        if self.callback is not None or self.events is not None:
            self.pending += 1
            self.wake.unpark_all()

    def task_ended(self, task_path: str) -> None:
        """Close both directions; what the task never read becomes dead letters."""
        self.ended = True
        self.to_owner.close()
        to_task = self.to_task
        to_task.close()
        while to_task.buf:
            self.system._dead_letters._add(task_path, to_task.buf.popleft(), DeadLetterReason.STOPPED)
        if self.callback is not None or self.events is not None:
            self.finish_pending = True
        self.wake.unpark_all()

    def bind(
        self, handle: TaskHandle[Any], callback: Callable[[TaskHandle[Any]], object] | None
    ) -> _Events | None:
        if self.callback is not None or self.events is not None:
            msg = (
                f"task {self.task_name} already has a callback or an events() stream bound; "
                "bind one of them, once (they are exclusive)"
            )
            raise TaskStateError(msg)
        events = None
        self.handle = handle
        if callback is not None:
            self.callback = callback
        else:
            events = self.events = _Events()
        if self.ended:  # binding after completion: the completion call, at once
            self.deliver(finished=True)
        return events

    def flush_writes(self) -> None:
        """Deliver the writes not yet announced to the binding.

        The task's actor calls it as the task finishes, just before the
        handle says ``finished``: a write callback never sees the task
        finished, and the completion call comes last.
        """
        while self.pending:
            self.pending -= 1
            self.deliver(finished=False)

    def flush(self) -> None:
        """Deliver what is pending: the writes, then the completion."""
        self.flush_writes()
        if self.finish_pending:
            self.finish_pending = False
            self.deliver(finished=True)

    def deliver(self, *, finished: bool) -> None:
        handle = self.handle
        assert handle is not None  # noqa: S101 - delivering means something is bound
        if finished:
            self.handle = None  # nothing more to deliver: let the handle go (see __init__)
        if self.events is not None:
            self.events.push(ChannelEvent(handle, finished))
            return
        callback = self.callback
        if callback is None:
            return
        try:
            callback(handle)
        except KeyboardInterrupt:
            raise
        except BaseException:
            log.exception("the callback bound to task %s raised; the task goes on", self.task_name)
            self.system._emit("troupe.task.callback_failed", self.task_name)


@message(name="troupe.tasks.ChannelWake")
class _Wake:
    pass


class ChannelActor(Actor[_Wake]):
    """Kore's owner-side event loop for one channel: delivers callbacks and events."""

    def __init__(self, chan: _Channel) -> None:
        self.chan = chan

    async def on_start(self) -> None:
        self.context.start_soon(self._deliver)

    async def _deliver(self) -> None:
        chan = self.chan
        while True:
            chan.flush()
            if chan.ended and not chan.pending and not chan.finish_pending:
                self._troupe_stop_self()
                return
            await chan.wake.park()

    async def on_stop(self) -> None:
        self.chan.flush()  # stopped early (the system shutting down): deliver what is left

    async def receive(self, msg: _Wake) -> None:
        """It takes no messages: the channel wakes it directly."""
