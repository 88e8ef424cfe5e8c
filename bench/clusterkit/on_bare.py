"""The pool's work in bare processes, with no messaging at all: the machine's own ceiling.

On a machine whose cores are shared (a VM, a busy neighbour), CPU-bound
work in 2 processes is not twice as fast as in 1 even with nothing
between them. This role measures that: each process burns its share of the
pool's items, all starting at one agreed moment; a pool over NATS cannot
scale better than this.
"""

from __future__ import annotations

import time

from .common import burn, now, report


def burner(n: int, cost: int, at: float) -> None:
    """Burn ``n`` items of ``cost`` from the moment ``at`` (the shared monotonic clock); report the end."""
    late = now() - at
    if late > 0:
        msg = f"started {late:.2f} s after the agreed moment: the machine is too busy to measure"
        raise RuntimeError(msg)
    time.sleep(at - now())
    count = 0
    for _ in range(n):
        burn(cost)
        count += 1
    report(end=now(), count=count)
