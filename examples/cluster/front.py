"""The front end of the cluster example: hands out blocks of numbers and asks again what failed.

Run by ``make demo-cluster`` (``examples/cluster/demo.py``) as
``troupe node examples/cluster/front.py --cluster URL --node front``,
next to two workers (see ``worker.py``).

- It waits until both workers' prime counters have registered (``wait_for``,
  no sleeping), then asks the ``primes`` group for ``ITEMS`` blocks,
  ``SENDERS`` asks at a time. The NATS server hands each ask to one live
  counter, on either worker.
- An ask that fails (no answer in time, the counter stopped or crashed, the
  cluster connection broke) is asked again: delivery is at most once, so
  the front end, which knows what it still needs, re-asks. When a worker is
  killed, the asks it held time out and go to the other worker.
- A lookout actor watches every counter (``ctx.watch`` across nodes) and says
  when all of a node's counters are gone: after a SIGKILL that is the
  failure detector, once the node's heartbeats have stopped for
  ``failure_timeout`` seconds.
- Each answer names the node that computed it: the front end ends with the
  count per node and ``all N items done``.
"""

from __future__ import annotations

import collections
from typing import Any

import trio
from primes import BLOCK, START, Counted, CountPrimes
from worker import POOL

import troupe

ITEMS = 60
"""Blocks to count."""
WORKERS = 2
"""Worker nodes to wait for."""
SENDERS = 6
"""Asks in flight at a time."""
ASK_TIMEOUT = 4.0
"""Seconds an ask may take before it is asked again (a block takes about 30 ms;
a killed worker's asks time out after this). Longer than the demo's failure
timeout, so that the lookout reports a killed node before its asks are asked again."""
ATTEMPTS = 10
"""Asks per block before the front end gives up."""
RETRIED = (troupe.AskTimeout, troupe.ActorStopped, troupe.ActorCrashed, troupe.ClusterError)
"""What makes the front end ask again."""


class GaveUp(troupe.TroupeError):
    """A block failed ``ATTEMPTS`` times in a row."""


class Lookout(troupe.Actor[troupe.Terminated]):
    """Watches every prime counter; says when all of a node's counters are gone, and why."""

    def __init__(self, counters: list[troupe.RemoteRef[Any]]) -> None:
        self.counters = counters
        self.left = collections.Counter(ref.node for ref in counters)

    async def on_start(self) -> None:
        for ref in self.counters:
            self.context.watch(ref)

    async def receive(self, msg: troupe.Terminated) -> None:
        node = msg.ref.node
        self.left[node] -= 1
        if self.left[node] == 0:
            why = (
                "it left the cluster" if msg.reason is None else f"{type(msg.reason).__name__}: {msg.reason}"
            )
            print(f"lookout: all of node {node}'s counters are gone: {why}", flush=True)


class Tally:
    """The answers so far, and who computed them."""

    def __init__(self, items: int) -> None:
        self.items = items
        self.done = 0
        self.retries = 0
        self.primes = 0
        self.by_node: collections.Counter[str] = collections.Counter()

    def record(self, answer: Counted) -> None:
        """Count ``answer`` and print its line."""
        self.done += 1
        self.primes += answer.primes
        self.by_node[answer.node] += 1
        print(
            f"done {self.done}/{self.items}: block {answer.block} holds {answer.primes} primes "
            f"(by {answer.node}/{answer.actor})",
            flush=True,
        )


async def count_block(system: troupe.ActorSystem, block: int, tally: Tally) -> None:
    """Ask the ``primes`` group for ``block`` until an answer comes."""
    cluster = system.cluster
    primes = cluster.ref("primes", CountPrimes)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            answer = await primes.ask(CountPrimes(block), timeout=ASK_TIMEOUT)
        except RETRIED as exc:
            tally.retries += 1
            print(f"retry block {block}: attempt {attempt} failed: {type(exc).__name__}", flush=True)
            if isinstance(exc, troupe.ActorStopped):  # no counter is registered: wait for one
                await cluster.wait_for("primes", timeout=30)
            elif isinstance(exc, troupe.ClusterError):  # the connection broke: wait for troupe's reconnect
                await cluster.wait_connected(timeout=30)
            continue
        assert isinstance(answer, Counted)
        tally.record(answer)
        return
    msg = (
        f"block {block} failed {ATTEMPTS} times in a row; are the workers running? "
        f"(troupe cluster status --cluster {cluster.url} lists them)"
    )
    raise GaveUp(msg)


async def main(system: troupe.ActorSystem, *, items: int = ITEMS, workers: int = WORKERS) -> dict[str, int]:
    """Count the primes of ``items`` blocks on ``workers`` worker nodes; the count per node."""
    cluster = system.cluster
    print(f"waiting for {workers} workers' {workers * POOL} prime counters", flush=True)
    counters = await cluster.wait_for("primes", workers * POOL, timeout=60)
    await system.spawn(lambda: Lookout(counters), name="lookout")
    nodes = sorted({str(ref.node) for ref in counters})
    print(f"{len(counters)} counters on {', '.join(nodes)}; asking for {items} items", flush=True)
    tally = Tally(items)
    blocks = iter(range(items))  # shared by the senders: each takes the next block

    async def sender() -> None:
        for block in blocks:
            await count_block(system, block, tally)

    async with trio.open_nursery() as nursery:
        for _ in range(SENDERS):
            nursery.start_soon(sender)
    for node, count in sorted(tally.by_node.items()):
        print(f"  {node}: {count} items", flush=True)
    stop = START + items * BLOCK
    print(f"{tally.primes} primes between {START:,} and {stop:,}; {tally.retries} asks repeated", flush=True)
    print(f"all {items} items done", flush=True)
    return dict(tally.by_node)
