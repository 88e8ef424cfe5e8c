"""RunOn: a managed task's execute on an executor (threads, worker processes, a real Dask cluster)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.lowlevel

import troupe


class Simulation:
    """A managed task whose sync execute computes, then writes where it ran (or fails, or runs long)."""

    def __init__(self, out: Path, *, fail: bool = False, takes: float = 0.0) -> None:
        self.out = out
        self.fail = fail
        self.takes = takes
        self.initialized = self.cleaned = False

    def initialize(self) -> None:
        self.initialized = True

    def execute(self) -> None:
        time.sleep(self.takes)
        if self.fail:
            raise KeyError("no such parameter")
        self.out.write_text(str(os.getpid()))

    def cleanup(self) -> None:
        self.cleaned = True


class AsyncTask:
    async def execute(self) -> None:
        await trio.lowlevel.checkpoint()


@pytest.mark.parametrize("executor", ["thread", "process", "dask"])
async def test_execute_runs_on_the_executor_and_initialize_and_cleanup_stay_here(
    executor: str, dask_cluster: Any, tmp_path: Path
) -> None:
    async with troupe.open_system():
        troupe.use_executor("dask", troupe.DaskExecutor(dask_cluster.scheduler_address))
        sim = Simulation(tmp_path / "pid")
        async with troupe.open_task_manager() as manager:
            manager.add("sim", troupe.RunOn(executor, sim), kind=troupe.TaskKind.STOP_GROUP)
            with trio.fail_after(60):
                await manager.run()
        assert manager.errors == []
        assert sim.initialized  # on the manager's own object
        assert sim.cleaned
        ran_in = int((tmp_path / "pid").read_text())
        assert (ran_in == os.getpid()) is (executor == "thread")


async def test_the_execute_error_keeps_its_type_and_stops_the_manager(
    dask_cluster: Any, tmp_path: Path
) -> None:
    async with troupe.open_system():
        dask = troupe.DaskExecutor(dask_cluster.scheduler_address)
        async with troupe.open_task_manager() as manager:
            manager.add("sim", troupe.RunOn(dask, Simulation(tmp_path / "pid", fail=True)))
            with trio.fail_after(60), pytest.raises(troupe.TaskManagerError):
                await manager.run()
    [error] = manager.errors
    assert (error.name, error.stage) == ("sim", "execute")
    assert type(error.error) is KeyError


async def test_stopping_the_manager_force_cancels_the_execute_on_dask(
    dask_cluster: Any, tmp_path: Path
) -> None:
    async with troupe.open_system():
        dask = troupe.DaskExecutor(dask_cluster.scheduler_address)
        async with troupe.open_task_manager() as manager:
            manager.add("long", troupe.RunOn(dask, Simulation(tmp_path / "pid", takes=2)))
            started = trio.current_time()
            with trio.move_on_after(0.5):
                await manager.run()
            assert trio.current_time() - started < 1.5  # not waiting for the 2 s body
    assert manager.errors == []
    assert not (tmp_path / "pid").exists()


def test_an_async_execute_or_a_wrong_executor_is_refused_at_once(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="has an async execute: it runs on trio, not on an executor"):
        troupe.RunOn("dask", AsyncTask())
    with pytest.raises(TypeError, match="RunOn takes an executor or its shortcut name"):
        troupe.RunOn(42, Simulation(tmp_path / "x"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="has no execute"):
        troupe.RunOn("thread", object())
    assert repr(troupe.RunOn("dask", Simulation(tmp_path / "x"))).startswith("RunOn('dask', <")
