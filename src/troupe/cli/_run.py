"""``troupe run FILE[:FUNCTION]``: run a topology with a live view or log lines, then a summary."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import trio
from rich.live import Live

from ..actors import ActorFailed, ActorSystem
from ..actors._cell import FAILURE_LOG_KEY, failure_log
from ..jobs import open_system
from ..protocol import BusEvent
from ._load import load_target
from ._view import RunState, console, plain_line, render, summary_table, summary_text

_FRAME = 0.125  # seconds between frames of the live view


class _FailureReasons(logging.Handler):
    """Keeps why each actor failed (the ``troupe.failed`` event carries only the path)."""

    def __init__(self, state: RunState) -> None:
        super().__init__(logging.DEBUG)
        self.state = state

    def emit(self, record: logging.LogRecord) -> None:
        failure = getattr(record, FAILURE_LOG_KEY, None)
        if failure is not None:
            path, error = failure
            self.state.reasons[path] = f"{type(error).__name__}: {error}"


@contextmanager
def _failure_reasons(state: RunState) -> Iterator[None]:
    handler = _FailureReasons(state)
    level, propagate = failure_log.level, failure_log.propagate
    failure_log.addHandler(handler)
    failure_log.setLevel(logging.DEBUG)
    failure_log.propagate = False  # shown by the view, not printed again by the user's handlers
    try:
        yield
    finally:
        failure_log.removeHandler(handler)
        failure_log.setLevel(level)
        failure_log.propagate = propagate


async def _listen(
    system: ActorSystem, state: RunState, *, live: bool, every: bool, task_status: trio.TaskStatus[None]
) -> None:
    async with system.events.listen("troupe.**") as events:
        task_status.started()
        async for event in events:
            _note(event, state, live=live, every=every)


def _note(event: BusEvent, state: RunState, *, live: bool, every: bool) -> None:
    line = state.apply(event)
    if line is not None and not live:
        shown = plain_line(event, line, every=every)
        if shown is not None:
            print(f"  {shown}", flush=True)


async def _frames(system: ActorSystem, state: RunState, view: Live, started: float) -> None:
    while True:
        view.update(render(system, state, started), refresh=True)
        await trio.sleep(_FRAME)


async def run_topology(target: str, *, live: bool, every: bool, jobs: str | None, traceback: bool) -> int:
    """Run ``target``; return 0, or 1 if an actor failed beyond its supervisor or the topology raised."""
    fn = load_target(target)
    state = RunState()
    status = 0
    started = time.monotonic()
    out = console()
    view = Live(console=out, auto_refresh=False, transient=False, redirect_stdout=True) if live else None
    failure: str | None = None  # the topology's error, in one line
    try:
        with _failure_reasons(state):
            async with open_system(name=target, jobs=jobs) as system, trio.open_nursery() as nursery:
                await nursery.start(
                    lambda task_status: _listen(
                        system, state, live=live, every=every, task_status=task_status
                    )
                )
                if view is not None:
                    view.start()
                    nursery.start_soon(_frames, system, state, view, started)
                try:
                    await fn(system)
                except Exception as exc:
                    if traceback:
                        raise
                    # Kept, not raised here: raised inside the nursery it would reach
                    # the user wrapped in an ExceptionGroup, as a traceback.
                    failure = (
                        f"{target} raised {type(exc).__name__}: {exc} "
                        "(run with --traceback for the traceback)"
                    )
                finally:
                    if view is not None:  # the last frame stays on the screen, above the summary
                        view.update(render(system, state, started), refresh=True)
                        view.stop()
                nursery.cancel_scope.cancel()
    except ActorFailed as exc:
        print(f"troupe: {exc}", file=sys.stderr, flush=True)
        status = 1
    if failure is not None:
        print(f"troupe: {failure}", file=sys.stderr, flush=True)
        status = 1
    stats = system.statistics()
    if live:
        out.print(summary_table(stats, state, time.monotonic() - started))
    else:
        print(summary_text(stats, state), flush=True)
    return status
