"""What the cluster example's nodes share: the two messages and the work itself.

The front end asks ``CountPrimes(block)``; a worker answers ``Counted``,
naming the node and actor that did the work. Both sides import this module,
so both know the messages' wire names (``@troupe.message(name=...)``): a
node builds only message classes it has registered, nothing else.
"""

from __future__ import annotations

import troupe

BLOCK = 10_000
"""Numbers per block: counting the primes of one takes about 30 ms of pure Python."""
SLICE = 1_000
"""Numbers a worker counts between two checkpoints (a few ms of CPU)."""
START = 1_000_000
"""Where block 0 starts."""


@troupe.message(name="example.cluster.CountPrimes")
class CountPrimes:
    """How many primes block ``block`` holds (``START + block * BLOCK`` up to the next block)."""

    block: int


@troupe.message(name="example.cluster.Counted")
class Counted:
    """The answer to ``CountPrimes``: the count, and who computed it."""

    block: int
    primes: int
    node: str
    actor: str


def block_range(block: int) -> range:
    """The numbers of block ``block``."""
    start = START + block * BLOCK
    return range(start, start + BLOCK)


def is_prime(n: int) -> bool:
    """Whether ``n`` is prime, by trial division (slow on purpose: the work is the point)."""
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    d = 3
    while d * d <= n:
        if n % d == 0:
            return False
        d += 2
    return True


def count_primes(numbers: range) -> int:
    """How many of ``numbers`` are primes: CPU-bound, it never waits."""
    return sum(1 for n in numbers if is_prime(n))
