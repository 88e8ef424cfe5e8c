"""Where bodies run: inline, threads, worker processes."""

from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path

import pytest
import trio
import trio.testing

import troupe

from kit import eventually, product, sleep_in_process, slow_sum, worker_pid


def _children() -> set[int]:
    me = os.getpid()
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:
            found.add(int(stat.parent.name))
    return found


async def test_sync_functions_run_in_threads_async_ones_inline(system: troupe.ActorSystem) -> None:
    here = threading.get_ident()
    threaded = await troupe.run_task(threading.get_ident)
    assert await threaded.result() != here

    async def where() -> int:
        return threading.get_ident()

    inline = await troupe.run_task(where)
    assert await inline.result() == here
    forced_inline = await troupe.run_task(where, executor=troupe.InlineExecutor())
    assert await forced_inline.result() == here


async def test_thread_executor_bounds_concurrency(system: troupe.ActorSystem) -> None:
    threads = troupe.ThreadExecutor(max_workers=2)
    active = 0
    peak = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.02)
        with lock:
            active -= 1

    tasks = [await troupe.run_task(work, executor=threads) for _ in range(6)]
    await troupe.wait_all(*tasks)
    assert peak == 2


async def test_on_cancellation_works_in_a_thread(system: troupe.ActorSystem) -> None:
    go = threading.Event()

    def body() -> str:
        go.wait(5)
        for _ in range(500):
            troupe.on_cancellation_return("left the loop")
            time.sleep(0.01)
        return "ran out"

    t = await troupe.run_task(body)
    await t.cancel()
    go.set()
    assert await t.result() == "left the loop"


async def test_forced_cancel_abandons_a_thread(system: troupe.ActorSystem) -> None:
    release = threading.Event()
    t = await troupe.run_task(release.wait, 10)
    await trio.sleep(0.01)
    with trio.fail_after(2):
        await t.cancel(force=True)
        assert isinstance(await t.error(), troupe.TaskCancelled)
    release.set()


async def test_custom_executor_objects(system: troupe.ActorSystem) -> None:
    class Recording:
        def __init__(self) -> None:
            self.calls: list[str] = []

        async def run(self, fn: object, args: tuple[object, ...]) -> object:
            self.calls.append(getattr(fn, "__name__", "?"))
            return "from the custom executor"

    ex = Recording()
    t: troupe.TaskHandle[object] = await troupe.run_task(sorted, [2, 1], executor=ex)
    assert await t.result() == "from the custom executor"
    assert ex.calls == ["sorted"]
    assert isinstance(ex, troupe.Executor)


async def test_factorial_split_over_two_process_tasks(system: troupe.ActorSystem) -> None:
    a = await troupe.run_task(product, 1, 5001, executor="process")
    b = await troupe.run_task(product, 5001, 10001, executor="process")
    await troupe.wait_all(a, b)
    assert await a.result() * await b.result() == math.factorial(10000)
    assert await (await troupe.run_task(slow_sum, 0, 1000, executor="process")).result() == slow_sum(0, 1000)


async def test_an_unpicklable_function_is_a_type_error_at_run_task(system: troupe.ActorSystem) -> None:
    with trio.fail_after(5), pytest.raises(TypeError, match="cannot pickle"):
        await troupe.run_task(lambda: 1, executor="process")
    lock = threading.Lock()
    with pytest.raises(TypeError, match="cannot pickle"):
        await troupe.run_task(print, lock, executor=troupe.ProcessExecutor())


async def test_forced_cancel_kills_the_worker_process(system: troupe.ActorSystem) -> None:
    pid_task = await troupe.run_task(worker_pid, executor="process")
    first_pid = await pid_task.result()
    t = await troupe.run_task(sleep_in_process, 30, executor="process")
    await trio.sleep(0.5)
    with trio.fail_after(10):
        await t.cancel(force=True)
        assert isinstance(await t.error(), troupe.TaskCancelled)
    again = await (await troupe.run_task(worker_pid, executor="process")).result()
    assert isinstance(again, int)
    assert first_pid > 0


async def test_cull_idle_workers_ends_idle_processes(system: troupe.ActorSystem) -> None:
    before = _children()
    await (await troupe.run_task(worker_pid, executor="process")).result()
    assert _children() - before  # a worker process is alive and idle
    await troupe.cull_idle_workers()
    await eventually(lambda: not _children() - before)


async def test_no_worker_process_outlives_the_system() -> None:
    before = _children()
    async with troupe.open_system():
        await (await troupe.run_task(worker_pid, executor="process")).result()
    await eventually(lambda: not _children() - before)
