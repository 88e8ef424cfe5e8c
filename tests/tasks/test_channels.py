"""Kore's task channels: every pinned decision in DESIGN.md and each bad input."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import troupe


async def kore_worker(ctx: troupe.TaskContext) -> str:
    """The Kore document's task: read at most 64 bytes of a request, answer it."""
    data, length = await ctx.channel.read_bytes(64)
    answer = f"read {len(data)} of {length} bytes" + (" (truncated)" if length > 64 else "")
    await ctx.channel.write(answer.encode())
    return "done"


async def test_kore_flow_request_truncation_answer_after_completion(system: troupe.ActorSystem) -> None:
    t = await troupe.run_task(kore_worker, channel=True)
    ch = t.channel
    assert ch is not None
    await ch.write(b"x" * 100)
    assert await t.result() == "done"
    assert t.finished
    # written before the end, read after it
    assert await ch.read() == b"read 64 of 100 bytes (truncated)"
    with pytest.raises(troupe.ChannelClosed, match="closed and drained"):
        await ch.read()


async def test_an_end_is_the_same_end_each_time_it_is_asked_for(system: troupe.ActorSystem) -> None:
    ends: list[troupe.TaskChannel] = []

    async def keep_end(ctx: troupe.TaskContext) -> None:
        ends.append(ctx.channel)

    t = await troupe.run_task(keep_end, channel=True)
    await t.result()
    other = await troupe.run_task(keep_end, channel=True)
    await other.result()
    assert t.channel == t.channel
    assert {t.channel: 1}[t.channel] == 1
    assert t.channel != other.channel
    assert ends[0] != t.channel  # the task's end is not the owner's
    assert ends[0] != ends[1]


async def test_truncation_discards_the_rest_of_that_message_only(system: troupe.ActorSystem) -> None:
    async def writer(ctx: troupe.TaskContext) -> None:
        for m in (b"abcdefgh", b"", b"12", b"xyz"):
            await ctx.channel.write(m)

    t = await troupe.run_task(writer, channel=True)
    await t.result()
    ch = t.channel
    assert ch is not None
    assert await ch.read_bytes(3) == (b"abc", 8)  # truncated: 8 > 3
    assert await ch.read_bytes(3) == (b"", 0)  # an empty message is a message
    assert await ch.read_bytes(3) == (b"12", 2)  # not desynchronised
    assert ch.read_bytes_nowait(10) == (b"xyz", 3)
    with pytest.raises(troupe.ChannelClosed):
        ch.read_nowait()


async def test_read_bytes_bad_input(system: troupe.ActorSystem) -> None:
    async def writer(ctx: troupe.TaskContext) -> None:
        await ctx.channel.write({"not": "bytes"})
        await ctx.channel.write(b"ok")

    t = await troupe.run_task(writer, channel=True)
    await t.result()
    ch = t.channel
    assert ch is not None
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="positive max_length"):
            await ch.read_bytes(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="still in the channel"):
        await ch.read_bytes(10)
    assert await ch.read() == {"not": "bytes"}  # nothing lost
    assert await ch.read_bytes(10) == (b"ok", 2)


async def test_owner_writing_after_the_task_ended_is_channel_closed(system: troupe.ActorSystem) -> None:
    async def quick(ctx: troupe.TaskContext) -> int:
        return 1

    t = await troupe.run_task(quick, channel=True)
    await t.result()
    assert t.channel is not None
    with pytest.raises(troupe.ChannelClosed, match="the task has ended; the message was not sent"):
        await t.channel.write("late")


async def test_unread_owner_messages_become_dead_letters(system: troupe.ActorSystem) -> None:
    async def reads_one(ctx: troupe.TaskContext) -> Any:
        return await ctx.channel.read()

    t = await troupe.delay_task(reads_one, channel=True)
    assert t.channel is not None
    for m in ("first", "second", "third"):
        await t.channel.write(m)
    await t.execute()
    assert await t.result() == "first"
    assert system.dead_letters.count == 2


async def test_writes_wait_when_the_channel_is_full(system: troupe.ActorSystem) -> None:
    written: list[int] = []

    async def producer(ctx: troupe.TaskContext) -> None:
        for i in range(5):
            await ctx.channel.write(i)
            written.append(i)

    t = await troupe.run_task(producer, channel=2)
    assert t.channel is not None
    assert t.channel.capacity == 2
    await trio.testing.wait_all_tasks_blocked()
    assert written == [0, 1]  # the third write waits for room
    assert [await t.channel.read() for _ in range(5)] == [0, 1, 2, 3, 4]
    await t.result()


async def test_a_cancelled_read_loses_nothing(system: troupe.ActorSystem) -> None:
    gate = trio.Event()

    async def late(ctx: troupe.TaskContext) -> None:
        await gate.wait()
        await ctx.channel.write("hello")

    t = await troupe.run_task(late, channel=True)
    assert t.channel is not None
    with trio.CancelScope() as scope:
        scope.cancel()
        await t.channel.read()
    gate.set()
    assert await t.channel.read() == "hello"


async def test_owner_close_ends_the_tasks_reads(system: troupe.ActorSystem) -> None:
    async def summer(ctx: troupe.TaskContext) -> int:
        total = 0
        while True:
            try:
                total += await ctx.channel.read()
            except troupe.ChannelClosed:
                return total

    t = await troupe.run_task(summer, channel=True)
    assert t.channel is not None
    for i in range(4):
        await t.channel.write(i)
    t.channel.close()
    with pytest.raises(troupe.ChannelClosed, match="owner closed"):
        await t.channel.write(9)
    assert await t.result() == 6


async def test_a_sync_body_in_a_thread_uses_the_sync_calls(system: troupe.ActorSystem) -> None:
    def doubler(ctx: troupe.TaskContext, times: int) -> int:
        for _ in range(times):
            ctx.channel.write_sync(ctx.channel.read_sync() * 2)
        _, n = ctx.channel.read_bytes_sync(2)
        return n

    t = await troupe.run_task(doubler, 3, channel=True)
    assert t.channel is not None
    for i in (1, 2, 3):
        await t.channel.write(i)
        assert await t.channel.read() == 2 * i
    await t.channel.write(b"abcd")
    assert await t.result() == 4


async def test_callback_once_per_write_and_once_on_completion(system: troupe.ActorSystem) -> None:
    seen: list[tuple[Any, bool]] = []

    async def three(ctx: troupe.TaskContext) -> None:
        for i in range(3):
            await ctx.channel.write(i)

    t = await troupe.delay_task(three, channel=True)

    def on_event(task: troupe.TaskHandle[None]) -> None:
        assert task.channel is not None
        try:
            seen.append((task.channel.read_nowait(), task.finished))
        except trio.WouldBlock:
            seen.append((None, task.finished))
        except troupe.ChannelClosed:
            seen.append(("closed", task.finished))

    t.bind_callback(on_event)
    await t.execute()
    await t.result()
    await trio.testing.wait_all_tasks_blocked()
    assert len(seen) == 4  # 3 writes + 1 completion
    assert [m for m, _ in seen[:3]] == [0, 1, 2]
    assert seen[-1] == ("closed", True)  # the completion call sees finished == True


async def test_binding_after_completion_calls_once_at_once(system: troupe.ActorSystem) -> None:
    async def quick(ctx: troupe.TaskContext) -> None:
        await ctx.channel.write("x")

    t = await troupe.run_task(quick, channel=True)
    await t.result()
    calls: list[bool] = []
    t.bind_callback(lambda task: calls.append(task.finished))
    assert calls == [True]


async def test_a_failing_callback_is_logged_and_published_not_a_task_failure(
    system: troupe.ActorSystem, caplog: pytest.LogCaptureFixture
) -> None:
    async def two(ctx: troupe.TaskContext) -> str:
        await ctx.channel.write(1)
        await ctx.channel.write(2)
        return "fine"

    def broken(task: troupe.TaskHandle[str]) -> None:
        raise RuntimeError("callback bug")

    async with system.events.listen("troupe.task.callback_failed") as events:
        t = await troupe.delay_task(two, channel=True)
        t.bind_callback(broken)
        with caplog.at_level(logging.ERROR, logger="troupe.tasks"):
            await t.execute()
            assert await t.result() == "fine"
            await trio.testing.wait_all_tasks_blocked()
        event = await events.receive()
        assert event.data == t.name
    assert "callback bug" in caplog.text


async def test_events_stream_a_write_each_then_finished(system: troupe.ActorSystem) -> None:
    async def progress(ctx: troupe.TaskContext) -> None:
        for pct in (25, 50, 100):
            await ctx.channel.write(pct)

    t = await troupe.delay_task(progress, channel=True)
    stream = t.events()
    await t.execute()
    got: list[Any] = []
    async for event in stream:
        assert event.task is t
        if event.finished:
            got.append("finished")
            assert t.finished
        else:
            assert t.channel is not None
            got.append(t.channel.read_nowait())
    assert got == [25, 50, 100, "finished"]


async def test_callback_and_events_are_exclusive(system: troupe.ActorSystem) -> None:
    async def idle(ctx: troupe.TaskContext) -> None:
        await ctx.channel.read()

    t = await troupe.run_task(idle, channel=True)
    t.bind_callback(lambda task: None)
    with pytest.raises(troupe.TaskStateError, match="exclusive"):
        t.events()
    with pytest.raises(troupe.TaskStateError, match="exclusive"):
        t.bind_callback(lambda task: None)
    u = await troupe.run_task(idle, channel=True)
    u.events()
    with pytest.raises(troupe.TaskStateError, match="exclusive"):
        u.bind_callback(lambda task: None)
    for task in (t, u):
        assert task.channel is not None
        await task.channel.write("stop")
        await task.result()


async def test_without_channel_there_is_none_to_bind(system: troupe.ActorSystem) -> None:
    t = await troupe.run_task(trio.sleep, 0)
    assert t.channel is None
    with pytest.raises(troupe.TaskStateError, match="channel=True"):
        t.bind_callback(lambda task: None)
    await t.result()


async def test_bad_channel_arguments(system: troupe.ActorSystem) -> None:
    with pytest.raises(TypeError, match="process executor"):
        await troupe.run_task(sorted, [1], executor="process", channel=True)
    with pytest.raises(TypeError):
        await troupe.immediate_task(sorted, [1], channel=True)  # type: ignore[call-overload]
    for bad in (0, -3, "yes", 2.5):
        with pytest.raises(ValueError, match="channel="):
            await troupe.run_task(kore_worker, channel=bad)  # type: ignore[arg-type]


async def test_the_channel_is_an_actor_that_ends_after_the_completion_call(
    system: troupe.ActorSystem,
) -> None:
    gate = trio.Event()

    async def waits(ctx: troupe.TaskContext) -> None:
        await gate.wait()

    t = await troupe.run_task(waits, channel=True)
    await trio.testing.wait_all_tasks_blocked()
    assert system.lookup(f"/system/tasks/{t.name}-channel") is not None
    gate.set()
    await t.result()
    await trio.testing.wait_all_tasks_blocked()
    assert system.lookup(f"/system/tasks/{t.name}-channel") is None


async def test_shutdown_still_delivers_the_completion_call() -> None:
    calls: list[bool] = []

    async def forever(ctx: troupe.TaskContext) -> None:
        await ctx.channel.write("started")
        await trio.sleep_forever()

    async with troupe.open_system():
        t = await troupe.delay_task(forever, channel=True)
        t.bind_callback(lambda task: calls.append(task.finished))
        await t.execute()
        await trio.testing.wait_all_tasks_blocked()
    assert calls == [False, True]  # the write, then the (cancelled) end
    assert isinstance(await t.error(), troupe.TaskCancelled)


MESSAGES = st.lists(st.binary(max_size=40), max_size=25)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    messages=MESSAGES,
    sizes=st.lists(st.integers(min_value=1, max_value=48), min_size=25, max_size=25),
    writer_yields=st.lists(st.booleans(), min_size=25, max_size=25),
    reader_yields=st.lists(st.booleans(), min_size=25, max_size=25),
    capacity=st.integers(min_value=1, max_value=4),
)
async def test_random_interleavings_keep_order_boundaries_and_the_callback_count(
    messages: list[bytes],
    sizes: list[int],
    writer_yields: list[bool],
    reader_yields: list[bool],
    capacity: int,
) -> None:
    calls: list[bool] = []

    async def writer(ctx: troupe.TaskContext) -> None:
        for i, m in enumerate(messages):
            await ctx.channel.write(m)
            if writer_yields[i]:
                await trio.lowlevel.checkpoint()

    async with troupe.open_system():
        t = await troupe.delay_task(writer, channel=capacity)
        t.bind_callback(lambda task: calls.append(task.finished))
        await t.execute()
        ch = t.channel
        assert ch is not None
        for i, m in enumerate(messages):
            if reader_yields[i]:
                await trio.lowlevel.checkpoint()
            data, length = await ch.read_bytes(sizes[i])
            assert length == len(m)
            assert data == m[: sizes[i]]
        with pytest.raises(troupe.ChannelClosed):
            await ch.read()
        await t.result()
        await trio.testing.wait_all_tasks_blocked()
    assert len(calls) == len(messages) + 1
    assert calls[-1] is True


# -- issue 17 ---------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    writes=st.integers(min_value=0, max_value=8),
    yields=st.lists(st.booleans(), min_size=8, max_size=8),
    capacity=st.integers(min_value=8, max_value=16),
)
async def test_issue_17_23_write_callbacks_never_see_the_task_finished(
    writes: int, yields: list[bool], capacity: int
) -> None:
    calls: list[bool] = []

    async def writer(ctx: troupe.TaskContext) -> None:
        for i in range(writes):
            await ctx.channel.write(i)
            if yields[i]:
                await trio.lowlevel.checkpoint()

    async with troupe.open_system():
        t = await troupe.delay_task(writer, channel=capacity)
        t.bind_callback(lambda task: calls.append(task.finished))
        await t.execute()
        await t.result()
        await trio.testing.wait_all_tasks_blocked()
    assert calls == [False] * writes + [True]


async def test_issue_17_23_a_callback_spotting_the_end_by_finished_finalises_once(
    system: troupe.ActorSystem,
) -> None:
    finalised: list[list[Any]] = []
    received: list[Any] = []

    async def body(ctx: troupe.TaskContext) -> None:
        for i in range(5):
            await ctx.channel.write(i)

    t = await troupe.delay_task(body, channel=True)

    def on_event(task: troupe.TaskHandle[None]) -> None:
        assert task.channel is not None
        with contextlib.suppress(trio.WouldBlock, troupe.ChannelClosed):
            received.append(task.channel.read_nowait())
        if task.finished:
            finalised.append(list(received))

    t.bind_callback(on_event)
    await t.execute()
    await t.result()
    await trio.testing.wait_all_tasks_blocked()
    assert finalised == [[0, 1, 2, 3, 4]]


async def test_issue_17_7_an_owner_reading_when_the_system_closes_gets_the_rest_then_channel_closed() -> None:
    got: list[object] = []

    async def body(ctx: troupe.TaskContext) -> None:
        await ctx.channel.write("before the end")
        await trio.sleep_forever()

    async def read_all(channel: troupe.TaskChannel) -> None:
        try:
            while True:
                got.append(await channel.read())
        except troupe.ChannelClosed as exc:
            got.append(exc)

    with trio.fail_after(5):
        async with trio.open_nursery() as outside, troupe.open_system():
            t = await troupe.run_task(body, channel=True)
            assert t.channel is not None
            outside.start_soon(read_all, t.channel)
            await trio.testing.wait_all_tasks_blocked()
    assert got[0] == "before the end"
    assert isinstance(got[1], troupe.ChannelClosed)
    error = await t.error()
    assert isinstance(error, troupe.TaskCancelled)
    assert error.shutdown
