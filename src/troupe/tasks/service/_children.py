"""The service's child actors (one per task, one per watched dependency) and their messages.

Each task has an actor (`_TaskActor`) that runs its ``function``,
``component``, ``script`` and ``xml`` bodies when the service asks (`_Run`)
and tells the service what they returned (`_Ran`); `_load_xml` and
`_run_script` are what an ``xml`` and a ``script`` body run, `run_on` what a
``function`` or ``component`` body with an executor runs. Each named
dependency that outside actors watch (``service.dependency(name)``) has an
actor too (`_DependencyActor`). `actor_name` names both after their task id
or dependency name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import defusedxml.ElementTree
import trio

from ...actors import Actor, ActorRef, current_system
from ...actors._explore import run_blocking
from ...protocol import message
from .._constructors import run_task
from .._executors import Executor, InlineExecutor, named_executors
from .._task import split_outcome
from ._model import DependencyReturned, ServiceTask

if TYPE_CHECKING:
    from ._handle import TaskService


@message(name="troupe.service.Run")
class _Run:
    task: str
    handler: bool
    body: Callable[[], Any]


@message(name="troupe.service.Ran")
class _Ran:
    task: str
    handler: bool
    ok: bool
    value: Any


@message(name="troupe.service.Retire")
class _Retire:
    pass


@attrs.frozen
class _Loaded:
    """What an ``xml`` body read: the parsed document, and its bytes for ``import-task``."""

    element: Any
    source: bytes


class _TaskActor(Actor[_Run | _Retire]):
    """One service task: runs its bodies on the service's request."""

    def __init__(self, service: ActorRef[Any]) -> None:
        self.service = service

    async def receive(self, msg: _Run | _Retire) -> None:
        if isinstance(msg, _Retire):
            self.context.stop()
            return
        try:
            value = msg.body()
            if inspect.isawaitable(value):
                value = await value
            ok = True
        except (
            BaseException
        ) as exc:  # a body's error (sys.exit() too) leaves its task stuck, shown by stuck()
            passing, error = split_outcome(exc)
            if passing is not None:  # trio's Cancelled, Ctrl-C: not the body's to decide
                raise
            value, ok = error, False
        self.service.tell_nowait(_Ran(msg.task, msg.handler, ok, value))


@message(name="troupe.service.DependencySet")
class _DependencySet:
    returned: bool


@message(name="troupe.service.Subscribe")
class _Subscribe:
    ref: Any


@message(name="troupe.service.IsReturned")
class _IsReturned:
    pass


class _DependencyActor(Actor[_DependencySet | _Subscribe | _IsReturned]):
    """A named dependency that outside actors watch (spawned by ``service.dependency(name)``)."""

    def __init__(self, name: str, returned: bool) -> None:
        self.name = name
        self.returned = returned
        self.subscribers: list[ActorRef[Any]] = []

    async def receive(self, msg: _DependencySet | _Subscribe | _IsReturned) -> bool | None:
        if isinstance(msg, _IsReturned):
            return self.returned
        if isinstance(msg, _Subscribe):
            self.subscribers.append(msg.ref)
            if self.returned:
                msg.ref.tell_nowait(DependencyReturned(self.name))
            return None
        if msg.returned and not self.returned:
            for ref in self.subscribers:
                if ref.alive:
                    ref.tell_nowait(DependencyReturned(self.name))
        self.returned = msg.returned
        return None


def actor_name(prefix: str, name: str) -> str:
    """An actor name for a task id or dependency name (``%``, ``/`` and ``:`` escaped)."""
    return prefix + name.replace("%", "%25").replace("/", "%2F").replace(":", "%3A")


async def _load_xml(path: Path) -> _Loaded:
    source = await trio.Path(path).read_bytes()
    element = await run_blocking(defusedxml.ElementTree.fromstring, source)
    return _Loaded(element, source)


async def _run_script(source: str, task: ServiceTask, service: TaskService, *, handler: bool) -> bool:
    namespace: dict[str, Any] = {"__name__": f"troupe.script.{task.id}", "task": task, "service": service}
    code = compile(source, f"<{'handler' if handler else 'action'} script of task {task.id}>", "exec")
    exec(code, namespace)  # noqa: S102 - only in a service opened with trusted=True (refused otherwise)
    run = namespace.get("RunTaskScript") or namespace.get("run_task_script")
    if run is None:
        return False
    result = run(task)
    if inspect.isawaitable(result):
        result = await result
    return bool(result)


def runs_inline(executor: Executor | str | None) -> bool:
    """Whether ``executor`` runs a body where the service runs it anyway: on its own loop."""
    return executor is None or executor == "inline" or isinstance(executor, InlineExecutor)


async def run_on(
    executor: Executor | str, fn: Callable[..., Any], args: tuple[Any, ...], task_id: str
) -> Any:
    """A ``function`` or ``component`` body on ``executor``: ``fn(*args)`` run as a troupe task.

    Its result is the body's value; what it raised is raised here, with its
    type (a `TaskCancelled` if the task was cancelled). Pickling, forced
    cancels and the Dask path are the task's.
    """
    if inspect.iscoroutinefunction(fn) and not _inline(executor):
        name = getattr(fn, "__qualname__", repr(fn))
        msg = (
            f"task {task_id!r}: {name} is an async function, which runs on the service's loop, and executor "
            f"{executor!r} runs sync functions; remove the task's executor (or make the function sync)"
        )
        raise TypeError(msg)
    try:
        handle = await run_task(fn, *args, executor=executor)
    except TypeError as exc:
        if any(isinstance(arg, _service_type()) for arg in args):
            exc.add_note(
                f"task {task_id!r} has no parameters, so its function is called as fn(task_id, service), "
                "and the service cannot leave this process: give the task parameters, or run it in a thread"
            )
        raise
    error = await handle.error()
    if error is not None:
        raise error
    return await handle.result()


def _inline(executor: Executor | str) -> bool:
    if isinstance(executor, str):
        found = named_executors(current_system()).get(executor)
        return executor == "inline" or isinstance(found, InlineExecutor)
    return isinstance(executor, InlineExecutor)


def _service_type() -> type[Any]:
    from ._handle import TaskService  # noqa: PLC0415 - the handle imports this module

    return TaskService
