"""The messages the runtime itself sends."""

from __future__ import annotations

import enum
from typing import Any, final

from ._message import message


@final
class DeadLetterReason(enum.Enum):
    """Why a message became a dead letter."""

    STOPPED = "stopped"
    """The recipient had stopped (or stopped before handling it)."""
    FAILED = "failed"
    """Handling it raised; the recipient's supervisor took over."""
    DROPPED = "dropped"
    """A full mailbox's overflow policy dropped it."""
    INTERRUPTED = "interrupted"
    """Its handling was cut off before it finished: the shutdown timeout ran out,
    or its supervisor's bound on a group restart did (`OneForAll`'s
    ``shutdown_timeout``)."""
    REFUSED = "refused"
    """It arrived from another node of a cluster and could not be delivered:
    not a message (garbage, an unknown type, wrong fields, over the size
    limit), or of a type the recipient does not accept."""


@final
@message(name="troupe.Terminated")
class Terminated:
    """A watched actor terminated for good (not sent at restarts).

    Example:
        ```python
        case Terminated(ref=ref, reason=None):
            print(ref.path, "stopped")
        ```
    """

    ref: Any
    """The ref of the actor that terminated: the `ActorRef` that was watched,
    or the `RemoteRef` for an actor on another node of a cluster."""
    reason: BaseException | None = None
    """None after a stop; the exception after a failure."""


@final
@message(name="troupe.DeadLetter")
class DeadLetter:
    """A message that was not processed, and why.

    Example:
        ```python
        async with system.dead_letters.listen() as stream:
            async for letter in stream:
                print(letter.recipient, letter.message, letter.reason)
        ```
    """

    recipient: str
    """The path of the actor it was meant for."""
    message: Any
    """The message itself."""
    reason: DeadLetterReason
    """Why it was not processed."""


@final
@message(name="troupe.BusEvent")
class BusEvent:
    """What event-bus listeners and subscribed actors receive.

    Example:
        ```python
        async with system.events.listen("troupe.*") as events:
            async for ev in events:
                print(ev.topic, ev.data)
        ```
    """

    topic: str
    """The dot-separated topic it was published on."""
    data: Any
    """What the publisher attached."""
