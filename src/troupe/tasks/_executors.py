"""Where task bodies run: inline on trio, in threads, or in worker processes."""

from __future__ import annotations

import functools
import inspect
import os
import pickle
from collections.abc import Callable
from typing import Any, Protocol, final, runtime_checkable

import trio

from ..actors import current_system
from ._handle import CURRENT_TASK
from ._pool import worker_context
from ._threads import Threads


@runtime_checkable
class Executor(Protocol):
    """Anything with ``async def run(self, fn, args)``; cancelling that call is the forced cancel."""

    async def run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """Run ``fn(*args)`` and return its result."""


@final
class InlineExecutor:
    """Run an async function on the trio loop (the default for coroutine functions).

    Example:
        ```python
        await troupe.run_task(fetch, url, executor=troupe.InlineExecutor())
        ```
    """

    async def run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """Await ``fn(*args)``."""
        return await fn(*args)


@final
class ThreadExecutor:
    """Run a sync function in a worker thread (the default for sync functions).

    At most ``max_workers`` run at once (default: the number of cores). A
    forced cancel (or the system's shutdown) abandons the thread, since trio
    cannot interrupt one: its slot is free again at once, the thread runs on
    until it returns, and it is logged when abandoned and listed at the
    system's shutdown if it is still running.

    Example:
        ```python
        await troupe.run_task(read_file, path, executor=troupe.ThreadExecutor(max_workers=4))
        ```
    """

    def __init__(self, max_workers: int | None = None) -> None:
        self.limiter = trio.CapacityLimiter(max_workers or os.cpu_count() or 1)
        """The capacity limiter that bounds the threads (an abandoned thread holds no token)."""
        self._threads = Threads(self.limiter)

    @property
    def abandoned(self) -> int:
        """How many of the threads this executor abandoned (forced cancels, shutdowns) still run."""
        return self._threads.abandoned

    async def run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """Run ``fn(*args)`` in a thread and return its result."""
        return await self._threads.run(fn, args, what=functools.partial(_cancelled_call, fn))


def _cancelled_call(fn: Callable[..., Any]) -> str:
    """What a cancelled thread call was, for the log."""
    what = getattr(fn, "__qualname__", None) or repr(fn)
    task = CURRENT_TASK.get()
    if task is None:
        return f"{what} (cancelled)"
    rec = task._record
    why = "its system's shutdown" if rec.interrupted else "a forced cancel"
    return f"task {rec.name} ({what}), cancelled by {why}"


def _call_pickled(blob: bytes) -> Any:
    fn, args = pickle.loads(blob)  # noqa: S301 - our own blob, made by ProcessExecutor.prepare
    return fn(*args)


@final
class ProcessExecutor:
    """Run a pure-Python, CPU-bound function in worker processes (trio-parallel).

    The function and arguments are pickled once, when the task is created
    (an unpicklable one is a `TypeError` there). The worker processes belong
    to the system and end with it; a forced cancel kills the worker.
    Scripts using it need the ``if __name__ == "__main__":`` guard.

    Example:
        ```python
        t = await troupe.run_task(math.factorial, 10_000, executor=troupe.ProcessExecutor())
        ```
    """

    def __init__(self, max_workers: int | None = None) -> None:
        self.limiter = trio.CapacityLimiter(max_workers or os.cpu_count() or 1)
        """The capacity limiter that bounds concurrent worker processes."""

    @staticmethod
    def prepare(fn: Callable[..., Any], args: tuple[Any, ...]) -> bytes:
        """Pickle ``fn`` and ``args`` once.

        Raises:
            TypeError: they cannot be pickled (a lambda, a local function, a lock...).
        """
        try:
            return pickle.dumps((fn, args))
        except Exception as exc:
            msg = (
                f"the process executor cannot pickle {getattr(fn, '__qualname__', fn)!r} or its arguments "
                f"({type(exc).__name__}: {exc}); use a module-level function and picklable arguments"
            )
            raise TypeError(msg) from exc

    async def run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """Run ``fn(*args)`` in a worker process and return its result."""
        blob = args[0] if fn is _call_pickled else self.prepare(fn, args)
        context = await worker_context(current_system())
        return await context.run_sync(_call_pickled, blob, kill_on_cancel=True, limiter=self.limiter)


def default_executor(fn: Callable[..., Any], system_threads: ThreadExecutor) -> Executor:
    """Coroutine functions run inline; anything else in the system's thread executor."""
    if inspect.iscoroutinefunction(fn):
        return INLINE
    return system_threads


def resolve(
    executor: Executor | str | None,
    fn: Callable[..., Any],
    threads: ThreadExecutor,
    processes: Callable[[], ProcessExecutor],
) -> Executor:
    """Turn ``executor=`` (an object, a shortcut string or None) into an executor."""
    if executor is None:
        return default_executor(fn, threads)
    if isinstance(executor, str):
        if executor == "inline":
            return INLINE
        if executor == "thread":
            return threads
        if executor == "process":
            return processes()
        msg = f"unknown executor {executor!r}; use 'inline', 'thread', 'process' or an executor object"
        raise ValueError(msg)
    if not isinstance(executor, Executor):
        msg = f"executor must have `async def run(self, fn, args)`, got {executor!r}"
        raise TypeError(msg)
    return executor


INLINE = InlineExecutor()
