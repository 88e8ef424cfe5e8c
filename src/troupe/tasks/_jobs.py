"""Tasks as persistent jobs: `submit_job` and `report_progress` (Grassroots' jobs)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

import trio

from ._dask import report_progress_from_dask
from ._executors import Executor
from ._handle import CURRENT_TASK, TaskHandle
from ._task import _new_task

T = TypeVar("T")


@overload
async def submit_job(
    fn: Callable[..., Awaitable[T]],
    *args: Any,
    name: str | None = None,
    executor: Executor | str | None = None,
) -> TaskHandle[T]: ...
@overload
async def submit_job(
    fn: Callable[..., T], *args: Any, name: str | None = None, executor: Executor | str | None = None
) -> TaskHandle[T]: ...


async def submit_job(
    fn: Callable[..., Any], *args: Any, name: str | None = None, executor: Executor | str | None = None
) -> TaskHandle[Any]:
    """Run ``fn(*args)`` as a task tracked as a job; return once its ``pending`` record is durable.

    The same as ``run_task(fn, *args, job=True)`` with a name for the
    record (default: the task's name, like ``build_report-3``).

    Example:
        ```python
        async with troupe.open_system(jobs=".troupe/jobs.sqlite") as system:
            t = await troupe.submit_job(build_report, "2026-11", name="monthly report")
            print(t.job_id, await t.result())
            print(await system.jobs.get(t.job_id))
        ```

    Raises:
        JobStoreError: the system has no job store (open it with
            ``troupe.open_system(jobs=...)``), or the store failed.
        TypeError: ``fn`` is not callable.
    """
    if name is not None and (not isinstance(name, str) or not name):
        msg = f"name is a non-empty str, got {name!r}"
        raise TypeError(msg)
    return await _new_task(fn, args, executor=executor, job=name or "")


def report_progress(fraction: float, message: str = "") -> None:
    """Inside a job's task: record how far it is (0 to 1) and what it is doing.

    Works in async bodies, in sync ones running in threads, and in bodies
    running on Dask workers (`DaskExecutor`: the progress travels back as a
    Dask event); does nothing outside a task, in a task that is not a job,
    and in the ``process`` executor (a worker process cannot reach the
    store). Progress is written with the next batch of the store; it is not
    awaited.

    Raises:
        ValueError: ``fraction`` is not a number from 0 to 1.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 <= fraction <= 1:
        msg = f"progress is a fraction from 0 to 1, got {fraction!r}"
        raise ValueError(msg)
    task = CURRENT_TASK.get()
    if task is None:
        report_progress_from_dask(float(fraction), str(message))  # a body on a Dask worker, if it is one
        return
    if task.job_id is None:
        return
    rec = task._record
    observer = rec.system._jobs
    if observer is None:
        return
    try:
        trio.lowlevel.current_trio_token()
    except RuntimeError:  # a worker thread: hop to the trio thread
        trio.from_thread.run_sync(observer.job_progress, task.job_id, float(fraction), str(message))
    else:
        observer.job_progress(task.job_id, float(fraction), str(message))
