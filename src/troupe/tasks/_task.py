"""Tasks as actors: the HPC-GAP task API on trio.

Each task is a TEMPORARY actor under ``/system/tasks``. It owns the task's
record (`._handle`): it alone writes it, and ends itself once the outcome is
recorded. Handles' requests (execute, cancel, subscribe) are applied by the
supervisor (`control`), which is never busy.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable
from typing import Any

import trio

from ..actors import Actor, ActorRef, ActorStopped, ActorSystem, JobObserver, JobStoreError, current_system
from ..protocol import message
from ._channel import ChannelActor, TaskContext, _Channel, channel_capacity
from ._dask import DaskExecutor
from ._errors import TaskCancelled, TaskStateError
from ._executors import Executor, ProcessExecutor, ThreadExecutor, named_executors, resolve
from ._handle import (
    CURRENT_TASK,
    ControlMsg,
    TaskFinished,
    TaskHandle,
    _Cancel,
    _counters,
    _Execute,
    _MakeAsync,
    _Record,
    _Subscribe,
)
from ._root import spawn_task_actor

log = logging.getLogger("troupe.tasks")


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


async def control(msg: ControlMsg) -> BaseException | None:
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
        case _Cancel(force=force) if not rec.reporting:  # else its outcome is decided
            await _cancel(rec, ref, force=force)
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


async def _cancel(rec: _Record, ref: ActorRef[Any], *, force: bool) -> None:
    rec.cancel_requested = True
    if not force:
        if rec.cancel_hook is not None:
            rec.cancel_hook()  # a body that acts on cancel() itself (a command: SIGTERM)
        return
    rec.forced = True
    if rec.scope is not None:
        rec.scope.cancel()  # the body (or its wait for conditions) ends now
    elif not rec.started and rec.condition is None:
        # delayed, never started: it finishes cancelled before cancel() returns
        with contextlib.suppress(ActorStopped):
            await ref.ask(_ABORT, timeout=None)


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
        rec = self.record
        if isinstance(msg, _Begin) and not rec.forced:
            await self._run()
        if rec.job_id is None:
            self._finish()
        elif self._hand_over() and isinstance(msg, _Abort):
            # cancel(force=True) of a delayed task returns once it finished, job or not
            await rec.done_event().wait()

    def _hand_over(self) -> bool:
        """Give the job's outcome to the store and stop; the outcome is reported once durable.

        The actor does not wait for the commit: it ends now, and the
        store's writer calls `_job_recorded` (DESIGN: Jobs, the outcome is
        durable before the task reports it). Waiting in the actor kept each
        job task's actor, trio task and await chain alive through the
        commit: 5000 job tasks at once took 2.0-2.2x the untracked time,
        and 1.7-1.8x with the hand-over (bench/jobs.py). False if the
        store is closed: the task then finishes at once.
        """
        rec = self.record
        error = rec.error
        if rec.interrupted:
            outcome = "interrupted"
            error = _forced_error(rec)
        elif rec.forced or isinstance(error, TaskCancelled):
            outcome = "cancelled"
            error = error or _forced_error(rec)
        else:
            outcome = "succeeded" if error is None else "failed"
        try:
            _observer(rec.system).job_finished(rec.job_id, outcome, rec.result, error, self._job_recorded)  # type: ignore[arg-type]
        except JobStoreError as exc:  # the store is closed: nothing will commit it
            rec.system._emit("troupe.job.store_failed", exc)
            self._job_recorded(exc)
            return False
        rec.reporting = True
        self._troupe_stop_self()
        return True

    def _job_recorded(self, failure: BaseException | None) -> None:
        rec = self.record
        if failure is not None:
            # The task's outcome stands; the record keeps its last durable state.
            log.error("task %s: could not record its job's outcome: %s", rec.name, failure)
        self._finish()

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

                    try:
                        await wait_for(rec.condition)
                    except ActorStopped:  # a milestone or counter it waited on is gone: the system closes
                        rec.forced = rec.interrupted = True
                        return
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
                except BaseException as exc:  # noqa: BLE001 - the body's outcome, sorted by _outcome
                    _outcome(rec, exc)
        except BaseException:
            # Cancelled from outside (the shutdown deadline passed) or Ctrl-C: the system is going down.
            rec.forced = rec.interrupted = True
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
        if not rec.finished and not rec.reporting:
            rec.forced = True
            rec.interrupted = True
            if rec.scope is not None:
                rec.scope.cancel()

    async def on_stop(self) -> None:
        # Stopped before finishing (the system shut down): the outcome is a cancel.
        self._troupe_cut_off()

    def _troupe_cut_off(self) -> None:
        """Also called by the runtime when the shutdown timeout cuts the actor off (no on_stop then)."""
        rec = self.record
        if not rec.finished and not rec.reporting:
            rec.forced = rec.interrupted = True
            self._finish()

    def _finish(self) -> None:
        rec = self.record
        if rec.finished:
            return
        if rec.forced:
            rec.error = _forced_error(rec)
            rec.result = None
        chan = rec.channel
        if chan is None:
            rec.finished = True
        else:
            chan.flush_writes()  # write callbacks see the task unfinished; the completion call comes last
            rec.finished = True
            chan.task_ended(f"/system/tasks/{rec.name}")
        rec.fn = rec.args = None  # release what the body held
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
        _publish(rec)
        if not rec.reporting:  # a job task that handed its outcome over has stopped already
            self._troupe_stop_self()


def _forced_error(rec: _Record) -> TaskCancelled:
    return TaskCancelled(rec.name, forced=True, shutdown=rec.interrupted)


def _outcome(rec: _Record, exc: BaseException) -> None:
    """Record what the body raised; re-raise what is not the body's to decide (`split_outcome`)."""
    if isinstance(exc, _CancelExit):
        _cancelled(rec, exc)
        return
    if isinstance(exc, BaseExceptionGroup):
        stop, _ = exc.split(_CancelExit)
        if stop is not None:
            _cancelled(rec, _first_leaf(stop))  # type: ignore[arg-type]
            return
    passing, error = split_outcome(exc)
    if error is not None:
        rec.error = error
    if passing is not None:
        raise passing


def passes_through(exc: BaseException) -> bool:
    """Whether ``exc`` is never a body's outcome: trio's `Cancelled` or `KeyboardInterrupt`."""
    return isinstance(exc, trio.Cancelled | KeyboardInterrupt)


def split_outcome(exc: BaseException) -> tuple[BaseException | None, BaseException | None]:
    """What a task body (or a managed method) raised: ``(what goes on, the body's own error)``.

    trio's `Cancelled` (the task's forced cancel, caught by its scope, or a
    cancel from outside) and `KeyboardInterrupt` (the user's Ctrl-C) go on.
    Anything else is the body's error, `SystemExit` and other
    `BaseException`s included: a task body cannot end the system. A group
    is split between the two; a group of one error is that error.
    """
    if not isinstance(exc, BaseExceptionGroup):
        return (exc, None) if passes_through(exc) else (None, exc)
    passing, rest = exc.split(passes_through)
    if rest is not None and len(rest.exceptions) == 1:
        return passing, rest.exceptions[0]
    return passing, rest


def _publish(rec: _Record) -> None:
    system = rec.system
    if rec.error is None:
        system._emit("troupe.task.finished", rec.name)
    elif isinstance(rec.error, TaskCancelled):
        system._emit("troupe.task.cancelled", rec.name)
    else:
        system._emit("troupe.task.failed", rec.name)
        if rec.is_async:
            log.error("async task %s failed", rec.name, exc_info=rec.error)


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


def _abandon(record: _Record, observer: JobObserver | None) -> None:
    """The task's creation was cut off (cancelled, or the system is stopping) after its job was recorded.

    No task will run it: its job is recorded cancelled (not left live until
    the system closes, where a ``jobs.cancel()`` would wait for it for ever),
    and a channel actor already started is let go.
    """
    if record.channel is not None:
        record.channel.task_ended(f"/system/tasks/{record.name}")
    if observer is not None and record.job_id is not None:
        with contextlib.suppress(JobStoreError):
            error = TaskCancelled(record.name, forced=True)
            observer.job_finished(record.job_id, "cancelled", None, error, lambda _: None)


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
    chosen = resolve(executor, fn, _threads(system), lambda: _processes(system), named_executors(system))
    name = _task_name(system, fn, base_name)
    if isinstance(chosen, ProcessExecutor | DaskExecutor):  # the body is sent elsewhere: pickled once, now
        if capacity is not None:
            msg = (
                f"channel= does not work with the {chosen.name} executor: a worker process cannot reach "
                "the channel; use an async function (inline) or a sync one in a thread"
            )
            raise TypeError(msg)
        args = (chosen.prepare(fn, args),)
        fn = chosen.unpack
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
    try:
        if capacity is not None:
            chan = record.channel = _Channel(system, name, capacity)
            record.args = (TaskContext._create(chan.task_end, handle), *args)
            # spawned before the task, so a shutdown stops it after the task (it delivers the end)
            await spawn_task_actor(system, functools.partial(ChannelActor, chan), name=f"{name}-channel")
        if not delayed and condition is None:
            record.started = True  # started as soon as run_task returns (HPC-GAP)
        ref = await spawn_task_actor(system, functools.partial(_TaskActor, record, handle), name=name)
    except BaseException:
        _abandon(record, observer)
        raise
    handle._ref = ref
    if not delayed:
        ref.tell_nowait(_BEGIN)
    return handle
