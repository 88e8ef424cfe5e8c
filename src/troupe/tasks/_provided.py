"""GoAsync's provided tasks: wrappers around a managed task."""

from __future__ import annotations

import inspect
import logging
import math
import signal as _signal
from collections.abc import AsyncIterator
from typing import Any, final

import trio

from ._constructors import run_task
from ._errors import TaskCancelled
from ._executors import Executor
from ._manager import call, check_task
from ._task import split_outcome

log = logging.getLogger("troupe.tasks.manager")


class _Wrapper:
    """Passes ``initialize`` and ``cleanup`` through to the wrapped task (if it has them)."""

    def __init__(self, task: Any) -> None:
        check_task(task, ("execute",))
        self.task = task
        """The wrapped task."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.task!r})"

    async def initialize(self) -> None:
        """The wrapped task's ``initialize`` (a no-op if it has none)."""
        await self._pass_through("initialize")

    async def cleanup(self) -> None:
        """The wrapped task's ``cleanup`` (a no-op if it has none)."""
        await self._pass_through("cleanup")

    async def _pass_through(self, stage: str) -> None:
        method = getattr(self.task, stage, None)
        if method is not None:
            await call(method)
        else:
            await trio.lowlevel.checkpoint()


def _positive(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0 or math.isinf(value):
        msg = f"{what} must be a positive, finite number of seconds, got {value!r}"
        raise ValueError(msg)
    return float(value)


@final
class Repeatable(_Wrapper):
    """Run the wrapped ``execute`` again and again until the manager stops.

    Its errors (exceptions) are logged (``troupe.tasks.manager``) and
    otherwise ignored, as in GoAsync; a `SystemExit` or another
    `BaseException` ends it with that error. Each round is a schedule
    point, so a wrapped task that returns at once cannot hang the loop. A
    sync ``execute`` runs in a thread, abandoned when the manager stops.

    Example:
        ```python
        manager.add("poller", troupe.Repeatable(Poller()))
        ```
    """

    async def execute(self) -> None:
        """Loop over the wrapped ``execute`` until cancelled."""
        while True:
            try:
                await call(self.task.execute)
            except Exception:
                log.warning("%r: the wrapped execute failed; running it again", self, exc_info=True)
            await trio.lowlevel.checkpoint()


@final
class RepeatTimer(_Wrapper):
    """Run the wrapped ``execute`` at once, then once per ``interval`` seconds.

    Ticks come at start + k * interval. If ticks pass while a run is in
    progress, the next run starts as soon as it ends and the other missed
    ticks are dropped (Go's ticker keeps one). Errors (exceptions) are
    logged and otherwise ignored, as in GoAsync; a `SystemExit` or another
    `BaseException` ends it with that error. A sync ``execute`` runs in a
    thread, abandoned when the manager stops.

    Example:
        ```python
        manager.add("metrics", troupe.RepeatTimer(10.0, FlushMetrics()))
        ```
    """

    def __init__(self, interval: float, task: Any) -> None:
        super().__init__(task)
        self.interval = _positive(interval, "RepeatTimer's interval")
        """Seconds between ticks."""

    async def execute(self) -> None:
        """Run on every tick until cancelled."""
        interval = self.interval
        start = trio.current_time()
        tick = 0
        while True:
            try:
                await call(self.task.execute)
            except Exception:
                log.warning(
                    "%r: the wrapped execute failed; it runs again at the next tick", self, exc_info=True
                )
            tick += 1
            due = start + tick * interval
            now = trio.current_time()
            if due <= now:  # ticks came during the run: one is kept, the rest dropped
                tick = int((now - start) // interval)
                await trio.lowlevel.checkpoint()
                continue
            await trio.sleep_until(due)


@final
class ForceStop(_Wrapper):
    """Give the wrapped ``execute`` ``grace`` seconds to stop once the manager stops.

    The wrapped ``execute`` runs as a task of its own (`run_task`). When the
    manager stops, that task is force-cancelled; if it has not ended
    within ``grace`` seconds, this task fails with ``TimeoutError("failed to
    stop sub task in GRACE")`` and the manager goes on with its shutdown.
    A sub-task in a worker thread (a sync ``execute``) is abandoned; an
    async one that ignores cancellation stays cancelled under
    ``/system/tasks`` and is reported at system shutdown if still running.

    Example:
        ```python
        manager.add("legacy", troupe.ForceStop(5.0, LegacyServer()))
        ```
    """

    def __init__(self, grace: float, task: Any) -> None:
        super().__init__(task)
        self.grace = _positive(grace, "ForceStop's grace")
        """Seconds the wrapped task gets to stop."""

    async def execute(self) -> None:
        """Run the wrapped ``execute``; force its end when cancelled."""
        sub = await run_task(self.task.execute)
        try:
            error = await sub.error()
        except trio.Cancelled:
            with trio.CancelScope(shield=True):
                await sub.cancel(force=True)
                with trio.move_on_after(self.grace):
                    error = await sub.error()
                    if error is not None and not isinstance(error, TaskCancelled):
                        raise error from None
                    raise  # stopped in time: cancelled like any other execute
            msg = f"failed to stop sub task in {self.grace:g}s"
            raise TimeoutError(msg) from None
        if error is not None:
            raise error


@final
class Interruptible(_Wrapper):
    """On one of ``signals``: the wrapped task's ``cleanup``, ``initialize``, then ``execute`` again.

    The signals are received with `trio.open_signal_receiver` (so the
    manager must run in the main thread). An error from any of the three
    ends this task with it; the wrapped ``execute`` returning on its own is
    the error "Interruptible task unexpectedly stopped". A sync ``execute``
    runs in a thread: a signal (or the manager stopping) abandons it, and the
    restart does not wait for it.

    Example:
        ```python
        manager.add("config", troupe.Interruptible([signal.SIGHUP], ConfigWatcher()))
        ```
    """

    def __init__(self, signals: list[_signal.Signals | int], task: Any) -> None:
        super().__init__(task)
        if not signals:
            msg = "Interruptible needs at least one signal, e.g. [signal.SIGHUP]"
            raise ValueError(msg)
        self.signals = [_signal.Signals(s) for s in signals]
        """The signals that restart the wrapped task."""

    async def execute(self) -> None:
        """Run the wrapped ``execute``; restart it on each signal."""
        with trio.open_signal_receiver(*self.signals) as receiver:
            while True:
                outcome: list[BaseException | None] = []
                signalled: list[int] = []
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._body, nursery, outcome)
                    nursery.start_soon(_watch, nursery, receiver, signalled)
                if outcome and outcome[0] is not None:
                    raise outcome[0]
                if not signalled:
                    msg = "Interruptible task unexpectedly stopped"
                    raise RuntimeError(msg)
                log.info("%r: signal %s: cleanup, initialize, execute again", self, signalled[0])
                await self.cleanup()  # pass-throughs: an execute-only task is fine
                await self.initialize()

    async def _body(self, nursery: trio.Nursery, outcome: list[BaseException | None]) -> None:
        try:
            await call(self.task.execute)
        except BaseException as exc:  # noqa: BLE001 - execute() raises it
            passing, error = split_outcome(exc)
            if passing is not None:
                raise passing from None
            outcome.append(error)
        else:
            outcome.append(None)
        nursery.cancel_scope.cancel()


async def _watch(nursery: trio.Nursery, receiver: AsyncIterator[int], signalled: list[int]) -> None:
    async for signum in receiver:
        signalled.append(signum)
        nursery.cancel_scope.cancel()
        return


@final
class RunOn(_Wrapper):
    """Run the wrapped (sync) ``execute`` on an executor: a Dask cluster, worker processes, a thread.

    The wrapped ``execute`` runs as a task of its own,
    ``run_task(task.execute, executor=executor)``; ``initialize`` and
    ``cleanup`` stay in the manager. ``executor`` is an executor object or a
    shortcut (``"dask"`` once `use_executor` configured it, ``"process"``,
    ``"thread"``). With ``"process"`` or Dask the task object is pickled with
    its ``execute`` when the manager starts it: what ``execute`` changes on
    the object stays where it ran. Its result is ignored; its exception is
    the execute's error, with its type. When the manager stops, the task is
    force-cancelled (a Dask future is cancelled, a worker process killed, a
    thread abandoned).

    Example:
        ```python
        troupe.use_executor("dask", troupe.DaskExecutor())
        manager.add("simulation", troupe.RunOn("dask", Simulation(steps=10_000)))
        ```

    Raises:
        TypeError: the wrapped ``execute`` is async (it runs on trio: add
            the task itself), or ``executor`` is neither a shortcut nor an
            executor.
    """

    def __init__(self, executor: Executor | str, task: Any) -> None:
        super().__init__(task)
        if not isinstance(executor, str | Executor):
            msg = f"RunOn takes an executor or its shortcut name (like 'dask'), got {executor!r}"
            raise TypeError(msg)
        if inspect.iscoroutinefunction(task.execute):
            msg = (
                f"{task!r} has an async execute: it runs on trio, not on an executor; "
                "add the task itself, or give it a sync execute"
            )
            raise TypeError(msg)
        self.executor = executor
        """Where the wrapped ``execute`` runs."""

    def __repr__(self) -> str:
        return f"RunOn({self.executor!r}, {self.task!r})"

    async def execute(self) -> None:
        """Run the wrapped ``execute`` as a task on the executor; force its end when cancelled."""
        sub = await run_task(self.task.execute, executor=self.executor)
        try:
            error = await sub.error()
        except trio.Cancelled:
            with trio.CancelScope(shield=True):
                await sub.cancel(force=True)
            raise
        if error is not None:
            raise error
