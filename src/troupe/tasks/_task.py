"""Tasks as actors: the HPC-GAP task API on trio.

Each task is a TEMPORARY actor under ``/system/tasks``. It owns the task's
record: it alone writes it, and ends itself once the outcome is recorded.
`TaskHandle` is the small user-facing face: it sends the task messages
and reads its record.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import Any, Generic, TypeVar, final, overload

import trio

from .._util import NoPublicConstructor
from ..actors import Actor, ActorRef, ActorStopped, ActorSystem, JobObserver, JobStoreError, current_system
from ..protocol import message
from ._channel import ChannelActor, ChannelEvent, TaskChannel, TaskContext, _Channel, channel_capacity
from ._errors import NotWaitable, TaskCancelled, TaskFailed, TaskStateError
from ._executors import INLINE, Executor, ProcessExecutor, ThreadExecutor, _call_pickled, resolve
from ._root import ask_control, spawn_task_actor

log = logging.getLogger("troupe.tasks")

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


@message(name="troupe.tasks.Begin")
class _Begin:
    pass


@message(name="troupe.tasks.Abort")
class _Abort:
    pass


_BEGIN = _Begin()
_ABORT = _Abort()
_TaskMsg = _Begin | _Abort


class _CancelExit(BaseException):
    """Raised by ``on_cancellation`` to end the task body."""

    def __init__(self, value: object, cause: BaseException | None) -> None:
        super().__init__("task cancelled cooperatively")
        self.value = value
        self.cause = cause


class _Record:
    """The task's state. Written by the task actor (and the body it runs)."""

    __slots__ = (
        "args",
        "cancel_fired",
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
        self.forced = False
        self.interrupted = False  # stopped by the system's shutdown, not by a cancel
        self.job_id: str | None = None
        self.job_running = False  # its job is durable as running (recorded so at creation)
        self.result: Any = None
        self.error: BaseException | None = None
        self.done: trio.Event | None = None  # made by the first waiter
        self.scope: trio.CancelScope | None = None
        self.watchers: list[Callable[[], None]] | None = None  # made by the first waiter
        self.subscribers: list[ActorRef[Any]] | None = None


@final
class TaskHandle(Generic[T], metaclass=NoPublicConstructor):
    """The user-facing face of a task (from `run_task` and friends).

    Example::

        t = await troupe.run_task(sum, [1, 2, 3])
        assert await t.result() == 6
        assert t.finished and await t.succeeded()
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
        completion calls ``callback`` once at once. It runs on the trio loop,
        in the channel's actor; it may drain with ``t.channel.read_nowait()``.
        An exception from it is logged and published
        (``troupe.task.callback_failed``), not a task failure.

        Raises:
            TaskStateError: the task has no channel, or a callback or
                ``events()`` is already bound.
        """
        self._channel_or_raise().bind(self, callback)

    def events(self) -> AsyncIterator[ChannelEvent]:
        """The bound request: a `ChannelEvent` per message the task writes, then one when it finished.

        Exclusive with `bind_callback`; the stream ends after the finished event.

        Example::

            async for event in t.events():
                if event.finished:
                    break
                print(t.channel.read_nowait())

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
        `on_cancellation`. With ``force=True`` its scope is cancelled (a
        worker process is killed, a thread abandoned) and it finishes
        cancelled at once. A no-op on a finished task.
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
                if rec.done is None:
                    rec.done = trio.Event()
                await _blocking_wait(rec.done.wait)
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


def _threads(system: ActorSystem) -> ThreadExecutor:
    found: ThreadExecutor | None = system._extensions.get("tasks.threads")
    if found is None:
        found = system._extensions["tasks.threads"] = ThreadExecutor()
    return found


def _processes(system: ActorSystem) -> ProcessExecutor:
    found: ProcessExecutor | None = system._extensions.get("tasks.processes")
    if found is None:
        found = system._extensions["tasks.processes"] = ProcessExecutor()
    return found


def _task_name(system: ActorSystem, fn: Callable[..., Any], base: str | None = None) -> str:
    base = base or getattr(fn, "__name__", None) or type(fn).__name__
    if "/" in base:
        base = base.replace("/", "_")
    counters = _counters(system)
    counters["names"] += 1
    return f"{base}-{counters['names']}"


async def control(msg: ControlMsg) -> BaseException | None:  # noqa: C901 - one branch per request
    """Apply a handle's request; run by the ``/system/tasks`` supervisor."""
    handle: TaskHandle[Any] = msg.task
    rec = handle._record
    ref = handle._ref
    if rec.finished or ref is None:
        if isinstance(msg, _Subscribe):
            msg.consumer.tell_nowait(TaskFinished(handle))
        return None
    match msg:
        case _Execute():
            if not rec.started and rec.condition is None:
                rec.started = True
                ref.tell_nowait(_BEGIN)
        case _Cancel(force=force):
            rec.cancel_requested = True
            if force:
                rec.forced = True
                if rec.scope is not None:
                    rec.scope.cancel()  # the body (or its wait for conditions) ends now
                elif not rec.started and rec.condition is None:
                    # delayed, never started: it finishes cancelled before cancel() returns
                    with contextlib.suppress(ActorStopped):
                        await ref.ask(_ABORT, timeout=None)
        case _Subscribe(consumer=consumer):
            if rec.subscribers is None:
                rec.subscribers = []
            rec.subscribers.append(consumer)
        case _MakeAsync():
            if rec.started:
                return TaskStateError(
                    f"task {rec.name} has started; make_task_async must come before the task starts"
                )
            rec.is_async = True
    return None


class _TaskActor(Actor[_TaskMsg]):
    """Runs one task's body and records its outcome, then stops.

    The body runs inside ``receive`` (one trio task per task); requests
    about the task (cancel, execute, subscribe) go to its supervisor,
    which is never busy.
    """

    def __init__(self, record: _Record, handle: TaskHandle[Any]) -> None:
        self.record = record
        self.handle = handle

    async def receive(self, msg: _TaskMsg) -> None:
        if isinstance(msg, _Begin) and not self.record.forced:
            await self._run()
        if self.record.job_id is not None:
            await self._record_job()
        self._finish()

    async def _record_job(self) -> None:
        """Make the job's outcome durable before the task reports it (DESIGN: Jobs)."""
        rec = self.record
        error = rec.error
        if rec.interrupted:
            outcome = "interrupted"
        elif rec.forced or isinstance(error, TaskCancelled):
            outcome = "cancelled"
            error = error or TaskCancelled(rec.name, forced=True)
        else:
            outcome = "succeeded" if error is None else "failed"
        try:
            await _observer(rec.system).job_finished(rec.job_id, outcome, rec.result, error)  # type: ignore[arg-type]
        except (JobStoreError, ActorStopped) as exc:
            # The task's outcome stands; the record keeps its last durable state.
            log.error("task %s: could not record its job's outcome: %s", rec.name, exc)  # noqa: TRY400
            rec.system._emit("troupe.job.store_failed", rec.job_id)

    async def _job_running(self) -> bool:
        rec = self.record
        try:
            await _observer(rec.system).job_running(rec.job_id)  # type: ignore[arg-type]
        except JobStoreError as exc:  # not durable: the work does not start (Grassroots)
            rec.error = exc
            return False
        return True

    async def _run(self) -> None:
        rec = self.record
        system = rec.system
        counters = _counters(system)
        token = CURRENT_TASK.set(self.handle)
        running = False
        scope = rec.scope = trio.CancelScope()
        try:
            with scope:
                if rec.condition is not None:
                    from ._conditions import wait_for  # noqa: PLC0415 - conditions import this module

                    await wait_for(rec.condition)
                    rec.started = True
                if rec.job_id is not None and not rec.job_running and not await self._job_running():
                    return
                counters["running"] += 1
                running = True
                system._emit("troupe.task.started", rec.name)
                fn, args = rec.fn, rec.args
                assert fn is not None  # noqa: S101 - released only once finished
                assert args is not None  # noqa: S101
                try:
                    rec.result = await rec.executor.run(fn, args)
                except _CancelExit as stop:
                    _cancelled(rec, stop)
                except BaseExceptionGroup as group:
                    stop_group, rest = group.split(_CancelExit)
                    if stop_group is not None:
                        _cancelled(rec, _first_leaf(stop_group))  # type: ignore[arg-type]
                    elif rest is not None:
                        rec.error = rest if len(rest.exceptions) > 1 else rest.exceptions[0]
                except Exception as exc:  # noqa: BLE001 - the outcome of the task
                    rec.error = exc
        except BaseException:
            rec.forced = True  # cancelled from outside: the system is shutting down
            self._finish()
            raise
        finally:
            rec.scope = None
            if running:
                counters["running"] -= 1
            CURRENT_TASK.reset(token)

    def _troupe_interrupt(self) -> None:
        # A stop (the system shutting down) must not wait for a body that may
        # never end: cancel it; the task finishes cancelled.
        rec = self.record
        if not rec.finished:
            rec.forced = True
            rec.interrupted = True
            if rec.scope is not None:
                rec.scope.cancel()

    async def on_stop(self) -> None:
        # Stopped before finishing (the system shut down): the outcome is a cancel.
        if not self.record.finished:
            self.record.forced = True
            self._finish()

    def _finish(self) -> None:  # noqa: C901 - records, wakes, signals, publishes, stops
        rec = self.record
        if rec.finished:
            return
        if rec.forced:
            rec.error = TaskCancelled(rec.name, forced=True)
            rec.result = None
        rec.finished = True
        rec.fn = rec.args = None  # release what the body held
        if rec.channel is not None:
            rec.channel.task_ended(f"/system/tasks/{rec.name}")
        self.handle._ref = None  # the actor is ending: a finished handle answers by itself
        if rec.done is not None:
            rec.done.set()
        if rec.watchers:
            for watcher in list(rec.watchers):
                watcher()
        if rec.subscribers:
            signal = TaskFinished(self.handle)
            for consumer in rec.subscribers:
                consumer.tell_nowait(signal)
        system = rec.system
        if rec.error is None:
            system._emit("troupe.task.finished", rec.name)
        elif isinstance(rec.error, TaskCancelled):
            system._emit("troupe.task.cancelled", rec.name)
        else:
            system._emit("troupe.task.failed", rec.name)
            if rec.is_async:
                log.error("async task %s failed", rec.name, exc_info=rec.error)
        self._troupe_stop_self()


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def _cancelled(rec: _Record, stop: _CancelExit) -> None:
    error = TaskCancelled(rec.name, forced=False)
    error.__cause__ = stop.cause
    rec.error = error
    rec.result = stop.value


def _observer(system: ActorSystem) -> JobObserver:
    observer = system._jobs
    if observer is None:
        msg = (
            f"the actor system {system.name!r} has no job store, so tasks cannot be tracked as jobs; "
            "open it with troupe.open_system(jobs='jobs.sqlite') (or jobs=troupe.MemoryJobStore())"
        )
        raise JobStoreError(msg)
    return observer


def _check_callable(fn: object) -> None:
    if not callable(fn):
        msg = f"a task needs a callable (a function), got {fn!r}"
        raise TypeError(msg)


async def _new_task(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    *,
    executor: Executor | str | None,
    delayed: bool = False,
    condition: object = None,
    is_async: bool = False,
    channel: bool | int = False,
    job: str | None = None,
    base_name: str | None = None,
) -> TaskHandle[Any]:
    _check_callable(fn)
    capacity = channel_capacity(channel)
    system = current_system()
    observer = None if job is None else _observer(system)
    chosen = resolve(executor, fn, _threads(system), lambda: _processes(system))
    name = _task_name(system, fn, base_name)
    if isinstance(chosen, ProcessExecutor):
        if capacity is not None:
            msg = (
                "channel= does not work with the process executor: a worker process cannot reach "
                "the channel; use an async function (inline) or a sync one in a thread"
            )
            raise TypeError(msg)
        args = (chosen.prepare(fn, args),)
        fn = _call_pickled
    record = _Record(system, name, fn, args, chosen)
    record.is_async = is_async
    if condition is not None:
        from ._conditions import normalize  # noqa: PLC0415 - conditions import this module

        record.condition = normalize(condition)
    handle: TaskHandle[Any] = TaskHandle._create(record, None)
    if observer is not None:
        # Durable before the task exists (submit_job returns once it is). A task that
        # starts now is started as run_task returns (HPC-GAP), so its job is recorded
        # running at once: one commit fewer, and the Grassroots order (running is
        # durable before the work starts, then the outcome). Delayed and scheduled
        # jobs are pending until they start.
        starts_now = not delayed and condition is None
        record.job_id = await observer.job_pending(
            job or name, functools.partial(handle.cancel, force=True), running=starts_now
        )
        record.job_running = starts_now
    if capacity is not None:
        chan = record.channel = _Channel(system, name, capacity)
        record.args = (TaskContext._create(chan.task_end, handle), *args)
        # spawned before the task, so a shutdown stops it after the task (it delivers the end)
        await spawn_task_actor(system, functools.partial(ChannelActor, chan), name=f"{name}-channel")
    if not delayed and condition is None:
        record.started = True  # started as soon as run_task returns (HPC-GAP)
    ref = await spawn_task_actor(system, functools.partial(_TaskActor, record, handle), name=name)
    handle._ref = ref
    if not delayed:
        ref.tell_nowait(_BEGIN)
    return handle


def _job(job: bool) -> str | None:
    return "" if job else None


@overload
async def run_task(
    fn: Callable[..., Awaitable[T]],
    *args: Any,
    executor: Executor | str | None = None,
    channel: bool | int = False,
    job: bool = False,
) -> TaskHandle[T]: ...
@overload
async def run_task(
    fn: Callable[..., T],
    *args: Any,
    executor: Executor | str | None = None,
    channel: bool | int = False,
    job: bool = False,
) -> TaskHandle[T]: ...


async def run_task(
    fn: Callable[..., Any],
    *args: Any,
    executor: Executor | str | None = None,
    channel: bool | int = False,
    job: bool = False,
) -> TaskHandle[Any]:
    """Start ``fn(*args)`` as a task now (HPC-GAP ``RunTask``).

    Coroutine functions run inline on trio; other callables in the system's
    thread executor, unless ``executor=`` says otherwise (``"inline"``,
    ``"thread"``, ``"process"`` or an executor object).

    With ``channel=True`` (or ``channel=N``, the messages each direction
    buffers; default 64) ``fn`` gets a `TaskContext` as its first argument,
    whose ``.channel`` talks to the handle's ``t.channel`` (Kore's task
    channel); a sync body in a thread uses ``write_sync`` / ``read_sync``.

    Every call is a cancel point; the scheduler switches tasks at one call in
    32 in a row (trio leaves that policy to the scheduler), so a fan-out of
    many tasks starts them in batches instead of one scheduler pass each.

    Raises:
        TypeError: ``fn`` is not callable, or cannot be pickled for ``"process"``,
            or ``channel=`` was given with the process executor.
        ValueError: ``channel=`` is neither a bool nor a positive int.
        JobStoreError: ``job=True`` but the system has no job store, or the
            store could not record the job (nothing was started).
    """
    return await _new_task(fn, args, executor=executor, channel=channel, job=_job(job))


async def run_async_task(
    fn: Callable[..., Any],
    *args: Any,
    executor: Executor | str | None = None,
    channel: bool | int = False,
    job: bool = False,
) -> TaskHandle[Any]:
    """Start a fire-and-forget task (``RunAsyncTask``): it cannot be waited on.

    A failure is logged and published as ``troupe.task.failed``.
    """
    return await _new_task(fn, args, executor=executor, channel=channel, is_async=True, job=_job(job))


@overload
async def delay_task(
    fn: Callable[..., Awaitable[T]],
    *args: Any,
    executor: Executor | str | None = None,
    channel: bool | int = False,
    job: bool = False,
) -> TaskHandle[T]: ...
@overload
async def delay_task(
    fn: Callable[..., T],
    *args: Any,
    executor: Executor | str | None = None,
    channel: bool | int = False,
    job: bool = False,
) -> TaskHandle[T]: ...


async def delay_task(
    fn: Callable[..., Any],
    *args: Any,
    executor: Executor | str | None = None,
    channel: bool | int = False,
    job: bool = False,
) -> TaskHandle[Any]:
    """Create a task that starts on ``execute()`` or when waited on (``DelayTask``)."""
    return await _new_task(fn, args, executor=executor, channel=channel, delayed=True, job=_job(job))


@overload
async def schedule_task(
    condition: object,
    fn: Callable[..., Awaitable[T]],
    *args: Any,
    executor: Executor | str | None = None,
    channel: bool | int = False,
    job: bool = False,
) -> TaskHandle[T]: ...
@overload
async def schedule_task(
    condition: object,
    fn: Callable[..., T],
    *args: Any,
    executor: Executor | str | None = None,
    channel: bool | int = False,
    job: bool = False,
) -> TaskHandle[T]: ...


async def schedule_task(
    condition: object,
    fn: Callable[..., Any],
    *args: Any,
    executor: Executor | str | None = None,
    channel: bool | int = False,
    job: bool = False,
) -> TaskHandle[Any]:
    """Start ``fn(*args)`` once ``condition`` holds (``ScheduleTask``).

    ``condition`` is a task (finished), a milestone (achieved), a counter
    (limit reached), a list of them (all must hold), or `all_of` / `any_of`.
    Delayed tasks among the conditions are not started by it.

    Raises:
        TypeError: ``condition`` is none of those.
    """
    return await _new_task(fn, args, executor=executor, channel=channel, condition=condition, job=_job(job))


async def schedule_async_task(
    condition: object,
    fn: Callable[..., Any],
    *args: Any,
    executor: Executor | str | None = None,
    channel: bool | int = False,
    job: bool = False,
) -> TaskHandle[Any]:
    """`schedule_task` for a fire-and-forget task."""
    return await _new_task(
        fn, args, executor=executor, channel=channel, condition=condition, is_async=True, job=_job(job)
    )


async def make_task_async(task: TaskHandle[Any]) -> None:
    """Make a task that has not started fire-and-forget (``MakeTaskAsync``).

    Raises:
        TaskStateError: the task has already started.
    """
    if task.started:
        await trio.lowlevel.checkpoint()
        msg = f"task {task.name} has started; make_task_async must come before the task starts"
        raise TaskStateError(msg)
    await task._control(_MakeAsync(task))


@overload
async def immediate_task(fn: Callable[..., Awaitable[T]], *args: Any) -> TaskHandle[T]: ...
@overload
async def immediate_task(fn: Callable[..., T], *args: Any) -> TaskHandle[T]: ...


async def immediate_task(fn: Callable[..., Any], *args: Any) -> TaskHandle[Any]:
    """Run ``fn(*args)`` now, in the caller, and return a finished handle (``ImmediateTask``)."""
    _check_callable(fn)
    system = current_system()
    record = _Record(system, _task_name(system, fn), fn, args, INLINE)
    record.started = True
    handle: TaskHandle[Any] = TaskHandle._create(record, None)
    token = CURRENT_TASK.set(handle)
    try:
        value = fn(*args)
        if inspect.isawaitable(value):
            value = await value
        record.result = value
    except _CancelExit as stop:
        _cancelled(record, stop)
    except Exception as exc:  # noqa: BLE001 - the outcome of the task
        record.error = exc
    finally:
        CURRENT_TASK.reset(token)
    record.finished = True
    await trio.lowlevel.checkpoint()
    return handle


def current_task() -> TaskHandle[Any] | None:
    """The task whose body is running here (in any executor but ``process``), or None."""
    return CURRENT_TASK.get()


def running_tasks() -> int:
    """How many task bodies are running now, not counting those blocked waiting on other tasks."""
    return _counters(current_system())["running"]


def on_cancellation(exit_fn: Callable[[], object]) -> None:
    """Inside a task: if cancellation was requested, end the task with ``exit_fn()``.

    Fires at most once per task. The task then finishes with
    `TaskCancelled` as its error; ``result()`` returns ``exit_fn()``'s value
    if it is not None. Outside a task it does nothing. Works in sync bodies
    running in threads; in the process executor only ``cancel(force=True)`` acts.

    Raises:
        TypeError: ``exit_fn`` is an async function.
    """
    if inspect.iscoroutinefunction(exit_fn):
        msg = "on_cancellation takes a plain function; an async one cannot run here"
        raise TypeError(msg)
    task = CURRENT_TASK.get()
    if task is None:
        return
    rec = task._record
    if not rec.cancel_requested or rec.cancel_fired:
        return
    rec.cancel_fired = True
    try:
        value = exit_fn()
    except Exception as exc:
        raise _CancelExit(None, exc) from exc
    raise _CancelExit(value, None)


def on_cancellation_return(value: object) -> None:
    """`on_cancellation` with an exit function that returns ``value``."""
    on_cancellation(lambda: value)
