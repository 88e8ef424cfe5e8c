"""DaskExecutor against a real Dask cluster: worker processes, lost workers, cancels, progress, jobs.

One ``LocalCluster(processes=True, n_workers=2)`` serves the session (a
cluster takes seconds to start; ``dask_cluster`` in tests/conftest.py); every
test opens its own system and its own client to it. The embedded default (a cluster of the executor's own)
has tests of its own, for its start and its clean end.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import trio
from distributed import Client, KilledWorker, LocalCluster

import troupe
from troupe import DaskExecutor, TaskCancelled, TaskFailed

from kit import eventually


@pytest.fixture
def cluster(dask_cluster: LocalCluster) -> LocalCluster:
    """The session's Dask cluster (``dask_cluster``, tests/conftest.py)."""
    return dask_cluster


def square(x: int) -> int:
    return x * x


def fail(text: str) -> None:
    raise KeyError(text)


def die_unless(marker: str) -> str:
    """Kill the worker running it the first time (no marker yet); succeed the next."""
    path = Path(marker)
    if not path.exists():
        path.write_text("died once")
        os.kill(os.getpid(), signal.SIGKILL)
    return f"survived on {os.getpid()}"


def always_die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def halfway_then_wait(go: str) -> str:
    troupe.report_progress(0.5, "halfway")
    deadline = time.monotonic() + 30
    while not Path(go).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return "done"


def worker_pid() -> int:
    return os.getpid()


async def test_results_and_exceptions_come_back_with_their_types(cluster: LocalCluster) -> None:
    dask = DaskExecutor(cluster.scheduler_address)
    async with troupe.open_system():
        assert await (await troupe.run_task(square, 12, executor=dask)).result() == 144
        failed = await troupe.run_task(fail, "no such key", executor=dask)
        error = await failed.error()
        assert type(error) is KeyError
        assert error.args == ("no such key",)
        with pytest.raises(TaskFailed) as raised:
            await failed.result()
        assert type(raised.value.__cause__) is KeyError
        pids = {await (await troupe.run_task(worker_pid, executor=dask)).result() for _ in range(6)}
        assert os.getpid() not in pids  # ran in the worker processes, not here


async def test_lambdas_travel_but_what_cannot_be_pickled_is_refused_before_submitting(
    cluster: LocalCluster,
) -> None:
    dask = DaskExecutor(cluster.scheduler_address)
    async with troupe.open_system():
        assert await (await troupe.run_task(lambda: 6 * 7, executor=dask)).result() == 42
        with pytest.raises(TypeError, match=r"the dask executor runs plain functions; .*sleep' is async"):
            await troupe.run_task(trio.sleep, 1, executor=dask)
        with pytest.raises(TypeError, match="the dask executor cannot send 'len' or its arguments"):
            await troupe.run_task(len, threading.Lock(), executor=dask)


async def test_the_dask_shortcut_needs_configuring_and_then_names_the_executor(cluster: LocalCluster) -> None:
    async with troupe.open_system():
        with pytest.raises(ValueError, match=r"executor 'dask' is not configured for this system: call"):
            await troupe.run_task(square, 2, executor="dask")
        troupe.use_executor("dask", DaskExecutor(cluster.scheduler_address))
        assert await (await troupe.run_task(square, 3, executor="dask")).result() == 9
        with pytest.raises(ValueError, match="other than inline, thread, process; got 'thread'"):
            troupe.use_executor("thread", DaskExecutor(cluster.scheduler_address))
        with pytest.raises(
            ValueError, match="unknown executor 'gpu'; use 'inline', 'thread', 'process', 'dask'"
        ):
            await troupe.run_task(square, 3, executor="gpu")


async def test_a_forced_cancel_ends_the_task_at_once_and_cancels_the_dask_future(
    cluster: LocalCluster,
) -> None:
    dask = DaskExecutor(cluster.scheduler_address)
    async with troupe.open_system():
        task = await troupe.run_task(time.sleep, 2, executor=dask)
        scheduler = cluster.scheduler
        assert scheduler is not None
        await eventually(lambda: bool(scheduler.tasks), timeout=30)  # submitted: the scheduler knows it
        [key] = list(scheduler.tasks)
        with trio.fail_after(1):
            await task.cancel(force=True)
            error = await task.error()
        assert isinstance(error, TaskCancelled)
        await eventually(lambda: key not in scheduler.tasks, timeout=30)  # released at the scheduler


async def test_a_worker_lost_mid_task_is_retried_then_the_task_succeeds(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    dask = DaskExecutor(cluster.scheduler_address, retries=1)
    async with troupe.open_system():
        task = await troupe.run_task(die_unless, str(tmp_path / "marker"), executor=dask)
        with trio.fail_after(60):
            assert (await task.result()).startswith("survived on ")
        assert (tmp_path / "marker").exists()  # it did die once


async def test_a_worker_lost_more_times_than_retries_fails_the_task_naming_the_worker(
    cluster: LocalCluster,
) -> None:
    dask = DaskExecutor(cluster.scheduler_address, retries=1)
    async with troupe.open_system():
        task = await troupe.run_task(always_die, executor=dask)
        with trio.fail_after(60):
            error = await task.error()
    assert isinstance(error, KilledWorker)
    assert "tcp://127.0.0.1:" in str(error)  # the last worker that died running it
    assert "troupe submitted it 2 time(s) (retries=1)" in "\n".join(getattr(error, "__notes__", []))


async def test_progress_from_a_dask_worker_reaches_the_tasks_job(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    dask = DaskExecutor(cluster.scheduler_address)
    go = tmp_path / "go"
    async with troupe.open_system(jobs=troupe.MemoryJobStore()) as system:
        task = await troupe.run_task(halfway_then_wait, str(go), executor=dask, job=True)
        assert task.job_id is not None
        jobs, job_id = system.jobs, task.job_id
        assert jobs is not None

        async def halfway() -> bool:
            record = await jobs.get(job_id)
            return record is not None and record.progress == 0.5

        await eventually(halfway, timeout=30)
        record = await jobs.get(job_id)
        assert record is not None
        assert record.progress_message == "halfway"
        assert record.status is troupe.JobStatus.RUNNING
        go.write_text("go")
        assert await task.result() == "done"
        record = await jobs.get(job_id)
        assert record is not None
        assert record.status is troupe.JobStatus.SUCCEEDED
        assert record.result == "done"


async def test_a_job_on_dask_that_fails_keeps_its_error_in_the_record(cluster: LocalCluster) -> None:
    dask = DaskExecutor(cluster.scheduler_address)
    async with troupe.open_system(jobs=troupe.MemoryJobStore()) as system:
        task = await troupe.submit_job(fail, "lost key", executor=dask)
        assert isinstance(await task.error(), KeyError)
        assert task.job_id is not None
        assert system.jobs is not None
        record = await system.jobs.get(task.job_id)
        assert record is not None
        assert record.status is troupe.JobStatus.FAILED
        assert "lost key" in (record.error or "")


async def test_many_tasks_at_once_all_come_back(cluster: LocalCluster) -> None:
    dask = DaskExecutor(cluster.scheduler_address)
    async with troupe.open_system():
        tasks = [await troupe.run_task(square, i, executor=dask) for i in range(200)]
        assert [await t.result() for t in tasks] == [i * i for i in range(200)]


async def test_a_users_client_is_used_as_it_is_and_left_open(cluster: LocalCluster) -> None:
    client = await trio.to_thread.run_sync(
        lambda: Client(cluster.scheduler_address, set_as_default=False)  # type: ignore[no-untyped-call]
    )
    try:
        async with troupe.open_system():
            assert await (await troupe.run_task(square, 5, executor=DaskExecutor(client))).result() == 25
        assert client.status == "running"
    finally:
        await trio.to_thread.run_sync(client.close)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"retries": -1}, "retries= is a number of times, 0 or more, got -1"),
        ({"retries": True}, "retries="),
        ({"n_workers": 0}, "n_workers= is a number of worker processes, 1 or more, got 0"),
        ({"address": "tcp://x:1", "n_workers": 2}, "n_workers= is for the embedded cluster"),
    ],
)
def test_bad_settings_are_refused_at_once(kwargs: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        DaskExecutor(**kwargs)
    with pytest.raises(TypeError, match=r"address= takes None, a scheduler address or a distributed\.Client"):
        DaskExecutor(42)  # type: ignore[arg-type]


def _our_processes() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


async def test_the_embedded_cluster_lives_with_the_system_and_leaves_no_process() -> None:
    before = _our_processes()
    dask = DaskExecutor(n_workers=1)
    async with troupe.open_system():
        pid = await (await troupe.run_task(worker_pid, executor=dask)).result()
        assert pid in _our_processes()  # a worker process of our own
        running = await troupe.run_task(time.sleep, 60, executor=dask)  # still running at shutdown
        del running
    assert _our_processes() <= before  # the worker and its nanny are gone


def test_without_the_dask_extra_using_it_is_one_line_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # what `import distributed` finds without the extra
    with pytest.raises(
        ImportError, match=r"^the DaskExecutor needs troupe's dask extra: pip install 'trio-troupe\[dask\]'$"
    ):
        DaskExecutor.prepare(len, ())
    DaskExecutor()  # making one needs nothing: only using it does


def test_an_asynchronous_client_is_refused_at_once(dask_cluster: LocalCluster) -> None:
    async def check() -> None:
        client = await Client(dask_cluster.scheduler_address, asynchronous=True)  # type: ignore[no-untyped-call]
        try:
            with pytest.raises(TypeError, match="not one made with asynchronous=True"):
                DaskExecutor(client)
        finally:
            await client.close()

    asyncio.run(check())


@pytest.mark.parametrize("address", ["not an address", "tcp://", "", "http://x y"])
def test_a_garbage_address_is_refused_where_it_is_given(address: str) -> None:
    with pytest.raises(ValueError, match="is not a Dask scheduler address: give one like 'tcp://host:8786'"):
        DaskExecutor(address)


async def test_the_executor_class_instead_of_an_instance_is_refused_at_once() -> None:
    async with troupe.open_system():
        with pytest.raises(TypeError, match=r"not the class DaskExecutor: pass DaskExecutor\(\)"):
            troupe.use_executor("dask", DaskExecutor)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"not the class DaskExecutor: pass DaskExecutor\(\)"):
            await troupe.run_task(square, 2, executor=DaskExecutor)  # type: ignore[call-overload]
