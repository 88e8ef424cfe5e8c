"""`TaskService`, the user's handle on a service actor, and `new_task_service`."""

from __future__ import annotations

import os
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any, final

from ..._util import NoPublicConstructor
from ...actors import ActorRef, current_actor, current_system
from ...actors._explore import run_blocking
from .._executors import Executor
from .._root import spawn_task_actor
from ._actor import UNBOUNDED, Call, ServiceActor
from ._children import _IsReturned, _Subscribe
from ._model import ServiceTask, StuckTask, TaskState
from ._tasklist import Registries, read_task_list

TaskKey = ServiceTask | str
"""A task, given by its handle or its id."""


@final
class DependencyHandle(metaclass=NoPublicConstructor):
    """A named dependency of a service (from `TaskService.dependency`); an actor of its own."""

    __slots__ = ("_ref", "name")

    def __init__(self, name: str, ref: ActorRef[Any]) -> None:
        self.name = name
        """The dependency's name."""
        self._ref = ref

    def __repr__(self) -> str:
        return f"<DependencyHandle {self.name!r}>"

    async def returned(self) -> bool:
        """Whether the dependency is returned now."""
        answer: bool = await self._ref.ask(_IsReturned(), timeout=None)
        return answer

    async def subscribe(self, ref: ActorRef[Any]) -> None:
        """Send ``DependencyReturned(name)`` to ``ref`` at each return (at once if returned now)."""
        if not isinstance(ref, ActorRef):
            msg = f"subscribe() takes an ActorRef, got {ref!r}"
            raise TypeError(msg)
        await self._ref.ask(_Subscribe(ref), timeout=None)


@final
class TaskService(metaclass=NoPublicConstructor):
    """Hemi's Task Service: tasks by id, actions and handlers by type, named dependencies.

    Every method sends one message to the service actor. Calls that change
    states return once every state has moved as far as it can (any
    ``function``, ``script``, ``component`` or ``xml`` body they started has
    returned); made from inside such a body, they return once applied.

    Example:
        ```python
        service = await troupe.new_task_service()
        t = await service.add_task("demotask")
        await service.add_dependency(t, "demodependency")
        await service.execute(t)
        assert await service.state("demotask") is troupe.TaskState.ACTIVE
        await service.return_dependency("demodependency")
        assert await service.state("demotask") is troupe.TaskState.COMPLETE
        ```
    """

    __slots__ = ("_actor", "_prefix", "_ref")

    def __init__(self) -> None:
        self._ref: ActorRef[Any] | None = None
        self._prefix = ""
        self._actor: ServiceActor | None = None

    def __repr__(self) -> str:
        return f"<TaskService {self.ref.path}>"

    @property
    def ref(self) -> ActorRef[Any]:
        """The service actor's ref (its tasks are its children)."""
        assert self._ref is not None  # noqa: S101 - set by new_task_service
        return self._ref

    async def _call(self, op: str, *args: Any) -> Any:
        me = current_actor()
        nested = me is not None and me.path.startswith(self._prefix)
        return await self.ref.ask(Call(op, args, nested), timeout=None)

    async def add_task(
        self,
        id: str,  # noqa: A002 - the original's name for it
        *,
        action_type: str = "none",
        action: Any = None,
        handler_type: str = "none",
        handler: Any = None,
        parameters: Iterable[Any] = (),
        auto_execute: bool = False,
        executor: Executor | str | None = None,
    ) -> ServiceTask:
        """Add a task in state INITIALIZED (and execute it at once with ``auto_execute``).

        ``action`` / ``handler`` by type: ``function`` (a callable or a
        registered name), ``component`` (a class or a registered name),
        ``event`` (a topic), ``task`` (a task id), ``xml`` (a path),
        ``script`` (Python source; trusted services only), ``import-task``
        (handler: the entry task id of the list the xml action loaded);
        ``none`` / ``default`` do nothing and advance.

        ``executor`` runs the task's ``function`` and ``component`` bodies
        (see `new_task_service`; default: the service's).

        Raises:
            TaskServiceError: the id exists already, an unknown type, an
                unregistered name, a script in an untrusted service, or an
                executor for a task without function or component bodies
                (or with a script or xml one).
            TypeError: ``executor`` is neither a name nor an executor.
        """
        params = tuple(parameters)
        _check_executor(executor)
        answer: ServiceTask = await self._call(
            "add_task", id, action_type, action, handler_type, handler, params, auto_execute, executor
        )
        return answer

    async def add_dependency(self, task: TaskKey, dependency: TaskKey) -> bool:
        """Make ``task`` wait for ``dependency`` (a name, or a task: its id).

        Returns False (and adds nothing) when that name is already returned.
        """
        answer: bool = await self._call("add_dependency", task, dependency)
        return answer

    async def execute(self, task: TaskKey) -> bool:
        """Execute an INITIALIZED task (its action runs now); False (a no-op) in any other state."""
        answer: bool = await self._call("execute", task)
        return answer

    async def execute_handler(self, task: TaskKey) -> bool:
        """Move a task whose action did not advance on to ACTIVE.

        Its handler then runs as soon as its dependencies allow.

        Returns False (a no-op) unless the task is BUSY with its action done.
        """
        answer: bool = await self._call("execute_handler", task)
        return answer

    async def advance(self, task: TaskKey) -> TaskState:
        """Move a task one step (ACTIVE -> HANDLED, or up to BUSY -> ACTIVE) and serve it; its new state."""
        answer: TaskState = await self._call("advance", task)
        return answer

    async def return_dependency(self, dependency: TaskKey) -> None:
        """Return a named dependency: every task waiting only for it moves on.

        A task id of an unfinished task forces that task to HANDLED (its
        handler is skipped). A name stays returned until `clear_dependency`.
        """
        await self._call("return_dependency", dependency)

    async def clear_dependency(self, dependency: TaskKey) -> bool:
        """Un-return a name, so it gates tasks that depend on it from now on; False if it was not returned."""
        answer: bool = await self._call("clear_dependency", dependency)
        return answer

    async def clear_task(self, task: TaskKey) -> None:
        """Remove a COMPLETE task now; an unfinished one is DESTROYED and removed when it completes."""
        await self._call("clear_task", task)

    async def state(self, task: TaskKey) -> TaskState:
        """The task's state.

        Raises:
            TaskServiceError: no such task (never added, or removed).
        """
        answer: TaskState = await self._call("state", task)
        return answer

    async def get(self, task: TaskKey) -> ServiceTask:
        """The task's handle (``data``, ``parameters``, ``component``, ``state``)."""
        answer: ServiceTask = await self._call("get", task)
        return answer

    def task(self, task_id: str) -> ServiceTask:
        """The task's handle, without waiting: for sync ``function`` bodies.

        Raises:
            TaskServiceError: no such task.
        """
        assert self._actor is not None  # noqa: S101 - set by new_task_service
        return ServiceTask._create(self._actor._task(task_id))

    async def stuck(self) -> list[StuckTask]:
        """Every task that cannot move by itself, and why.

        The reason names the dependencies it waits for, the body that did
        not advance (or its error), or the cycle it is part of.
        """
        answer: list[StuckTask] = await self._call("stuck")
        return answer

    async def dependency(self, name: TaskKey) -> DependencyHandle:
        """The named dependency's handle (``returned()``, ``subscribe(ref)``)."""
        ref: ActorRef[Any] = await self._call("dependency", name)
        return DependencyHandle._create(name.id if isinstance(name, ServiceTask) else name, ref)

    async def load(self, source: str | os.PathLike[str], format: str | None = None) -> tuple[str, ...]:  # noqa: A002
        """Load a task list, then execute its auto-execute tasks (deepest first); the ids it added.

        ``source`` is a path (format from its suffix) or the document as a
        str (``format`` required: ``"xml"``, ``"json"`` or ``"toml"``).
        Everything is checked before anything is added; nothing in it is
        run as code (``script`` needs a trusted service).

        Raises:
            TaskListError: malformed, unsafe or inconsistent (file and line named).
        """
        tasks = await run_blocking(read_task_list, source, format)
        answer: tuple[str, ...] = await self._call("load", tasks)
        return answer

    async def execute_task_loader(self, name: str, path: str | os.PathLike[str], entry: str) -> ServiceTask:
        """Hemi's ``executeTaskLoader``: load the task list at ``path`` and execute ``entry``.

        It adds a task ``name`` whose xml action reads ``path`` and whose
        import-task handler adds that list and executes ``entry``; ``name``
        completes once ``entry`` does.
        """
        answer: ServiceTask = await self._call("execute_task_loader", name, os.fspath(path), entry)
        return answer


def _check_executor(executor: object) -> None:
    """Refuse an ``executor=`` that is neither None, a name nor an executor."""
    if executor is None or (isinstance(executor, str) and executor) or isinstance(executor, Executor):
        return
    msg = (
        "executor= is an executor's name ('inline', 'thread', 'process', 'dask', or one configured with "
        f"troupe.use_executor) or an executor object, got {executor!r}"
    )
    raise TypeError(msg)


def _registry(
    what: str, given: Mapping[str, Callable[..., Any]] | types.ModuleType | None
) -> Callable[[str], Callable[..., Any] | None]:
    if given is None:
        return lambda _: None
    if isinstance(given, types.ModuleType):
        module = given

        def lookup(name: str) -> Callable[..., Any] | None:
            found = getattr(module, name, None) if not name.startswith("_") else None
            return found if callable(found) else None

        return lookup
    if not isinstance(given, Mapping):
        msg = f"{what}= is a mapping of names to callables or a module, got {given!r}"
        raise TypeError(msg)
    for key, value in given.items():
        if not isinstance(key, str) or not callable(value):
            msg = f"{what}= maps names (str) to callables; {key!r} maps to {value!r}"
            raise TypeError(msg)
    table = dict(given)
    return table.get


async def new_task_service(
    *,
    functions: Mapping[str, Callable[..., Any]] | types.ModuleType | None = None,
    components: Mapping[str, Callable[..., Any]] | types.ModuleType | None = None,
    trusted: bool = False,
    name: str | None = None,
    executor: Executor | str | None = None,
) -> TaskService:
    """Start a task service actor (under ``/system/tasks``) and return its handle.

    Args:
        functions: what ``function`` actions and handlers may name (a
            mapping, or a module whose public callables count).
        components: what ``component`` actions and handlers may name.
        trusted: allow ``script`` (Python source run in the process); only
            for task lists you wrote.
        name: the actor's name (default ``service-N``).
        executor: where the sync ``function`` and ``component`` bodies of
            tasks without an executor of their own run, as a troupe task
            (``"thread"``, ``"process"``, ``"dask"``, a name configured with
            `troupe.use_executor`, or an executor object). None (the
            default) and ``"inline"``: on the service's loop, one at a
            time. Async functions, ``script`` and ``xml`` bodies always run
            on the loop. A name that is not configured fails each body it
            would run (the task is stuck with the executor's error).

    Raises:
        TypeError: ``executor`` is neither a name nor an executor.

    Example:
        ```python
        troupe.use_executor("dask", troupe.DaskExecutor("tcp://scheduler:8786"))
        service = await troupe.new_task_service(functions=simulations, executor="dask")
        ```
    """
    _check_executor(executor)
    registries = Registries(
        _registry("functions", functions), _registry("components", components), bool(trusted)
    )
    system = current_system()
    if name is None:
        count = system._extensions.get("tasks.services", 0) + 1
        system._extensions["tasks.services"] = count
        name = f"service-{count}"
    handle = TaskService._create()
    holder: list[ServiceActor] = []

    def factory() -> ServiceActor:
        actor = ServiceActor(handle, registries, executor)
        holder.append(actor)
        return actor

    handle._ref = await spawn_task_actor(system, factory, name=name, mailbox=UNBOUNDED)
    handle._prefix = handle._ref.path + "/"
    handle._actor = holder[0]
    return handle
