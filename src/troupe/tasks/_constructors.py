"""The HPC-GAP task constructors and the calls a task body makes.

`run_task`, `delay_task`, `schedule_task` and their async variants all go
through ``_new_task``; `immediate_task` runs in the caller; `on_cancellation`
ends a body that was asked to stop.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

import trio

from ..actors import current_system
from ._errors import TaskStateError
from ._executors import INLINE, Executor
from ._handle import CURRENT_TASK, TaskHandle, _counters, _MakeAsync, _Record
from ._task import _CancelExit, _check_callable, _new_task, _outcome, _task_name

T = TypeVar("T")


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

    If a milestone or counter it waits for can no longer change (the
    system shut down), the task finishes cancelled, its
    `TaskCancelled` saying that the system shut down.

    Raises:
        TypeError: ``condition`` is none of those.
        ValueError: ``condition`` holds an ``any_of`` of nothing (it would never hold).
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
    """Run ``fn(*args)`` now, in the caller, and return a finished handle (``ImmediateTask``).

    What ``fn`` raises is the task's error (`SystemExit` included); trio's
    `Cancelled` and `KeyboardInterrupt` go on to the caller.
    """
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
    except BaseException as exc:  # noqa: BLE001 - the outcome of the task (trio's and Ctrl-C go on)
        _outcome(record, exc)
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
