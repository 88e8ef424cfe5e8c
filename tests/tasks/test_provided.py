"""GoAsync's provided tasks: Repeatable, RepeatTimer, ForceStop, Interruptible."""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

import pytest
import trio
import trio.testing

import troupe
from troupe import TaskKind


class Counter:
    """An execute-only task that counts its runs (and may fail or take time)."""

    def __init__(self, *, fail: bool = False, takes: float = 0.0) -> None:
        self.runs: list[float] = []
        self.fail = fail
        self.takes = takes

    async def execute(self) -> None:
        self.runs.append(trio.current_time())
        if self.takes:
            await trio.sleep(self.takes)
        if self.fail:
            raise RuntimeError("flaky")


async def run_for(seconds: float, name: str, task: object) -> troupe.TaskManager:
    async with troupe.open_task_manager() as manager:
        manager.add(name, task)
        with trio.move_on_after(seconds):
            await manager.run()
    return manager


async def test_repeatable_runs_again_and_ignores_errors(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    inner = Counter(fail=True, takes=1)
    with caplog.at_level(logging.WARNING, logger="troupe.tasks.manager"):
        manager = await run_for(10.5, "poller", troupe.Repeatable(inner))
    assert len(inner.runs) == 11
    assert manager.errors == []
    assert "flaky" in caplog.text  # ignored, but not silently


async def test_repeatable_of_an_instant_task_does_not_hang(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    inner = Counter()
    with trio.move_on_after(1):
        async with troupe.open_task_manager() as manager:
            manager.add("spin", troupe.Repeatable(inner))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(manager.run)
                while len(inner.runs) < 100:
                    await trio.lowlevel.checkpoint()
                manager.stop()
    assert len(inner.runs) >= 100


async def test_repeat_timer_runs_at_once_then_every_interval(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    inner = Counter(fail=True)
    manager = await run_for(10.5, "tick", troupe.RepeatTimer(2.0, inner))
    assert inner.runs == pytest.approx([0, 2, 4, 6, 8, 10])
    assert manager.errors == []


async def test_repeat_timer_drops_ticks_missed_during_a_slow_run(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    inner = Counter(takes=5)
    await run_for(16, "slow", troupe.RepeatTimer(2.0, inner))
    # runs at 0 (ends 5: ticks 2 and 4 passed, one kept), 5 (ends 10), 10 (ends 15), 15
    assert inner.runs == pytest.approx([0, 5, 10, 15])


async def test_provided_tasks_pass_initialize_and_cleanup_through(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    calls: list[str] = []

    class Full:
        async def initialize(self) -> None:
            calls.append("initialize")

        async def execute(self) -> None:
            await trio.sleep_forever()

        async def cleanup(self) -> None:
            calls.append("cleanup")

    await run_for(1, "full", troupe.RepeatTimer(1.0, Full()))
    assert calls == ["initialize", "cleanup"]


async def test_bad_provided_task_arguments() -> None:
    with pytest.raises(TypeError, match="task cannot be None"):
        troupe.Repeatable(None)
    with pytest.raises(ValueError, match="interval"):
        troupe.RepeatTimer(0, Counter())
    with pytest.raises(ValueError, match="grace"):
        troupe.ForceStop(-1, Counter())
    with pytest.raises(ValueError, match="at least one signal"):
        troupe.Interruptible([], Counter())


async def test_force_stop_reports_a_sub_task_that_ignores_cancellation(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    class Stubborn:
        async def execute(self) -> None:
            with trio.CancelScope(shield=True):
                await trio.sleep(100)

    async with troupe.open_task_manager() as manager:
        manager.add("ok", troupe.RepeatTimer(1.0, Counter()))
        manager.add("legacy", troupe.ForceStop(5.0, Stubborn()))
        with trio.move_on_after(10):
            await manager.run()
        assert trio.current_time() == pytest.approx(15)  # 10 s, then 5 s of grace, then on
    [error] = manager.errors
    assert (error.name, error.stage) == ("legacy", "execute")
    assert str(error.error) == "failed to stop sub task in 5s"


async def test_force_stop_lets_a_cooperative_sub_task_stop(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    manager = await run_for(3, "nice", troupe.ForceStop(5.0, Counter(takes=1000)))
    assert manager.errors == []
    assert trio.current_time() == pytest.approx(3)


async def test_force_stop_passes_the_sub_tasks_error_on(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    async with troupe.open_task_manager() as manager:
        manager.add("broken", troupe.ForceStop(5.0, Counter(fail=True)))
        with pytest.raises(troupe.TaskManagerError, match="flaky"):
            await manager.run()


async def test_force_stop_abandons_a_sub_task_in_a_thread(system: troupe.ActorSystem) -> None:
    release = threading.Event()

    class Blocking:
        def execute(self) -> None:
            release.wait(30)

    async with troupe.open_task_manager() as manager:
        manager.add("blocking", troupe.ForceStop(0.05, Blocking()))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(manager.run)
            await trio.testing.wait_all_tasks_blocked()
            manager.stop()
    release.set()
    assert manager.errors == []  # abandoned at once: it "stopped" within the grace


async def test_interruptible_restarts_on_a_signal(system: troupe.ActorSystem) -> None:
    calls: list[str] = []
    running = trio.Event()

    class Watcher:
        async def initialize(self) -> None:
            calls.append("initialize")

        async def execute(self) -> None:
            calls.append("execute")
            running.set()
            await trio.sleep_forever()

        async def cleanup(self) -> None:
            calls.append("cleanup")

    async with troupe.open_task_manager() as manager:
        manager.add("config", troupe.Interruptible([signal.SIGUSR1], Watcher()))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(manager.run)
            await running.wait()
            running = trio.Event()
            os.kill(os.getpid(), signal.SIGUSR1)
            await running.wait()
            manager.stop()
    assert calls == ["initialize", "execute", "cleanup", "initialize", "execute", "cleanup"]
    assert manager.errors == []


async def test_interruptible_restarts_an_execute_only_task(system: troupe.ActorSystem) -> None:
    runs: list[int] = []
    running = trio.Event()

    class ExecuteOnly:
        async def execute(self) -> None:
            runs.append(1)
            running.set()
            await trio.sleep_forever()

    async with troupe.open_task_manager() as manager:
        manager.add("plain", troupe.Interruptible([signal.SIGUSR1], ExecuteOnly()))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(manager.run)
            await running.wait()
            running = trio.Event()
            os.kill(os.getpid(), signal.SIGUSR1)
            await running.wait()
            manager.stop()
    assert runs == [1, 1]
    assert manager.errors == []


async def test_interruptible_reports_an_unexpected_stop_and_errors(system: troupe.ActorSystem) -> None:
    class Quits:
        async def execute(self) -> None:
            await trio.lowlevel.checkpoint()

    async with troupe.open_task_manager() as manager:
        manager.add("quits", troupe.Interruptible([signal.SIGUSR2], Quits()), kind=TaskKind.ERROR)
        with pytest.raises(troupe.TaskManagerError, match="Interruptible task unexpectedly stopped"):
            await manager.run()
    async with troupe.open_task_manager() as manager:
        manager.add("fails", troupe.Interruptible([signal.SIGUSR2], Counter(fail=True)))
        with pytest.raises(troupe.TaskManagerError, match="flaky"):
            await manager.run()


# -- issue 17 ---------------------------------------------------------------


class _BlockingSync:
    """An execute-only task whose sync ``execute`` blocks its thread until released."""

    def __init__(self, release: threading.Event) -> None:
        self.release = release
        self.started = threading.Event()
        self.runs = 0

    def execute(self) -> None:
        self.runs += 1
        self.started.set()
        self.release.wait(60)


@pytest.mark.parametrize(
    "wrap", [troupe.Repeatable, lambda task: troupe.RepeatTimer(1.0, task)], ids=["Repeatable", "RepeatTimer"]
)
async def test_issue_17_19_a_stop_abandons_a_wrapped_sync_execute(
    system: troupe.ActorSystem, wrap: Any
) -> None:
    release = threading.Event()
    task = _BlockingSync(release)
    try:
        with trio.fail_after(5):
            async with troupe.open_task_manager() as manager:
                manager.add("wrapped", wrap(task))
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(manager.run)
                    await trio.to_thread.run_sync(task.started.wait, 5)
                    manager.stop()
    finally:
        release.set()
    assert manager.errors == []
    assert task.runs == 1


async def test_issue_17_19_a_signal_restarts_an_interruptible_sync_execute_at_once(
    system: troupe.ActorSystem,
) -> None:
    release = threading.Event()
    task = _BlockingSync(release)
    try:
        with trio.fail_after(5):
            async with troupe.open_task_manager() as manager:
                manager.add("config", troupe.Interruptible([signal.SIGUSR2], task))
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(manager.run)
                    await trio.to_thread.run_sync(task.started.wait, 5)
                    task.started.clear()
                    os.kill(os.getpid(), signal.SIGUSR2)
                    await trio.to_thread.run_sync(task.started.wait, 5)  # running again, at once
                    manager.stop()
    finally:
        release.set()
    assert manager.errors == []
    assert task.runs == 2
