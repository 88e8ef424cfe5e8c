"""Hemi's Task Service: the state machine and every Hemi pinned decision in DESIGN.md."""

from __future__ import annotations

import itertools
import types
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import troupe
from troupe import TaskService, TaskServiceError, TaskState

S = TaskState


def recorder(into: list[Any]) -> Any:
    """A function body that records its arguments and advances."""

    def record(*args: Any) -> bool:
        into.append(args)
        return True

    return record


async def test_the_documents_first_example(system: troupe.ActorSystem) -> None:
    service = await troupe.new_task_service()
    t = await service.add_task("demotask")
    assert t.state is S.INITIALIZED
    assert await service.add_dependency(t, "demodependency") is True
    assert await service.execute(t) is True
    assert await service.state("demotask") is S.ACTIVE
    await service.return_dependency("demodependency")
    assert await service.state("demotask") is S.COMPLETE


async def test_calls_return_after_every_state_moved_including_async_bodies(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    async def slow(task_id: str, _: TaskService) -> bool:
        await trio.sleep(1)
        return True

    service = await troupe.new_task_service()
    await service.add_task("a", action_type="function", action=slow, handler_type="function", handler=slow)
    await service.add_task("b", handler_type="task", handler="c")
    await service.add_task("c", action_type="function", action=slow)
    await service.add_dependency("b", "a")
    await service.execute("b")
    assert await service.state("b") is S.ACTIVE
    await service.execute("a")  # a completes after two slow bodies, then b's handler runs c
    assert [await service.state(x) for x in "abc"] == [S.COMPLETE, S.COMPLETE, S.COMPLETE]


async def test_the_action_runs_regardless_of_dependencies(system: troupe.ActorSystem) -> None:
    ran: list[tuple[Any, ...]] = []
    service = await troupe.new_task_service()
    await service.add_task("t", action_type="function", action=recorder(ran))
    await service.add_dependency("t", "gate")
    await service.execute("t")
    assert ran == [("t", service)]
    assert await service.state("t") is S.ACTIVE


async def test_a_false_action_stays_busy_until_advanced_or_execute_handler(
    system: troupe.ActorSystem,
) -> None:
    service = await troupe.new_task_service()
    for name in ("x", "y"):
        await service.add_task(name, action_type="function", action=lambda *_: None)
        await service.execute(name)
        assert await service.state(name) is S.BUSY
    [stuck_x, _] = await service.stuck()
    assert "action returned None" in stuck_x.reason
    assert await service.advance("x") is S.COMPLETE
    assert await service.execute_handler("y") is True
    assert await service.state("y") is S.COMPLETE
    assert await service.execute_handler("y") is False


async def test_a_false_handler_stays_active_and_is_never_rerun(system: troupe.ActorSystem) -> None:
    calls: list[str] = []

    def handler(task_id: str, _: TaskService) -> bool:
        calls.append(task_id)
        return False

    service = await troupe.new_task_service()
    await service.add_task("t", handler_type="function", handler=handler)
    await service.add_dependency("t", "d")
    await service.execute("t")
    await service.return_dependency("d")
    assert await service.state("t") is S.ACTIVE
    await service.return_dependency("other")  # serving again never re-runs a stuck handler
    assert calls == ["t"]
    assert await service.advance("t") is S.COMPLETE
    assert calls == ["t"]


async def test_a_completed_task_returns_its_own_id(system: troupe.ActorSystem) -> None:
    service = await troupe.new_task_service()
    await service.add_task("parent")
    await service.add_task("child")
    await service.add_dependency("parent", "child")
    await service.execute("parent")
    assert await service.state("parent") is S.ACTIVE
    await service.execute("child")
    assert await service.state("parent") is S.COMPLETE
    dep = await service.dependency("child")
    assert await dep.returned() is True


async def test_returned_names_stay_returned_until_cleared(system: troupe.ActorSystem) -> None:
    service = await troupe.new_task_service()
    await service.return_dependency("n")
    await service.add_task("a")
    assert await service.add_dependency("a", "n") is False  # already returned: nothing to wait for
    await service.execute("a")
    assert await service.state("a") is S.COMPLETE
    assert await service.clear_dependency("n") is True
    assert await service.clear_dependency("n") is False
    await service.add_task("b")
    assert await service.add_dependency("b", "n") is True
    await service.execute("b")
    assert await service.state("b") is S.ACTIVE


async def test_returning_an_unfinished_task_forces_it_to_handled(system: troupe.ActorSystem) -> None:
    ran: list[str] = []
    service = await troupe.new_task_service()
    await service.add_task(
        "t", action_type="function", action=lambda *_: None, handler_type="function", handler=ran.append
    )
    await service.execute("t")
    assert await service.state("t") is S.BUSY
    await service.return_dependency("t")
    assert ran == []  # the handler is skipped
    assert await service.state("t") is S.COMPLETE  # served once forced (it had no dependencies)


async def test_a_dependency_may_be_given_as_a_task(system: troupe.ActorSystem) -> None:
    service = await troupe.new_task_service()
    a = await service.add_task("a")
    b = await service.add_task("b")
    await service.add_dependency(a, b)
    await service.execute(a)
    assert await service.state(a) is S.ACTIVE
    await service.execute(b)
    assert await service.state(a) is S.COMPLETE


async def test_event_advances_first_and_a_failing_subscriber_harms_nothing(
    system: troupe.ActorSystem,
) -> None:
    class Boom(troupe.Actor[troupe.BusEvent]):
        async def receive(self, msg: troupe.BusEvent) -> None:
            raise RuntimeError("subscriber failed")

    boom = await system.spawn(Boom, restart=troupe.Restart.TEMPORARY)
    await system.events.subscribe("demo.*", boom)
    service = await troupe.new_task_service()
    async with system.events.listen("demo.*") as events:
        await service.add_task(
            "t", action_type="event", action="demo.action", handler_type="event", handler="demo.done"
        )
        await service.execute("t")
        first, second = await events.receive(), await events.receive()
    assert (first.topic, first.data) == ("demo.action", troupe.TaskEvent("t", S.ACTIVE, handler=False))
    assert (second.topic, second.data) == ("demo.done", troupe.TaskEvent("t", S.HANDLED, handler=True))
    assert await service.state("t") is S.COMPLETE


async def test_clear_task(system: troupe.ActorSystem) -> None:
    service = await troupe.new_task_service()
    done = await service.add_task("done", auto_execute=True)
    assert done.state is S.COMPLETE
    await service.clear_task("done")
    with pytest.raises(TaskServiceError, match="no task 'done'"):
        await service.state("done")
    assert done.state is S.COMPLETE
    await service.add_task("done")  # the id may be reused
    waiting = await service.add_task("waiting")
    await service.add_dependency(waiting, "later")
    await service.execute(waiting)
    await service.clear_task(waiting)
    assert await service.state("waiting") is S.ACTIVE  # still running until it completes
    await service.return_dependency("later")
    assert waiting.state is S.DESTROYED
    with pytest.raises(TaskServiceError):
        await service.state("waiting")


async def test_a_second_execute_is_a_no_op(system: troupe.ActorSystem) -> None:
    service = await troupe.new_task_service()
    await service.add_task("t")
    assert await service.execute("t") is True
    assert await service.execute("t") is False


async def test_task_action_executes_its_target_without_waiting(system: troupe.ActorSystem) -> None:
    service = await troupe.new_task_service()
    await service.add_task("target")
    await service.add_dependency("target", "never")
    await service.add_task("t", action_type="task", action="target")
    await service.execute("t")
    assert await service.state("target") is S.ACTIVE
    assert await service.state("t") is S.COMPLETE
    await service.add_task("again", action_type="task", action="target")
    await service.execute("again")  # the target was already executed: stuck, as in the source
    assert await service.state("again") is S.BUSY
    [stuck] = [s for s in await service.stuck() if s.id == "again"]
    assert "was already executed" in stuck.reason


async def test_function_parameters_and_components(system: troupe.ActorSystem) -> None:
    class Widget:
        def __init__(self, *args: Any) -> None:
            self.args = args

    got: list[tuple[Any, ...]] = []
    service = await troupe.new_task_service(functions={"f": recorder(got)}, components={"W": Widget})
    await service.add_task("f", action_type="function", action="f", parameters=[1, "two"])
    await service.add_task("w", action_type="component", action="W", parameters=["x"])
    await service.execute("f")
    await service.execute("w")
    assert got == [(1, "two")]
    w = await service.get("w")
    assert isinstance(w.component, Widget)
    assert w.component.args == ("x",)
    assert w.parameters == ("x",)


async def test_a_raising_body_leaves_the_task_stuck_and_the_service_alive(system: troupe.ActorSystem) -> None:
    def bad(*_: object) -> bool:
        raise ValueError("no config")

    service = await troupe.new_task_service()
    await service.add_task("t", action_type="function", action=bad)
    await service.execute("t")
    [stuck] = await service.stuck()
    assert stuck.state is S.BUSY
    assert "ValueError: no config" in stuck.reason
    assert isinstance((await service.get("t")).error, ValueError)
    await service.add_task("next", auto_execute=True)
    assert await service.state("next") is S.COMPLETE
    assert system.statistics().failures == 0


class _Custom(BaseException):
    pass


@pytest.mark.parametrize("exc", [SystemExit(3), GeneratorExit(), _Custom("mine")])
async def test_issue_17_18_sys_exit_in_a_function_body_leaves_its_task_stuck(
    system: troupe.ActorSystem, exc: BaseException
) -> None:
    def bad(*_: object) -> bool:
        raise exc

    service = await troupe.new_task_service()
    await service.add_task("t", action_type="function", action=bad)
    await service.execute("t")
    [stuck] = await service.stuck()
    assert type(exc).__name__ in stuck.reason
    await service.add_task("next", auto_execute=True)
    assert await service.state("next") is S.COMPLETE  # the service and the system run on


async def test_calls_from_inside_a_body_are_applied_before_the_outer_call_returns(
    system: troupe.ActorSystem,
) -> None:
    async def body(task_id: str, service: TaskService) -> bool:
        await service.add_task("made-inside")
        await service.execute("made-inside")
        await service.return_dependency("inner")
        return await service.state("made-inside") is S.COMPLETE

    service = await troupe.new_task_service()
    await service.add_task("gated")
    await service.add_dependency("gated", "inner")
    await service.execute("gated")
    await service.add_task("t", action_type="function", action=body)
    await service.execute("t")
    assert [await service.state(x) for x in ("t", "made-inside", "gated")] == [S.COMPLETE] * 3


async def test_stuck_reports_waits_and_cycles(system: troupe.ActorSystem) -> None:
    service = await troupe.new_task_service()
    for name in ("a", "b", "lone", "idle"):
        await service.add_task(name)
    await service.add_dependency("a", "b")
    await service.add_dependency("b", "a")
    await service.add_dependency("lone", "idle")
    await service.add_dependency("lone", "outside")
    for name in ("a", "b", "lone"):
        await service.execute(name)
    reasons = {s.id: s for s in await service.stuck()}
    assert set(reasons) == {"a", "b", "lone"}
    assert reasons["a"].reason == "it is part of the dependency cycle a -> b -> a"
    assert reasons["lone"].waits_for == ("idle", "outside")
    assert "task 'idle' (never executed)" in reasons["lone"].reason
    assert "dependency 'outside' (not returned yet)" in reasons["lone"].reason


async def test_dependency_actors_signal_each_return_once(
    system: troupe.ActorSystem, probe: troupe.TestProbe
) -> None:
    service = await troupe.new_task_service()
    dep = await service.dependency("d")
    assert await dep.returned() is False
    await dep.subscribe(probe.ref)
    await service.return_dependency("d")
    await service.return_dependency("d")  # already returned: no second signal
    await probe.expect(troupe.DependencyReturned("d"))
    await service.clear_dependency("d")
    await service.return_dependency("d")
    await probe.expect(troupe.DependencyReturned("d"))
    await probe.expect_no_message()
    late = await service.dependency("d")
    assert await late.returned() is True


async def test_state_changes_are_published(system: troupe.ActorSystem) -> None:
    service = await troupe.new_task_service()
    async with system.events.listen("troupe.service.state") as events:
        await service.add_task("t", auto_execute=True)
        states = [(await events.receive()).data.state for _ in range(5)]
    assert states == [S.INITIALIZED, S.BUSY, S.ACTIVE, S.HANDLED, S.COMPLETE]


async def test_scripts_only_in_a_trusted_service(system: troupe.ActorSystem) -> None:
    untrusted = await troupe.new_task_service()
    with pytest.raises(TaskServiceError, match="not trusted"):
        await untrusted.add_task("s", action_type="script", action="def RunTaskScript(task): return True")
    trusted = await troupe.new_task_service(trusted=True)
    await trusted.add_task(
        "s", action_type="script", action="def RunTaskScript(task):\n    return task.id == 's'\n"
    )
    await trusted.execute("s")
    assert await trusted.state("s") is S.COMPLETE


async def test_xml_action_loads_the_document_and_an_xml_handler_advances(
    system: troupe.ActorSystem, tmp_path: Path
) -> None:
    doc = tmp_path / "config.xml"
    doc.write_text("<config><url>x</url></config>")
    service = await troupe.new_task_service()
    await service.add_task("t", action_type="xml", action=str(doc), handler_type="xml", handler=str(doc))
    await service.execute("t")
    t = await service.get("t")
    assert t.state is S.COMPLETE
    assert t.data.find("url").text == "x"


async def test_execute_task_loader_imports_and_runs_the_entry(
    system: troupe.ActorSystem, tmp_path: Path
) -> None:
    (tmp_path / "list.xml").write_text(
        '<tasks><task id="root"><task rid="leaf"/></task><task id="leaf"/></tasks>'
    )
    service = await troupe.new_task_service()
    await service.add_task("leaf-runner")
    loader = await service.execute_task_loader("MyTaskLoader", tmp_path / "list.xml", "root")
    assert await service.state("root") is S.ACTIVE  # waits for leaf, which is not auto-executed
    assert loader.state is S.HANDLED
    await service.execute("leaf")
    assert [await service.state(x) for x in ("leaf", "root", "MyTaskLoader")] == [S.COMPLETE] * 3


async def test_a_loader_of_a_broken_list_is_stuck_with_the_error(
    system: troupe.ActorSystem, tmp_path: Path
) -> None:
    (tmp_path / "bad.xml").write_text('<tasks><task id="root"><oops/></task></tasks>')
    service = await troupe.new_task_service()
    await service.execute_task_loader("loader", tmp_path / "bad.xml", "root")
    [stuck] = await service.stuck()
    assert stuck.id == "loader"
    assert "unknown element <oops>" in stuck.reason


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"action_type": "bogus"}, "unknown action type 'bogus'"),
        ({"handler_type": "eval"}, "unknown handler type 'eval'"),
        ({"action_type": "function", "action": "missing"}, "function 'missing' .* is not registered"),
        ({"action_type": "component", "action": "Nope"}, "component 'Nope' .* is not registered"),
        ({"action_type": "event", "action": "a.*"}, "not a topic name"),
        ({"action_type": "task"}, "needs a value"),
    ],
)
async def test_bad_add_task_arguments(system: troupe.ActorSystem, kwargs: dict[str, Any], match: str) -> None:
    service = await troupe.new_task_service()
    with pytest.raises(TaskServiceError, match=match):
        await service.add_task("t", **kwargs)
    with pytest.raises(TaskServiceError):
        await service.state("t")  # nothing was added


async def test_duplicate_ids_and_bad_keys(system: troupe.ActorSystem) -> None:
    service = await troupe.new_task_service()
    await service.add_task("t")
    with pytest.raises(TaskServiceError, match="already in the task service"):
        await service.add_task("t")
    with pytest.raises(TypeError, match="non-empty str"):
        await service.add_task("")
    with pytest.raises(TypeError, match="ServiceTask or its id"):
        await service.execute(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="mapping of names to callables"):
        await troupe.new_task_service(functions=[print])  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(st.sampled_from("abcdef"), st.lists(st.sampled_from("abcdef"), max_size=3), min_size=1)
)
async def test_stuck_names_a_real_cycle_for_exactly_the_tasks_on_one(graph: dict[str, list[str]]) -> None:
    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), list(graph.get(start, ()))
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen and node in graph:
                seen.add(node)
                todo.extend(graph[node])
        return False

    async with troupe.open_system():
        service = await troupe.new_task_service()
        for task_id in graph:
            await service.add_task(task_id)
        for task_id, waits in graph.items():
            for name in waits:
                await service.add_dependency(task_id, name)
        for task_id in graph:
            await service.execute(task_id)
        reported = {s.id: s.reason for s in await service.stuck()}
    prefix = "it is part of the dependency cycle "
    for task_id in graph:
        on_cycle = reaches(task_id, task_id)
        reason = reported.get(task_id, "")
        assert reason.startswith(prefix) == on_cycle, (task_id, reason)
        if on_cycle:
            path = reason.removeprefix(prefix).split(" -> ")
            assert path[0] == path[-1] == task_id
            assert all(b in graph[a] for a, b in itertools.pairwise(path))


# -- issue 17, item 13: the service never crashes because of a task list -----------------------


async def _answers(service: TaskService) -> None:
    """The service still takes calls: add, execute and read a fresh task."""
    name = f"alive-{len(await service.stuck())}-{id(service)}"
    await service.add_task(name)
    await service.execute(name)
    assert await service.state(name) is S.COMPLETE


async def test_issue_17_13_import_task_of_a_hostile_document_leaves_the_loader_stuck(
    system: troupe.ActorSystem, tmp_path: Path
) -> None:
    path = tmp_path / "deep.xml"
    path.write_text("<tasks>" + '<task id="t">' * 3000 + "</task>" * 3000 + "</tasks>")
    service = await troupe.new_task_service()
    loader = await service.execute_task_loader("loader", path, "t")
    [stuck] = await service.stuck()
    assert stuck.id == "loader"
    assert "nested more than 256 levels" in stuck.reason
    assert isinstance(loader.error, troupe.TaskListError)
    assert (loader.error.file, loader.error.line) == (str(path), 1)
    await _answers(service)


class _Exploding(types.ModuleType):
    """A registry module whose lookups raise: an unexpected error inside the service."""

    def __getattr__(self, name: str) -> Any:
        msg = f"lookup of {name} exploded"
        raise RuntimeError(msg)


async def test_issue_17_13_an_unexpected_error_in_a_call_is_a_task_service_error(
    system: troupe.ActorSystem,
) -> None:
    service = await troupe.new_task_service(functions=_Exploding("registry"))
    await service.add_task("before")
    doc = '<tasks><task id="a"/><task id="b" action-type="function" action="f"/></tasks>'
    with pytest.raises(TaskServiceError, match="RuntimeError: lookup of f exploded") as caught:
        await service.load(doc, format="xml")
    assert isinstance(caught.value.__cause__, RuntimeError)
    with pytest.raises(TaskServiceError, match="exploded"):
        await service.add_task("c", action_type="function", action="f")
    with pytest.raises(TaskServiceError, match="no task 'a'"):
        await service.state("a")  # the failed load added nothing
    assert await service.state("before") is S.INITIALIZED
    await _answers(service)


async def test_issue_17_13_an_unexpected_error_in_an_import_leaves_the_loader_stuck(
    system: troupe.ActorSystem, tmp_path: Path
) -> None:
    path = tmp_path / "list.xml"
    path.write_text('<tasks><task id="a" action-type="function" action="f"/></tasks>')
    service = await troupe.new_task_service(functions=_Exploding("registry"))
    loader = await service.execute_task_loader("loader", path, "a")
    [stuck] = await service.stuck()
    assert stuck.id == "loader"
    assert "RuntimeError: lookup of f exploded" in stuck.reason
    assert isinstance(loader.error, RuntimeError)
    await _answers(service)


async def test_issue_17_13_an_unexpected_error_serving_a_task_leaves_it_stuck(
    system: troupe.ActorSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fault injected where no public input reaches (serving a task, taking a
    # body's report): the service's last line of defence must hold there too.
    from troupe.tasks.service._actor import ServiceActor  # noqa: PLC0415 - the fault's target

    real_complete, real_ran = ServiceActor._complete, ServiceActor._ran

    def complete(self: ServiceActor, t: Any) -> None:
        if t.id == "doomed":
            msg = "serving exploded"
            raise RuntimeError(msg)
        real_complete(self, t)

    def ran(self: ServiceActor, msg: Any) -> None:
        real_ran(self, msg)
        if msg.task == "reported":
            msg = "report exploded"
            raise RuntimeError(msg)

    monkeypatch.setattr(ServiceActor, "_complete", complete)
    monkeypatch.setattr(ServiceActor, "_ran", ran)
    service = await troupe.new_task_service()
    await service.add_task("doomed")
    await service.add_task("fine")
    await service.add_dependency("fine", "doomed")
    await service.execute("doomed")
    [stuck] = await service.stuck()
    assert (stuck.id, stuck.state) == ("doomed", S.HANDLED)
    assert "RuntimeError: serving exploded" in stuck.reason
    await service.add_task("reported", action_type="function", action=lambda *_: True)
    await service.execute("reported")
    assert await service.state("reported") is S.COMPLETE  # the report was applied before the fault
    await _answers(service)


async def test_issue_17_13_a_load_that_fails_while_creating_tasks_adds_none(
    system: troupe.ActorSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    from troupe.tasks import _root  # noqa: PLC0415 - the fault's target
    from troupe.tasks.service import _actor  # noqa: PLC0415

    real = _root.spawn_batched
    calls = 0

    async def spawn(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            msg = "spawn exploded"
            raise RuntimeError(msg)
        return await real(*args, **kwargs)

    service = await troupe.new_task_service()
    monkeypatch.setattr(_actor, "spawn_batched", spawn)
    doc = '<tasks><task id="a"/><task id="b"/><task id="c"/></tasks>'
    with pytest.raises(TaskServiceError, match="spawn exploded"):
        await service.load(doc, format="xml")
    for task_id in "abc":
        with pytest.raises(TaskServiceError, match="no task"):
            await service.state(task_id)
    assert await service.load(doc, format="xml") == ("a", "b", "c")  # the names are free again
    await _answers(service)


async def test_issue_17_13_hostile_loads_leave_the_service_answering(system: troupe.ActorSystem) -> None:
    service = await troupe.new_task_service()
    hostile = [
        ("<tasks>" + '<task id="t">' * 3000 + "</task>" * 3000 + "</tasks>", "xml"),
        ("<task></task>", "xml"),
        ('{"tasks": ' + "[" * 50_000 + "]" * 50_000 + "}", "json"),
        ("x = " + "{a=" * 3000 + "1" + "}" * 3000, "toml"),
        ('{"tasks": [{"id": "a", "params": [' + "9" * 5000 + "]}]}", "json"),
        ('{"tasks": [{"id": "\ud800"}]}', "json"),
    ]
    for doc, fmt in hostile:
        with pytest.raises(troupe.TaskListError):
            await service.load(doc, format=fmt)
    assert await service.stuck() == []
    await _answers(service)
