"""A task's record and its user-facing handle.

The record is the task's state, written only by its actor (and the body it
runs). `TaskHandle` is the small face users get from `run_task` and
friends: it sends the task's supervisor requests and reads the record.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Generic, TypeVar, final

import trio

from .._util import NoPublicConstructor
from ..actors import ActorRef, ActorSystem
from ..protocol import message
from ._channel import ChannelEvent, TaskChannel, _Channel
from ._errors import NotWaitable, TaskCancelled, TaskFailed, TaskStateError
from ._root import ask_control

if TYPE_CHECKING:
    from ._executors import Executor

T = TypeVar("T")

CURRENT_TASK: ContextVar[TaskHandle[Any] | None] = ContextVar("troupe.current_task", default=None)


@final
@message(name="troupe.TaskFinished")
class TaskFinished:
    """Sent once to each subscriber when a task finishes (whatever its outcome)."""

    task: Any
    """The finished [`TaskHandle`][troupe.TaskHandle]."""


@message(name="troupe.tasks.Execute")
class _Execute:
    task: Any


@message(name="troupe.tasks.Cancel")
class _Cancel:
    task: Any
    force: bool


@message(name="troupe.tasks.Subscribe")
class _Subscribe:
    task: Any
    consumer: Any


@message(name="troupe.tasks.MakeAsync")
class _MakeAsync:
    task: Any


ControlMsg = _Execute | _Cancel | _Subscribe | _MakeAsync
"""What handles send to the ``/system/tasks`` supervisor."""


class _Record:
    """The task's state. Written by the task actor (and the body it runs)."""

    __slots__ = (
        "args",
        "cancel_fired",
        "cancel_hook",
        "cancel_requested",
        "channel",
        "condition",
        "done",
        "error",
        "executor",
        "finished",
        "fn",
        "forced",
        "interrupted",
        "is_async",
        "job_id",
        "job_running",
        "name",
        "reporting",
        "result",
        "scope",
        "started",
        "subscribers",
        "system",
        "watchers",
    )

    def __init__(
        self,
        system: ActorSystem,
        name: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        executor: Executor,
    ) -> None:
        self.system = system
        self.name = name
        self.fn: Callable[..., Any] | None = fn
        self.args: tuple[Any, ...] | None = args
        self.executor = executor
        self.condition: Any = None
        self.channel: _Channel | None = None
        self.started = False
        self.finished = False
        self.is_async = False
        self.cancel_requested = False
        self.cancel_fired = False
        self.cancel_hook: Callable[[], None] | None = None  # a body that acts on cancel() itself (commands)
        self.forced = False
        self.interrupted = False  # stopped by the system's shutdown, not by a cancel
        self.job_id: str | None = None
        self.job_running = False  # its job is durable as running (recorded so at creation)
        self.reporting = False  # the job's outcome is decided, and reported once durable
        self.result: Any = None
        self.error: BaseException | None = None
        self.done: trio.Event | None = None  # made by the first waiter
        self.scope: trio.CancelScope | None = None
        self.watchers: list[Callable[[], None]] | None = None  # made by the first waiter
        self.subscribers: list[ActorRef[Any]] | None = None

    def done_event(self) -> trio.Event:
        """The event set when the task finishes (made on first use: most tasks never need one)."""
        if self.done is None:
            self.done = trio.Event()
        return self.done


@final
class TaskHandle(Generic[T], metaclass=NoPublicConstructor):
    """The user-facing face of a task (from `run_task` and friends).

    Example:
        ```python
        t = await troupe.run_task(sum, [1, 2, 3])
        assert await t.result() == 6
        assert t.finished and await t.succeeded()
        ```
    """

    __slots__ = ("_record", "_ref")

    def __init__(self, record: _Record, ref: ActorRef[Any] | None) -> None:
        self._record = record
        self._ref = ref

    def __repr__(self) -> str:
        rec = self._record
        state = "finished" if rec.finished else "running" if rec.started else "not started"
        return f"<TaskHandle {rec.name} {state}>"

    @property
    def name(self) -> str:
        """The task's name (its actor's name under ``/system/tasks``)."""
        return self._record.name

    @property
    def job_id(self) -> str | None:
        """The id of the task's job record, if it was started as a job (``job=True``)."""
        return self._record.job_id

    @property
    def started(self) -> bool:
        """True once the task was started (at once for `run_task`)."""
        return self._record.started

    @property
    def finished(self) -> bool:
        """True once the task ended, whatever its outcome."""
        return self._record.finished

    @property
    def is_async(self) -> bool:
        """True for a fire-and-forget task, which cannot be waited on."""
        return self._record.is_async

    @property
    def cancellation_requested(self) -> bool:
        """True once ``cancel()`` was called before the task finished."""
        return self._record.cancel_requested

    @property
    def channel(self) -> TaskChannel | None:
        """The owner's end of the task's channel; None unless started with ``channel=``."""
        chan = self._record.channel
        return None if chan is None else chan.owner_end

    def bind_callback(self, callback: Callable[[TaskHandle[T]], object]) -> None:
        """Call ``callback(self)`` once per message the task writes, and once when it finishes.

        Bind before the task starts (`delay_task`, then `execute`) to see every
        write; a later binding sees the writes from then on, and one after
        completion calls ``callback`` once at once. It runs on the trio loop
        (in the channel's actor, or in the task's as the task finishes), never
        in a worker; it may drain with ``t.channel.read_nowait()``. A call for
        a write always sees ``t.finished`` False; the completion call comes
        last and sees it True, so ``t.finished`` tells the completion call
        apart. An exception from it (`SystemExit` included) is logged and
        published (``troupe.task.callback_failed``), not a task failure.

        Raises:
            TaskStateError: the task has no channel, or a callback or
                ``events()`` is already bound.
        """
        self._channel_or_raise().bind(self, callback)

    def events(self) -> AsyncIterator[ChannelEvent]:
        """The bound request: a `ChannelEvent` per message the task writes, then one when it finished.

        Exclusive with `bind_callback`; the stream ends after the finished
        event. The stream is read later than it is fed: ``t.finished`` may
        already be True while you handle a write event, so tell the end by
        ``event.finished``.

        Example:
            ```python
            async for event in t.events():
                if event.finished:
                    break
                print(t.channel.read_nowait())
            ```

        Raises:
            TaskStateError: the task has no channel, or something is already bound.
        """
        events = self._channel_or_raise().bind(self, None)
        assert events is not None  # noqa: S101 - bind(None) makes the stream
        return events

    def _channel_or_raise(self) -> _Channel:
        chan = self._record.channel
        if chan is None:
            msg = f"task {self._record.name} has no channel; start it with channel=True to bind to it"
            raise TaskStateError(msg)
        return chan

    async def _control(self, msg: ControlMsg) -> None:
        if self._ref is None or self._record.finished:
            await trio.lowlevel.checkpoint()
            return
        await ask_control(self._record.system, msg)

    async def execute(self) -> None:
        """Start a delayed task; a no-op for one running, finished or scheduled.

        Returns once the request is recorded: ``started`` is then True.
        """
        await self._control(_Execute(self))

    async def cancel(self, *, force: bool = False) -> None:
        """Ask the task to stop.

        Cooperative by default: the task ends only where it calls
        `on_cancellation`; a command task (`run_command`) is sent SIGTERM.
        With ``force=True`` its scope is cancelled (a worker process is
        killed, a thread abandoned, a command's process group is sent
        SIGKILL) and it finishes cancelled at once. A no-op on a finished
        task.
        """
        await self._control(_Cancel(self, force))

    async def subscribe(self, consumer: ActorRef[Any]) -> None:
        """Send ``TaskFinished(self)`` to ``consumer`` once, when the task finishes (or now)."""
        if self._record.finished or self._ref is None:
            consumer.tell_nowait(TaskFinished(self))
            await trio.lowlevel.checkpoint()
            return
        await ask_control(self._record.system, _Subscribe(self, consumer))

    async def _outcome(self) -> _Record:
        rec = self._record
        if rec.is_async:
            raise NotWaitable(rec.name)
        if not rec.finished:
            if not rec.started:
                await self.execute()
            if not rec.finished:
                await _blocking_wait(rec.done_event().wait)
        else:
            await trio.lowlevel.checkpoint()
        return rec

    async def result(self) -> T:
        """Wait for the task and return its result.

        Raises:
            TaskFailed: the body raised (``__cause__`` is the original error).
            TaskCancelled: the task was cancelled without an exit value.
            NotWaitable: the task is async.
        """
        rec = await self._outcome()
        error = rec.error
        if error is None:
            value: T = rec.result
            return value
        if isinstance(error, TaskCancelled):
            if rec.result is not None and not error.forced:
                cancelled_value: T = rec.result
                return cancelled_value
            raise error
        raise TaskFailed(rec.name, error) from error

    async def error(self) -> BaseException | None:
        """Wait for the task; its exception (a `TaskCancelled` after a cancel) or None."""
        return (await self._outcome()).error

    async def succeeded(self) -> bool:
        """Wait for the task; ``await error() is None``."""
        return (await self.error()) is None


async def _blocking_wait(wait: Callable[[], Awaitable[object]]) -> None:
    """Wait, giving up this task's running slot meanwhile (nested waits)."""
    me = CURRENT_TASK.get()
    counters = None
    if me is not None:
        counters = _counters(me._record.system)
        counters["running"] -= 1
    try:
        await wait()
    finally:
        if counters is not None:
            counters["running"] += 1


def _counters(system: ActorSystem) -> dict[str, int]:
    found: dict[str, int] | None = system._extensions.get("tasks.counters")
    if found is None:
        found = system._extensions["tasks.counters"] = {"running": 0, "names": 0}
    return found
