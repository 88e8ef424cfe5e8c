"""The scheduling strategies: how each batch of runnable trio tasks is ordered, from a seed.

trio runs its tasks in batches: everything runnable at the start of a pass
runs once, in an order trio randomizes, and what becomes runnable during
the pass waits for the next one. With ``_ALLOW_DETERMINISTIC_SCHEDULING``
(which pytest-trio and Hypothesis also set) trio orders each batch by
calling ``shuffle(batch)`` on its module-level random source; during one
explored schedule a `Scheduler` stands in for that source. So every order
an explored schedule takes is one trio itself could take, and the same
seed gives the same orders.

- ``random``: each batch is shuffled by a generator seeded with the schedule's seed.
- ``pct`` (probabilistic concurrency testing, Burckhardt et al., ASPLOS 2010,
  as in Microsoft Coyote): every task gets a random priority when first
  seen and each batch runs highest first; at ``changes`` random steps the
  task running then drops below every other. A bug that needs one task to
  stay ahead of another for many steps, then fall behind at one point, has
  a chance of about 1/(tasks x steps) per schedule, where a random shuffle
  has 1/2 per step.
"""

from __future__ import annotations

import abc
import random
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from trio.lowlevel import Task

PCT_CHANGES: Final = 2  # priority change points per schedule (PCT's depth d = 3)


class Scheduler(abc.ABC):
    """Stands in for ``trio._core._run._r`` during one schedule: orders batches, counts steps.

    Once ``max_steps`` steps have run, every task but the ``watchdog`` is
    held back (a livelock never lets trio go idle), so the watchdog runs,
    reports the hang, and `release` gives the held tasks back for the
    teardown.
    """

    def __init__(self, seed: int, max_steps: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - a schedule, not a secret
        self.steps = 0
        self.max_steps = max_steps
        self.over = False
        self.watchdog: Task | None = None
        self.held: list[Task] = []
        self._releasing = False
        self.batch = 0  # how many tasks the pass running now runs

    # trio's scheduler calls these three on its random source
    def random(self) -> float:
        return self.rng.random()

    def uniform(self, a: float, b: float) -> float:
        return self.rng.uniform(a, b)

    def shuffle(self, batch: list[Task]) -> None:
        if self.over:
            if self._releasing:
                batch.extend(self.held)
                self.held.clear()
            else:
                self.held.extend(t for t in batch if t is not self.watchdog)
                batch[:] = [t for t in batch if t is self.watchdog]
                self.batch = len(batch)
                return
        self.batch = len(batch)
        self.order(batch)
        self.steps += len(batch)
        if self.steps > self.max_steps and not self._releasing and self.watchdog is not None:
            self.over = True  # (only once the watchdog runs: it is the one that reports it)

    def release(self) -> None:
        """Run the held tasks again (the schedule is being torn down)."""
        self._releasing = True

    @abc.abstractmethod
    def order(self, batch: list[Task]) -> None:
        """Put ``batch`` in the order to run it: trio pops from the end."""


class RandomScheduler(Scheduler):
    """Each batch shuffled by the schedule's generator."""

    def order(self, batch: list[Task]) -> None:
        self.rng.shuffle(batch)


class FifoScheduler(Scheduler):
    """Each batch in the order its tasks were created (PCT's calibration run)."""

    def order(self, batch: list[Task]) -> None:
        batch.reverse()  # trio sorted it by creation; it pops from the end


class PCTScheduler(Scheduler):
    """Random priorities, highest first, with `PCT_CHANGES` change points over ``horizon`` steps."""

    def __init__(self, seed: int, max_steps: int, horizon: int) -> None:
        super().__init__(seed, max_steps)
        self.priority: dict[Task, float] = {}
        points = sorted(self.rng.randint(1, max(horizon, 1)) for _ in range(PCT_CHANGES))
        # the i-th change point drops its task to -i - 1: below every first priority (in [1, 2))
        # and below the tasks dropped before it
        self.changes = {step: -float(i + 1) for i, step in enumerate(points)}

    def order(self, batch: list[Task]) -> None:
        priority = self.priority
        rng = self.rng
        for task in batch:
            if task not in priority:
                priority[task] = 1.0 + rng.random()
        batch.sort(key=priority.__getitem__)  # lowest first: trio pops the highest first
        changes = self.changes
        if changes:
            last = len(batch) - 1
            for position in range(len(batch)):
                level = changes.pop(self.steps + position + 1, None)
                if level is not None:
                    priority[batch[last - position]] = level


def scheduler_for(strategy: str, seed: int, max_steps: int, horizon: int) -> Scheduler:
    if strategy == "pct":
        return PCTScheduler(seed, max_steps, horizon)
    return RandomScheduler(seed, max_steps)
