"""The workloads on asyncio: tasks, queues and an actor loop written the obvious way."""

from __future__ import annotations

import asyncio
import time

from .common import BURST, Run, peak_rss_bytes, rss_bytes

_STOP = object()


class Actor:
    """A task reading a queue, handling one message at a time."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[object] = asyncio.Queue()
        self.seen = 0
        self.running = False
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        self.running = True
        while True:
            msg = await self.inbox.get()
            if msg is _STOP:
                return
            self.handle(msg)

    def handle(self, msg: object) -> None:
        if isinstance(msg, asyncio.Future):
            self.seen += 1
            msg.set_result(self.seen)
        else:
            self.seen += 1

    def tell(self, msg: object) -> None:
        self.inbox.put_nowait(msg)

    async def ask(self) -> int:
        reply: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.inbox.put_nowait(reply)
        return await reply

    async def stop(self) -> None:
        self.inbox.put_nowait(_STOP)
        await self.task


class Worker(Actor):
    def __init__(self, answers: asyncio.Queue[int]) -> None:
        super().__init__()
        self.answers = answers

    def handle(self, msg: object) -> None:
        assert isinstance(msg, int)
        self.answers.put_nowait(msg * msg)


async def _tell(n: int) -> Run:
    actor = Actor()
    start = time.perf_counter()
    for i in range(n):
        actor.tell(i)
        if i % BURST == BURST - 1:
            await asyncio.sleep(0)
    count = await actor.ask() - 1  # the ask itself counted once
    elapsed = time.perf_counter() - start
    await actor.stop()
    return Run(elapsed, count)


async def _ask(n: int) -> Run:
    actor = Actor()
    count = 0
    start = time.perf_counter()
    for _ in range(n):
        count = await actor.ask()
    elapsed = time.perf_counter() - start
    await actor.stop()
    return Run(elapsed, count)


async def _spawn(n: int) -> Run:
    before = rss_bytes()
    start = time.perf_counter()
    actors = [Actor() for _ in range(n)]
    await asyncio.sleep(0)  # every task runs up to its first get()
    elapsed = time.perf_counter() - start
    grown = peak_rss_bytes() - before
    started = sum(a.running for a in actors)
    for a in actors:
        a.tell(_STOP)
    await asyncio.gather(*(a.task for a in actors))
    return Run(elapsed, started, grown / n)


async def _fanout(n: int, workers: int) -> Run:
    answers: asyncio.Queue[int] = asyncio.Queue()
    pool = [Worker(answers) for _ in range(workers)]
    start = time.perf_counter()
    for i in range(n):
        pool[i % workers].tell(i)
    count = 0
    while count < n:
        await answers.get()
        count += 1
    elapsed = time.perf_counter() - start
    for w in pool:
        await w.stop()
    return Run(elapsed, count)


def tell(n: int) -> Run:
    return asyncio.run(_tell(n))


def ask(n: int) -> Run:
    return asyncio.run(_ask(n))


def spawn(n: int) -> Run:
    return asyncio.run(_spawn(n))


def fanout(n: int, workers: int) -> Run:
    return asyncio.run(_fanout(n, workers))
