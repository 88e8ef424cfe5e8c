"""The workloads on troupe, written the way its guide shows."""

from __future__ import annotations

import time

import trio
import trio.testing

import troupe

from .common import BURST, Run, peak_rss_bytes, rss_bytes


@troupe.message
class Hit:
    n: int = 0


@troupe.message
class Count:
    pass


@troupe.message
class Request:
    n: int
    reply_to: troupe.ActorRef[Answer]


@troupe.message
class Answer:
    n: int


@troupe.message
class AllAnswered:
    expected: int


class Sink(troupe.Actor[Hit | Count]):
    def __init__(self) -> None:
        self.seen = 0

    async def receive(self, msg: Hit | Count) -> int:
        if isinstance(msg, Hit):
            self.seen += 1
        return self.seen


class Idle(troupe.Actor[Hit]):
    async def receive(self, msg: Hit) -> None:
        pass


class Worker(troupe.Actor[Request]):
    async def receive(self, msg: Request) -> None:
        msg.reply_to.tell_nowait(Answer(msg.n * msg.n))


class Collector(troupe.Actor[Answer | AllAnswered]):
    """Counts answers; answers ``AllAnswered`` once that many have come."""

    def __init__(self) -> None:
        self.answers = 0
        self.expected = -1
        self.waiting: troupe.Reply[int] | None = None

    async def receive(self, msg: Answer | AllAnswered) -> None:
        if isinstance(msg, AllAnswered):
            self.expected = msg.expected
            self.waiting = self.context.defer_reply()
        else:
            self.answers += 1
        if self.waiting is not None and self.answers >= self.expected:
            self.waiting.send(self.answers)


async def _tell(n: int) -> Run:
    async with troupe.open_system() as system:
        sink = await system.spawn(Sink)
        msg = Hit()
        start = time.perf_counter()
        for i in range(n):
            sink.tell_nowait(msg)
            if i % BURST == BURST - 1:
                await trio.lowlevel.checkpoint()
        count = await sink.ask(Count())
        return Run(time.perf_counter() - start, count)


async def _ask(n: int) -> Run:
    async with troupe.open_system() as system:
        sink = await system.spawn(Sink)
        msg = Hit()
        count = 0
        start = time.perf_counter()
        for _ in range(n):
            count = await sink.ask(msg)
        return Run(time.perf_counter() - start, count)


async def _spawn(n: int) -> Run:
    async with troupe.open_system() as system:
        before = rss_bytes()
        start = time.perf_counter()
        refs = [await system.spawn(Idle) for _ in range(n)]
        await trio.testing.wait_all_tasks_blocked()
        elapsed = time.perf_counter() - start
        grown = peak_rss_bytes() - before
        started = sum(ref.alive for ref in refs)
    if any(ref.alive for ref in refs):
        msg = "troupe: actors still alive after the system closed"
        raise RuntimeError(msg)
    return Run(elapsed, started, grown / n)


async def _fanout(n: int, workers: int) -> Run:
    # Mailboxes sized for the burst: the client queues all n without waiting
    # (the collector may hold every answer and the client's AllAnswered).
    roomy = troupe.Mailbox(capacity=n + 1)
    async with troupe.open_system() as system:
        pool = [await system.spawn(Worker, mailbox=roomy) for _ in range(workers)]
        collector = await system.spawn(Collector, mailbox=roomy)
        start = time.perf_counter()
        for i in range(n):
            pool[i % workers].tell_nowait(Request(i, collector))
        answers = await collector.ask(AllAnswered(n), timeout=120)
        return Run(time.perf_counter() - start, answers)


def tell(n: int) -> Run:
    return trio.run(_tell, n)


def ask(n: int) -> Run:
    return trio.run(_ask, n)


def spawn(n: int) -> Run:
    return trio.run(_spawn, n)


def fanout(n: int, workers: int) -> Run:
    return trio.run(_fanout, n, workers)
