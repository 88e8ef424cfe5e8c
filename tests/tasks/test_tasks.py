"""HPC-GAP's task API: every pinned decision in DESIGN.md, one test each."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import trio
import trio.testing

import troupe


async def boom() -> None:
    raise ValueError("bad input")


async def value(x: Any) -> Any:
    return x


async def test_run_task_result_and_flags(system: troupe.ActorSystem) -> None:
    t = await troupe.run_task(sorted, [3, 1, 2])
    assert t.started  # as soon as run_task returns
    assert await t.result() == [1, 2, 3]
    assert t.finished
    assert await t.succeeded()
    assert await t.error() is None
    assert not t.is_async
    assert "sorted" in t.name


async def test_a_failed_task_is_finished_and_only_result_raises(system: troupe.ActorSystem) -> None:
    t = await troupe.run_task(boom)
    after = await troupe.schedule_task(t, value, "ran anyway")
    await troupe.wait_all(t)  # does not raise
    assert t.finished
    assert await after.result() == "ran anyway"
    with pytest.raises(troupe.TaskFailed, match="bad input") as info:
        await t.result()
    assert isinstance(info.value.__cause__, ValueError)
    assert isinstance(await t.error(), ValueError)
    assert await t.succeeded() is False


async def looping(limit: int) -> int:
    for _ in range(limit):
        troupe.on_cancellation_return(314)
        await trio.sleep(1)
    return 0


async def test_cooperative_cancel_gives_the_exit_value_but_counts_as_failed(
    system: troupe.ActorSystem,
    autojump_clock: trio.testing.MockClock,
) -> None:
    t = await troupe.run_task(looping, 1000)
    await trio.sleep(3.5)
    await t.cancel()
    assert t.cancellation_requested
    assert await t.result() == 314
    assert isinstance(await t.error(), troupe.TaskCancelled)
    assert await t.succeeded() is False


async def test_a_body_that_ignores_cancellation_finishes_normally(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    async def stubborn() -> str:
        await trio.sleep(5)
        return "done"

    t = await troupe.run_task(stubborn)
    await t.cancel()
    assert await t.result() == "done"
    assert t.cancellation_requested


async def test_on_cancellation_fires_at_most_once(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    calls: list[int] = []

    async def body() -> str:
        await trio.sleep(1)

        def exit_fn() -> None:
            calls.append(1)
            raise RuntimeError("exit failed")

        try:
            troupe.on_cancellation(exit_fn)
        except BaseException:  # the task's end: swallow it to try again
            troupe.on_cancellation(exit_fn)
            return "second call did nothing"
        return "not cancelled"

    t = await troupe.run_task(body)
    await t.cancel()
    assert await t.result() == "second call did nothing"
    assert calls == [1]


async def test_an_exit_function_that_raises_is_the_cause(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        await trio.sleep(1)
        troupe.on_cancellation(lambda: 1 / 0)

    t = await troupe.run_task(body)
    await t.cancel()
    error = await t.error()
    assert isinstance(error, troupe.TaskCancelled)
    assert isinstance(error.__cause__, ZeroDivisionError)
    with pytest.raises(troupe.TaskCancelled):
        await t.result()


async def test_cancel_on_a_finished_task_is_a_no_op(system: troupe.ActorSystem) -> None:
    t = await troupe.run_task(value, 1)
    await t.result()
    await t.cancel()
    await t.cancel(force=True)
    assert not t.cancellation_requested
    assert await t.result() == 1


async def test_async_exit_functions_are_refused(system: troupe.ActorSystem) -> None:
    async def exit_fn() -> None:
        return None

    with pytest.raises(TypeError, match="plain function"):
        troupe.on_cancellation(exit_fn)
    troupe.on_cancellation_return(5)  # outside a task: nothing happens


async def test_forced_cancel_ends_a_running_task_at_once(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    async def forever() -> None:
        troupe.on_cancellation_return("never used")
        await trio.sleep_forever()

    t = await troupe.run_task(forever)
    await trio.sleep(1)
    await t.cancel(force=True)
    with pytest.raises(troupe.TaskCancelled) as info:
        await t.result()
    assert info.value.forced


async def test_forced_cancel_wins_over_a_cooperative_exit_value(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    t = await troupe.run_task(looping, 100)
    await trio.sleep(0.5)
    await t.cancel(force=True)
    with pytest.raises(troupe.TaskCancelled):
        await t.result()


async def test_forced_cancel_of_a_task_not_started_never_runs_it(system: troupe.ActorSystem) -> None:
    ran: list[int] = []
    delayed = await troupe.delay_task(ran.append, 1)
    await delayed.cancel(force=True)
    assert delayed.finished  # at once
    with pytest.raises(troupe.TaskCancelled):
        await delayed.result()
    milestone = await troupe.new_milestone()
    scheduled = await troupe.schedule_task(milestone, ran.append, 2)
    await scheduled.cancel(force=True)
    await milestone.achieve()
    assert isinstance(await scheduled.error(), troupe.TaskCancelled)
    assert ran == []
    assert not scheduled.started


async def test_a_cooperative_cancel_of_a_delayed_task_only_sets_the_flag(system: troupe.ActorSystem) -> None:
    t = await troupe.delay_task(value, 7)
    await t.cancel()
    assert t.cancellation_requested
    assert not t.started
    assert await t.result() == 7


async def test_wait_all_and_result_start_delayed_tasks_but_schedule_does_not(
    system: troupe.ActorSystem,
) -> None:
    a = await troupe.delay_task(value, 3 * 3)
    b = await troupe.delay_task(value, 4 * 4)
    assert not a.started
    assert not b.started
    total = await troupe.schedule_task([a, b], lambda: None)
    await troupe.wait_all(a, b)  # starts both, in parallel
    assert await a.result() + await b.result() == 25
    await total.result()

    never_started = await troupe.delay_task(value, 1)
    gated = await troupe.schedule_task(never_started, value, "gated")
    with trio.move_on_after(0.05):
        await gated.result()  # a schedule condition does not start a delayed task
    assert not gated.finished
    assert not never_started.started
    assert await never_started.result() == 1  # result() starts it
    assert await gated.result() == "gated"


async def test_schedule_task_25(system: troupe.ActorSystem) -> None:
    a = await troupe.run_task(lambda: 3 * 3)
    b = await troupe.run_task(lambda: 4 * 4)

    async def add() -> int:
        return await a.result() + await b.result()

    t = await troupe.schedule_task([a, b], add)
    assert await t.result() == 25


async def test_execute_is_a_no_op_unless_delayed_and_not_started(system: troupe.ActorSystem) -> None:
    running = await troupe.run_task(value, 1)
    await running.execute()
    m = await troupe.new_milestone()
    scheduled = await troupe.schedule_task(m, value, 2)
    await scheduled.execute()
    assert not scheduled.started
    delayed = await troupe.delay_task(value, 3)
    await delayed.execute()
    assert delayed.started  # recorded when execute returns
    await delayed.execute()
    assert await delayed.result() == 3
    await delayed.execute()  # finished: nothing


async def test_started_flags(system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock) -> None:
    m = await troupe.new_milestone()
    scheduled = await troupe.schedule_task(m, value, 1)
    delayed = await troupe.delay_task(value, 2)
    assert not scheduled.started
    assert not delayed.started
    await m.achieve()
    assert await scheduled.result() == 1
    assert scheduled.started
    await troupe.wait_all(delayed)
    assert delayed.started


async def test_wait_any_returns_the_lowest_finished_index(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    async def after(seconds: float) -> float:
        await trio.sleep(seconds)
        return seconds

    slow = await troupe.run_task(after, 10)
    fast = await troupe.run_task(after, 1)
    assert await troupe.wait_any(slow, fast) == 1
    done_first = await troupe.run_task(value, "a")
    done_second = await troupe.run_task(value, "b")
    await troupe.wait_all(done_first, done_second)
    assert await troupe.wait_any(done_second, done_first) == 0  # lowest index, not first finished


async def test_wait_any_needs_arguments_and_wait_all_does_not(system: troupe.ActorSystem) -> None:
    with pytest.raises(ValueError, match="at least one"):
        await troupe.wait_any()
    with trio.fail_after(1):
        await troupe.wait_all()


async def test_make_task_async(system: troupe.ActorSystem) -> None:
    started = await troupe.run_task(value, 1)
    with pytest.raises(troupe.TaskStateError, match="has started"):
        await troupe.make_task_async(started)
    delayed = await troupe.delay_task(value, 2)
    await troupe.make_task_async(delayed)
    assert delayed.is_async
    with pytest.raises(troupe.NotWaitable):
        await delayed.result()
    with pytest.raises(troupe.NotWaitable):
        await troupe.wait_all(delayed)


async def test_async_tasks_cannot_be_waited_and_their_failures_are_published(
    system: troupe.ActorSystem,
) -> None:
    async with system.events.listen("troupe.task.failed") as failed:
        t = await troupe.run_async_task(boom)
        with pytest.raises(troupe.NotWaitable):
            await t.result()
        event = await failed.receive()
    assert event.data == t.name
    m = await troupe.new_milestone()
    s = await troupe.schedule_async_task(m, value, 1)
    assert s.is_async


async def test_immediate_task_runs_in_the_caller(system: troupe.ActorSystem) -> None:
    here = threading.get_ident()
    t = await troupe.immediate_task(threading.get_ident)
    assert t.finished
    assert t.started
    assert await t.result() == here
    failed = await troupe.immediate_task(boom)
    assert isinstance(await failed.error(), ValueError)


async def test_arguments_are_passed_as_they_are(system: troupe.ActorSystem) -> None:
    arg: dict[str, list[int]] = {"shared": []}
    inline = await troupe.run_task(value, arg)
    threaded = await troupe.run_task(lambda x: x, arg)
    assert await inline.result() is arg
    assert await threaded.result() is arg


async def test_current_task_and_running_tasks(system: troupe.ActorSystem) -> None:
    seen: list[object] = []

    async def body() -> int:
        seen.append(troupe.current_task())
        return troupe.running_tasks()

    t = await troupe.run_task(body)
    assert await t.result() >= 1
    assert seen == [t]
    assert troupe.current_task() is None


async def fib(n: int, threads: troupe.ThreadExecutor) -> int:
    if n < 2:
        leaf = await troupe.run_task(lambda: n, executor=threads)
        return await leaf.result()
    a = await troupe.run_task(fib, n - 1, threads)
    b = await troupe.run_task(fib, n - 2, threads)
    return await a.result() + await b.result()


async def test_nested_waits_complete_with_one_thread_worker(system: troupe.ActorSystem) -> None:
    one = troupe.ThreadExecutor(max_workers=1)
    with trio.fail_after(20):
        top = await troupe.run_task(fib, 10, one)
        assert await top.result() == 55


async def test_subscribers_get_task_finished_once(
    system: troupe.ActorSystem, probe: troupe.TestProbe
) -> None:
    t = await troupe.delay_task(value, 1)
    await t.subscribe(probe.ref)
    await t.execute()
    signal = await probe.expect(troupe.TaskFinished)
    assert signal.task is t
    await t.subscribe(probe.ref)  # already finished: at once
    await probe.expect(troupe.TaskFinished)
    await probe.expect_no_message(0.05)


async def test_task_events_are_published(system: troupe.ActorSystem) -> None:
    async with system.events.listen("troupe.task.*") as events:
        t = await troupe.run_task(value, 1)
        await t.result()
        c = await troupe.delay_task(value, 2)
        await c.cancel(force=True)
        topics = [events.receive_nowait().topic for _ in range(3)]
    assert topics == ["troupe.task.started", "troupe.task.finished", "troupe.task.cancelled"]


async def test_tasks_live_under_system_tasks(system: troupe.ActorSystem) -> None:
    t = await troupe.delay_task(value, 1)
    assert system.lookup(f"/system/tasks/{t.name}") is not None
    await t.result()
    await trio.testing.wait_all_tasks_blocked()
    assert system.lookup(f"/system/tasks/{t.name}") is None  # the actor ends with its task


async def test_a_task_outlives_the_task_that_started_it(system: troupe.ActorSystem) -> None:
    inner: list[troupe.TaskHandle[Any]] = []

    async def outer() -> None:
        inner.append(await troupe.delay_task(value, "still here"))

    await (await troupe.run_task(outer)).result()
    assert await inner[0].result() == "still here"


async def test_bad_input(system: troupe.ActorSystem) -> None:
    with pytest.raises(TypeError, match="callable"):
        await troupe.run_task(42)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="a condition is"):
        await troupe.schedule_task("not a condition", value, 1)
    with pytest.raises(TypeError, match="a condition is"):
        await troupe.wait_all(3)
    with pytest.raises(ValueError, match="unknown executor"):
        await troupe.run_task(value, 1, executor="gpu")
    with pytest.raises(TypeError, match="async def run"):
        await troupe.run_task(value, 1, executor=object())  # type: ignore[call-overload]


async def test_conditions_compose(system: troupe.ActorSystem) -> None:
    a = await troupe.new_milestone()
    b = await troupe.new_milestone()
    c = await troupe.new_counter(1)
    either = await troupe.schedule_task(troupe.any_of(a, troupe.all_of(b, c)), value, "go")
    await b.achieve()
    await trio.testing.wait_all_tasks_blocked()
    assert not either.started
    await c.increment()
    assert await either.result() == "go"


async def test_shutdown_gives_unfinished_tasks_a_known_outcome() -> None:
    async with troupe.open_system():
        t = await troupe.run_task(trio.sleep_forever)
        d = await troupe.delay_task(value, 1)
    assert t.finished
    assert d.finished
    assert isinstance(t._record.error, troupe.TaskCancelled)
    assert isinstance(d._record.error, troupe.TaskCancelled)


async def test_a_fan_out_still_lets_other_tasks_run(system: troupe.ActorSystem) -> None:
    passes = 0

    async def count_passes() -> None:
        nonlocal passes
        while True:
            await trio.lowlevel.checkpoint()
            passes += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(count_passes)
        await trio.lowlevel.checkpoint()
        before = passes
        tasks = [await troupe.run_task(value, i) for i in range(200)]
        assert passes - before >= 200 // 32  # the scheduler got a turn at least every 32 starts
        nursery.cancel_scope.cancel()
    await troupe.wait_all(*tasks)


async def test_run_task_is_a_cancel_point(system: troupe.ActorSystem) -> None:
    reached = False
    with trio.CancelScope() as scope:
        scope.cancel()
        await troupe.run_task(value, 1)
        reached = True
    assert scope.cancelled_caught
    assert not reached


# -- issue 17 ---------------------------------------------------------------


async def test_issue_17_15_tasks_cut_off_by_a_shutdown_say_that_the_system_shut_down() -> None:
    release = threading.Event()
    async with troupe.open_system():
        running = await troupe.run_task(trio.sleep_forever)
        delayed = await troupe.delay_task(value, 1)
        gate = await troupe.new_milestone()
        scheduled = await troupe.schedule_task(gate, value, 2)
        threaded = await troupe.run_task(release.wait, 30)
        await trio.testing.wait_all_tasks_blocked()
    release.set()
    for t in (running, delayed, scheduled, threaded):
        error = await t.error()
        assert isinstance(error, troupe.TaskCancelled), t
        assert error.shutdown
        assert error.forced  # not cooperative
        assert "because its system shut down" in str(error)
        assert "cancel(force=True)" not in str(error)
        with pytest.raises(troupe.TaskCancelled, match="system shut down"):
            await t.result()


async def test_issue_17_15_a_forced_cancel_still_says_so(system: troupe.ActorSystem) -> None:
    t = await troupe.run_task(trio.sleep_forever)
    await t.cancel(force=True)
    error = await t.error()
    assert isinstance(error, troupe.TaskCancelled)
    assert error.forced
    assert not error.shutdown
    assert "by cancel(force=True)" in str(error)


class _Custom(BaseException):
    """A BaseException of the user's own."""


def _raise(exc: BaseException) -> None:
    raise exc


async def _araise(exc: BaseException) -> None:
    await trio.lowlevel.checkpoint()
    raise exc


async def _araise_in_a_nursery(exc: BaseException) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_araise, exc)
        await trio.sleep_forever()


_NOT_EXCEPTIONS = [SystemExit(3), GeneratorExit(), _Custom("mine")]


@pytest.mark.parametrize("exc", _NOT_EXCEPTIONS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("body", [_raise, _araise, _araise_in_a_nursery], ids=["thread", "inline", "nursery"])
async def test_issue_17_18_a_body_raising_a_base_exception_fails_only_its_task(
    body: Any, exc: BaseException
) -> None:
    async with troupe.open_system() as system:
        t = await troupe.run_task(body, exc)
        error = await t.error()
        assert type(error) is type(exc)
        with pytest.raises(troupe.TaskFailed, match=type(exc).__name__) as info:
            await t.result()
        assert info.value.__cause__ is error
        assert await (await troupe.run_task(value, "still running")).result() == "still running"
        assert system.statistics().failures == 0
    assert t.finished  # and open_system did not raise it


async def test_issue_17_18_immediate_task_keeps_a_base_exception_as_its_error(
    system: troupe.ActorSystem,
) -> None:
    import sys  # noqa: PLC0415

    t: troupe.TaskHandle[object] = await troupe.immediate_task(sys.exit, 4)
    assert isinstance(await t.error(), SystemExit)
    a = await troupe.immediate_task(_araise, _Custom("async"))
    assert isinstance(await a.error(), _Custom)
    with pytest.raises(troupe.TaskFailed):
        await a.result()


async def test_issue_17_18_a_channel_task_raising_system_exit_fails_and_closes_its_channel(
    system: troupe.ActorSystem,
) -> None:
    calls: list[bool] = []

    async def body(ctx: troupe.TaskContext) -> None:
        await ctx.channel.write("last words")
        raise SystemExit(5)

    t = await troupe.delay_task(body, channel=True)
    t.bind_callback(lambda task: calls.append(task.finished))
    await t.execute()
    assert isinstance(await t.error(), SystemExit)
    assert t.channel is not None
    assert await t.channel.read() == "last words"
    with pytest.raises(troupe.ChannelClosed):
        await t.channel.read()
    await trio.testing.wait_all_tasks_blocked()
    assert calls == [False, True]


async def test_issue_17_18_a_keyboard_interrupt_in_a_body_still_stops_everything() -> None:
    async def body() -> None:
        await trio.lowlevel.checkpoint()
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        async with troupe.open_system():
            t = await troupe.run_task(body)
            await t.error()


async def test_issue_17_22_an_empty_any_of_is_refused(system: troupe.ActorSystem) -> None:
    with pytest.raises(ValueError, match="at least one"):
        troupe.any_of()
    m = await troupe.new_milestone()
    for condition in (troupe.AnyOf(()), [troupe.AnyOf(())], [m, [troupe.AnyOf(())]]):
        with trio.fail_after(1), pytest.raises(ValueError, match="never hold"):
            await troupe.wait_all(condition)
        with pytest.raises(ValueError, match="never hold"):
            await troupe.schedule_task(condition, value, 1)
    with pytest.raises(ValueError, match="never hold"):
        await troupe.wait_any(troupe.AnyOf(()))
    with trio.fail_after(1):
        await troupe.wait_all(troupe.all_of(), [])  # empty all-of: holds at once


async def test_issue_17_a_task_cut_off_by_the_shutdown_timeout_still_finishes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Stuck(troupe.Actor[Any]):
        async def on_stop(self) -> None:
            await trio.sleep_forever()  # the shutdown times out here, before the tasks are stopped

        async def receive(self, msg: Any) -> None:
            return None

    async with troupe.open_system(shutdown_timeout=1.0) as system:
        t = await troupe.delay_task(lambda: 1)  # never started: its actor idles until cut off
        await system.spawn(Stuck)
    assert t.finished  # the runtime let the task settle its record as it was cut off
    error = await t.error()
    assert isinstance(error, troupe.TaskCancelled)
    assert error.shutdown
