"""A worker node of the cluster example: a pool of prime counters registered as ``primes``.

Run two of them and a front end, each in its own terminal (``make
demo-cluster`` does it all in one, and kills a worker midway)::

    troupe cluster serve    # a local nats-server on nats://127.0.0.1:4222
    troupe node examples/cluster/worker.py --cluster nats://127.0.0.1:4222 --node worker-1
    troupe node examples/cluster/worker.py --cluster nats://127.0.0.1:4222 --node worker-2
    troupe node examples/cluster/front.py --cluster nats://127.0.0.1:4222 --node front

Each worker spawns ``POOL`` actors and registers every one under the same
name: together, on every worker node, they form one group, and the NATS
server hands each message to the name to one of them. Counting primes is
pure Python CPU work, so one process computes one block at a time; two
worker processes use two cores. A counter yields to its node's other tasks
every ``SLICE`` numbers: troupe runs an actor's queued messages back to
back, and a node busy for seconds without a pause would miss its
heartbeats and be taken for lost.
"""

from __future__ import annotations

import trio
from primes import SLICE, Counted, CountPrimes, block_range, count_primes

import troupe

POOL = 3
"""Prime counters per worker node."""


class PrimeCounter(troupe.Actor[CountPrimes]):
    """Counts the primes of a block; the answer names this node and actor."""

    def __init__(self, node: str) -> None:
        self.node = node

    async def receive(self, msg: CountPrimes) -> Counted:
        numbers = block_range(msg.block)
        primes = 0
        for start in range(0, len(numbers), SLICE):
            primes += count_primes(numbers[start : start + SLICE])
            # Let the node's other tasks run between slices: its heartbeats, the other counters.
            # A node whose heartbeats wait behind seconds of CPU work is taken for lost.
            await trio.lowlevel.checkpoint()
        return Counted(msg.block, primes, self.node, self.ref.name)


async def main(system: troupe.ActorSystem, *, pool: int = POOL) -> None:
    """Spawn ``pool`` prime counters, register them as ``primes``, and serve until stopped."""
    node = system.cluster.node
    for i in range(1, pool + 1):
        counter = await system.spawn(lambda: PrimeCounter(node), name=f"primes-{i}")
        await system.cluster.register("primes", counter)
    print(f"{pool} prime counters registered as 'primes' on node {node}", flush=True)
    await trio.sleep_forever()  # a worker serves until its node is stopped
