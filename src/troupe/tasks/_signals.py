"""What milestones and counters share: a handle to an actor, watchers, subscribers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..actors import ActorRef


class Signalling:
    """State shared by a producer actor and its handle: written by the actor only."""

    __slots__ = ("subscribers", "watchers")

    def __init__(self) -> None:
        self.watchers: list[Callable[[], None]] = []
        self.subscribers: list[ActorRef[Any]] = []

    def fire(self, signal: object) -> None:
        """Wake waiters and tell every subscriber, once each."""
        for watcher in list(self.watchers):
            watcher()
        for consumer in self.subscribers:
            consumer.tell_nowait(signal)


async def ask_or_raise(ref: ActorRef[Any], msg: object) -> Any:
    """Ask a producer actor; an exception it answers with is raised here."""
    answer = await ref.ask(msg, timeout=None)
    if isinstance(answer, BaseException):
        raise answer
    return answer
