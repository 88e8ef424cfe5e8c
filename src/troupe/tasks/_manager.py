"""GoAsync's task manager: initialize serially, execute in parallel, clean up in reverse.

The manager is an actor (``/system/tasks/manager-N``) and it plays GoAsync's
``Run`` loop: its ``receive`` initializes the tasks one by one, spawns one
TEMPORARY child actor per ``execute``, applies each task kind's stop rule
as the children report back, and runs the cleanups once every execute has
returned. `TaskManager` is the user's handle; it only sends it messages
and reads what it records.
"""

from __future__ import annotations

import enum
import functools
import inspect
import logging
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, final

import attrs
import trio

from .._util import NoPublicConstructor
from ..actors import Actor, ActorRef, ActorStopped, ActorSystem, Reply, Restart, current_system
from ..protocol import Terminated, TroupeError, message
from ._root import spawn_task_actor
from ._task import split_outcome
from ._threads import Threads

log = logging.getLogger("troupe.tasks.manager")


class TaskKind(enum.Enum):
    """How a managed task's ``execute`` returning affects the manager (GoAsync's task types)."""

    STRICT = "strict"
    """An error, or returning before the manager stops ("unexpected shutdown"), stops all."""
    ERROR = "error"
    """Only an error stops all; returning quietly just ends this task."""
    STOP_GROUP = "stop_group"
    """An error stops all; when the last stop-group task has returned, the manager stops gracefully."""


@final
@attrs.frozen
class NamedError:
    """One error of a managed task: which task, in which stage, and the exception."""

    name: str
    """The name the task was added with."""
    stage: str
    """``"initialize"``, ``"execute"`` or ``"cleanup"``."""
    error: BaseException
    """What it raised."""

    def __str__(self) -> str:
        return f"{self.name} ({self.stage}): {type(self.error).__name__}: {self.error}"


class TaskManagerError(TroupeError):
    """The task manager refused a call, or its run ended with errors (``.errors``)."""

    def __init__(self, message: str, errors: tuple[NamedError, ...] = ()) -> None:
        super().__init__(message)
        self.errors = list(errors)
        """The `NamedError`s in the order they happened (empty for a refused call)."""

    @classmethod
    def _of(cls, errors: list[NamedError]) -> TaskManagerError:
        listed = "; ".join(str(e) for e in errors)
        count = f"{len(errors)} error" + ("s" if len(errors) > 1 else "")
        return cls(f"the task manager stopped with {count}: {listed}", tuple(errors))


_SHUT_DOWN_RUN = "task manager has already shutdown. Will not run again"
_RUNNING_RUN = "task manager is already running. Will not run again"
_SHUT_DOWN_ADD = "task Manager has already shutdown. Will not manage task"
_RUNNING_ADD = "task Manager is already running. Will not manage task"
_UNEXPECTED = "unexpected shutdown for task process"


class _State(enum.Enum):
    NEW = "new"
    INITIALIZING = "initializing"
    RUNNING = "running"
    STOPPING = "stopping"
    SHUT_DOWN = "shut down"


class _Entry:
    __slots__ = ("error", "execute_only", "kind", "name", "ref", "scope", "started", "task")

    def __init__(self, name: str, task: Any, kind: TaskKind, *, execute_only: bool) -> None:
        self.name = name
        self.task = task
        self.kind = kind
        self.execute_only = execute_only
        self.scope: trio.CancelScope | None = None
        self.ref: ActorRef[Any] | None = None
        self.error: BaseException | None = None  # what its execute raised
        self.started: Reply[Any] | None = None  # answers add_execute_task once it runs


class _Core:
    """What the manager actor records and the handle reads."""

    def __init__(self, system: ActorSystem, cleanup_timeout: float | None) -> None:
        self.system = system
        self.cleanup_timeout = cleanup_timeout
        self.state = _State.NEW
        self.entries: list[_Entry] = []  # added with add(), in add order
        self.queued: list[_Entry] = []  # execute-only tasks added before run()
        self.errors: list[NamedError] = []
        self.stop_requested = False
        self.done = trio.Event()


async def call(method: Callable[[], Any]) -> Any:
    """Await an async method; run a sync one in a worker thread, abandoned if the call is cancelled.

    A sync method cannot see a stop or a bound: cancelling the call (the
    manager stopping an execute, ``cleanup_timeout`` running out) abandons
    its thread, which runs on until it returns and is logged (`Threads`).
    Managed threads take no pool slot: an execute runs for as long as the
    manager does.
    """
    if inspect.iscoroutinefunction(method):
        return await method()
    return await _threads().run(method, (), what=functools.partial(_cancelled_method, method))


def _threads() -> Threads:
    try:
        system = current_system()
    except RuntimeError:  # a provided task used by hand, outside any system
        return Threads(None)
    found: Threads | None = system._extensions.get("tasks.manager_threads")
    if found is None:
        found = system._extensions["tasks.manager_threads"] = Threads(None)
    return found


def _cancelled_method(method: Callable[[], Any]) -> str:
    return f"{getattr(method, '__qualname__', None) or method!r}, a managed task's sync method, was cancelled"


def check_task(task: object, methods: tuple[str, ...]) -> None:
    """A clear TypeError unless ``task`` has the GoAsync methods it needs."""
    if task is None:
        msg = "task cannot be None: pass an object with " + ", ".join(f"{m}()" for m in methods)
        raise TypeError(msg)
    missing = [m for m in methods if not callable(getattr(task, m, None))]
    if missing:
        msg = (
            f"{task!r} cannot be managed: it has no {', '.join(f'{m}()' for m in missing)} method; "
            f"a managed task needs {', '.join(f'{m}()' for m in methods)}"
        )
        raise TypeError(msg)


_ALL = (TaskKind.STRICT, TaskKind.ERROR, TaskKind.STOP_GROUP)
_EXECUTE_KINDS = (TaskKind.STRICT, TaskKind.ERROR)


def _check_kind(kind: object, allowed: tuple[TaskKind, ...]) -> TaskKind:
    if not isinstance(kind, TaskKind) or kind not in allowed:
        names = " | ".join(f"TaskKind.{k.name}" for k in allowed)
        msg = f"kind must be one of [{names}], got {kind!r}"
        raise ValueError(msg)
    return kind


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        msg = f"a managed task's name is a str, got {name!r}"
        raise TypeError(msg)
    return name


@message(name="troupe.manager.Run")
class _Run:
    entries: Any
    queued: Any


@message(name="troupe.manager.Stop")
class _Stop:
    pass


@message(name="troupe.manager.AddExecute")
class _AddExecute:
    entry: Any


@message(name="troupe.manager.Begin")
class _Begin:
    pass


_STOP = _Stop()
_BEGIN = _Begin()


class _ExecuteActor(Actor[_Begin]):
    """Runs one managed task's ``execute`` and reports how it returned to the manager."""

    def __init__(self, core: _Core, entry: _Entry) -> None:
        self.core = core
        self.entry = entry

    async def receive(self, msg: _Begin) -> None:  # noqa: ARG002 - the one message says "begin"
        entry = self.entry
        error: BaseException | None = None
        scope = entry.scope = trio.CancelScope()
        if self.core.stop_requested:
            scope.cancel()
        if entry.started is not None:
            entry.started.send(None)
        with scope:
            try:
                await call(entry.task.execute)
            except BaseException as exc:  # noqa: BLE001 - reported to the manager, by name and stage
                passing, error = split_outcome(exc)
                if passing is not None:
                    raise passing from None
        entry.error = error
        self._troupe_stop_self()  # the manager watches it: its Terminated says "returned"

    def _troupe_interrupt(self) -> None:
        if self.entry.scope is not None:
            self.entry.scope.cancel()


class _ManagerActor(Actor[_Run | _Stop | _AddExecute | Terminated]):
    """GoAsync's ``Run`` loop, as an actor supervising one actor per ``execute``.

    It watches its execute actors: each one's ``Terminated`` is "that
    execute returned" (with its error on the entry), so by the time all
    have arrived every managed actor is gone and cleanup may begin.
    """

    def __init__(self, core: _Core) -> None:
        self.core = core
        self.live: dict[str, _Entry] = {}
        self.started = 0
        self.running = 0
        self.stop_group_left = 0
        self.waiting_adds: list[Reply[Any]] = []

    async def receive(self, msg: _Run | _Stop | _AddExecute | Terminated) -> object:
        match msg:
            case _Run(entries=entries, queued=queued):
                await self._run(entries, queued)
            case _Stop():
                await self._cancel_all()
            case _AddExecute(entry=entry):
                return await self._add(entry)
            case Terminated(ref=ref, reason=reason):
                entry = self.live.pop(ref.path)
                await self._returned(entry, entry.error if reason is None else reason)
        return None

    async def _run(self, entries: list[_Entry], queued: list[_Entry]) -> None:
        core = self.core
        for i, entry in enumerate(entries):
            with trio.CancelScope(shield=True):
                try:
                    await call(entry.task.initialize)
                except BaseException as exc:  # noqa: BLE001 - recorded; the manager shuts down
                    passing, error = split_outcome(exc)
                    if passing is not None:
                        raise passing from None
                    assert error is not None  # noqa: S101 - the method raised something
                    self._record(entry.name, "initialize", error)
                    await self._cleanup(entries[i::-1])
                    self._shut_down()
                    return
        if core.stop_requested:  # cancelled before or while initializing: no execute starts
            await self._cleanup(entries[::-1])
            self._shut_down()
            return
        core.state = _State.RUNNING
        self.stop_group_left = sum(1 for e in entries if e.kind is TaskKind.STOP_GROUP)
        for entry in [*entries, *queued]:
            await self._start(entry)

    async def _start(self, entry: _Entry) -> None:
        factory = functools.partial(_ExecuteActor, self.core, entry)
        self.started += 1
        ref = entry.ref = await self.context.spawn(
            factory, name=_actor_name(entry, self.started), restart=Restart.TEMPORARY
        )
        self.live[ref.path] = entry
        self.context.watch(ref)
        self.running += 1
        entry.ref.tell_nowait(_BEGIN)
        self.core.system._emit("troupe.manager.executing", entry.name)

    async def _add(self, entry: _Entry) -> object:
        state = self.core.state
        if state is _State.RUNNING:
            entry.started = self.context.defer_reply()  # answered by its actor, once running
            await self._start(entry)
            return None
        if state is _State.STOPPING:  # answered once the shutdown is complete
            self.waiting_adds.append(self.context.defer_reply())
            return None
        return TaskManagerError(_SHUT_DOWN_ADD)

    async def _returned(self, entry: _Entry, error: BaseException | None) -> None:
        self.running -= 1
        stopping = self.core.stop_requested
        if error is not None:
            self._record(entry.name, "execute", error)
            stopping = True
        elif entry.kind is TaskKind.STRICT and not stopping:
            self._record(entry.name, "execute", RuntimeError(_UNEXPECTED))
            stopping = True
        if entry.kind is TaskKind.STOP_GROUP:
            self.stop_group_left -= 1
            if self.stop_group_left == 0:
                stopping = True
        if stopping:
            await self._cancel_all()

    async def _cancel_all(self) -> None:
        core = self.core
        if core.state is _State.SHUT_DOWN:
            return
        core.stop_requested = True
        if core.state is _State.RUNNING:
            core.state = _State.STOPPING
            for entry in self.live.values():
                if entry.scope is not None:
                    entry.scope.cancel()
        if core.state is _State.STOPPING and self.running == 0:
            await self._finish()

    async def _finish(self) -> None:
        await self._cleanup([e for e in self.core.entries[::-1] if not e.execute_only])
        self._shut_down()

    async def _cleanup(self, entries: list[_Entry]) -> None:
        timeout = self.core.cleanup_timeout
        for entry in entries:
            cleanup = entry.task.cleanup
            with trio.move_on_after(math.inf if timeout is None else timeout, shield=True) as scope:
                try:
                    await call(cleanup)
                except BaseException as exc:  # noqa: BLE001 - recorded; the next cleanup still runs
                    passing, error = split_outcome(exc)
                    if error is not None:
                        self._record(entry.name, "cleanup", error)
                    if passing is not None:
                        raise passing from None
            if scope.cancelled_caught:
                msg = f"cleanup did not finish within {timeout} s"
                if not inspect.iscoroutinefunction(cleanup):
                    msg += "; its thread was abandoned (it runs on until it returns)"
                self._record(entry.name, "cleanup", TimeoutError(msg))

    def _record(self, name: str, stage: str, error: BaseException) -> None:
        named = NamedError(name, stage, error)
        self.core.errors.append(named)
        self.core.system._emit("troupe.manager.error", named)

    def _shut_down(self) -> None:
        core = self.core
        core.state = _State.SHUT_DOWN
        core.stop_requested = True
        core.done.set()
        for reply in self.waiting_adds:
            reply.send(TaskManagerError(_SHUT_DOWN_ADD))
        self.waiting_adds.clear()

    async def on_stop(self) -> None:
        if self.core.state is not _State.SHUT_DOWN:  # the system is shutting down under it
            self._shut_down()


def _actor_name(entry: _Entry, number: int) -> str:
    name = entry.name.replace("/", "_") or "task"
    return f"{name}-{number}"


@final
class TaskManager(metaclass=NoPublicConstructor):
    """GoAsync's task manager (from `open_task_manager`).

    Example:
        ```python
        async with troupe.open_task_manager() as manager:
            manager.add("db", Database())
            manager.add("http", HttpServer(), kind=troupe.TaskKind.STRICT)
            await manager.run()
        ```
    """

    __slots__ = ("_core", "_ref")

    def __init__(self, core: _Core, ref: ActorRef[Any]) -> None:
        self._core = core
        self._ref = ref

    @property
    def errors(self) -> list[NamedError]:
        """The errors so far, in the order they happened (also after a cancelled `run`)."""
        return list(self._core.errors)

    @property
    def ref(self) -> ActorRef[Any]:
        """The manager's actor (its managed tasks are its children)."""
        return self._ref

    def add(self, name: str, task: Any, *, kind: TaskKind = TaskKind.STRICT) -> None:
        """Manage ``task``: an object with ``initialize``, ``execute`` and ``cleanup`` methods.

        Each may be async (run on the loop) or sync (run in a worker thread,
        abandoned when its ``execute`` is stopped or its ``cleanup``
        reaches ``cleanup_timeout``). Duplicate names are allowed.

        Raises:
            TypeError: ``task`` is None or lacks one of the three methods.
            ValueError: ``kind`` is not a `TaskKind`.
            TaskManagerError: the manager is running or has shut down.
        """
        _check_name(name)
        check_task(task, ("initialize", "execute", "cleanup"))
        _check_kind(kind, _ALL)
        state = self._core.state
        if state is _State.SHUT_DOWN:
            raise TaskManagerError(_SHUT_DOWN_ADD)
        if state is not _State.NEW:
            raise TaskManagerError(_RUNNING_ADD)
        self._core.entries.append(_Entry(name, task, kind, execute_only=False))

    async def add_execute_task(self, name: str, task: Any, *, kind: TaskKind = TaskKind.STRICT) -> None:
        """Add an execute-only task (an object with ``execute``), also while running.

        Before `run` it is queued; during initialize it starts once they are
        done; while running it returns once the task has started. It has no
        initialize or cleanup.

        Raises:
            TypeError: ``task`` is None or has no ``execute`` method.
            ValueError: ``kind`` is not ``STRICT`` or ``ERROR``.
            TaskManagerError: the manager has shut down (while stopping, after the shutdown).
        """
        _check_name(name)
        check_task(task, ("execute",))
        _check_kind(kind, _EXECUTE_KINDS)
        entry = _Entry(name, task, kind, execute_only=True)
        core = self._core
        if core.state is _State.NEW:
            core.queued.append(entry)
            await trio.lowlevel.checkpoint()
            return
        if core.state is _State.SHUT_DOWN:
            await trio.lowlevel.checkpoint()
            raise TaskManagerError(_SHUT_DOWN_ADD)
        try:
            answer = await self._ref.ask(_AddExecute(entry), timeout=None)
        except ActorStopped:
            raise TaskManagerError(_SHUT_DOWN_ADD) from None
        if isinstance(answer, BaseException):
            raise answer

    async def run(self) -> None:
        """Initialize serially, execute in parallel, and once stopped clean up in reverse.

        Returns when the manager stopped without errors: `stop()` was called
        or the stop group ended. If cancelled from outside it stops the
        tasks, cleans up, and re-raises the cancellation (errors in `errors`).

        Raises:
            TaskManagerError: the run ended with errors (``.errors``), or the
                manager is already running or has shut down.
        """
        core = self._core
        if core.state is _State.SHUT_DOWN:
            raise TaskManagerError(_SHUT_DOWN_RUN)
        if core.state is not _State.NEW:
            raise TaskManagerError(_RUNNING_RUN)
        core.state = _State.INITIALIZING
        sent = False
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            self._ref.tell_nowait(_Run(core.entries, core.queued))
            sent = True
            await core.done.wait()
        except BaseException:  # cancelled from outside (or Ctrl-C): stop, clean up, re-raise
            self.stop()
            if not sent:
                self._ref.tell_nowait(_Run(core.entries, core.queued))
            with trio.CancelScope(shield=True):
                await core.done.wait()
            raise
        if core.errors:
            raise TaskManagerError._of(core.errors)

    def stop(self) -> None:
        """Stop gracefully (GoAsync's context cancel): every execute is cancelled, then cleanups run.

        `run` then returns (or raises the errors). Before `run`, the
        manager still initializes every task, starts no execute and cleans
        up. A no-op once shut down.
        """
        core = self._core
        if core.stop_requested or core.state is _State.SHUT_DOWN:
            return
        core.stop_requested = True
        if core.state is _State.RUNNING:
            self._ref.tell_nowait(_STOP)


@asynccontextmanager
async def open_task_manager(
    *, cleanup_timeout: float | None = None, name: str | None = None
) -> AsyncIterator[TaskManager]:
    """A GoAsync task manager in the current system; leaving it stops a manager still running.

    ``cleanup_timeout`` bounds each task's ``cleanup`` (a timeout is
    recorded as that task's cleanup error); a sync ``cleanup``'s thread is
    abandoned at the bound and runs on until it returns. The manager is the actor
    ``/system/tasks/<name>`` (default ``manager-N``).

    Example:
        ```python
        async with troupe.open_task_manager() as manager:
            manager.add("db", Database())
            await manager.run()
        ```
    """
    if cleanup_timeout is not None and not cleanup_timeout > 0:
        msg = f"cleanup_timeout must be a positive number of seconds or None, got {cleanup_timeout!r}"
        raise ValueError(msg)
    system = current_system()
    core = _Core(system, cleanup_timeout)
    with trio.CancelScope(shield=True):  # entered cancelled, run() still initializes and cleans up
        ref = await spawn_task_actor(
            system, functools.partial(_ManagerActor, core), name=name or _next_name(system)
        )
    manager = TaskManager._create(core, ref)
    try:
        yield manager
    finally:
        with trio.CancelScope(shield=True):
            if core.state is _State.NEW:
                core.state = _State.SHUT_DOWN
                core.done.set()
            else:
                manager.stop()
                await core.done.wait()
            await ref.stop()


def _next_name(system: ActorSystem) -> str:
    n: int = system._extensions.get("tasks.managers", 0) + 1
    system._extensions["tasks.managers"] = n
    return f"manager-{n}"
