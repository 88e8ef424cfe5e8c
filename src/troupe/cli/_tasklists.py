"""``troupe run LIST.xml`` and ``troupe graph LIST``: task lists from the command line."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from ..actors import open_system
from ..tasks.service import StuckTask, TaskService, TaskState, new_task_service
from ..tasks.service._graph import render
from ..tasks.service._tasklist import FORMATS, TaskList, read_task_list
from ._load import TargetError, load_module

TASK_LIST_SUFFIXES = tuple(f".{fmt}" for fmt in FORMATS)


def is_task_list(target: str) -> bool:
    """Whether ``troupe run`` should read ``target`` as a task list."""
    return target.lower().endswith(TASK_LIST_SUFFIXES)


def graph(path: str, fmt: str) -> str:
    """The task list at ``path`` drawn as ``fmt`` (``mermaid`` or ``dot``)."""
    if not is_task_list(path):
        run = f"; `troupe run {path}` runs a topology" if path.endswith(".py") else ""
        raise TargetError(f"{path} is not a task list: troupe graph draws .xml, .json and .toml files{run}")
    return render(read_task_list(_existing(path)), fmt)


def _check_names(tasks: TaskList, module: ModuleType | None, functions: str | None, *, trusted: bool) -> None:
    """The command line's advice for what the service would refuse: ``--functions``, ``--trusted``."""
    for spec in tasks.tasks:
        for what, kind, value in (
            ("action", spec.action_type, spec.action),
            ("handler", spec.handler_type, spec.handler),
        ):
            problem = _name_problem(kind, value, module, functions, trusted=trusted)
            if problem is not None:
                where = tasks.file if spec.line is None else f"{tasks.file}:{spec.line}"
                raise TargetError(f"{where}: task {spec.id!r}: its {what} {problem}")


def _name_problem(
    kind: str, value: str | None, module: ModuleType | None, functions: str | None, *, trusted: bool
) -> str | None:
    if kind == "script" and not trusted:
        return "is a script (Python source): run the list with --trusted, only if you wrote it"
    if kind not in {"function", "component"} or not value:
        return None
    found = getattr(module, value, None) if not value.startswith("_") else None  # as the service looks it up
    if callable(found):
        return None
    if functions is None:
        return f"is {kind} {value!r}: name the .py file or module that defines it with --functions"
    return f"is {kind} {value!r}, which {functions} does not define"


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
    _check_names(read_task_list(_existing(path)), module, functions, trusted=trusted)
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
        print(f"  {task_id:<{width}}  {state.name} ({state.value})")
    stuck = await service.stuck()
    if stuck:
        print("\nstuck:")
        for s in stuck:
            print(f"  {s.id}: {s.reason}")
        _advise_return(stuck, ids)
    done = [entry] if entry is not None else list(ids)
    complete = [await service.state(task_id) == TaskState.COMPLETE for task_id in done]
    return 0 if all(complete) else 1


def _advise_return(stuck: list[StuckTask], ids: tuple[str, ...]) -> None:
    """Name the ``--return`` options that would return what stuck tasks wait for from outside."""
    outside = sorted({name for s in stuck for name in s.waits_for if name not in ids})
    if outside:
        print("\nthey wait for dependencies no task of the list returns; return them with: ", end="")
        print(" ".join(f"--return {name}" for name in outside))
