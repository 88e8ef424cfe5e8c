"""``system.from_thread``: telling and asking actors from plain threads.

Code that is not trio code — a thread of a sync library, a callback it
calls — cannot await. `FromThread` runs ``tell`` and ``ask`` on the
system's trio thread (trio's ``trio.from_thread``) and blocks the calling
thread until they are done.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar, final

import trio

from .._util import NoPublicConstructor
from ._errors import ActorStopped

if TYPE_CHECKING:
    from ._ref import ActorRef

M = TypeVar("M")


@final
class FromThread(metaclass=NoPublicConstructor):
    """Blocking ``tell`` and ``ask`` for threads other than the system's (``system.from_thread``).

    Example:
        ```python
        def on_sensor_reading(value: float) -> None:   # called by a sync library, in its thread
            system.from_thread.tell(sink, Reading(value))
            average = system.from_thread.ask(sink, GetAverage(), timeout=2.0)
        ```
    """

    __slots__ = ("_path", "_token")

    def __init__(self, token: trio.lowlevel.TrioToken, name: str) -> None:
        self._token = token
        self._path = name

    def tell(self, ref: ActorRef[M], msg: M) -> None:
        """`ActorRef.tell` from a thread: blocks while the mailbox is full.

        Raises:
            MessageTypeError: the actor does not accept ``type(msg)``.
            RuntimeError: called from the system's own trio thread (``await ref.tell(msg)`` there).
            ActorStopped: the system's trio run has ended.
        """
        self._run(ref.tell, msg)

    def tell_nowait(self, ref: ActorRef[M], msg: M) -> None:
        """`ActorRef.tell_nowait` from a thread (the overflow policy applies on a full mailbox)."""

        async def tell() -> None:
            ref.tell_nowait(msg)

        self._run(tell)

    def ask(self, ref: ActorRef[M], msg: M, *, timeout: float | None = 5.0) -> Any:
        """`ActorRef.ask` from a thread: blocks until the answer (or the timeout, in the system's clock).

        Raises:
            AskTimeout: no answer within ``timeout`` seconds.
            ActorCrashed: ``receive`` raised (``__cause__``).
            ActorStopped: the actor is stopped, or the system's trio run has ended.
            RuntimeError: called from the system's own trio thread (``await ref.ask(msg)`` there).
        """
        return self._run(lambda: ref.ask(msg, timeout=timeout))

    def _run(self, fn: Any, *args: object) -> Any:
        try:
            here = trio.lowlevel.current_trio_token()
        except RuntimeError:  # not in a trio thread: as it should be
            here = None
        if here is self._token:
            msg = (
                f"system.from_thread is for threads other than the system {self._path!r}'s own: "
                "in its trio code, await ref.tell(msg) or ref.ask(msg) instead"
            )
            raise RuntimeError(msg)
        try:
            return trio.from_thread.run(fn, *args, trio_token=self._token)
        except trio.RunFinishedError:
            raise ActorStopped(
                self._path,
                f"the system {self._path!r} has closed and its trio run has ended: nothing can "
                "receive the message",
            ) from None
