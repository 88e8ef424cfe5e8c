"""Why actors failed: the ``troupe.failure`` log (the ``troupe.failed`` event carries only the path)."""

from __future__ import annotations

from collections import OrderedDict

from ..actors._failure_log import FailureListener
from ._encode import shorten

_KEPT = 10_000  # actors whose last failure is remembered (the oldest is forgotten first)


class FailureReasons(FailureListener):
    """Keeps each actor's last failure, ``"ExcType: message"``, from the ``troupe.failure`` log.

    `install` adds it to the log (turning the log on if nothing listened to
    it, without sending those records anywhere else); `remove` undoes that.
    """

    def __init__(self) -> None:
        super().__init__(self._keep)
        self.reasons: OrderedDict[str, str] = OrderedDict()

    def _keep(self, path: str, reason: str) -> None:
        reasons = self.reasons
        reasons[path] = shorten(reason)
        reasons.move_to_end(path)
        if len(reasons) > _KEPT:
            reasons.popitem(last=False)
