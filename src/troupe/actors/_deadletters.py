"""Dead letters: every message that was not processed, counted and streamed."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, final

import trio

from .._util import NoPublicConstructor
from ..protocol import BusEvent, DeadLetter, DeadLetterReason

if TYPE_CHECKING:
    from ._events import EventBus


@final
class DeadLetters(metaclass=NoPublicConstructor):
    """The system's dead-letter office (``system.dead_letters``).

    Nothing disappears without being counted: a message told to a stopped
    actor, left in a stopping actor's mailbox, dropped by an overflow
    policy, or being handled when its actor failed ends up here.

    Example:
        ```python
        async with system.dead_letters.listen() as letters:
            await stopped_ref.tell(Ping())
            letter = await letters.receive()
            assert letter.reason is troupe.DeadLetterReason.STOPPED
        ```
    """

    __slots__ = ("_count", "_events", "_listeners")

    def __init__(self, events: EventBus) -> None:
        self._count = 0
        self._events = events
        self._listeners: list[trio.MemorySendChannel[DeadLetter]] = []

    @property
    def count(self) -> int:
        """How many dead letters there have been so far."""
        return self._count

    @asynccontextmanager
    async def listen(self) -> AsyncIterator[trio.MemoryReceiveChannel[DeadLetter]]:
        """Stream every [`DeadLetter`][troupe.DeadLetter] from now on.

        The stream buffers without bound, so dead-lettering never waits.
        """
        send, receive = trio.open_memory_channel[DeadLetter](math.inf)
        self._listeners.append(send)
        try:
            async with receive:
                yield receive
        finally:
            self._listeners.remove(send)
            send.close()
        await trio.lowlevel.checkpoint()

    def _add(self, recipient: str, message: object, reason: DeadLetterReason) -> None:
        self._count += 1
        events = self._events
        if self._listeners or events._subs:
            if isinstance(message, BusEvent) and message.topic == "troupe.dead_letter":
                return  # a lost dead-letter notice is counted, never re-announced
            letter = DeadLetter(recipient, message, reason)
            for send in self._listeners:
                send.send_nowait(letter)
            events._emit("troupe.dead_letter", letter)
