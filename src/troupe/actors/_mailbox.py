"""Mailbox settings: capacity and what ``tell_nowait`` does when full."""

from __future__ import annotations

import enum
from typing import final

import attrs


@final
class Overflow(enum.Enum):
    """What [`tell_nowait()`][troupe.ActorRef.tell_nowait] does on a full mailbox.

    ``await tell()`` always waits for room instead (backpressure).
    """

    BLOCK = "block"
    """Refuse the message: ``tell_nowait`` raises [`MailboxFull`][troupe.MailboxFull]."""
    DROP_NEW = "drop_new"
    """Drop the new message (it becomes a dead letter)."""
    DROP_OLD = "drop_old"
    """Drop the oldest queued message (a dead letter; a dropped ask fails with
    ``MailboxFull``) and queue the new one."""


def _check_capacity(_: object, __: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value < 0:
        msg = f"Mailbox capacity must be an int >= 0, got {value!r}"
        raise ValueError(msg)


@final
@attrs.frozen
class Mailbox:
    """An immutable mailbox setting; one object may serve many spawns.

    Capacity counts queued messages, not the one being handled; system
    messages such as `Terminated` ignore it. ``capacity=0`` is a
    rendezvous: ``await tell`` returns once the actor has taken the message.

    Example:
        ```python
        bounded = troupe.Mailbox(capacity=8, overflow=troupe.Overflow.DROP_OLD)
        ref = await system.spawn(Worker, mailbox=bounded)
        ```
    """

    capacity: int = attrs.field(default=1024, validator=_check_capacity)
    """How many messages may wait in the queue."""
    overflow: Overflow = attrs.field(default=Overflow.BLOCK, validator=attrs.validators.instance_of(Overflow))
    """The policy ``tell_nowait`` applies when the queue is full."""


DEFAULT_MAILBOX = Mailbox()
