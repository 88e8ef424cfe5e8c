"""The workloads on Thespian's ``simpleSystemBase`` (every actor in the caller's thread)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from thespian.actors import Actor, ActorAddress, ActorSystem

from .common import Run, peak_rss_bytes, rss_bytes

_COUNT = "count"
_HIT = "hit"


@dataclass(frozen=True)
class Start:
    n: int
    pool: tuple[ActorAddress, ...]


class Sink(Actor):  # type: ignore[misc] # thespian ships no type information
    seen = 0

    def receiveMessage(self, message: Any, sender: ActorAddress) -> None:  # noqa: N802 - Thespian's name
        if message == _COUNT:
            self.send(sender, self.seen)
        elif message == _HIT:
            self.seen += 1
            self.send(sender, self.seen)
        elif not isinstance(message, ActorAddress):  # not a system message
            self.seen += 1


class Idle(Actor):  # type: ignore[misc]
    def receiveMessage(self, message: Any, sender: ActorAddress) -> None:  # noqa: N802
        pass


class Worker(Actor):  # type: ignore[misc]
    def receiveMessage(self, message: Any, sender: ActorAddress) -> None:  # noqa: N802
        if isinstance(message, int):
            self.send(sender, message * message)


class Client(Actor):  # type: ignore[misc]
    """Fans a ``Start`` out over its pool and answers once every answer is in."""

    answers = 0
    expected = -1
    requester: ActorAddress | None = None

    def receiveMessage(self, message: Any, sender: ActorAddress) -> None:  # noqa: N802
        if isinstance(message, Start):
            self.expected = message.n
            self.requester = sender
            for i in range(message.n):
                self.send(message.pool[i % len(message.pool)], i)
        elif isinstance(message, int):
            self.answers += 1
            if self.answers == self.expected:
                self.send(self.requester, self.answers)


def _system() -> Any:
    return ActorSystem("simpleSystemBase", transientUnique=True)


def tell(n: int) -> Run:
    system = _system()
    try:
        sink = system.createActor(Sink)
        start = time.perf_counter()
        for i in range(n):
            system.tell(sink, i)
        count = system.ask(sink, _COUNT, 60)
        return Run(time.perf_counter() - start, count)
    finally:
        system.shutdown()


def ask(n: int) -> Run:
    system = _system()
    try:
        sink = system.createActor(Sink)
        count = 0
        start = time.perf_counter()
        for _ in range(n):
            count = system.ask(sink, _HIT, 60)
        return Run(time.perf_counter() - start, count)
    finally:
        system.shutdown()


def spawn(n: int) -> Run:
    system = _system()
    try:
        before = rss_bytes()
        start = time.perf_counter()
        addresses = [system.createActor(Idle) for _ in range(n)]
        elapsed = time.perf_counter() - start
        grown = peak_rss_bytes() - before
        return Run(elapsed, len({str(a) for a in addresses}), grown / n)
    finally:
        system.shutdown()


def fanout(n: int, workers: int) -> Run:
    system = _system()
    try:
        pool = tuple(system.createActor(Worker) for _ in range(workers))
        client = system.createActor(Client)
        start = time.perf_counter()
        answers = system.ask(client, Start(n, pool), 600)
        return Run(time.perf_counter() - start, answers)
    finally:
        system.shutdown()
