"""``inject_failure``: make an actor fail at its next message, as if its ``receive`` had raised."""

from __future__ import annotations

from typing import Any

from ..actors import ActorRef, ActorStopped
from ..actors import _cell as cells


def inject_failure(ref: ActorRef[Any], exc: Exception) -> None:
    """Make the actor behind ``ref`` raise ``exc`` at its next message.

    The next message the actor takes fails with ``exc`` instead of reaching
    ``receive``: it becomes a dead letter (``FAILED``), an ask of it fails
    with `ActorCrashed`, and the actor's supervisor acts as for any crash
    (restart, stop, escalate). Under `explore` that is the very next
    message; in a plain run, the next one after the message it is handling
    now. Arming it again before it fires replaces the failure.

    Raises:
        TypeError: ``ref`` is not a local `ActorRef`, or ``exc`` is not an
            ``Exception`` instance.
        ActorStopped: the actor has stopped for good.

    Example:
        ```python
        troupe.testing.inject_failure(worker, RuntimeError("disk full"))
        await worker.tell(Job(1))   # the worker crashes on it; its supervisor restarts it
        ```
    """
    if not isinstance(ref, ActorRef):
        msg = f"inject_failure needs a local ActorRef, got {ref!r}"
        raise TypeError(msg)
    if not isinstance(exc, Exception):
        msg = (
            f"inject_failure needs an Exception instance (what a receive could raise), got {exc!r}; "
            "a BaseException such as KeyboardInterrupt is not an actor failure"
        )
        raise TypeError(msg)
    cell = ref._cell
    if cell.state == cells.DEAD:
        raise ActorStopped(cell.path)
    cell.injected = exc
    cell.fair = 0  # the receive loop picks it up after the message in hand
