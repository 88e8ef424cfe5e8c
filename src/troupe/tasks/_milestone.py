"""Milestones (HPC-GAP): achieved when every target has been contributed."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any, final

import trio

from .._util import NoPublicConstructor
from ..actors import Actor, ActorRef, ActorStopped, ActorSystem, current_system
from ..protocol import message
from ._root import spawn_task_actor
from ._signals import Signalling, ask_or_raise


@final
@message(name="troupe.MilestoneAchieved")
class MilestoneAchieved:
    """Sent once to each subscriber when a milestone is achieved."""

    milestone: Any
    """The achieved [`Milestone`][troupe.Milestone]."""


@message(name="troupe.tasks.Contribute")
class _Contribute:
    target: Any


@message(name="troupe.tasks.Achieve")
class _Achieve:
    pass


@message(name="troupe.tasks.SubscribeMilestone")
class _SubscribeMilestone:
    consumer: Any


class _MilestoneState(Signalling):
    __slots__ = ("achieved", "complete", "done", "targets")

    def __init__(self, system: ActorSystem, targets: frozenset[Hashable]) -> None:
        super().__init__(system)
        self.targets = targets
        self.achieved: set[Hashable] = set()
        self.complete = not targets
        self.done = trio.Event()
        if self.complete:
            self.done.set()


_MilestoneMsg = _Contribute | _Achieve | _SubscribeMilestone


class _MilestoneActor(Actor[_MilestoneMsg]):
    def __init__(self, state: _MilestoneState, handle: Milestone) -> None:
        self.state = state
        self.handle = handle

    def _achieve(self) -> None:
        state = self.state
        if state.complete:
            return
        state.achieved = set(state.targets)
        state.complete = True
        state.done.set()
        state.fire(MilestoneAchieved(self.handle))

    async def receive(self, msg: _MilestoneMsg) -> BaseException | None:
        state = self.state
        match msg:
            case _Contribute(target=target):
                if target not in state.targets:
                    targets = ", ".join(sorted(map(repr, state.targets)))
                    return ValueError(
                        f"milestone {self.ref.name} has no target {target!r}; its targets are {targets}"
                    )
                state.achieved.add(target)
                if state.achieved >= state.targets:
                    self._achieve()
            case _Achieve():
                self._achieve()
            case _SubscribeMilestone(consumer=consumer):
                if state.complete:
                    consumer.tell_nowait(MilestoneAchieved(self.handle))
                else:
                    state.subscribers.append(consumer)
        return None


@final
class Milestone(metaclass=NoPublicConstructor):
    """A set of targets; achieved once each was contributed (from `new_milestone`).

    Example:
        ```python
        m = await troupe.new_milestone(targets=["parsed", "indexed"])
        await m.contribute("parsed")
        await m.contribute("indexed")
        assert await m.is_achieved()
        ```
    """

    __slots__ = ("_ref", "_state")

    def __init__(self, state: _MilestoneState) -> None:
        self._state = state
        self._ref: ActorRef[_MilestoneMsg] = None  # type: ignore[assignment] # set by new_milestone

    def __repr__(self) -> str:
        return f"<Milestone {self._ref.name} {'achieved' if self._state.complete else 'pending'}>"

    @property
    def _watchers(self) -> list[Any]:
        return self._state.watchers

    def _holds(self) -> bool:
        return self._state.complete

    def _gone(self) -> ActorStopped | None:
        return self._state.gone_error(self._ref, f"milestone {self._ref.name} can no longer be achieved")

    async def contribute(self, target: Hashable) -> None:
        """Mark ``target`` as done (twice counts once).

        Raises:
            ValueError: ``target`` is not one of the milestone's targets (even after achievement).
        """
        await ask_or_raise(self._ref, _Contribute(target))

    async def achieve(self) -> None:
        """Achieve the milestone now, whatever was contributed."""
        await ask_or_raise(self._ref, _Achieve())

    async def is_achieved(self) -> bool:
        """Whether the milestone has been achieved."""
        await trio.lowlevel.checkpoint()
        return self._state.complete

    async def wait(self) -> None:
        """Wait until the milestone is achieved (at once if it is).

        Raises:
            ActorStopped: the milestone's system shut down before it was
                achieved (a waiter already parked then is woken with it).
        """
        from ._conditions import wait_for  # noqa: PLC0415 - conditions import this module

        await wait_for(self)

    async def subscribe(self, consumer: ActorRef[Any]) -> None:
        """Send ``MilestoneAchieved(self)`` to ``consumer`` once, when achieved (or now)."""
        await ask_or_raise(self._ref, _SubscribeMilestone(consumer))


async def new_milestone(targets: Iterable[Hashable] = (0,)) -> Milestone:
    """Create a milestone with these targets (a set; default ``[0]``).

    An empty list is achieved at creation.
    """
    system = current_system()
    state = _MilestoneState(system, frozenset(targets))
    handle = Milestone._create(state)
    handle._ref = await spawn_task_actor(system, lambda: _MilestoneActor(state, handle))
    return handle
