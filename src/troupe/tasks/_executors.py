"""Where task bodies run: inline on trio, in threads, or in worker processes."""

from __future__ import annotations

import functools
import inspect
import os
import pickle
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final, Protocol, final, runtime_checkable

import trio

from ..actors import current_system
from ._handle import CURRENT_TASK
from ._pool import worker_context
from ._threads import Threads

if TYPE_CHECKING:
    from ..actors import ActorSystem


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

    name: ClassVar[str] = "process"
    unpack = staticmethod(_call_pickled)
    """What a task made for this executor runs, on its one argument: the pickled body."""

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
        blob = args[0] if fn is self.unpack else self.prepare(fn, args)
        context = await worker_context(current_system())
        return await context.run_sync(_call_pickled, blob, kill_on_cancel=True, limiter=self.limiter)


def default_executor(fn: Callable[..., Any], system_threads: ThreadExecutor) -> Executor:
    """Coroutine functions run inline; anything else in the system's thread executor."""
    if inspect.iscoroutinefunction(fn):
        return INLINE
    return system_threads


BUILT_IN: Final = ("inline", "thread", "process")
"""The executor shortcuts every system has."""


def resolve(
    executor: Executor | str | None,
    fn: Callable[..., Any],
    threads: ThreadExecutor,
    processes: Callable[[], ProcessExecutor],
    named: Mapping[str, Executor],
) -> Executor:
    """Turn ``executor=`` (an object, a shortcut string or None) into an executor.

    ``named`` holds the shortcuts configured for the system (`use_executor`).
    """
    if executor is None:
        return default_executor(fn, threads)
    if isinstance(executor, str):
        if executor == "inline":
            return INLINE
        if executor == "thread":
            return threads
        if executor == "process":
            return processes()
        found = named.get(executor)
        if found is not None:
            return found
        if executor == "dask":
            msg = (
                "executor 'dask' is not configured for this system: call "
                "troupe.use_executor('dask', troupe.DaskExecutor()) first (an address for a cluster "
                "elsewhere), or pass executor=troupe.DaskExecutor(...)"
            )
            raise ValueError(msg)
        shortcuts = ", ".join(repr(n) for n in (*BUILT_IN, *named))
        msg = f"unknown executor {executor!r}; use {shortcuts} (use_executor adds names) or an executor"
        raise ValueError(msg)
    check_executor(executor)
    return executor


def check_executor(executor: object) -> None:
    """A clear TypeError unless ``executor`` is an executor object (an instance, not its class)."""
    if isinstance(executor, type):
        name = executor.__qualname__
        msg = f"executor= takes an executor object, not the class {name}: pass {name}()"
        raise TypeError(msg)
    if not isinstance(executor, Executor):
        msg = f"executor must have `async def run(self, fn, args)`, got {executor!r}"
        raise TypeError(msg)


_NAMED: Final = "tasks.executors"


def named_executors(system: ActorSystem) -> dict[str, Executor]:
    """The shortcuts configured for ``system`` (`use_executor`)."""
    found: dict[str, Executor] = system._extensions.setdefault(_NAMED, {})
    return found


def use_executor(name: str, executor: Executor) -> None:
    """Make ``executor="NAME"`` mean ``executor`` for the current system's tasks.

    Configured once, a shortcut works wherever an executor is named: the
    task constructors, task lists, the command line. ``"dask"`` is the usual
    one (`DaskExecutor`); configuring a name again replaces it for tasks
    made after.

    Raises:
        ValueError: ``name`` is empty or one of the built-in shortcuts
            (``inline``, ``thread``, ``process``).
        TypeError: ``executor`` has no ``async def run(self, fn, args)``, or
            is a class (``DaskExecutor`` for ``DaskExecutor()``).
        RuntimeError: not inside a running actor system.

    Example:
        ```python
        troupe.use_executor("dask", troupe.DaskExecutor("tcp://scheduler:8786"))
        t = await troupe.run_task(simulate, 10_000, executor="dask")
        ```
    """
    if not isinstance(name, str) or not name or name in BUILT_IN:
        msg = f"an executor's name is a non-empty str other than {', '.join(BUILT_IN)}; got {name!r}"
        raise ValueError(msg)
    check_executor(executor)
    named_executors(current_system())[name] = executor


INLINE = InlineExecutor()
