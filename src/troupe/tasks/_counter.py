"""Counters (Grassroots' CountAsyncTask): signal once when the count reaches a limit."""

from __future__ import annotations

from typing import Any, final

import trio

from .._util import NoPublicConstructor
from ..actors import Actor, ActorRef, ActorStopped, ActorSystem, current_system
from ..protocol import message
from ._root import spawn_task_actor
from ._signals import Signalling, ask_or_raise


@final
@message(name="troupe.LimitReached")
class LimitReached:
    """Sent once to each subscriber when a counter first reaches its limit."""

    counter: Any
    """The [`TaskCounter`][troupe.TaskCounter]."""
    count: int
    """The count at that moment (may be past the limit after ``increment(n)``)."""


@message(name="troupe.tasks.Increment")
class _Increment:
    n: int


@message(name="troupe.tasks.SetLimit")
class _SetLimit:
    limit: int


@message(name="troupe.tasks.SubscribeCounter")
class _SubscribeCounter:
    consumer: Any


def _check_limit(limit: object) -> int:
    if type(limit) is not int or limit < 0:
        msg = f"a counter limit is an int >= 0, got {limit!r}"
        raise ValueError(msg)
    return limit


class _CounterState(Signalling):
    __slots__ = ("count", "limit", "signalled")

    def __init__(self, system: ActorSystem, limit: int) -> None:
        super().__init__(system)
        self.count = 0
        self.limit = limit
        self.signalled = False


_CounterMsg = _Increment | _SetLimit | _SubscribeCounter


class _CounterActor(Actor[_CounterMsg]):
    def __init__(self, state: _CounterState, handle: TaskCounter) -> None:
        self.state = state
        self.handle = handle

    def _check(self) -> None:
        state = self.state
        if not state.signalled and state.count >= state.limit:
            state.signalled = True
            state.fire(LimitReached(self.handle, state.count))

    async def receive(self, msg: _CounterMsg) -> int:
        state = self.state
        match msg:
            case _Increment(n=n):
                state.count += n
                self._check()
            case _SetLimit(limit=limit):
                state.limit = limit
                state.count = 0
                state.signalled = False
                self._check()
            case _SubscribeCounter(consumer=consumer):
                if state.signalled:
                    consumer.tell_nowait(LimitReached(self.handle, state.count))
                else:
                    state.subscribers.append(consumer)
        return state.count


@final
class TaskCounter(metaclass=NoPublicConstructor):
    """Counts up to a limit and signals once when it is first reached (from `new_counter`).

    Example:
        ```python
        done = await troupe.new_counter(3)
        for job in jobs:
            await troupe.run_task(work, job, done)   # each worker calls `await done.increment()`
        await done.wait()
        ```
    """

    __slots__ = ("_ref", "_state")

    def __init__(self, state: _CounterState) -> None:
        self._state = state
        self._ref: ActorRef[_CounterMsg] = None  # type: ignore[assignment] # set by new_counter

    def __repr__(self) -> str:
        return f"<TaskCounter {self._ref.name} {self._state.count}/{self._state.limit}>"

    @property
    def _watchers(self) -> list[Any]:
        return self._state.watchers

    def _holds(self) -> bool:
        return self._state.count >= self._state.limit

    def _gone(self) -> ActorStopped | None:
        return self._state.gone_error(self._ref, f"counter {self._ref.name} can no longer reach its limit")

    async def increment(self, n: int = 1) -> int:
        """Add ``n``; returns the new count. Reaching the limit signals subscribers once."""
        if type(n) is not int:
            msg = f"increment takes an int, got {n!r}"
            raise TypeError(msg)
        count: int = await ask_or_raise(self._ref, _Increment(n))
        return count

    async def value(self) -> int:
        """The current count."""
        await trio.lowlevel.checkpoint()
        return self._state.count

    async def set_limit(self, limit: int) -> None:
        """Set a new limit, reset the count to 0 and re-arm the signal.

        Raises:
            ValueError: a negative limit.
        """
        await ask_or_raise(self._ref, _SetLimit(_check_limit(limit)))

    async def wait(self) -> None:
        """Wait until the count is at least the limit (at once if it already is).

        Raises:
            ActorStopped: the counter's system shut down before the limit
                was reached (a waiter already parked then is woken with it).
        """
        from ._conditions import wait_for  # noqa: PLC0415 - conditions import this module

        await wait_for(self)

    async def subscribe(self, consumer: ActorRef[Any]) -> None:
        """Send ``LimitReached`` to ``consumer`` once, when the limit is reached (or now)."""
        await ask_or_raise(self._ref, _SubscribeCounter(consumer))


async def new_counter(limit: int) -> TaskCounter:
    """Create a counter that signals once when its count first reaches ``limit``.

    A limit of 0 is reached at creation.

    Raises:
        ValueError: a negative limit.
    """
    checked = _check_limit(limit)
    system = current_system()
    state = _CounterState(system, checked)
    state.signalled = limit == 0
    handle = TaskCounter._create(state)
    handle._ref = await spawn_task_actor(system, lambda: _CounterActor(state, handle))
    return handle
