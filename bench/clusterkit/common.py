"""What every process of the cluster benchmark shares: the payload, the subjects, the clock, the reports."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PAYLOAD = b'{"type":"bench.item","n":123456,"text":"abcdefghijklmnop"}'
"""What every contender sends: the JSON a small troupe message would be (58 bytes)."""

TELL_SUBJECT = "bench.tell"
"""The subject of the tell stream."""

ASK_SUBJECT = "bench.ask"
"""The subject the responders answer on."""

POOL_SUBJECT = "bench.pool"
"""The subject of the CPU-bound pool's items."""

POOL_QUEUE = "bench-pool"
"""The queue group the pool's workers join: each item goes to one of them."""

BURST = 256
"""Messages a sender queues before it yields once to its event loop."""

WARM_UP = 1
"""Untimed round trips a requester makes first (connections and inboxes set up)."""


def now() -> float:
    """The clock every process reads: ``CLOCK_MONOTONIC``, one clock for the whole machine.

    A publisher's start and a subscriber's end, taken in different
    processes, subtract to the stream's duration.
    """
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def report(**fields: Any) -> None:
    """Tell the orchestrator something: one JSON line on stdout, flushed at once."""
    print(json.dumps(fields), flush=True)


async def time_asks(ask: Callable[[], Awaitable[int]], n: int) -> None:
    """Ask [`WARM_UP`][clusterkit.common.WARM_UP] times, then ``n`` times on the clock, one after the other.

    ``ask()`` makes one round trip and returns the responder's count; the
    report is ``{"start", "end", "count"}``, the count being how many of
    the timed asks the responder says it answered. Any event loop: it only awaits ``ask``.
    """
    first = 0
    for _ in range(WARM_UP):
        first = await ask()
    last = first
    start = now()
    for _ in range(n):
        last = await ask()
    end = now()
    report(start=start, end=end, count=last - first)


def answer(count: int) -> bytes:
    """A responder's answer: the requests it has answered, this one included, as JSON."""
    return b'{"type":"bench.count","n":%d}' % count


def answered(data: bytes) -> int:
    """The count in an [`answer()`][clusterkit.common.answer]."""
    n = json.loads(data)["n"]
    if not isinstance(n, int):
        msg = f"an answer's count is not an int: {data!r}; the responder sent garbage"
        raise TypeError(msg)
    return n


def burn(cost: int) -> int:
    """CPU-bound work for the pool: ``cost`` multiply-adds in pure Python (no I/O, holds the GIL)."""
    total = 0
    for i in range(cost):
        total = (total + i * i) % 1_000_003
    return total


def item(index: int) -> bytes:
    """The pool's item number ``index``."""
    return b'{"type":"bench.work","n":%d}' % index


def kin_cpu_seconds() -> float:
    """CPU seconds of the other processes running this very command line (forked, never exec'd).

    Thespian forks its admin and actor processes from the asker, in a
    session of their own, so the orchestrator's ``RUSAGE_CHILDREN`` never
    sees them: the asker reports this instead. Linux only (0 elsewhere).
    """
    proc = Path("/proc")
    mine = (proc / "self" / "cmdline").read_bytes() if proc.exists() else b""
    total = 0
    for entry in proc.glob("[0-9]*") if mine else ():
        try:
            if int(entry.name) == os.getpid() or (entry / "cmdline").read_bytes() != mine:
                continue
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:  # it ended meanwhile
            continue
        total += sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
    return total / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Run:
    """One timed run of one workload on one contender, as the orchestrator saw it."""

    seconds: float
    """Wall time of the timed part (``inf`` if it never ended)."""
    count: int
    """What the receiving side counted: messages, answers in turn, items answered."""
    shares: tuple[int, ...] = ()
    """Pool runs only: the items each worker process handled."""

    @property
    def rate(self) -> float:
        """``count`` per second."""
        return self.count / self.seconds
