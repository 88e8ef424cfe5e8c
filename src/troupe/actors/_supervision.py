"""Supervision settings: strategies, restart types and backoff (Erlang/OTP)."""

from __future__ import annotations

import enum
from typing import final

import attrs


@final
class Restart(enum.Enum):
    """When a child is restarted by its supervisor."""

    PERMANENT = "permanent"
    """Always restarted: after a failure and after its own normal exit."""
    TRANSIENT = "transient"
    """Restarted only after a failure, not after a normal exit."""
    TEMPORARY = "temporary"
    """Never restarted; its failures do not count towards the limit."""


@final
@attrs.frozen
class Backoff:
    """Delay between restarts.

    The k-th restart within the window waits ``min(initial * 2**(k-1),
    maximum)`` seconds while messages keep queuing. Each child waits out its
    own backoff: a sibling's restart is never held up by it.

    Example:
        ```python
        supervisor: troupe.SupervisorStrategy = troupe.OneForOne(backoff=troupe.Backoff(0.1, 5.0))
        ```
    """

    initial: float = attrs.field(default=0.1, validator=attrs.validators.ge(0))
    """The delay before the first restart in a window, in seconds."""
    maximum: float = attrs.field(default=10.0, validator=attrs.validators.ge(0))
    """The longest delay, in seconds."""

    def delay(self, k: int) -> float:
        """The delay before the ``k``-th restart in the window (``k >= 1``)."""
        return float(min(self.initial * 2.0 ** min(k - 1, 1023), self.maximum))  # 2.0**1024 overflows


@attrs.frozen
class _Strategy:
    max_restarts: int = attrs.field(default=3, validator=attrs.validators.ge(0))
    """How many restarts are allowed within any ``within``-second window."""
    within: float = attrs.field(default=5.0, validator=attrs.validators.gt(0))
    """The window, in seconds of trio's clock."""
    backoff: Backoff | None = None
    """An optional delay between restarts."""


@final
@attrs.frozen
class OneForOne(_Strategy):
    """Restart only the child that failed (the default).

    Example:
        ```python
        class Pool(troupe.Actor[Job]):
            supervisor: troupe.SupervisorStrategy = troupe.OneForOne(max_restarts=5, within=10.0)
        ```
    """


@attrs.frozen
class _GroupStrategy(_Strategy):
    shutdown_timeout: float = attrs.field(default=5.0, validator=attrs.validators.ge(0))
    """Seconds each sibling stopped for a group restart may take to finish its
    current message and ``on_stop`` (OTP's shutdown timeout). Then it is cut
    off: the message becomes a dead letter (``DeadLetterReason.INTERRUPTED``;
    an ask gets `ActorCrashed`) and ``on_stop`` is skipped. A sibling waiting
    on the failed child (an ``ask`` with ``timeout=None``) would otherwise
    wait for a restart that waits for it. ``math.inf``: no bound."""


@final
@attrs.frozen
class OneForAll(_GroupStrategy):
    """When one child fails, restart all of them.

    The siblings are stopped in reverse start order, each within
    ``shutdown_timeout`` seconds (then cut off), then all are restarted in
    start order.

    Example:
        ```python
        class Pair(troupe.Actor[Job]):
            supervisor: troupe.SupervisorStrategy = troupe.OneForAll(max_restarts=1, within=60.0)
        ```
    """


@final
@attrs.frozen
class RestForOne(_GroupStrategy):
    """When a child fails, restart it and every sibling started after it.

    The siblings started after it are stopped as for `OneForAll`, within
    ``shutdown_timeout`` seconds each.

    Example:
        ```python
        class Chain(troupe.Actor[Job]):
            supervisor: troupe.SupervisorStrategy = troupe.RestForOne()
        ```
    """


SupervisorStrategy = OneForOne | OneForAll | RestForOne
"""Any of the three strategies."""
