"""What ends is freed by reference counting: nothing waits for the cyclic GC.

A stopped actor or a finished task used to leave a reference cycle (the cell
and its own ref; the trio task, its context and the cell): 15 objects per
task that only the cyclic collector could free, half of a concurrent
fan-out's time with the collector on.
"""

from __future__ import annotations

import collections
import gc
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import pytest
import trio
import trio.testing

import troupe

from kit import Counter, GetCount, Increment


@contextmanager
def _cyclic_garbage() -> Iterator[list[str]]:
    """Collects the type names of the objects only the cyclic GC would free."""
    found: list[str] = []
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield found
        gc.collect()
        found.extend(type(o).__qualname__ for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


async def _noop() -> int:
    return 1


def _work() -> int:
    return 2


async def _settle() -> None:
    for _ in range(5):
        await trio.lowlevel.checkpoint()
    await trio.testing.wait_all_tasks_blocked()


async def _spawn_ask_stop(system: troupe.ActorSystem) -> None:
    counter = await system.spawn(Counter)
    await counter.tell(Increment(2))
    # timeout=None: an ask with a timeout stays on the system's deadline heap
    # (compacted every 256 asks), which would hold the cell a while longer
    assert await counter.ask(GetCount(), timeout=None) == 2
    await counter.stop()


async def _run_task(fn: Callable[[], object], *, job: bool = False) -> None:
    task = await troupe.run_task(fn, job=job)
    assert await task.result() in (1, 2)


async def _producer(ctx: troupe.TaskContext) -> int:
    await ctx.channel.write("hello")
    return 1


async def _channel_task(*, bound: bool) -> None:
    task = await troupe.delay_task(_producer, channel=4)
    seen: list[bool] = []
    if bound:
        task.bind_callback(lambda t: seen.append(t.finished))
    await task.execute()
    channel = task.channel
    assert channel is not None
    assert await channel.read() == "hello"
    assert await task.result() == 1
    if bound:
        await _settle()  # the channel's actor delivers the finished call
        assert seen[-1] is True


WORK: dict[str, Callable[[troupe.ActorSystem], Awaitable[None]]] = {
    "actor spawned, asked, stopped": _spawn_ask_stop,
    "inline task": lambda _: _run_task(_noop),
    "thread task": lambda _: _run_task(_work),
    "task tracked as a job": lambda _: _run_task(_noop, job=True),
    "task with a channel": lambda _: _channel_task(bound=False),
    "task with a channel and a bound callback": lambda _: _channel_task(bound=True),
}


@pytest.mark.parametrize("name", list(WORK))
async def test_nothing_is_left_for_the_cyclic_gc(name: str) -> None:
    async with troupe.open_system(jobs=troupe.MemoryJobStore()) as system:
        work = WORK[name]
        await work(system)  # first use starts the runtime's own actors
        await _settle()
        with _cyclic_garbage() as garbage:
            for _ in range(20):
                await work(system)
            await _settle()
        assert not garbage, f"{name}: {collections.Counter(garbage).most_common(10)}"
