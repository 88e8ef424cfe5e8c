"""Supervision at work: a parent deciding on its children's exits (Erlang/OTP's rules).

One exit at a time per parent (`supervise`): a restart of the child, of its
group (`OneForAll`, `RestForOne`: siblings stopped within the strategy's
``shutdown_timeout``, then cut off), after its own backoff; or escalation
when the restart limit is exceeded.
"""

from __future__ import annotations

import math
from collections import deque

import trio

from . import _instance as instance
from . import _stopping as stopping
from ._cell import DEAD, DOWN, FAILURE_LOG_KEY, STOPPING, _Cell, failure_log, log
from ._errors import ActorStopped
from ._supervision import OneForAll, OneForOne, Restart, RestForOne, SupervisorStrategy


async def supervise(parent: _Cell, child: _Cell, failure: BaseException | None) -> None:
    """Hand a child's exit to its parent's strategy, one exit at a time."""
    failures = parent.failures
    if failures is None:
        failures = parent.failures = deque()
    failures.append((child, failure, child.generation))
    if parent.supervising:
        return
    parent.supervising = True
    try:
        while failures:
            c, exc, generation = failures.popleft()
            if generation == c.generation and c.state == DOWN:
                await _decide(parent, c, exc)
    finally:
        parent.supervising = False


def _strategy_or_fail(parent: _Cell) -> SupervisorStrategy | None:
    """The parent's strategy; None (and the parent fails) if its ``supervisor`` is not one."""
    strategy = parent.strategy()
    if isinstance(strategy, OneForOne | OneForAll | RestForOne):
        return strategy
    error = TypeError(
        f"{parent.path}.supervisor is {strategy!r}, not a supervisor strategy; set it to "
        "troupe.OneForOne(...), troupe.OneForAll(...) or troupe.RestForOne(...)"
    )
    stopping.fail_cell(parent, error)
    return None


async def _decide(parent: _Cell, child: _Cell, failure: BaseException | None) -> None:  # noqa: C901 - the OTP rules, in order
    system = child.system
    if child.stop_requested or system._closing or parent.state >= STOPPING:
        stopping.finalize(child, failure)
        return
    kind = child.restart
    if kind is Restart.TEMPORARY or (kind is Restart.TRANSIENT and failure is None):
        stopping.finalize(child, failure)
        return
    strategy = _strategy_or_fail(parent)
    if strategy is None:
        stopping.finalize(child, failure)
        return
    now = trio.current_time()
    history = child.restart_times
    if history is None:
        history = child.restart_times = deque()
    while history and history[0] <= now - strategy.within:
        history.popleft()
    if len(history) >= strategy.max_restarts:
        cause = failure if failure is not None else ActorStopped(child.path)
        stopping.finalize(child, failure)
        escalate(parent, child, cause)
        return
    history.append(now)
    siblings = list(parent.children.values()) if parent.children else [child]
    if isinstance(strategy, OneForAll):
        group = siblings
    elif isinstance(strategy, RestForOne):
        group = siblings[siblings.index(child) :] if child in siblings else [child]
    else:
        group = [child]
    for other in reversed(group):
        if other is not child:
            cancel_backoff(other)  # its pending restart is this one's now
            await _abort_for_restart(other, strategy)
    delay = 0.0 if strategy.backoff is None else strategy.backoff.delay(len(history))
    if delay > 0:
        # Each child waits out its own backoff, in a task of its own: the
        # supervisor goes on deciding its other children's exits meanwhile.
        scope = child.backoff = trio.CancelScope()
        system._nursery.start_soon(
            _restart_later, parent, child, group, delay, scope, name=f"{child.path} backoff"
        )
        return
    await _restart_group(parent, child, group)


def cancel_backoff(cell: _Cell) -> None:
    scope = cell.backoff
    if scope is not None:
        cell.backoff = None
        scope.cancel()


async def _restart_later(
    parent: _Cell, child: _Cell, group: list[_Cell], delay: float, scope: trio.CancelScope
) -> None:
    with scope:
        await trio.sleep(delay)
        if child.backoff is scope or child.state == DEAD:  # not taken over by another decision
            child.backoff = None
            await _restart_group(parent, child, group)


async def _restart_group(parent: _Cell, child: _Cell, group: list[_Cell]) -> None:
    for member in group:
        if member is not child and member.restart is Restart.TEMPORARY:
            stopping.finalize(member, None)
            continue
        await _restart(parent, member)


async def _abort_for_restart(cell: _Cell, strategy: SupervisorStrategy) -> None:
    """Stop a sibling for a group restart; cut it off after the strategy's ``shutdown_timeout``."""
    if cell.state in {DEAD, DOWN}:
        return
    cell.restart_pending = True
    cell.exiting = True
    cell.wake()
    down = cell.down = trio.Event()
    bound = getattr(strategy, "shutdown_timeout", math.inf)
    with trio.move_on_after(bound):
        await down.wait()
    if not down.is_set():
        cut = cell.cut
        if cut is not None:
            log.warning(
                "%s did not stop within %s s for its group's restart; cutting it off", cell.path, bound
            )
            cut.cancel()
        await down.wait()
    cell.down = None


async def _restart(parent: _Cell, cell: _Cell) -> None:
    system = cell.system
    if cell.state != DOWN:  # dead, or already restarted by a decision that came first
        return
    if cell.stop_requested or system._closing or parent.state >= STOPPING:
        stopping.finalize(cell, None)
        return
    cell.generation += 1
    cell.restart_pending = False
    cell.self_stop = False
    cell.exiting = False
    cell.abort_failure = None
    try:
        actor = instance.make_actor(cell.factory, cell.path)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - a failing factory is a failure of the child
        system._stats_failures += 1
        failure_log.debug(
            "%s failed to restart", cell.path, exc_info=exc, extra={FAILURE_LOG_KEY: (cell.path, exc)}
        )
        system._emit("troupe.failed", cell.path)
        await supervise(parent, cell, exc)
        return
    system._stats_restarts += 1
    system._emit("troupe.restarted", cell.path)
    await instance.start_instance(cell, actor, spawn=False)


def escalate(parent: _Cell, child: _Cell, cause: BaseException) -> None:
    """The restart limit was exceeded: the parent fails with the original error."""
    if parent.guardian_strategy is not None:
        parent.system._fail_root(child.path, cause)
        return
    stopping.fail_cell(parent, cause)
