"""The workloads on Pykka: ``ThreadingActor``, one OS thread per actor."""

from __future__ import annotations

import time
from typing import Any, cast

import pykka

from .common import Run, Unsupported, peak_rss_bytes, rss_bytes, thread_limit

_COUNT = "count"


class Sink(pykka.ThreadingActor):
    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def on_receive(self, message: Any) -> int:
        if message != _COUNT:
            self.seen += 1
        return self.seen


class Idle(pykka.ThreadingActor):
    def on_receive(self, message: Any) -> None:
        pass


class Worker(pykka.ThreadingActor):
    def on_receive(self, message: Any) -> int:
        return int(message) * int(message)


def tell(n: int) -> Run:
    sink = Sink.start()
    try:
        start = time.perf_counter()
        for i in range(n):
            sink.tell(i)
        count = cast("int", sink.ask(_COUNT))
        return Run(time.perf_counter() - start, count)
    finally:
        sink.stop()


def ask(n: int) -> Run:
    sink = Sink.start()
    try:
        count = 0
        start = time.perf_counter()
        for i in range(n):
            count = cast("int", sink.ask(i))
        return Run(time.perf_counter() - start, count)
    finally:
        sink.stop()


def spawn(n: int) -> Run:
    # Leave room for the rest of the machine: every thread takes a process id.
    room = thread_limit() - 2_000
    if n > room:
        msg = f"one OS thread per actor; this machine allows about {room:,} more threads"
        raise Unsupported(msg)
    before = rss_bytes()
    start = time.perf_counter()
    refs = [Idle.start() for _ in range(n)]
    elapsed = time.perf_counter() - start
    grown = peak_rss_bytes() - before
    started = sum(ref.is_alive() for ref in refs)
    pykka.get_all([ref.stop(block=False) for ref in refs])
    return Run(elapsed, started, grown / n)


def fanout(n: int, workers: int) -> Run:
    pool = [Worker.start() for _ in range(workers)]
    try:
        start = time.perf_counter()
        futures = [pool[i % workers].ask(i, block=False) for i in range(n)]
        answers = list(pykka.get_all(futures))
        return Run(time.perf_counter() - start, len(answers))
    finally:
        for ref in pool:
            ref.stop()
