"""``troupe run LIST.xml`` and ``troupe graph LIST``: task lists from the command line."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import attrs

from ..actors import open_system
from ..tasks import DaskExecutor, run_task, use_executor
from ..tasks._dask import _distributed
from ..tasks.service import StuckTask, TaskService, TaskState, new_task_service
from ..tasks.service._graph import render
from ..tasks.service._tasklist import FORMATS, TaskList, read_task_list
from ._load import TargetError, load_module

TASK_LIST_SUFFIXES = tuple(f".{fmt}" for fmt in FORMATS)


_EXECUTORS = ("inline", "thread", "process", "dask")


@attrs.frozen
class ExecutorOption:
    """``--executor NAME[=ADDRESS]``, read: the name, and the Dask scheduler's address if given."""

    name: str
    address: str | None

    def __str__(self) -> str:
        if self.name != "dask":
            return self.name
        where = "an embedded cluster" if self.address is None else self.address
        return f"dask ({where})"


def executor_option(value: str) -> ExecutorOption:
    """Read ``--executor``'s value.

    Raises:
        TargetError: an unknown name, an address for another executor than
            dask, an empty address, or no ``dask`` extra for dask.
    """
    name, equals, address = value.partition("=")
    if name not in _EXECUTORS:
        raise TargetError(
            f"--executor {value!r}: unknown executor {name!r}; use inline, thread, process, dask, "
            "or dask=tcp://HOST:8786 for a running Dask cluster"
        )
    if equals and name != "dask":
        raise TargetError(f"--executor {value!r}: only dask takes an address (dask=tcp://HOST:8786)")
    if equals and (not address.strip() or address != address.strip()):
        raise TargetError(
            f"--executor {value!r}: the address is the Dask scheduler's, like dask=tcp://HOST:8786 "
            "(or --executor dask for an embedded cluster)"
        )
    if name == "dask":
        try:
            _distributed()
        except ImportError as exc:
            raise TargetError(f"--executor {name}: {exc}") from exc
    return ExecutorOption(name, address if equals else None)


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


def _is_file(spec: str) -> bool:
    """Whether ``--functions`` named a .py file (as `load_module` tells), not an importable module."""
    return spec.endswith(".py") or Path(spec).exists()


async def _use(executor: ExecutorOption, by_value: ModuleType | None) -> None:
    """Configure ``--executor`` for the run's system; reach a Dask cluster now, not at the first body.

    ``by_value``: the ``--functions`` file, sent to Dask workers with each
    body (it is no module they could import).
    """
    print(f"executor: {executor}", flush=True)
    if executor.name != "dask":
        return
    use_executor("dask", DaskExecutor(executor.address))
    if by_value is not None:
        _distributed().protocol.pickle.cloudpickle.register_pickle_by_value(by_value)
    probe = await run_task(os.getpid, executor="dask")
    error = await probe.error()
    if error is not None:
        where = "start an embedded Dask cluster" if executor.address is None else f"reach {executor.address}"
        raise TargetError(f"--executor dask: cannot {where}: {type(error).__name__}: {error}")


def _existing(path: str) -> Path:
    found = Path(path)
    if not found.is_file():
        raise TargetError(f"no such task list: {path}")
    return found


async def run_task_list(
    path: str,
    *,
    entry: str | None,
    functions: str | None,
    returns: list[str],
    trusted: bool,
    executor: ExecutorOption | None = None,
) -> int:
    """Load the list, execute ``entry``, return ``returns``; print each task's final state.

    With ``executor``, sync function and component bodies run there by
    default (a task's own ``executor`` still wins).

    Returns 0 when every task of the list completed (or, with ``entry``,
    when the entry did), else 1.
    """
    module = load_module(functions) if functions else None
    _check_names(read_task_list(_existing(path)), module, functions, trusted=trusted)
    async with open_system(name=path):
        if executor is not None:
            await _use(executor, module if functions is not None and _is_file(functions) else None)
        default = None if executor is None else executor.name
        service = await new_task_service(
            functions=module, components=module, trusted=trusted, executor=default
        )
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
