"""What milestones and counters share: a handle to an actor, watchers, subscribers.

A waiter parked on a milestone or counter must not wait for ever once the
system is gone (its actor with it): `park` has the producer marked
``gone`` and its waiters woken when the task layer's root actor ends. One
guard task per system does that, started by the first waiter that parks;
it ends with that root, in every way a system can end (a normal close, a
shutdown that timed out, a cancel), since ``join`` returns once the root is
finalized and a cancel of the system's nursery runs its ``finally``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..actors import ActorRef, ActorStopped, ActorSystem

_KEY = "tasks.parked"


class Signalling:
    """State shared by a producer actor and its handle: written by the actor only."""

    __slots__ = ("gone", "subscribers", "system", "watchers")

    def __init__(self, system: ActorSystem) -> None:
        self.system = system
        self.watchers: list[Callable[[], None]] = []
        self.subscribers: list[ActorRef[Any]] = []
        self.gone = False  # its system shut down: it can no longer change

    def fire(self, signal: object) -> None:
        """Wake waiters and tell every subscriber, once each."""
        self.wake()
        for consumer in self.subscribers:
            consumer.tell_nowait(signal)

    def wake(self) -> None:
        """Have every waiter look again."""
        for watcher in list(self.watchers):
            watcher()

    def gone_error(self, ref: ActorRef[Any], what: str) -> ActorStopped | None:
        """`ActorStopped` ("``what``: its system shut down") once the producer ``ref`` is gone, else None."""
        if self.gone or not ref.alive:
            return ActorStopped(ref.path, f"{what}: its system shut down")
        return None


class _Parked:
    """The producers with parked waiters in one system, and whether its task layer ended."""

    __slots__ = ("ended", "states")

    def __init__(self) -> None:
        self.states: set[Signalling] = set()
        self.ended = False

    def end(self) -> None:
        self.ended = True
        states, self.states = self.states, set()
        for state in states:
            state.gone = True
            state.wake()


def park(state: Signalling) -> None:
    """A waiter parks on ``state``: have it woken (``gone``) if the system's task layer ends first."""
    system = state.system
    parked: _Parked | None = system._extensions.get(_KEY)
    if parked is None:
        parked = system._extensions[_KEY] = _Parked()
        root: ActorRef[Any] | None = system._extensions.get("tasks.root")
        if root is None or not root.alive:  # the task layer has ended
            parked.end()
        else:
            try:
                system._nursery.start_soon(
                    _guard, root, parked, name="troupe.tasks: wake waiters at shutdown"
                )
            except RuntimeError:  # the system's nursery is closed: the system has ended
                parked.end()
    if parked.ended:
        state.gone = True
    else:
        parked.states.add(state)


def unpark(state: Signalling) -> None:
    """A waiter left ``state`` (it held, or the waiter was cancelled)."""
    if not state.watchers:
        parked: _Parked | None = state.system._extensions.get(_KEY)
        if parked is not None:
            parked.states.discard(state)


async def _guard(root: ActorRef[Any], parked: _Parked) -> None:
    try:
        await root.join()
    finally:
        parked.end()


async def ask_or_raise(ref: ActorRef[Any], msg: object) -> Any:
    """Ask a producer actor; an exception it answers with is raised here."""
    answer = await ref.ask(msg, timeout=None)
    if isinstance(answer, BaseException):
        raise answer
    return answer
