"""What the fault suite (``tests/faults/``) shares: its budget and the figures it prints.

Every fault test runs twice over: with a fixed seed and a small budget in
``make test`` (CI), and with a random seed and a large budget under
``pytest --soak`` (``make soak``), which prints its seed;
``pytest --soak --hypothesis-seed=SEED`` replays that run. Each test reports what it ran with
`report` (examples, operations, messages, and what was lost, which must be
0); the figures are printed at the end of the run, in both modes, so that a
CI log shows what the suite exercised.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

import trio
import trio.testing
from hypothesis import HealthCheck, settings

SOAK = False
"""True under ``pytest --soak`` (set by ``tests/conftest.py`` before collection)."""

SEED = 20261202
"""The fixed seed of CI runs; a soak run draws its own and prints it."""

_figures: list[tuple[str, dict[str, Any]]] = []


def configure(*, soak: bool, seed: int | None = None) -> None:
    """Called once by ``tests/conftest.py``: choose the mode and the seed.

    A soak run draws a random seed unless one is given (``--hypothesis-seed``,
    which also seeds hypothesis), so the seed it prints replays it.
    """
    global SOAK, SEED  # noqa: PLW0603 - one switch for the whole run, set before collection
    SOAK = soak
    if seed is not None:
        SEED = seed
    elif soak:
        SEED = random.SystemRandom().randrange(2**32)


def budget(ci: int, soak: int) -> int:
    """``ci`` in a normal run, ``soak`` under ``--soak``."""
    return soak if SOAK else ci


def fuzz_settings(ci: int, soak: int, **overrides: Any) -> settings:
    """Hypothesis settings for a fault test: derandomized (a fixed seed) in CI, random under ``--soak``."""
    options: dict[str, Any] = {
        "max_examples": budget(ci, soak),
        "deadline": None,
        "derandomize": not SOAK,
        "database": None,
        "suppress_health_check": list(HealthCheck),
        "print_blob": True,
    }
    options.update(overrides)
    return settings(**options)


def rng(salt: str) -> random.Random:
    """A random generator seeded from the run's seed and ``salt`` (a test's own stream)."""
    return random.Random(f"{SEED}:{salt}")


def report(test: str, **figures: Any) -> None:
    """Record what a fault test ran (printed at the end of the session)."""
    _figures.append((test, figures))


def lines() -> list[str]:
    """The figures reported so far, one line per report."""
    out = []
    for test, figures in _figures:
        shown = ", ".join(
            f"{key}={value:,}" if isinstance(value, int) else f"{key}={value}"
            for key, value in figures.items()
        )
        out.append(f"{test}: {shown}")
    return out


class Cut:
    """A cancel scope that cancels itself at a chosen await of the task that enters it.

    ``at=None`` never cancels and counts the awaits (``steps``): how many
    times the task was resumed inside the block. ``at=0`` cancels on entry
    (before the first await); ``at=k`` just before the task resumes for the
    k-th time: a wake-up that is itself a cancellation (a timeout, trio's
    sleep) then turns into this one, any other is delivered at the next
    checkpoint.
    Looping ``k`` over ``0..steps`` puts a cancellation at every await of
    the block in turn (`each_cancel_point`).
    """

    def __init__(self, at: int | None) -> None:
        self.at = at
        self.steps = 0
        self.fired = False
        self.scope = trio.CancelScope()
        self._task: trio.lowlevel.Task | None = None

    def __enter__(self) -> trio.CancelScope:
        self._task = trio.lowlevel.current_task()
        trio.lowlevel.add_instrument(self)  # type: ignore[arg-type] # duck-typed Instrument
        scope = self.scope.__enter__()
        if self.at == 0:
            self._fire()
        return scope

    def __exit__(self, *exc: object) -> bool:
        trio.lowlevel.remove_instrument(self)  # type: ignore[arg-type]
        return bool(self.scope.__exit__(*exc))  # type: ignore[arg-type]

    def _fire(self) -> None:
        self.fired = True
        self.scope.cancel()

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        """The instrument hook: count the entering task's steps, cancel at the chosen one."""
        if task is self._task:
            self.steps += 1
            if self.steps == self.at:
                self._fire()


def each_cancel_point(scenario: Callable[[Cut], Awaitable[object]], *, limit: int = 10_000) -> int:
    """Run ``scenario(cut)`` once uncancelled, then once with a cancellation at each of its awaits.

    Each run is a fresh ``trio.run`` on an autojump `MockClock`, so a hang
    shows up as a ``trio.fail_after`` (virtual time) in the scenario, never
    as a stuck test. The scenario enters ``cut`` around the operations to
    attack and checks its own invariants afterwards (nothing lost, every
    outcome known). Returns the number of runs.
    """
    first = Cut(None)
    trio.run(scenario, first, clock=trio.testing.MockClock(autojump_threshold=0))
    steps = min(first.steps, limit)
    for k in range(steps + 1):
        trio.run(scenario, Cut(k), clock=trio.testing.MockClock(autojump_threshold=0))
    return steps + 2
