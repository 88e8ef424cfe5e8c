"""The workloads on raw trio: tasks and memory channels, no framework."""

from __future__ import annotations

import math
import time

import trio
import trio.testing

from .common import BURST, Run, peak_rss_bytes, rss_bytes


async def _tell(n: int) -> Run:
    send, receive = trio.open_memory_channel[int](math.inf)
    counted = 0

    async def consumer() -> None:
        nonlocal counted
        async for _ in receive:
            counted += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        start = time.perf_counter()
        async with send:
            for i in range(n):
                send.send_nowait(i)
                if i % BURST == BURST - 1:
                    await trio.lowlevel.checkpoint()
    return Run(time.perf_counter() - start, counted)


async def _ask(n: int) -> Run:
    requests, incoming = trio.open_memory_channel[tuple[int, trio.MemorySendChannel[int]]](0)

    async def server() -> None:
        seen = 0
        async for _, reply in incoming:
            seen += 1
            await reply.send(seen)

    count = 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        start = time.perf_counter()
        for i in range(n):
            reply_send, reply_receive = trio.open_memory_channel[int](1)
            await requests.send((i, reply_send))
            count = await reply_receive.receive()
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    return Run(elapsed, count)


async def _spawn(n: int) -> Run:
    started = 0

    async def parked(receive: trio.MemoryReceiveChannel[int]) -> None:
        nonlocal started
        started += 1
        async for _ in receive:
            pass

    keep: list[trio.MemorySendChannel[int]] = []
    async with trio.open_nursery() as nursery:
        before = rss_bytes()
        start = time.perf_counter()
        for _ in range(n):
            send, receive = trio.open_memory_channel[int](0)
            keep.append(send)
            nursery.start_soon(parked, receive)
        await trio.testing.wait_all_tasks_blocked()
        elapsed = time.perf_counter() - start
        grown = peak_rss_bytes() - before
        for send in keep:
            send.close()  # each task's loop ends: a clean shutdown
    return Run(elapsed, started, grown / n)


async def _fanout(n: int, workers: int) -> Run:
    answers_send, answers = trio.open_memory_channel[int](math.inf)

    async def worker(inbox: trio.MemoryReceiveChannel[int]) -> None:
        async for value in inbox:
            answers_send.send_nowait(value * value)

    inboxes = []
    async with trio.open_nursery() as nursery:
        for _ in range(workers):
            send, receive = trio.open_memory_channel[int](math.inf)
            inboxes.append(send)
            nursery.start_soon(worker, receive)
        start = time.perf_counter()
        for i in range(n):
            inboxes[i % workers].send_nowait(i)
        count = 0
        async for _ in answers:
            count += 1
            if count == n:
                break
        elapsed = time.perf_counter() - start
        for send in inboxes:
            send.close()
    return Run(elapsed, count)


def tell(n: int) -> Run:
    return trio.run(_tell, n)


def ask(n: int) -> Run:
    return trio.run(_ask, n)


def spawn(n: int) -> Run:
    return trio.run(_spawn, n)


def fanout(n: int, workers: int) -> Run:
    return trio.run(_fanout, n, workers)
