"""``/system/tasks``: the supervisor under which every task-layer actor lives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import trio

from ..actors import (
    Actor,
    ActorRef,
    ActorStopped,
    ActorSystem,
    Mailbox,
    NameTaken,
    OneForOne,
    Restart,
    SupervisorStrategy,
)
from ..actors._spawn import spawn_under
from ._threads import report_abandoned

M = TypeVar("M")


class TasksSupervisor(Actor[Any]):
    """The parent of tasks, milestones, counters and the worker pool.

    Its children are TEMPORARY (a task that went wrong is not run twice),
    except the worker pool, which is restarted. It also applies the
    requests that task handles send (execute, cancel, subscribe), so that
    they are answered at once while a task's body runs.
    """

    supervisor: SupervisorStrategy = OneForOne(max_restarts=10, within=1.0)

    async def receive(self, msg: Any) -> BaseException | None:
        from ._task import control  # noqa: PLC0415 - the task module imports this one

        return await control(msg)

    async def on_stop(self) -> None:
        # Every task has ended by now (children stop first): say which abandoned threads still run.
        report_abandoned(self.context.system)


async def ask_control(system: ActorSystem, msg: object) -> None:
    """Have the supervisor apply a handle's request; raise what it answers with."""
    root = await tasks_root(system)
    answer = await root.ask(msg, timeout=None)
    if isinstance(answer, BaseException):
        raise answer


async def tasks_root(system: ActorSystem) -> ActorRef[Any]:
    """The ``/system/tasks`` supervisor, started on first use."""
    ref: ActorRef[Any] | None = system._extensions.get("tasks.root")
    if ref is not None and ref.alive:
        return ref
    ref = system.lookup("/system/tasks")
    if ref is None:
        try:
            ref = await system._spawn_system(TasksSupervisor, name="tasks")
        except NameTaken:
            ref = system.lookup("/system/tasks")
            assert ref is not None  # noqa: S101 - it was just taken
    system._extensions["tasks.root"] = ref
    return ref


_YIELD_EVERY = 32


async def spawn_task_actor(
    system: ActorSystem,
    factory: Callable[[], Actor[M]],
    *,
    name: str | None = None,
    mailbox: Mailbox | None = None,
) -> ActorRef[M]:
    """Spawn a TEMPORARY actor under ``/system/tasks`` (see `spawn_batched`)."""
    return await spawn_batched(system, await tasks_root(system), factory, name=name, mailbox=mailbox)


async def spawn_batched(
    system: ActorSystem,
    parent: ActorRef[Any],
    factory: Callable[[], Actor[M]],
    *,
    name: str | None = None,
    mailbox: Mailbox | None = None,
) -> ActorRef[M]:
    """Spawn a TEMPORARY child of ``parent`` for the task layer.

    Always a cancel point; a schedule point for every 32nd spawn in a row
    (trio lets the scheduler decide when to switch at a checkpoint). A
    fan-out of many tasks (or a task list of many service tasks) then starts
    them in batches instead of paying one scheduler pass each; nothing waits
    more than 32 spawns for its turn.
    """
    state = system._extensions
    count = state.get("tasks.spawns", 0) + 1
    schedule = count >= _YIELD_EVERY
    state["tasks.spawns"] = 0 if schedule else count
    return await spawn_under(
        parent, factory, name=name, mailbox=mailbox, restart=Restart.TEMPORARY, schedule=schedule
    )


async def runtime_actor(system: ActorSystem, name: str, factory: Callable[[], Actor[M]]) -> ActorRef[M]:
    """The one actor named ``name`` under ``/system/tasks`` (started on first use)."""
    found = system.lookup(f"/system/tasks/{name}")
    if found is not None:
        return found
    try:
        root = await tasks_root(system)
        return await spawn_under(root, factory, name=name, restart=Restart.PERMANENT)
    except ActorStopped:
        if not system._closing:
            raise
        # The system began its shutdown: the task asking is about to be cancelled by it, and should
        # end with that (TaskCancelled, shutdown) rather than with this refusal. Wait for it.
        await trio.sleep_forever()
        raise  # not reached: sleep_forever only ends by a cancellation
    except NameTaken:
        found = system.lookup(f"/system/tasks/{name}")
        assert found is not None  # noqa: S101 - it was just taken
        return found


_RUNTIME_STARTS = 3  # starts of a runtime actor one ask tries (each given up by its spawner's cancel)


async def ask_runtime_actor(
    system: ActorSystem, name: str, factory: Callable[[], Actor[Any]], msg: object
) -> Any:
    """Ask the runtime actor ``name`` (started on first use, see `runtime_actor`) ``msg``; its answer.

    Its ``on_start`` runs in the task that first needed it, so a cancel of
    that task (a forced cancel of a task waiting for a Dask connection) gives
    the start up and the actor stops. Another task that asked it meanwhile
    then asks a new one instead of failing for a cancel that was not its own
    (a few times at most: an actor that keeps stopping is an error).
    """
    for attempt in range(1, _RUNTIME_STARTS + 1):
        ref: ActorRef[Any] = await runtime_actor(system, name, factory)
        try:
            return await ref.ask(msg, timeout=None)
        except ActorStopped:
            if system._closing or attempt == _RUNTIME_STARTS:
                raise
    raise AssertionError  # not reached: the last attempt returns or raises
