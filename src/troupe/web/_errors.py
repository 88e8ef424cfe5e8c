"""`WebError`: a dashboard used wrongly (a port taken, a system already closing)."""

from __future__ import annotations

from ..protocol import TroupeError


class WebError(TroupeError):
    """The dashboard cannot do what was asked; the message says why and what to do."""
