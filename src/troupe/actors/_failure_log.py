"""Listening to the ``troupe.failure`` log: why each actor failed.

The ``troupe.failed`` event carries only the actor's path; the reason is
logged at DEBUG on ``troupe.failure``, the ``(path, exception)`` pair under
the record's ``FAILURE_LOG_KEY`` attribute. `FailureListener` hands each
pair on as ``(path, "ExcType: message")``: the command line's view and the
dashboard both show failures this way.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ._cell import FAILURE_LOG_KEY, failure_log

if TYPE_CHECKING:
    from collections.abc import Callable


def failure_reason(error: BaseException) -> str:
    """``"ExcType: message"`` on one line (the message's whitespace runs become single spaces)."""
    return " ".join(f"{type(error).__name__}: {error}".split())


class FailureListener(logging.Handler):
    """Hands each failure the ``troupe.failure`` log records to ``seen(path, reason)``.

    `install` adds it to the log and turns the log on; `remove` undoes that.
    Listeners removed in the reverse order of their `install` leave the log
    as it was.
    """

    def __init__(self, seen: Callable[[str, str], None]) -> None:
        super().__init__(logging.DEBUG)
        self._seen = seen
        self._saved: tuple[int, bool] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        """Hand on the failure the record carries (records without one are ignored)."""
        failure = getattr(record, FAILURE_LOG_KEY, None)
        if failure is not None:
            path, error = failure
            self._seen(path, failure_reason(error))

    def install(self, *, only: bool = False) -> None:
        """Listen to the log; turn it on (DEBUG) if it was off, kept from the handlers above.

        With ``only``, the failures go to the listeners alone even if the log
        was on: whoever installs it shows them (``troupe run``'s view), and
        the user's own handlers must not print them again.
        """
        failure_log.addHandler(self)
        if only or not failure_log.isEnabledFor(logging.DEBUG):
            # Off until now: nobody sees these records, and turning them on must
            # not print them through the root logger's handlers either.
            self._saved = (failure_log.level, failure_log.propagate)
            failure_log.setLevel(logging.DEBUG)
            failure_log.propagate = False

    def remove(self) -> None:
        """Stop listening; put the log back as it was."""
        failure_log.removeHandler(self)
        if self._saved is not None:
            failure_log.setLevel(self._saved[0])
            failure_log.propagate = self._saved[1]
            self._saved = None
