"""``Reply``: an answer to an ask, to be given later (and the ask's slot)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, final

from outcome import Error, Outcome, Value
from trio.lowlevel import Abort, Task, reschedule

from .._util import NoPublicConstructor
from ._errors import AskTimeout

if TYPE_CHECKING:
    from ._cell import _Cell

T = TypeVar("T")


@final
class Reply(Generic[T], metaclass=NoPublicConstructor):
    """A promise to answer an ask later.

    Returned by [`defer_reply()`][troupe.ActorContext.defer_reply].

    Answer once with [`send()`][troupe.Reply.send] or
    [`fail()`][troupe.Reply.fail]; later answers, and answers after the asker
    gave up, are ignored. If the actor stops first the asker gets
    [`ActorStopped`][troupe.ActorStopped]; if it restarts,
    [`ActorCrashed`][troupe.ActorCrashed].

    Example:
        ```python
        async def receive(self, msg: Fetch) -> None:
            reply = self.context.defer_reply()
            self.context.start_soon(self._fetch, msg.url, reply)

        async def _fetch(self, url: str, reply: troupe.Reply[bytes]) -> None:
            reply.send(await download(url))
        ```
    """

    __slots__ = (
        "_cell",
        "_deadline",
        "_deferred",
        "_done",
        "_in_waiters",
        "_msg",
        "_on_done",
        "_task",
        "_timeout",
    )

    def __init__(self, cell: _Cell | None, msg: object, task: Task | None, timeout: float | None) -> None:
        self._cell = cell
        self._msg = msg
        self._task = task
        self._timeout = timeout
        self._deadline = math.inf
        self._done = task is None
        self._deferred = False
        self._in_waiters = False
        # An ask that arrived from another node has no waiting task: its outcome goes here.
        self._on_done: Callable[[Outcome[Any]], None] | None = None

    def __lt__(self, other: Reply[Any]) -> bool:  # for the system's deadline heap
        return self._deadline < other._deadline

    @property
    def done(self) -> bool:
        """Whether this reply was answered, or its asker gave up."""
        return self._done

    def send(self, value: T) -> None:
        """Answer the ask with ``value`` (ignored if already answered)."""
        self._resolve(Value(value))

    def fail(self, exc: BaseException) -> None:
        """Make the ask raise ``exc`` itself (ignored if already answered).

        The actor is not failed and no supervision is involved.
        """
        if not isinstance(exc, BaseException):
            msg = f"Reply.fail() takes an exception, got {exc!r}"
            raise TypeError(msg)
        self._resolve(Error(exc))

    def _resolve(self, result: Outcome[Any]) -> None:
        if self._done:
            return
        self._done = True
        task = self._task
        self._task = None
        if self._deferred:
            cell = self._cell
            if cell is not None and cell.deferred is not None:
                cell.deferred.discard(self)
        on_done = self._on_done
        if on_done is None:
            reschedule(task, result)  # type: ignore[arg-type]
        else:
            self._on_done = None
            on_done(result)

    def _fail_quietly(self, exc: BaseException) -> None:
        if not self._done:
            if self._in_waiters and self._cell is not None and self._cell.waiters:
                self._cell.waiters.remove(self)
                self._in_waiters = False
            self._resolve(Error(exc))

    def _abort(self, _: object) -> Abort:
        # The asker was cancelled: forget it; an answer later is ignored.
        self._done = True
        self._task = None
        if self._in_waiters and self._cell is not None and self._cell.waiters:
            self._cell.waiters.remove(self)
            self._in_waiters = False
        if self._deferred and self._cell is not None and self._cell.deferred is not None:
            self._cell.deferred.discard(self)
        return Abort.SUCCEEDED

    def _expire(self) -> None:
        if self._done:
            return
        cell = self._cell
        assert cell is not None  # noqa: S101 - only asks have deadlines
        if self._in_waiters and cell.waiters:
            cell.waiters.remove(self)
            self._in_waiters = False
        self._resolve(Error(AskTimeout(cell.path, self._msg, self._timeout or 0.0)))
