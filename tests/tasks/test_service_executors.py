"""Task-service bodies on executors: a task list's ``executor``, and the service's default.

The Dask tests use the session's ``LocalCluster`` of 2 worker processes
(``dask_cluster``, tests/conftest.py), each system with a client of its own.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import jsonschema
import pytest
from distributed import LocalCluster

import troupe
from troupe import TaskListError, TaskServiceError, TaskState

HERE = sys.modules[__name__]  # the functions and components the lists name


class Where:
    """A component that records where it was made: the process, and whether in the main thread."""

    def __init__(self, *params: Any) -> None:
        self.params = params
        self.pid = os.getpid()
        self.main_thread = threading.current_thread() is threading.main_thread()


def off_loop(*_: Any) -> bool:
    """Advances only away from the trio thread (a worker thread or another process)."""
    return threading.current_thread() is not threading.main_thread()


def away(pid: str | int) -> bool:
    """Advances only in another process than ``pid``."""
    return os.getpid() != int(pid)


async def on_loop(*_: Any) -> bool:
    return threading.current_thread() is threading.main_thread()


def fail(text: str) -> bool:
    raise KeyError(text)


class Unusual(Exception):
    """An exception type of this module: it must come back as itself from a worker process."""


def fail_unusually(text: str) -> bool:
    raise Unusual(text)


def takes_the_service(task_id: str, service: troupe.TaskService) -> bool:
    return service.task(task_id).id == task_id


@asynccontextmanager
async def service_on(
    cluster: LocalCluster | None = None, **options: Any
) -> AsyncIterator[troupe.TaskService]:
    async with troupe.open_system():
        if cluster is not None:
            troupe.use_executor("dask", troupe.DaskExecutor(cluster.scheduler_address))
        yield await troupe.new_task_service(functions=HERE, components=HERE, **options)


PID = os.getpid()
LISTS = {
    "xml": f"""<tasks>
  <task id="all">
    <task rid="threaded" auto-execute="1"/>
    <task rid="processed" auto-execute="1"/>
    <task rid="dasked" auto-execute="1"/>
  </task>
  <task id="threaded" action-type="function" action="off_loop" handler-type="component" handler="Where"
        executor="thread"><param>{PID}</param></task>
  <task id="processed" action-type="function" action="away" handler-type="component" handler="Where"
        executor="process"><param>{PID}</param></task>
  <task id="dasked" action-type="function" action="away" handler-type="component" handler="Where"
        executor="dask"><param>{PID}</param></task>
</tasks>""",
    "json": json.dumps(
        {
            "tasks": [
                {
                    "id": "all",
                    "children": [
                        {"rid": r, "auto_execute": True} for r in ("threaded", "processed", "dasked")
                    ],
                },
                *(
                    {
                        "id": task_id,
                        "action_type": "function",
                        "action": action,
                        "handler_type": "component",
                        "handler": "Where",
                        "params": [PID],
                        "executor": executor,
                    }
                    for task_id, action, executor in (
                        ("threaded", "off_loop", "thread"),
                        ("processed", "away", "process"),
                        ("dasked", "away", "dask"),
                    )
                ),
            ]
        }
    ),
    "toml": f"""
[[tasks]]
id = "all"
children = [{{rid = "threaded", auto_execute = true}}, {{rid = "processed", auto_execute = true}},
            {{rid = "dasked", auto_execute = true}}]

[[tasks]]
id = "threaded"
action_type = "function"
action = "off_loop"
handler_type = "component"
handler = "Where"
params = [{PID}]
executor = "thread"

[[tasks]]
id = "processed"
action_type = "function"
action = "away"
handler_type = "component"
handler = "Where"
params = [{PID}]
executor = "process"

[[tasks]]
id = "dasked"
action_type = "function"
action = "away"
handler_type = "component"
handler = "Where"
params = [{PID}]
executor = "dask"
""",
}


@pytest.mark.parametrize("fmt", ["xml", "json", "toml"])
async def test_a_task_list_runs_its_bodies_on_the_executors_its_tasks_name(
    dask_cluster: LocalCluster, fmt: str
) -> None:
    async with service_on(dask_cluster) as service:
        await service.load(LISTS[fmt], format=fmt)
        await service.execute("all")
        assert await service.stuck() == []
        assert await service.state("all") is TaskState.COMPLETE
        threaded, processed, dasked = [
            (await service.get(i)).component for i in ("threaded", "processed", "dasked")
        ]
        assert (threaded.pid, threaded.main_thread) == (PID, False)  # a worker thread of this process
        assert processed.pid != PID  # a worker process
        assert dasked.pid not in (PID, processed.pid)  # a Dask worker
        assert dasked.params == ((str(PID),) if fmt == "xml" else (PID,))  # XML params are text


async def test_the_schema_knows_executor() -> None:
    schema = json.loads(resources.files("troupe.tasks.service").joinpath("task-list.schema.json").read_text())
    jsonschema.validate(json.loads(LISTS["json"]), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"tasks": [{"id": "a", "executor": 3}]}, schema)


async def test_a_body_error_keeps_its_type_on_every_executor(dask_cluster: LocalCluster) -> None:
    tasks: list[dict[str, Any]] = [
        {
            "id": f"{fn}-{executor}",
            "action_type": "function",
            "action": fn,
            "params": [executor],
            "executor": executor,
        }
        for executor in ("thread", "process", "dask")
        for fn in ("fail", "fail_unusually")
    ]
    async with service_on(dask_cluster) as service:
        await service.load(json.dumps({"tasks": tasks}), format="json")
        for task in tasks:
            await service.execute(task["id"])
        stuck = {s.id: s.reason for s in await service.stuck()}
        for executor in ("thread", "process", "dask"):
            key_error = (await service.get(f"fail-{executor}")).error
            assert type(key_error) is KeyError
            assert key_error.args == (executor,)
            unusual = (await service.get(f"fail_unusually-{executor}")).error
            assert type(unusual) is Unusual
            assert stuck[f"fail_unusually-{executor}"].startswith(f"its action raised Unusual: {executor}")


@pytest.mark.parametrize(
    ("fmt", "document", "message", "line"),
    [
        (
            "xml",
            (
                '<tasks>\n<task id="a"/>\n'
                '<task id="s" action-type="script" action="#cdata" executor="thread"/>\n</tasks>'
            ),
            (
                "task 's': executor 'thread' runs function and component bodies, and its action is script, "
                "which runs in the service"
            ),
            3,
        ),
        (
            "xml",
            (
                '<tasks>\n  <task id="x" action-type="function" action="away"\n'
                '     handler-type="xml" handler="a.xml" executor="dask"/>\n</tasks>'
            ),
            "task 'x': executor 'dask' runs function and component bodies, and its handler is xml",
            2,
        ),
        (
            "xml",
            '<tasks><task id="e" action-type="event" action="a.b" executor="thread"/></tasks>',
            "this task has none (action event, handler none); remove executor",
            1,
        ),
        (
            "xml",
            '<tasks><task id="e" action-type="function" action="away" executor=""/></tasks>',
            "got ''",
            1,
        ),
        (
            "json",
            '{"tasks": [{"id": "x", "action_type": "xml", "action": "a.xml", "executor": "process"}]}',
            "tasks[0].executor: executor 'process' runs function and component bodies, and its action is xml",
            None,
        ),
        (
            "json",
            '{"tasks": [{"id": "x", "action_type": "function", "action": "away", "executor": 3}]}',
            "tasks[0].executor: expected a non-empty string, got a number (3)",
            None,
        ),
        (
            "toml",
            '[[tasks]]\nid = "x"\nhandler_type = "script"\nhandler = "x = 1"\nexecutor = "thread"\n',
            (
                "tasks[0].executor: executor 'thread' runs function and component bodies, and "
                "its handler is script"
            ),
            None,
        ),
        (
            "toml",
            '[[tasks]]\nid = "x"\naction_type = "function"\naction = "away"\nexecutor = true\n',
            "tasks[0].executor: expected a non-empty string, got a boolean (true)",
            None,
        ),
    ],
    ids=[
        "xml-script",
        "xml-xml-handler",
        "xml-no-body",
        "xml-empty",
        "json-xml",
        "json-type",
        "toml-script",
        "toml-type",
    ],
)
async def test_an_executor_for_script_or_xml_bodies_or_of_a_wrong_type_is_refused_at_load(
    fmt: str, document: str, message: str, line: int | None
) -> None:
    async with service_on(trusted=True) as service:
        with pytest.raises(TaskListError) as caught:
            await service.load(document, format=fmt)
        assert message in str(caught.value)
        assert (caught.value.file, caught.value.line) == ("<string>", line)
        assert str(caught.value).startswith("<string>:" + (f"{line}:" if line is not None else ""))
        assert await service.stuck() == []  # nothing of it was added


async def test_the_service_default_runs_sync_bodies_of_tasks_without_their_own() -> None:
    document = """<tasks>
  <task id="default" action-type="function" action="off_loop" handler-type="component" handler="Where">
    <param>1</param></task>
  <task id="async" action-type="function" action="on_loop"><param>1</param></task>
  <task id="own" action-type="component" action="Where" executor="inline"/>
  <task id="script" action-type="script" action="#cdata"><![CDATA[
import threading
def RunTaskScript(task):
    return threading.current_thread() is threading.main_thread()
]]></task>
</tasks>"""
    async with service_on(executor="thread", trusted=True) as service:
        await service.load(document, format="xml")
        for task_id in ("default", "async", "own", "script"):
            await service.execute(task_id)
        assert await service.stuck() == []
        assert (await service.get("default")).component.main_thread is False  # the default: a thread
        assert (await service.get("own")).component.main_thread is True  # its own: inline, on the loop
        # the async function and the script ran on the loop, or they would not have advanced


async def test_add_task_takes_an_executor_too() -> None:
    async with service_on(executor="process") as service:
        await service.add_task(
            "t", action_type="component", action=Where, executor="thread", auto_execute=True
        )
        assert (await service.get("t")).component.main_thread is False
        threads = troupe.ThreadExecutor(max_workers=1)
        await service.add_task("o", action_type="function", action=off_loop, parameters=[1], executor=threads)
        await service.execute("o")
        assert await service.state("o") is TaskState.COMPLETE
        with pytest.raises(TaskServiceError, match="its action is xml, which runs in the service"):
            await service.add_task("x", action_type="xml", action="a.xml", executor="thread")
        with pytest.raises(TypeError, match="executor= is an executor's name"):
            await service.add_task("y", action_type="function", action=off_loop, executor=3)  # type: ignore[arg-type]
    async with troupe.open_system():
        with pytest.raises(TypeError, match="executor= is an executor's name"):
            await troupe.new_task_service(executor="")


async def test_an_unknown_or_unconfigured_executor_fails_the_body_with_its_own_error() -> None:
    document = """<tasks>
  <task id="gpu" action-type="function" action="away" executor="gpu"><param>1</param></task>
  <task id="dask" action-type="function" action="away" executor="dask"><param>1</param></task>
</tasks>"""
    async with service_on() as service:
        await service.load(document, format="xml")  # names are looked up when a body runs
        await service.execute("gpu")
        await service.execute("dask")
        stuck = {s.id: s for s in await service.stuck()}
        assert stuck["gpu"].state is TaskState.BUSY
        assert "its action raised ValueError: unknown executor 'gpu'" in stuck["gpu"].reason
        assert (
            "executor 'dask' is not configured for this system: call troupe.use_executor("
            in stuck["dask"].reason
        )
        assert isinstance((await service.get("dask")).error, ValueError)


async def test_bodies_that_cannot_run_on_their_executor_say_why() -> None:
    document = """<tasks>
  <task id="async" action-type="function" action="on_loop" executor="thread"><param>1</param></task>
  <task id="no-params" action-type="function" action="takes_the_service" executor="process"/>
  <task id="threaded" action-type="function" action="takes_the_service" executor="thread"/>
</tasks>"""
    async with service_on() as service:
        await service.load(document, format="xml")
        for task_id in ("async", "no-params", "threaded"):
            await service.execute(task_id)
        stuck = {s.id: s for s in await service.stuck()}
        assert set(stuck) == {"async", "no-params"}  # a thread may take the service
        assert "on_loop is an async function, which runs on the service's loop" in stuck["async"].reason
        error = (await service.get("no-params")).error
        assert isinstance(error, TypeError)
        assert (
            "called as fn(task_id, service), and the service cannot leave this process" in error.__notes__[0]
        )
