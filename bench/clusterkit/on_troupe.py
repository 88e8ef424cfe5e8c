"""The roles as troupe cluster nodes: actors registered under names, ``RemoteRef`` tells and asks.

What a user writes: a message class whose encoding is the benchmark's
[`PAYLOAD`][clusterkit.common.PAYLOAD] exactly, an actor per role,
``system.cluster.register`` on one side and ``system.cluster.ref`` on the
other. Everything troupe adds to the bare client
([`on_native`][clusterkit.on_native]) is measured: the codec both ways,
the mailbox, the actor's turn, the ask's timeout, dead-letter accounting.
"""

from __future__ import annotations

import os

import trio

import troupe

from .common import burn, now, report, time_asks
from .on_native import _until

CLUSTER = "bench"
BIG = troupe.Mailbox(capacity=1_000_000)
"""The stream's receiver takes bursts: remote tells never wait for room in a remote mailbox."""


@troupe.message(name="bench.item")
class Item:
    """The stream's message: encoded, exactly the benchmark's 58-byte payload."""

    n: int
    text: str


ITEM = Item(123456, "abcdefghijklmnop")


@troupe.message(name="bench.work")
class Work:
    """One item for the pool."""

    n: int


def _config(url: str, node: str) -> troupe.Cluster:
    return troupe.Cluster(url=url, node=node, name=CLUSTER)


class _Counter(troupe.Actor[Item]):
    def __init__(self, n: int, done: trio.Event) -> None:
        self.n = n
        self.count = 0
        self.end: float | None = None
        self.done = done

    async def receive(self, msg: Item) -> None:  # noqa: ARG002 - counted, not read
        self.count += 1
        if self.count == self.n:
            self.end = now()
            self.done.set()


class _Answerer(troupe.Actor[Item]):
    def __init__(self) -> None:
        self.count = 0

    async def receive(self, msg: Item) -> int:  # noqa: ARG002 - counted, not read
        self.count += 1
        return self.count


class _Burner(troupe.Actor[Work]):
    def __init__(self, cost: int) -> None:
        self.cost = cost
        self.count = 0

    async def receive(self, msg: Work) -> int:  # noqa: ARG002 - every item is the same work
        self.count += 1
        return burn(self.cost)


async def subscriber(url: str, n: int) -> None:
    """Count ``n`` messages of the tell stream in an actor registered as ``tell``."""
    async with troupe.open_system(cluster=_config(url, "subscriber")) as system:
        done = trio.Event()
        counter = _Counter(n, done)
        await system.cluster.register("tell", await system.spawn(lambda: counter, mailbox=BIG))
        report(ready=True)
        await _until(done)
        report(end=counter.end, count=counter.count)


async def publisher(url: str, n: int) -> None:
    """Tell the stream: ``n`` messages to the name ``tell``."""
    async with troupe.open_system(cluster=_config(url, "publisher")) as system:
        await system.cluster.wait_for("tell")
        stream = system.cluster.ref("tell", Item)
        start = now()
        for _ in range(n):
            await stream.tell(ITEM)
        report(start=start, done=now(), count=n)


async def responder(url: str) -> None:
    """Answer asks to the name ``ask`` until SIGTERM."""
    async with troupe.open_system(cluster=_config(url, "responder")) as system:
        answerer = _Answerer()
        await system.cluster.register("ask", await system.spawn(lambda: answerer))
        report(ready=True)
        await _until(trio.Event())
        report(count=answerer.count)


async def requester(url: str, n: int) -> None:
    """Ask ``n`` times, one after the other."""
    async with troupe.open_system(cluster=_config(url, "requester")) as system:
        await system.cluster.wait_for("ask")
        ref = system.cluster.ref("ask", Item)

        async def ask() -> int:
            count: int = await ref.ask(ITEM, timeout=10)
            return count

        await time_asks(ask, n)


async def pool_worker(url: str, cost: int) -> None:
    """Burn ``cost`` for every item asked of the name ``pool``, until SIGTERM."""
    async with troupe.open_system(cluster=_config(url, f"worker-{os.getpid()}")) as system:
        burner = _Burner(cost)
        await system.cluster.register("pool", await system.spawn(lambda: burner))
        report(ready=True)
        await _until(trio.Event())
        report(count=burner.count)


async def pool_client(url: str, n: int, cost: int, window: int) -> None:
    """Ask the pool ``n`` items, ``window`` at a time."""
    async with troupe.open_system(cluster=_config(url, "client")) as system:
        await system.cluster.wait_for("pool")
        pool = system.cluster.ref("pool", Work)
        expected = burn(cost)
        items = iter(range(n))
        wrong: list[object] = []
        count = 0

        async def sender() -> None:
            nonlocal count
            for index in items:
                answer = await pool.ask(Work(index), timeout=60)
                count += 1
                if answer != expected:
                    wrong.append(answer)

        start = now()
        async with trio.open_nursery() as nursery:
            for _ in range(min(window, n)):
                nursery.start_soon(sender)
        end = now()
        if wrong:
            msg = f"pool: {len(wrong)} wrong answers, like {wrong[0]!r} (expected {expected!r})"
            raise RuntimeError(msg)
        report(start=start, end=end, count=count)
