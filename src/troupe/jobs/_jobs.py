"""`Jobs` (``system.jobs``) and the `open_system` that gives a system a job store."""

from __future__ import annotations

import builtins
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable
from contextlib import asynccontextmanager
from typing import Any, final

import trio

from .._util import NoPublicConstructor
from ..actors import ActorSystem, SupervisorStrategy
from ..actors import open_system as open_runtime
from ..actors._explore import run_blocking
from ._actor import JobsActor, Ledger
from ._record import JobRecord, JobStatus
from ._sqlite import SQLiteJobStore
from ._store import JobStore, not_found

_POLL_INTERVAL = 1.0  # seconds between looks for `troupe jobs cancel` requests, while jobs run


def _statuses(status: JobStatus | str | Iterable[JobStatus | str] | None) -> tuple[JobStatus, ...] | None:
    if status is None:
        return None
    wanted = (status,) if isinstance(status, str) else tuple(status)
    try:
        return tuple(JobStatus(s) for s in wanted)
    except ValueError:
        valid = ", ".join(s.value for s in JobStatus)
        msg = f"status is one of {valid} (or a list of them), got {status!r}"
        raise ValueError(msg) from None


@final
class Jobs(metaclass=NoPublicConstructor):
    """A system's job records: ``system.jobs`` when it was opened with a job store.

    Reads see every transition acknowledged before them.

    Example:
        ```python
        async with troupe.open_system(jobs="jobs.sqlite") as system:
            t = await troupe.submit_job(work, name="nightly")
            await t.result()
            for record in await system.jobs.list(status="succeeded", limit=10):
                print(record.name, record.finished - record.started)
        ```
    """

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._store = ledger.store

    def __repr__(self) -> str:
        return f"<Jobs in {self._store.location}>"

    @property
    def store(self) -> JobStore:
        """The store the records are written to."""
        return self._store

    # -- the task layer's side (troupe.actors.JobObserver) -------------------

    async def job_pending(
        self, name: str, cancel: Callable[[], Awaitable[None]], *, running: bool = False
    ) -> str:
        """Record a new job, ``pending`` or already ``running``; return its id once that is durable."""
        job_id, batch = self._ledger.pending(name, cancel, running=running)
        try:
            await batch.wait(job_id)
        except BaseException:  # cancelled: the caller gets no id, and no task will run the job
            self._ledger.abandon(job_id, batch)
            raise
        return job_id

    async def job_running(self, job_id: str) -> None:
        """Record that the job's work starts; return once durable."""
        await self._ledger.running(job_id).wait(job_id)

    def job_progress(self, job_id: str, fraction: float, message: str) -> None:
        """Record progress with the next batch (not awaited)."""
        self._ledger.progress(job_id, fraction, message)

    def job_finished(
        self,
        job_id: str,
        outcome: str,
        result: object,
        error: BaseException | None,
        then: Callable[[BaseException | None], None],
    ) -> None:
        """Record the job's outcome; ``then(None)`` once durable, ``then(exc)`` if the commit failed.

        Raises:
            JobStoreError: the store is closed (``then`` is not called).
        """
        self._ledger.finished(job_id, outcome, result, error).then(job_id, then)

    # -- the users' side -----------------------------------------------------

    async def _query(self, fn: Callable[[JobStore], Any]) -> Any:
        batch, index = self._ledger.query(fn)
        return await batch.answer(index)

    async def get(self, job_id: str) -> JobRecord | None:
        """The job's record, or None if the store has no such job.

        Raises:
            JobStoreError: the record cannot be read (the message says why and what to do).
        """
        found: JobRecord | None = await self._query(lambda store: store.get(job_id))
        return found

    async def list(
        self, *, status: JobStatus | str | Iterable[JobStatus | str] | None = None, limit: int | None = None
    ) -> list[JobRecord]:
        """Records, newest first: all, or those with ``status`` (one or several), at most ``limit``.

        Raises:
            ValueError: an unknown status, or a negative limit.
        """
        wanted = _statuses(status)
        if limit is not None and limit < 0:
            msg = f"limit is a count >= 0, got {limit!r}"
            raise ValueError(msg)
        found: builtins.list[JobRecord] = await self._query(
            lambda store: store.list(status=wanted, limit=limit)
        )
        return found

    async def purge(self, *, older_than: float | None = None, ids: Collection[str] | None = None) -> int:
        """Delete finished jobs' records; return how many. Live jobs are never purged.

        Args:
            older_than: only those that finished more than this many seconds ago.
            ids: only these jobs.
        """
        if older_than is not None and older_than < 0:
            msg = f"older_than is an age in seconds >= 0, got {older_than!r}"
            raise ValueError(msg)
        wanted = None if ids is None else [ids] if isinstance(ids, str) else list(ids)
        count: int = await self._query(lambda store: store.purge(older_than=older_than, ids=wanted))
        return count

    async def cancel(self, job_id: str) -> JobRecord:
        """Cancel a ``pending`` or ``running`` job (its task is force-cancelled); return its record.

        A job of this system is ``cancelled`` when this returns; a job of
        another process sharing the store is flagged, and its owner cancels
        it within a second or so. A finished job is left as it is.

        Raises:
            JobStoreError: no such job.
        """
        done = self._ledger.done_event(job_id)
        cancel = self._ledger.cancels.get(job_id)
        if done is not None and cancel is not None:
            await cancel()
            await done.wait()
        found: JobRecord | None = await self._query(lambda store: store.get(job_id))
        if found is None:
            raise not_found(job_id, self._store.location)
        if found.status.finished:
            return found
        requested: JobRecord = await self._query(lambda store: store.request_cancel(job_id))
        return requested


def as_store(jobs: str | os.PathLike[str] | JobStore) -> JobStore:
    """A path becomes a `SQLiteJobStore`; a store is itself."""
    if isinstance(jobs, JobStore):
        return jobs
    if isinstance(jobs, str | os.PathLike):
        return SQLiteJobStore(jobs)
    msg = f"jobs= is a file path or a JobStore (like troupe.MemoryJobStore()), got {jobs!r}"
    raise TypeError(msg)


async def _blocking(store: JobStore, fn: Callable[[str], None], owner: str) -> None:
    if store.blocking:
        await run_blocking(fn, owner)
    else:
        await trio.lowlevel.checkpoint()
        fn(owner)


async def attach_jobs(system: ActorSystem, store: JobStore) -> Jobs:
    """Open ``store`` for ``system`` and start its ``/system/jobs`` actor."""
    owner = str(uuid.uuid4())
    await _blocking(store, store.open, owner)
    ledger = Ledger(store, owner, system)
    try:
        await system._spawn_system(lambda: JobsActor(ledger, _POLL_INTERVAL), name="jobs")
    except BaseException:
        with trio.CancelScope(shield=True):
            await _blocking(store, store.close, owner)
        raise
    jobs = Jobs._create(ledger)
    system._jobs = jobs
    return jobs


@asynccontextmanager
async def open_system(
    *,
    name: str = "troupe",
    supervisor: SupervisorStrategy | None = None,
    shutdown_timeout: float = 10.0,
    jobs: str | os.PathLike[str] | JobStore | None = None,
) -> AsyncIterator[ActorSystem]:
    """Open an actor system; leaving the block shuts it down.

    The same as `troupe.actors.open_system`, plus ``jobs=``: a file path
    (a `SQLiteJobStore` is made for it, folder included) or a `JobStore`.
    With a store, ``system.jobs`` is its [`Jobs`][troupe.Jobs] and tasks
    started with ``job=True`` or `submit_job` are recorded in it. Jobs
    still ``pending`` or ``running`` when the system closes are recorded
    ``interrupted``.

    Args:
        name: a name for logs and the command line.
        supervisor: the strategy for top-level actors; default ``OneForOne()``.
        shutdown_timeout: seconds the whole shutdown may take.
        jobs: where to keep job records; default: no job tracking.

    Raises:
        JobStoreError: the store cannot be opened (not a troupe store, a
            newer schema, read-only...): the message names the file and
            what to do. Nothing is left running.
        ActorFailed: as for the runtime's ``open_system``.

    Example:
        ```python
        async with troupe.open_system(jobs=".troupe/jobs.sqlite") as system:
            t = await troupe.submit_job(work)
        ```
    """
    store = None if jobs is None else as_store(jobs)
    async with open_runtime(name=name, supervisor=supervisor, shutdown_timeout=shutdown_timeout) as system:
        if store is not None:
            await attach_jobs(system, store)
        yield system
