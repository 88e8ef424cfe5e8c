"""The runtime's side of job tracking: the `JobObserver` protocol.

``troupe.tasks`` reports the transitions of job tasks to the observer the
system holds; ``troupe.jobs`` implements it over a persistent store. The
protocol lives here, low, so that neither layer imports the other's
internals and the runtime knows nothing of SQLite.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import Any, Protocol


class JobObserver(Protocol):
    """What a system's job tracker does (``system.jobs``); implemented by `troupe.Jobs`.

    The task layer awaits the transition methods at each transition of a
    task started with ``job=True``: each returns once the transition is
    durable. The query methods are what users call on ``system.jobs``.
    """

    async def job_pending(
        self, name: str, cancel: Callable[[], Awaitable[None]], *, running: bool = False
    ) -> str:
        """Record a new job ``pending`` (``running`` if it starts now); return its id once durable.

        ``cancel()`` force-cancels its task.
        """
        ...

    async def job_running(self, job_id: str) -> None:
        """Record that the job's work is starting."""
        ...

    def job_progress(self, job_id: str, fraction: float, message: str) -> None:
        """Record progress (not awaited; written with the next batch)."""
        ...

    async def job_finished(
        self, job_id: str, outcome: str, result: object, error: BaseException | None
    ) -> None:
        """Record the outcome: ``succeeded``, ``failed``, ``cancelled`` or ``interrupted``."""
        ...

    async def get(self, job_id: str) -> Any:
        """The job's record, or None."""
        ...

    async def list(self, *, status: Any = None, limit: int | None = None) -> Any:
        """Records, newest first."""
        ...

    async def purge(self, *, older_than: float | None = None, ids: Collection[str] | None = None) -> int:
        """Delete finished records; return how many."""
        ...

    async def cancel(self, job_id: str) -> Any:
        """Cancel a pending or running job; return its record."""
        ...
