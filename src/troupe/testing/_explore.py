"""``troupe.testing.explore``: one async test body under many schedules, each replayable from its seed.

Each schedule is a fresh ``trio.run`` on a `MockClock` whose time jumps
when every task waits (as ``autojump_clock``), with trio's batch order
drawn from the schedule's seed (`_schedulers`), the runtime yielding after
every message (``actors._explore``), and a watchdog that reports a
deadlock or a livelock instead of hanging. Which message each actor took, in
order, is the schedule's trace: two schedules with the same trace are the
same interleaving.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import random as _random
import re
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

import trio
from trio.lowlevel import current_clock, current_statistics, current_task

from ..actors._explore import EXPLORING, exploring
from ..actors._reply import Reply
from ._explore_errors import ExploreError, ExploreSummary, ScheduleFailure, ScheduleHang, _Hang
from ._guard import guard
from ._schedulers import FifoScheduler, Scheduler, scheduler_for
from ._waiting import waiting

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from trio.lowlevel import Task

STRATEGIES: Final = ("random", "pct")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{4,}")
_SHOW = 120  # characters of a message's repr in a trace line


def _show(item: object) -> str:
    text = f"ask {item._msg!r}" if type(item) is Reply else repr(item)
    text = _ADDRESS.sub("0x…", text)
    return text if len(text) <= _SHOW else text[: _SHOW - 1] + "…"


class _Run:
    """One schedule's state: what the runtime reports to it (``actors._explore.Explorer``)."""

    def __init__(self, seed: int, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.trace: list[str] = []
        self.random = _random.Random(seed ^ 0x7E57ED)  # noqa: S311 - the body's reproducible randomness
        self.main: Task | None = None

    def yields(self) -> bool:
        return self.scheduler.rng.random() < 0.5  # noqa: PLR2004 - a fair coin per message

    def took(self, path: str, item: object) -> None:
        self.trace.append(f"{path} took {_show(item)}")

    def failed(self, path: str, item: object, failure: BaseException) -> None:
        on = "in on_start" if item is None else f"on {_show(item)}"
        self.trace.append(_ADDRESS.sub("0x…", f"{path} failed {on}: {type(failure).__name__}: {failure}"))


def random() -> _random.Random:
    """The current schedule's random generator (seeded from the schedule's seed).

    Under `explore`, randomness that decides what the body does must come from
    here (or from the ``random`` module, which `explore` also seeds per
    schedule), so that a seed replays it. Outside an exploration this is a
    new, unseeded generator.

    Example:
        ```python
        delay = troupe.testing.random().uniform(0, 1)
        ```
    """
    run = exploring()
    if isinstance(run, _Run):
        return run.random
    return _random.Random()  # noqa: S311 - a test's randomness, not a secret


async def _watchdog(run: _Run) -> None:
    """Jump the clock when every task waits on a timer; report a deadlock or a livelock."""
    try:
        await _watch(run)
    finally:
        run.scheduler.release()  # reporting, or cancelled as the body ended: never leave tasks held


async def _watch(run: _Run) -> None:
    scheduler = run.scheduler
    me = scheduler.watchdog = current_task()
    from trio.testing import wait_all_tasks_blocked  # noqa: PLC0415 - trio.testing loads pytest: not at import

    clock: Any = current_clock()
    main = run.main
    assert main is not None  # noqa: S101 - set before the watchdog starts
    while True:
        await wait_all_tasks_blocked()
        if scheduler.batch > 1 and not scheduler.over:
            continue  # others waited for idleness too and woke with us: look again once they wait
        if scheduler.over:
            stuck = waiting(main, {me})
            msg = (
                f"max_steps ({scheduler.max_steps:,}) scheduling steps ran and the body has not finished: "
                "tasks keep waking each other (a livelock), or the body needs a larger max_steps"
            )
            raise _Hang(msg, stuck)
        wait = current_statistics().seconds_to_next_deadline
        if wait == math.inf:
            msg = "every task is blocked and no timer or timeout is pending that could wake one: a deadlock"
            raise _Hang(msg, waiting(main, {me}))
        if wait > 0:
            clock.jump(wait)
        else:
            await trio.lowlevel.checkpoint()


async def _main(body: Callable[[], Awaitable[object]], run: _Run) -> None:
    EXPLORING.set(run)
    run.main = current_task()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_watchdog, run, name="troupe explore watchdog")
        await body()
        nursery.cancel_scope.cancel()


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _the_error(exc: BaseException) -> BaseException:
    """The exception to report from what ``trio.run`` raised (nurseries wrap it in groups)."""
    leaves = _leaves(exc)
    hangs = [leaf for leaf in leaves if isinstance(leaf, _Hang)]
    if hangs:
        return hangs[0]
    real = [leaf for leaf in leaves if not isinstance(leaf, trio.Cancelled)]
    if len(real) == 1:
        return real[0]
    return exc


class _Outcome:
    __slots__ = ("error", "steps", "trace")

    def __init__(self, trace: tuple[str, ...], error: BaseException | None, steps: int) -> None:
        self.trace = trace
        self.error = error
        self.steps = steps


@contextmanager
def _trio_scheduling() -> Iterator[Any]:
    """Let a `Scheduler` order trio's batches (the hook pytest-trio and Hypothesis use), then restore."""
    run_module: Any = trio._core._run
    if not hasattr(run_module, "_r") or not hasattr(run_module, "_ALLOW_DETERMINISTIC_SCHEDULING"):
        msg = (
            f"trio {trio.__version__} has no deterministic-scheduling hook "
            "(trio._core._run._r and _ALLOW_DETERMINISTIC_SCHEDULING), which explore needs; "
            "install a trio version troupe supports"
        )
        raise ExploreError(msg)
    saved = (run_module._r, run_module._ALLOW_DETERMINISTIC_SCHEDULING, _random.getstate())
    run_module._ALLOW_DETERMINISTIC_SCHEDULING = True
    try:
        yield run_module
    finally:
        run_module._r, run_module._ALLOW_DETERMINISTIC_SCHEDULING, state = saved
        _random.setstate(state)


def _run_one(
    body: Callable[[], Awaitable[object]], run_module: Any, scheduler: Scheduler, seed: int
) -> _Outcome:
    from trio.testing import MockClock  # noqa: PLC0415 - trio.testing loads pytest: not at import

    run = _Run(seed, scheduler)
    run_module._r = scheduler
    _random.seed(seed)
    error: BaseException | None = None
    try:
        trio.run(_main, body, run, clock=MockClock(autojump_threshold=0))
    except BaseException as exc:
        for leaf in _leaves(exc):
            if isinstance(leaf, KeyboardInterrupt | SystemExit):
                raise leaf from exc  # the person at the keyboard, not the schedule
        error = _the_error(exc)
    return _Outcome(tuple(run.trace), error, scheduler.steps)


def _in_trio() -> bool:
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True


def schedule_seed(base: int, index: int) -> int:
    """The seed of schedule ``index`` of an exploration seeded with ``base`` (schedule 0 uses ``base``)."""
    if index == 0:
        return base
    digest = hashlib.blake2b(f"{base}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest) >> 16  # 48 bits: short enough to read and type


def _check(schedules: object, strategy: object, seed: object, max_steps: object) -> None:
    if isinstance(schedules, bool) or not isinstance(schedules, int) or schedules < 1:
        msg = f"schedules must be an int >= 1, got {schedules!r}"
        raise ValueError(msg)
    if strategy not in STRATEGIES:
        msg = f"strategy must be one of {', '.join(map(repr, STRATEGIES))}, got {strategy!r}"
        raise ValueError(msg)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        msg = f"seed must be None or an int >= 0 (a ScheduleFailure's .seed), got {seed!r}"
        raise ValueError(msg)
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        msg = f"max_steps must be an int >= 1, got {max_steps!r}"
        raise ValueError(msg)


def explore(
    body: Callable[[], Awaitable[object]],
    *,
    schedules: int = 200,
    strategy: str = "random",
    seed: int | None = None,
    max_steps: int = 100_000,
) -> ExploreSummary:
    """Run ``body`` once per schedule, each under a different interleaving; raise on the first failure.

    ``body`` is an ``async def`` with no arguments that opens its own system.
    Each schedule runs it in a fresh ``trio.run`` with an autojump
    `trio.testing.MockClock`; the order of trio's runnable tasks comes from
    the schedule's seed, itself derived from ``seed`` and the schedule's
    index (schedule 0 uses ``seed`` itself). Before each message an actor
    yields to the scheduler or not, as the seed decides, so the orders of
    deliveries trio could produce are reachable.

    Args:
        body: the test, as an ``async def`` taking no arguments.
        schedules: how many schedules to run.
        strategy: ``"random"`` (each batch of runnable tasks shuffled) or
            ``"pct"`` (random priorities with two change points; finds bugs
            that need one task to stay ahead for many steps, then fall behind).
        seed: where the schedules come from; None draws one at random. A
            `ScheduleFailure`'s ``.seed`` with ``schedules=1`` replays it.
        max_steps: trio task steps one schedule may take before it counts as a hang.

    Returns:
        An `ExploreSummary`: schedules run, distinct interleavings, time taken.

    Raises:
        ScheduleFailure: a schedule failed; its message has the seed, the
            strategy, the error and the trace; ``__cause__`` is the error.
        ScheduleHang: a schedule deadlocked (every task blocked, nothing
            pending that could wake one) or took ``max_steps`` steps; it
            lists the tasks still waiting and on what.
        ExploreError: the body started a thread or a process.
        ValueError: an argument is out of range.

    Example:
        ```python
        def test_two_senders_are_both_counted() -> None:
            async def body() -> None:
                async with troupe.open_system() as system:
                    counter = await system.spawn(Counter)
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(counter.tell, Increment())
                        nursery.start_soon(counter.tell, Increment())
                    assert await counter.ask(GetCount()) == 2

            troupe.testing.explore(body, schedules=500)
        ```
    """
    __tracebackhide__ = True  # pytest: the failure, not explore's frames
    _check(schedules, strategy, seed, max_steps)
    call = getattr(body, "__call__", None)  # noqa: B004 - an object whose __call__ is an async def
    if not (inspect.iscoroutinefunction(body) or inspect.iscoroutinefunction(call)):
        msg = f"body must be an async function taking no arguments (an `async def`), got {body!r}"
        raise TypeError(msg)
    if _in_trio():
        msg = (
            "explore() runs a trio.run of its own per schedule, so it cannot run inside trio: call it "
            "from plain code such as a `def test_...` (or mark an async test @pytest.mark.explore)"
        )
        raise ExploreError(msg)
    base = seed if seed is not None else _random.SystemRandom().getrandbits(48)
    started = time.perf_counter()
    seen: set[int] = set()
    steps = 0
    with _trio_scheduling() as run_module, guard() as violations:
        horizon = 0
        if strategy == "pct":  # PCT spreads its change points over the body's length: measure it once
            # seeded with a constant, so that a failure's own seed replays with the same horizon
            calibration = _run_one(body, run_module, FifoScheduler(0, max_steps), 0)
            _raise_if_failed(calibration, violations, base, strategy, 0)
            horizon = calibration.steps
        for index in range(schedules):
            own = schedule_seed(base, index)
            outcome = _run_one(body, run_module, scheduler_for(strategy, own, max_steps, horizon), own)
            _raise_if_failed(outcome, violations, own, strategy, index)
            steps += outcome.steps
            seen.add(hash(outcome.trace))
    return ExploreSummary(
        schedules=schedules,
        interleavings=len(seen),
        strategy=strategy,
        seed=base,
        seconds=time.perf_counter() - started,
        steps=steps,
    )


def _raise_if_failed(
    outcome: _Outcome, violations: list[ExploreError], seed: int, strategy: str, index: int
) -> None:
    __tracebackhide__ = True
    if violations:
        raise violations[0]
    error = outcome.error
    if error is None:
        return
    if isinstance(error, _Hang):
        hang = RuntimeError(str(error))
        raise ScheduleHang(
            seed=seed,
            strategy=strategy,
            schedule=index,
            trace=outcome.trace,
            error=hang,
            waiting=error.waiting,
        ) from None
    raise ScheduleFailure(
        seed=seed, strategy=strategy, schedule=index, trace=outcome.trace, error=error
    ) from error
