"""Why actors failed: the ``troupe.failure`` log (the ``troupe.failed`` event carries only the path)."""

from __future__ import annotations

import logging
from collections import OrderedDict

from ..actors._cell import FAILURE_LOG_KEY, failure_log
from ._encode import shorten

_KEPT = 10_000  # actors whose last failure is remembered (the oldest is forgotten first)


class FailureReasons(logging.Handler):
    """Keeps each actor's last failure, ``"ExcType: message"``, from the ``troupe.failure`` log.

    `install` adds it to the log (turning the log on if nothing listened to
    it, without sending those records anywhere else); `remove` undoes that.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.reasons: OrderedDict[str, str] = OrderedDict()
        self._saved: tuple[int, bool] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        """Remember the failure the record carries (records without one are ignored)."""
        failure = getattr(record, FAILURE_LOG_KEY, None)
        if failure is None:
            return
        path, error = failure
        reasons = self.reasons
        reasons[path] = shorten(" ".join(f"{type(error).__name__}: {error}".split()))
        reasons.move_to_end(path)
        if len(reasons) > _KEPT:
            reasons.popitem(last=False)

    def install(self) -> None:
        """Listen to the log; turn it on (DEBUG) if it was off, kept from the handlers above."""
        failure_log.addHandler(self)
        if not failure_log.isEnabledFor(logging.DEBUG):
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
