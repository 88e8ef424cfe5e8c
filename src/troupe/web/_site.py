"""`Site`: what one dashboard serves (a system's view or a store's jobs, the token, the streams)."""

from __future__ import annotations

import time
from typing import Any

from ._bind import Bindings
from ._jobsource import JobSource, StoreJobs
from ._sse import Hub
from ._state import SystemView


class Site:
    """The state the app's handlers read: built by `serve` or `serve_store`."""

    def __init__(self, view: SystemView | None, jobs: JobSource, token: str | None) -> None:
        self.view = view
        self.jobs = jobs
        self.token = token
        self.hub = Hub()
        self.bindings = Bindings()
        self.started_at = time.time()
        self._started = time.monotonic()
        self.stopped = False

    def stop(self) -> None:
        """The server stops: the event streams say ``stopped`` and end."""
        self.stopped = True
        if self.view is not None:
            self.view.stopped = True
        self.hub.stop()
        self.bindings.stop()

    def store_json(self) -> dict[str, Any]:
        """``GET /api/system`` for a job store served alone."""
        jobs = self.jobs
        location = jobs.store.location if isinstance(jobs, StoreJobs) else ""
        return {
            "mode": "store",
            "name": location,
            "running": not self.stopped,
            "started_at": self.started_at,
            "uptime": round(time.monotonic() - self._started, 3),
            "stats": None,
            "has_jobs": True,
            "read_only": self.token is None,
        }
