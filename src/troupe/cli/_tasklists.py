"""``troupe run LIST.xml`` and ``troupe graph LIST``: task lists from the command line."""

from __future__ import annotations

from pathlib import Path

from ..actors import open_system
from ..tasks.service import TaskService, TaskState, new_task_service
from ..tasks.service._graph import render
from ..tasks.service._tasklist import FORMATS, read_task_list
from ._load import TargetError, load_module

TASK_LIST_SUFFIXES = tuple(f".{fmt}" for fmt in FORMATS)


def is_task_list(target: str) -> bool:
    """Whether ``troupe run`` should read ``target`` as a task list."""
    return target.lower().endswith(TASK_LIST_SUFFIXES)


def graph(path: str, fmt: str) -> str:
    """The task list at ``path`` drawn as ``fmt`` (``mermaid`` or ``dot``)."""
    return render(read_task_list(_existing(path)), fmt)


def _existing(path: str) -> Path:
    found = Path(path)
    if not found.is_file():
        raise TargetError(f"no such task list: {path}")
    return found


async def run_task_list(
    path: str, *, entry: str | None, functions: str | None, returns: list[str], trusted: bool
) -> int:
    """Load the list, execute ``entry``, return ``returns``; print each task's final state.

    Returns 0 when every task of the list completed (or, with ``entry``,
    when the entry did), else 1.
    """
    module = load_module(functions) if functions else None
    async with open_system(name=path):
        service = await new_task_service(functions=module, components=module, trusted=trusted)
        print(f"loading {path}", flush=True)
        ids = await service.load(_existing(path))
        print(f"loaded {len(ids)} tasks", flush=True)
        if entry is not None:
            if entry not in ids:
                raise TargetError(f"--entry {entry!r} is not a task of {path}; its tasks: {', '.join(ids)}")
            await service.execute(entry)
        for name in returns:
            await service.return_dependency(name)
        return await _report(service, ids, entry)


async def _report(service: TaskService, ids: tuple[str, ...], entry: str | None) -> int:
    width = max(len(task_id) for task_id in ids) if ids else 0
    print("\nfinal states:")
    for task_id in ids:
        state = await service.state(task_id)
        print(f"  {task_id:<{width}}  {state.value:>2} {state.name}")
    stuck = await service.stuck()
    if stuck:
        print("\nstuck:")
        for s in stuck:
            print(f"  {s.id}: {s.reason}")
    done = [entry] if entry is not None else list(ids)
    complete = [await service.state(task_id) == TaskState.COMPLETE for task_id in done]
    return 0 if all(complete) else 1
