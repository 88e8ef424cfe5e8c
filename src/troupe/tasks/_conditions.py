"""Conditions: what ``schedule_task``, ``wait_all`` and ``wait_any`` wait for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, final

import attrs
import trio

from ..actors import ActorStopped
from ._counter import TaskCounter
from ._handle import TaskHandle, _blocking_wait
from ._milestone import Milestone
from ._signals import park, unpark


@final
@attrs.frozen
class AllOf:
    """Holds when every one of ``conditions`` holds (from `all_of`)."""

    conditions: tuple[Any, ...]
    """The conditions, normalised."""


@final
@attrs.frozen
class AnyOf:
    """Holds when at least one of ``conditions`` holds (from `any_of`)."""

    conditions: tuple[Any, ...]
    """The conditions, normalised."""


def all_of(*conditions: object) -> AllOf:
    """A condition that holds when all of ``conditions`` hold (like a list); with none, at once."""
    return AllOf(tuple(normalize(c) for c in conditions))


def any_of(*conditions: object) -> AnyOf:
    """A condition that holds when any of ``conditions`` holds.

    Raises:
        ValueError: no conditions (it would never hold).
    """
    return _any(tuple(normalize(c) for c in conditions))


def _any(conditions: tuple[Any, ...]) -> AnyOf:
    if not conditions:
        msg = (
            "an any_of() with no conditions never holds, so waiting on it would wait for ever; "
            "give it at least one task, milestone or counter"
        )
        raise ValueError(msg)
    return AnyOf(conditions)


def _is_leaf(obj: object) -> bool:
    return isinstance(obj, TaskHandle | Milestone | TaskCounter)


def normalize(condition: object) -> Any:
    """Check a condition and turn lists into `AllOf`.

    Raises:
        TypeError: it is not a task, milestone, counter, list of them, all_of or any_of.
        ValueError: it holds an `AnyOf` of nothing, which never holds.
    """
    if _is_leaf(condition):
        return condition
    if isinstance(condition, list | tuple):
        return AllOf(tuple(normalize(c) for c in condition))
    if isinstance(condition, AllOf):  # built by hand, perhaps: check what it holds
        return AllOf(tuple(normalize(c) for c in condition.conditions))
    if isinstance(condition, AnyOf):
        return _any(tuple(normalize(c) for c in condition.conditions))
    msg = (
        f"a condition is a task, a milestone, a counter, a list of them, all_of(...) or any_of(...); "
        f"got {condition!r}"
    )
    raise TypeError(msg)


def holds(condition: Any) -> bool:
    """Whether ``condition`` holds now."""
    if isinstance(condition, AllOf):
        return all(holds(c) for c in condition.conditions)
    if isinstance(condition, AnyOf):
        return any(holds(c) for c in condition.conditions)
    if isinstance(condition, TaskHandle):
        return condition.finished
    return bool(condition._holds())


def leaves(condition: Any) -> list[Any]:
    """The tasks, milestones and counters in ``condition``."""
    if isinstance(condition, AllOf | AnyOf):
        return [leaf for c in condition.conditions for leaf in leaves(c)]
    return [condition]


def _watchers(leaf: Any) -> list[Callable[[], None]]:
    if isinstance(leaf, TaskHandle):
        rec = leaf._record
        if rec.watchers is None:
            rec.watchers = []
        return rec.watchers
    watchers: list[Callable[[], None]] = leaf._watchers
    return watchers


def _gone(leaf: Any) -> ActorStopped | None:
    """The error to raise if ``leaf`` is a milestone or counter whose system shut down."""
    return None if isinstance(leaf, TaskHandle) else leaf._gone()


async def _park(found: list[Any], ready: Callable[[], bool]) -> None:
    """Wait until ``ready()``, looked at again each time one of ``found`` changes or ends."""
    if ready():
        return
    event = trio.Event()

    def check() -> None:
        if ready():
            event.set()

    producers = [leaf._state for leaf in found if not isinstance(leaf, TaskHandle)]
    for leaf in found:
        _watchers(leaf).append(check)
    for state in producers:
        park(state)
    try:
        check()
        await event.wait()
    finally:
        for leaf in found:
            watchers = _watchers(leaf)
            if check in watchers:
                watchers.remove(check)
        for state in producers:
            unpark(state)


async def _wait_leaf(leaf: Any) -> None:
    if holds(leaf):
        return
    await _park([leaf], lambda: holds(leaf) or _gone(leaf) is not None)
    if not holds(leaf):
        stopped = _gone(leaf)
        assert stopped is not None  # noqa: S101 - woken without holding: it is gone
        raise stopped


async def _wait_any(condition: AnyOf) -> None:
    found = leaves(condition)
    await _park(found, lambda: holds(condition) or any(_gone(leaf) is not None for leaf in found))
    if not holds(condition):
        raise next(stopped for stopped in map(_gone, found) if stopped is not None)


async def _wait(condition: Any) -> None:
    if isinstance(condition, AllOf):
        for part in condition.conditions:  # each part, once true, stays true
            await _wait(part)
    elif isinstance(condition, AnyOf):
        if not holds(condition):
            await _wait_any(condition)
    else:
        await _wait_leaf(condition)


async def wait_for(condition: Any) -> None:
    """Wait until ``condition`` holds (delayed tasks in it are not started).

    While it waits, a task gives up its running slot (nested waits).

    Raises:
        ActorStopped: a milestone or counter it needs can no longer change
            (its system shut down) and the condition does not hold.
    """
    if holds(condition):
        await trio.lowlevel.checkpoint()
        return
    await _blocking_wait(lambda: _wait(condition))


async def _start_delayed(condition: Any) -> None:
    from ._errors import NotWaitable  # noqa: PLC0415

    for leaf in leaves(condition):
        if isinstance(leaf, TaskHandle):
            if leaf.is_async:
                raise NotWaitable(leaf.name)
            if not leaf.started:
                await leaf.execute()


async def wait_all(*conditions: object) -> None:
    """Wait until every condition holds (``WaitTask``); returns at once with none.

    Delayed tasks among the conditions are started first. A failed task is
    finished too: this does not raise for it.

    Raises:
        NotWaitable: an async task is among them.
        TypeError: something that is not a condition.
        ValueError: an ``any_of`` of nothing is among them (it never holds).
        ActorStopped: a milestone or counter it needs can no longer change
            (its system shut down; a waiter parked then is woken with it).
    """
    condition = all_of(*conditions)
    await _start_delayed(condition)
    await wait_for(condition)


async def wait_any(*conditions: object) -> int:
    """Wait until one condition holds; return the lowest 0-based index that holds.

    Raises:
        ValueError: called with no conditions, or an ``any_of`` of nothing
            is among them (it would wait for ever).
        NotWaitable: an async task is among them.
        ActorStopped: a milestone or counter it needs can no longer change
            (its system shut down) and none of the conditions holds.
    """
    if not conditions:
        msg = "wait_any() needs at least one task or condition; with none it would wait for ever"
        raise ValueError(msg)
    normalized = [normalize(c) for c in conditions]
    condition = AnyOf(tuple(normalized))
    await _start_delayed(condition)
    await wait_for(condition)
    return next(i for i, c in enumerate(normalized) if holds(c))
