"""GoAsync's task manager: every rule in DESIGN.md, with blocking fakes."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import trio
import trio.testing

import troupe
from troupe import TaskKind

Log = list[tuple[str, str]]


class Fake:
    """A managed task that logs each call; ``mode`` says how execute ends."""

    def __init__(
        self,
        name: str,
        log: Log,
        *,
        mode: str = "forever",
        init_error: bool = False,
        cleanup_error: bool = False,
        init_gate: trio.Event | None = None,
    ) -> None:
        self.name = name
        self.log = log
        self.mode = mode
        self.init_error = init_error
        self.cleanup_error = cleanup_error
        self.init_gate = init_gate

    async def initialize(self) -> None:
        self.log.append(("initialize", self.name))
        if self.init_gate is not None:
            await self.init_gate.wait()
        self.log.append(("initialized", self.name))
        if self.init_error:
            raise ValueError(f"{self.name} cannot start")

    async def execute(self) -> None:
        self.log.append(("execute", self.name))
        if self.mode == "return":
            return
        if self.mode == "fail":
            await trio.sleep(1)
            raise RuntimeError(f"{self.name} broke")
        if self.mode == "fail_on_cancel":
            try:
                await trio.sleep_forever()
            finally:
                raise OSError(f"{self.name} failed while stopping")
        if self.mode == "slow_stop":
            try:
                await trio.sleep_forever()
            finally:
                with trio.CancelScope(shield=True):
                    await trio.sleep(5)
                self.log.append(("stopped", self.name))
        await trio.sleep_forever()

    async def cleanup(self) -> None:
        self.log.append(("cleanup", self.name))
        await trio.sleep(0.5)  # cleanup runs shielded: this sleep works after cancellation
        if self.cleanup_error:
            raise OSError(f"{self.name} cleanup failed")


def stages(log: Log, stage: str) -> list[str]:
    return [name for s, name in log if s == stage]


async def test_initialize_is_serial_and_in_add_order(system: troupe.ActorSystem) -> None:
    log: Log = []
    gates = [trio.Event() for _ in range(3)]
    async with troupe.open_task_manager() as manager:
        for i, name in enumerate("abc"):
            manager.add(name, Fake(name, log, init_gate=gates[i]))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(manager.run)
            for i in range(3):
                await trio.testing.wait_all_tasks_blocked()
                # the next one has not started before this one returned
                assert stages(log, "initialize") == list("abc"[: i + 1])
                assert stages(log, "execute") == []
                gates[i].set()
            await trio.testing.wait_all_tasks_blocked()
            assert sorted(stages(log, "execute")) == ["a", "b", "c"]
            manager.stop()
    assert stages(log, "cleanup") == ["c", "b", "a"]


async def test_initialize_failure_cleans_up_the_failed_task_and_those_before(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log: Log = []
    async with troupe.open_task_manager() as manager:
        manager.add("a", Fake("a", log))
        manager.add("b", Fake("b", log, init_error=True, cleanup_error=True))
        manager.add("c", Fake("c", log))
        with pytest.raises(troupe.TaskManagerError) as info:
            await manager.run()
        assert [(e.name, e.stage) for e in info.value.errors] == [("b", "initialize"), ("b", "cleanup")]
        assert stages(log, "initialize") == ["a", "b"]  # c's never called
        assert stages(log, "execute") == []
        assert stages(log, "cleanup") == ["b", "a"]
        # after an initialize failure the manager is shut down (the original hangs)
        with pytest.raises(troupe.TaskManagerError, match=r"already shutdown\. Will not run again"):
            await manager.run()
        with pytest.raises(troupe.TaskManagerError, match=r"already shutdown\. Will not manage task"):
            await manager.add_execute_task("late", Fake("late", log))


async def test_strict_early_return_is_an_unexpected_shutdown_and_stops_all(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log: Log = []
    async with troupe.open_task_manager() as manager:
        manager.add("db", Fake("db", log))
        manager.add("quitter", Fake("quitter", log, mode="return"))
        with pytest.raises(troupe.TaskManagerError, match="unexpected shutdown for task process") as info:
            await manager.run()
    [error] = info.value.errors
    assert (error.name, error.stage) == ("quitter", "execute")
    assert stages(log, "cleanup") == ["quitter", "db"]


async def test_error_kind_may_return_quietly(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log: Log = []
    async with troupe.open_task_manager() as manager:
        manager.add("db", Fake("db", log))
        manager.add("oneshot", Fake("oneshot", log, mode="return"), kind=TaskKind.ERROR)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(manager.run)
            await trio.sleep(10)
            assert stages(log, "cleanup") == []  # still running
            manager.stop()
    assert manager.errors == []
    assert stages(log, "cleanup") == ["oneshot", "db"]


async def test_error_kind_failing_stops_all(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log: Log = []
    async with troupe.open_task_manager() as manager:
        manager.add("db", Fake("db", log))
        manager.add("worker", Fake("worker", log, mode="fail"), kind=TaskKind.ERROR)
        with pytest.raises(troupe.TaskManagerError, match="worker broke"):
            await manager.run()


async def test_stop_group_stops_gracefully_when_its_last_task_returned(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log: Log = []
    gate = trio.Event()

    class Waits(Fake):
        async def execute(self) -> None:
            self.log.append(("execute", self.name))
            await gate.wait()

    async with troupe.open_task_manager() as manager:
        manager.add("server", Fake("server", log))
        manager.add("job1", Fake("job1", log, mode="return"), kind=TaskKind.STOP_GROUP)
        manager.add("job2", Waits("job2", log), kind=TaskKind.STOP_GROUP)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(manager.run)
            await trio.sleep(5)
            assert stages(log, "cleanup") == []  # job2 is still running
            gate.set()
        assert manager.errors == []
    assert stages(log, "cleanup") == ["job2", "job1", "server"]


async def test_errors_after_cancellation_are_still_reported_in_order(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log: Log = []
    async with troupe.open_task_manager() as manager:
        manager.add("a", Fake("a", log, cleanup_error=True))
        manager.add("b", Fake("b", log, mode="fail_on_cancel"))
        manager.add("c", Fake("c", log, mode="fail"))
        manager.add("d", Fake("d", log, cleanup_error=True))
        with pytest.raises(troupe.TaskManagerError) as info:
            await manager.run()
    # execute errors as they came, then cleanup errors in reverse add order
    assert [(e.name, e.stage) for e in info.value.errors] == [
        ("c", "execute"),
        ("b", "execute"),
        ("d", "cleanup"),
        ("a", "cleanup"),
    ]
    assert isinstance(info.value.errors[1].error, OSError)


async def test_execute_tasks_added_while_running_are_awaited_before_cleanup(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log: Log = []
    async with troupe.open_task_manager() as manager:
        manager.add("db", Fake("db", log))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(manager.run)
            await trio.sleep(1)
            await manager.add_execute_task("late", Fake("late", log, mode="slow_stop"))
            assert ("execute", "late") in log  # started when the add returned
            manager.stop()
    assert log.index(("stopped", "late")) < log.index(("cleanup", "db"))
    assert stages(log, "cleanup") == ["db"]  # execute-only tasks have no cleanup


async def test_execute_tasks_added_before_run_are_queued(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log: Log = []
    async with troupe.open_task_manager() as manager:
        await manager.add_execute_task("early", Fake("early", log, mode="return"))
        assert log == []
        manager.add("db", Fake("db", log))
        with pytest.raises(troupe.TaskManagerError, match="early"):
            await manager.run()  # STRICT by default: returning early is unexpected
    assert ("execute", "early") in log


async def test_add_execute_task_during_initialize_waits_and_starts_after(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log: Log = []
    gate = trio.Event()
    async with troupe.open_task_manager() as manager:
        manager.add("db", Fake("db", log, init_gate=gate))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(manager.run)
            await trio.testing.wait_all_tasks_blocked()

            async def add_late() -> None:
                await manager.add_execute_task("late", Fake("late", log), kind=TaskKind.ERROR)
                log.append(("added", "late"))

            nursery.start_soon(add_late)
            await trio.sleep(1)
            assert ("added", "late") not in log  # queued behind initialize
            gate.set()
            await trio.sleep(1)
            assert log.index(("initialized", "db")) < log.index(("execute", "late"))
            manager.stop()


async def test_adds_racing_a_shutdown_never_deadlock(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log: Log = []
    outcomes: list[str] = []
    async with troupe.open_task_manager() as manager:
        manager.add("db", Fake("db", log, mode="slow_stop"))

        async def adder(i: int) -> None:
            await trio.sleep(i * 0.3)
            try:
                await manager.add_execute_task(f"x{i}", Fake(f"x{i}", log), kind=TaskKind.ERROR)
                outcomes.append("added")
            except troupe.TaskManagerError as exc:
                outcomes.append(
                    "refused" if "already shutdown. Will not manage task" in str(exc) else str(exc)
                )

        async with trio.open_nursery() as nursery:
            nursery.start_soon(manager.run)
            await trio.sleep(0.1)
            for i in range(40):
                nursery.start_soon(adder, i)
            await trio.sleep(3)
            manager.stop()  # db takes 5 s to stop: adds meanwhile wait, then are refused
    assert len(outcomes) == 40
    assert set(outcomes) == {"added", "refused"}
    assert "added" in outcomes
    assert "refused" in outcomes


async def test_without_tasks_run_waits_until_cancelled(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    async with troupe.open_task_manager() as manager:
        with trio.move_on_after(100) as scope:
            await manager.run()
        assert scope.cancelled_caught
        assert trio.current_time() == pytest.approx(100)


async def test_entered_cancelled_still_initializes_and_cleans_up(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log: Log = []
    with trio.CancelScope() as scope:
        scope.cancel()
        async with troupe.open_task_manager() as manager:
            manager.add("a", Fake("a", log))
            manager.add("b", Fake("b", log))
            await manager.run()
    assert scope.cancelled_caught  # the cancellation was re-raised
    assert stages(log, "initialize") == ["a", "b"]
    assert stages(log, "execute") == []
    assert stages(log, "cleanup") == ["b", "a"]


async def test_cancelled_from_outside_reraises_with_errors_recorded(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log: Log = []
    async with troupe.open_task_manager() as manager:
        manager.add("a", Fake("a", log, mode="fail_on_cancel"))
        with trio.move_on_after(2) as scope:
            await manager.run()
        assert scope.cancelled_caught
    assert [(e.name, e.stage) for e in manager.errors] == [("a", "execute")]
    assert stages(log, "cleanup") == ["a"]


async def test_cleanup_timeout_bounds_each_cleanup(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log: Log = []

    class Stuck(Fake):
        async def cleanup(self) -> None:
            await trio.sleep_forever()

    async with troupe.open_task_manager(cleanup_timeout=3) as manager:
        manager.add("a", Fake("a", log))
        manager.add("stuck", Stuck("stuck", log))
        manager.add("c", Fake("c", log, mode="fail"))
        with pytest.raises(troupe.TaskManagerError) as info:
            await manager.run()
    assert [(e.name, e.stage, type(e.error)) for e in info.value.errors] == [
        ("c", "execute", RuntimeError),
        ("stuck", "cleanup", TimeoutError),
    ]
    assert stages(log, "cleanup") == ["c", "a"]  # a still cleaned up after the stuck one
    with pytest.raises(ValueError, match="cleanup_timeout"):
        async with troupe.open_task_manager(cleanup_timeout=0):
            pass


async def test_leaving_the_block_stops_a_running_manager(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log: Log = []
    async with trio.open_nursery() as nursery, troupe.open_task_manager() as manager:
        manager.add("a", Fake("a", log))
        nursery.start_soon(manager.run)
        await trio.sleep(1)
    assert stages(log, "cleanup") == ["a"]
    with pytest.raises(troupe.TaskManagerError, match=r"already shutdown\. Will not manage task"):
        manager.add("b", Fake("b", log))


async def test_sync_methods_run_in_threads(system: troupe.ActorSystem) -> None:
    threads: list[str] = []

    class SyncTask:
        def initialize(self) -> None:
            threads.append(threading.current_thread().name)

        def execute(self) -> None:
            threads.append(threading.current_thread().name)

        def cleanup(self) -> None:
            threads.append(threading.current_thread().name)

    async with troupe.open_task_manager() as manager:
        manager.add("sync", SyncTask(), kind=TaskKind.ERROR)
        manager.add("ender", Fake("ender", [], mode="return"), kind=TaskKind.STOP_GROUP)
        await manager.run()
    assert len(threads) == 3
    assert threading.main_thread().name not in threads


async def test_the_manager_and_its_tasks_are_actors_in_the_tree(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log: Log = []
    async with system.events.listen("troupe.spawned") as spawned:
        async with troupe.open_task_manager(name="services") as manager:
            manager.add("db", Fake("db", log))
            manager.add("web/api", Fake("web/api", log))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(manager.run)
                await trio.sleep(1)
                assert manager.ref.path == "/system/tasks/services"
                assert system.lookup("/system/tasks/services/db-1") is not None
                assert system.lookup("/system/tasks/services/web_api-2") is not None
                manager.stop()
        paths = []
        while True:
            try:
                paths.append((spawned.receive_nowait()).data)
            except trio.WouldBlock:
                break
    assert "/system/tasks/services" in paths
    assert "/system/tasks/services/db-1" in paths


@pytest.mark.parametrize(
    ("task", "error", "match"),
    [
        (None, TypeError, "task cannot be None"),
        (object(), TypeError, "initialize\\(\\), execute\\(\\), cleanup\\(\\)"),
    ],
)
async def test_add_rejects_what_is_not_a_task(
    system: troupe.ActorSystem, task: Any, error: type[Exception], match: str
) -> None:
    async with troupe.open_task_manager() as manager:
        with pytest.raises(error, match=match):
            manager.add("x", task)
        with pytest.raises(error):
            await manager.add_execute_task("x", task)


async def test_unknown_kinds_are_refused(system: troupe.ActorSystem) -> None:
    async with troupe.open_task_manager() as manager:
        with pytest.raises(ValueError, match="kind must be one of"):
            manager.add("x", Fake("x", []), kind="strict")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"TaskKind\.STRICT \| TaskKind\.ERROR\]"):
            await manager.add_execute_task("x", Fake("x", []), kind=TaskKind.STOP_GROUP)


async def test_add_while_running_and_run_twice_are_refused(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    async with troupe.open_task_manager() as manager:
        manager.add("a", Fake("a", []))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(manager.run)
            await trio.sleep(1)
            with pytest.raises(
                troupe.TaskManagerError, match=r"^task Manager is already running\. Will not manage"
            ):
                manager.add("b", Fake("b", []))
            with pytest.raises(
                troupe.TaskManagerError, match=r"^task manager is already running\. Will not run"
            ):
                await manager.run()
            manager.stop()


# -- issue 17 ---------------------------------------------------------------


class _Exits:
    """A managed task whose ``stage`` raises ``SystemExit`` (sync or async)."""

    def __init__(self, stage: str, *, sync: bool) -> None:
        self.stage = stage
        self.sync = sync

    def _maybe_exit(self, stage: str) -> None:
        if stage == self.stage:
            raise SystemExit(f"{stage} exits")

    def __getattr__(self, name: str) -> Any:
        if name not in {"initialize", "execute", "cleanup"}:
            raise AttributeError(name)

        def sync_method() -> None:
            self._maybe_exit(name)

        async def async_method() -> None:
            await trio.lowlevel.checkpoint()
            self._maybe_exit(name)

        return sync_method if self.sync else async_method


@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
@pytest.mark.parametrize("stage", ["initialize", "execute", "cleanup"])
async def test_issue_17_18_system_exit_in_a_managed_method_is_that_tasks_error(
    stage: str, sync: bool
) -> None:
    async with troupe.open_system() as system:
        async with troupe.open_task_manager() as manager:
            manager.add("exits", _Exits(stage, sync=sync), kind=TaskKind.ERROR)
            if stage != "execute":  # a stop group that ends: the manager stops and cleans up
                manager.add("ender", Fake("ender", [], mode="return"), kind=TaskKind.STOP_GROUP)
            with trio.fail_after(5), pytest.raises(troupe.TaskManagerError) as info:
                await manager.run()
        [error] = info.value.errors
        assert (error.name, error.stage, type(error.error)) == ("exits", stage, SystemExit)
        assert system.statistics().failures == 0


async def test_issue_17_18_system_exit_ends_a_repeatable_with_that_error(system: troupe.ActorSystem) -> None:
    class Exits:
        async def execute(self) -> None:
            await trio.lowlevel.checkpoint()
            raise SystemExit(2)

    async with troupe.open_task_manager() as manager:
        manager.add("loop", troupe.Repeatable(Exits()))
        with trio.fail_after(5), pytest.raises(troupe.TaskManagerError) as info:
            await manager.run()
    [error] = info.value.errors
    assert (error.name, error.stage, type(error.error)) == ("loop", "execute", SystemExit)


async def test_issue_17_19_cleanup_timeout_bounds_a_sync_cleanup(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    release = threading.Event()
    log: Log = []

    class Blocking(Fake):
        def cleanup(self) -> None:  # type: ignore[override] # a sync cleanup
            release.wait(60)

    try:
        with trio.fail_after(30):
            async with troupe.open_task_manager(cleanup_timeout=2) as manager:
                manager.add("a", Fake("a", log))
                manager.add("blocking", Blocking("blocking", log))
                manager.add("c", Fake("c", log, mode="fail"))
                with pytest.raises(troupe.TaskManagerError) as info:
                    await manager.run()
    finally:
        release.set()
    assert [(e.name, e.stage, type(e.error)) for e in info.value.errors] == [
        ("c", "execute", RuntimeError),
        ("blocking", "cleanup", TimeoutError),
    ]
    assert "abandoned" in str(info.value.errors[1].error)
    assert stages(log, "cleanup") == ["c", "a"]


async def test_issue_17_19_a_sync_execute_is_abandoned_when_the_manager_stops(
    system: troupe.ActorSystem,
) -> None:
    release = threading.Event()
    started = threading.Event()
    log: Log = []

    class Blocking(Fake):
        def execute(self) -> None:  # type: ignore[override] # a sync execute that never sees a stop
            started.set()
            release.wait(60)

    try:
        with trio.fail_after(5):
            async with troupe.open_task_manager() as manager:
                manager.add("blocking", Blocking("blocking", log))
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(manager.run)
                    await trio.to_thread.run_sync(started.wait, 5)
                    manager.stop()
    finally:
        release.set()
    assert manager.errors == []
    assert stages(log, "cleanup") == ["blocking"]


async def test_issue_17_7_run_ends_when_the_system_closes_under_it() -> None:
    outcome: list[object] = []

    async def run(manager: troupe.TaskManager) -> None:
        try:
            await manager.run()
        except troupe.TaskManagerError as exc:
            outcome.append(exc)
        else:
            outcome.append("returned")

    with trio.fail_after(5):
        async with trio.open_nursery() as outside:
            async with troupe.open_system():
                entered = trio.Event()
                left = trio.Event()

                async def hold_a_manager() -> None:
                    async with troupe.open_task_manager() as manager:
                        manager.add("a", Fake("a", []))
                        outside.start_soon(run, manager)
                        entered.set()
                        await left.wait()

                outside.start_soon(hold_a_manager)
                await entered.wait()
                await trio.testing.wait_all_tasks_blocked()
            left.set()
    assert len(outcome) == 1
