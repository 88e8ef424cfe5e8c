"""Where bodies run: inline, threads, worker processes."""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable
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


# -- issue 17 ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "kind"),
    [("raise SystemExit(3)", SystemExit), ("raise GeneratorExit", GeneratorExit)],
    ids=["SystemExit", "GeneratorExit"],
)
async def test_issue_17_18_a_base_exception_in_a_worker_process_fails_only_its_task(
    source: str, kind: type[BaseException]
) -> None:
    async with troupe.open_system() as system:
        t = await troupe.run_task(exec, source, executor="process")
        assert type(await t.error()) is kind
        with pytest.raises(troupe.TaskFailed):
            await t.result()
        again = await troupe.run_task(worker_pid, executor="process")  # the pool recovered
        assert isinstance(await again.result(), int)
        assert system.statistics().failures == 0


async def test_issue_17_18_sys_exit_in_a_thread_fails_only_its_task(system: troupe.ActorSystem) -> None:
    t: troupe.TaskHandle[object] = await troupe.run_task(sys.exit, 3)
    error = await t.error()
    assert isinstance(error, SystemExit)
    assert error.code == 3
    assert await (await troupe.run_task(sum, [1, 2])).result() == 3


async def test_issue_17_20_abandoned_threads_give_their_slots_back_at_once(
    system: troupe.ActorSystem,
) -> None:
    threads = troupe.ThreadExecutor(max_workers=2)
    release = threading.Event()
    stuck = [await troupe.run_task(release.wait, 60, executor=threads) for _ in range(2)]
    await _until(lambda: threads.limiter.borrowed_tokens == 2)
    try:
        with trio.fail_after(5):
            for t in stuck:
                await t.cancel(force=True)
                assert isinstance(await t.error(), troupe.TaskCancelled)
            assert threads.limiter.borrowed_tokens == 0
            assert await (await troupe.run_task(sum, [1, 2], executor=threads)).result() == 3
    finally:
        release.set()


async def test_issue_17_20_the_default_pool_runs_on_after_every_slot_was_abandoned(
    system: troupe.ActorSystem,
) -> None:
    release = threading.Event()
    cores = os.cpu_count() or 1
    stuck = [await troupe.run_task(release.wait, 60) for _ in range(cores + 1)]
    await trio.testing.wait_all_tasks_blocked()
    try:
        with trio.fail_after(5):
            for t in stuck:
                await t.cancel(force=True)
                await t.error()
            assert await (await troupe.run_task(sum, [2, 2])).result() == 4

            class Blocking:
                def execute(self) -> None:
                    release.wait(60)

            async with troupe.open_task_manager() as manager:  # ForceStop needs a slot too
                manager.add("blocking", troupe.ForceStop(0.05, Blocking()))
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(manager.run)
                    await trio.testing.wait_all_tasks_blocked()
                    manager.stop()
            assert manager.errors == []
    finally:
        release.set()


async def test_issue_17_20_abandoned_threads_still_running_are_reported_at_shutdown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = threading.Event()
    done = threading.Event()

    def stuck() -> None:
        release.wait(60)

    def quick() -> None:
        done.wait(60)

    threads = troupe.ThreadExecutor()
    caplog.set_level(logging.WARNING, logger="troupe.tasks")
    async with troupe.open_system():
        still = await troupe.run_task(stuck, executor=threads)
        ended = await troupe.run_task(quick, executor=threads)
        await _until(lambda: threads.limiter.borrowed_tokens == 2)
        for t in (still, ended):
            await t.cancel(force=True)
            await t.error()
        assert threads.abandoned == 2
        done.set()  # the second abandoned thread returns before the shutdown
        await _until(lambda: threads.abandoned == 1)
    release.set()
    messages = [r.getMessage() for r in caplog.records]
    assert any(still.name in m and "abandoned" in m and "forced cancel" in m for m in messages)
    [report] = [m for m in messages if "still running at shutdown" in m]
    assert still.name in report
    assert ended.name not in report


async def _until(condition: Callable[[], object]) -> None:
    """Wait for a thread to reach a state (threads give no trio event), bounded."""
    with trio.fail_after(5):
        while not condition():  # noqa: ASYNC110 - a worker thread's state, not trio's
            await trio.sleep(0.001)
