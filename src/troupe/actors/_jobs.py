"""The runtime's side of job tracking: the `JobObserver` protocol.

``troupe.tasks`` reports the transitions of job tasks to the observer the
system holds; ``troupe.jobs`` implements it over a persistent store. The
protocol lives here, low, so that neither layer imports the other's
internals and the runtime knows nothing of SQLite.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol


class JobObserver(Protocol):
    """What the task layer needs of a job tracker; implemented by `troupe.Jobs`.

    The task layer calls these at each transition of a task started with
    ``job=True``, and each transition takes effect only once it is durable:
    ``job_pending`` and ``job_running`` return then, and ``job_finished``
    calls back then (the task reports its outcome from that callback, so
    its actor need not stay alive through the commit). Users read
    and manage jobs through ``system.jobs`` (a [`Jobs`][troupe.Jobs]).
    A method's docstring is its body: a protocol states what, the
    implementation does it.
    """

    async def job_pending(
        self, name: str, cancel: Callable[[], Awaitable[None]], *, running: bool = False
    ) -> str:
        """Record a new job ``pending`` (``running`` if it starts now); return its id once durable.

        ``cancel()`` force-cancels its task.
        """

    async def job_running(self, job_id: str) -> None:
        """Record that the job's work is starting."""

    def job_progress(self, job_id: str, fraction: float, message: str) -> None:
        """Record progress (not awaited; written with the next batch)."""

    def job_finished(
        self,
        job_id: str,
        outcome: str,
        result: object,
        error: BaseException | None,
        then: Callable[[BaseException | None], None],
    ) -> None:
        """Record the outcome: ``succeeded``, ``failed``, ``cancelled`` or ``interrupted``.

        ``then(None)`` is called on the trio thread once the outcome is
        durable, ``then(exc)`` if its commit failed; raises `JobStoreError`
        at once (and never calls ``then``) if the store is closed.
        """
