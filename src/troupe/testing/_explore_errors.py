"""What an exploration reports: its summary, a failing schedule, a hang, a body it cannot explore."""

from __future__ import annotations

from typing import final

import attrs

from ..protocol import TroupeError

_SHOWN = 30  # trace lines in a failure's message (all of them are on `.trace`)


@final
@attrs.frozen
class ExploreSummary:
    """What `explore` did when every schedule passed.

    Attributes:
        schedules: how many schedules ran.
        interleavings: how many distinct orders of message handling they produced.
        strategy: ``"random"`` or ``"pct"``.
        seed: the seed the schedules were derived from (pass it back to run the same ones).
        seconds: wall-clock time the exploration took.
        steps: trio task steps taken, over all schedules.
    """

    schedules: int
    interleavings: int
    strategy: str
    seed: int
    seconds: float
    steps: int

    def __str__(self) -> str:
        return (
            f"{self.schedules} schedules ({self.strategy}, seed {self.seed}): "
            f"{self.interleavings} distinct interleavings, {self.steps:,} steps in {self.seconds:.2f} s"
        )


def _trace_text(trace: tuple[str, ...]) -> str:
    if not trace:
        return "  (no actor took a message)"
    shown = trace[-_SHOWN:]
    skipped = len(trace) - len(shown)
    lines = [f"  ... {skipped} earlier step(s), all on .trace"] if skipped else []
    first = len(trace) - len(shown) + 1
    lines += [f"  {first + i:>4}. {line}" for i, line in enumerate(shown)]
    return "\n".join(lines)


class ScheduleFailure(TroupeError, AssertionError):
    """One explored schedule failed; its seed replays it exactly.

    ``explore(body, seed=failure.seed, schedules=1, strategy=failure.strategy)``
    runs the same schedule again: the same failure and the same trace.
    ``__cause__`` is the original exception.
    """

    def __init__(
        self,
        *,
        seed: int,
        strategy: str,
        schedule: int,
        trace: tuple[str, ...],
        error: BaseException,
        _detail: str | None = None,
    ) -> None:
        self.seed = seed
        """The failing schedule's own seed."""
        self.strategy = strategy
        """``"random"`` or ``"pct"``."""
        self.schedule = schedule
        """Its index in the exploration (0 is the first)."""
        self.trace = trace
        """One line per message an actor took, in order, with the failures."""
        self.error = error
        """The original exception."""
        what = _detail or f"{type(error).__name__}: {error}"
        super().__init__(
            f"schedule {schedule} failed ({strategy} strategy, seed {seed}): {what}\n"
            f"replay it with explore(body, seed={seed}, schedules=1, strategy={strategy!r}) "
            f"or pytest --troupe-seed={seed}\n"
            f"messages taken, in order:\n{_trace_text(trace)}"
        )


class ScheduleHang(ScheduleFailure):
    """An explored schedule hung: every task blocked with nothing left to wake it, or ``max_steps`` taken.

    Its ``waiting`` lists the tasks still waiting, and on what.
    """

    def __init__(
        self,
        *,
        seed: int,
        strategy: str,
        schedule: int,
        trace: tuple[str, ...],
        error: BaseException,
        waiting: tuple[str, ...],
    ) -> None:
        self.waiting = waiting
        """One line per task still waiting, and on what."""
        shown = "\n".join(f"    {line}" for line in waiting) or "    (no task: the body itself waits)"
        super().__init__(
            seed=seed,
            strategy=strategy,
            schedule=schedule,
            trace=trace,
            error=error,
            _detail=f"{error}\n  still waiting:\n{shown}",
        )


class ExploreError(TroupeError, RuntimeError):
    """Explored code did something a schedule cannot replay (it started a thread or a process).

    Raised at the call itself, and by `explore` even if the body caught it.
    """


class _Hang(Exception):
    """Raised inside the run by the watchdog; `explore` turns it into a `ScheduleHang`."""

    def __init__(self, reason: str, waiting: tuple[str, ...]) -> None:
        super().__init__(reason)
        self.waiting = waiting
