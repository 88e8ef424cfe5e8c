"""The public surface: names, modules, finality, docstrings."""

from __future__ import annotations

import enum
import inspect
import types

import troupe
import troupe.actors
import troupe.cluster
import troupe.jobs
import troupe.protocol
import troupe.tasks
import troupe.tasks.service
import troupe.testing

EXPECTED = [
    "Actor",
    "ActorContext",
    "ActorCrashed",
    "ActorFailed",
    "ActorRef",
    "ActorStatistics",
    "ActorStopped",
    "ActorSystem",
    "AllOf",
    "AnyOf",
    "AskTimeout",
    "Backoff",
    "BusEvent",
    "ChannelClosed",
    "ChannelEvent",
    "Cluster",
    "ClusterError",
    "ClusterHandle",
    "ClusterMember",
    "ClusterStatistics",
    "CommandResult",
    "DaskExecutor",
    "DeadLetter",
    "DeadLetterReason",
    "DeadLetters",
    "DecodeError",
    "DependencyHandle",
    "DependencyReturned",
    "EventBus",
    "Executor",
    "ExploreError",
    "ExploreSummary",
    "ForceStop",
    "FromThread",
    "InlineExecutor",
    "Interruptible",
    "JobObserver",
    "JobRecord",
    "JobStatus",
    "JobStore",
    "JobStoreError",
    "Jobs",
    "LimitReached",
    "Mailbox",
    "MailboxFull",
    "MemoryJobStore",
    "MessageTypeError",
    "Milestone",
    "MilestoneAchieved",
    "NameTaken",
    "NamedError",
    "NatsServer",
    "NotWaitable",
    "OneForAll",
    "OneForOne",
    "Overflow",
    "ProcessExecutor",
    "Ref",
    "RemoteError",
    "RemoteRef",
    "RepeatTimer",
    "Repeatable",
    "Reply",
    "RestForOne",
    "Restart",
    "RunOn",
    "SQLiteJobStore",
    "ScheduleFailure",
    "ScheduleHang",
    "ServiceTask",
    "SpawnError",
    "StuckTask",
    "SupervisorStrategy",
    "SystemStatistics",
    "TaskCancelled",
    "TaskChannel",
    "TaskContext",
    "TaskCounter",
    "TaskEvent",
    "TaskFailed",
    "TaskFinished",
    "TaskHandle",
    "TaskKind",
    "TaskListError",
    "TaskManager",
    "TaskManagerError",
    "TaskService",
    "TaskServiceError",
    "TaskState",
    "TaskStateChanged",
    "TaskStateError",
    "Terminated",
    "TestProbe",
    "ThreadExecutor",
    "Timers",
    "TroupeError",
    "UnreadableMessage",
    "all_of",
    "any_of",
    "codec",
    "cull_idle_workers",
    "current_actor",
    "current_system",
    "current_task",
    "delay_task",
    "explore",
    "immediate_task",
    "inject_failure",
    "make_task_async",
    "message",
    "new_counter",
    "new_milestone",
    "new_task_service",
    "on_cancellation",
    "on_cancellation_return",
    "open_system",
    "open_task_manager",
    "report_progress",
    "run_async_task",
    "run_command",
    "run_task",
    "running_tasks",
    "schedule_async_task",
    "schedule_task",
    "submit_job",
    "use_executor",
    "wait_all",
    "wait_any",
    "wire_name",
]


def public(module: types.ModuleType) -> dict[str, object]:
    return {
        name: obj
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and not (isinstance(obj, types.ModuleType) and obj.__name__ != "troupe.protocol.codec")
    }


def test_the_public_names() -> None:
    assert sorted(public(troupe)) == EXPECTED


def test_public_objects_report_a_public_module() -> None:
    for name, obj in public(troupe).items():
        if isinstance(obj, type) or inspect.isfunction(obj):
            assert obj.__module__ == "troupe", name
            assert obj.__qualname__ == name


def test_every_name_of_a_subpackage_is_also_top_level() -> None:
    for sub in (
        troupe.actors,
        troupe.protocol,
        troupe.tasks,
        troupe.tasks.service,
        troupe.jobs,
        troupe.cluster,
        troupe.testing,
    ):
        for name, obj in public(sub).items():
            if name == "codec" or (sub in (troupe.actors, troupe.jobs) and name == "open_system"):
                continue  # troupe.open_system wraps the runtime's to add jobs= and cluster=
            if sub is troupe.cluster and name == "run_server":
                continue  # a development tool, named for its package: troupe.cluster.run_server
            if sub is troupe.testing and name == "random":
                continue  # troupe.random would read as the library's own randomness: troupe.testing.random
            assert getattr(troupe, name) is obj, f"{sub.__name__}.{name}"


def test_concrete_public_classes_are_final() -> None:
    for name, obj in public(troupe).items():
        if not isinstance(obj, type) or issubclass(obj, BaseException) or obj is troupe.Actor:
            continue
        if issubclass(obj, enum.Enum) or getattr(obj, "_is_protocol", False) or inspect.isabstract(obj):
            continue  # enums cannot be subclassed; protocols and ABCs are meant to be implemented
        assert getattr(obj, "__final__", False), f"{name} should be @final"


def test_every_public_name_has_a_docstring() -> None:
    for name, obj in public(troupe).items():
        if isinstance(obj, type) or callable(obj) or isinstance(obj, types.ModuleType):
            assert inspect.getdoc(obj), name
        if isinstance(obj, type) and not issubclass(obj, BaseException):
            for attr, member in vars(obj).items():
                if attr.startswith("_") or not (inspect.isfunction(member) or isinstance(member, property)):
                    continue
                assert inspect.getdoc(member), f"{name}.{attr}"


def test_errors_form_one_tree_and_inherit_the_stdlib_type_users_catch() -> None:
    errors = [
        obj for obj in public(troupe).values() if isinstance(obj, type) and issubclass(obj, BaseException)
    ]
    assert all(issubclass(e, troupe.TroupeError) for e in errors)
    assert issubclass(troupe.AskTimeout, TimeoutError)
    assert issubclass(troupe.MessageTypeError, TypeError)
    assert issubclass(troupe.DecodeError, ValueError)
    assert issubclass(troupe.NameTaken, ValueError)


def test_py_typed_is_shipped() -> None:
    from pathlib import Path  # noqa: PLC0415

    assert (Path(troupe.__file__).parent / "py.typed").exists()
