"""Where the API reads jobs: a running system's tracker, or a job store served alone."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..jobs import JobRecord, Jobs, JobStatus, JobStoreError, SQLiteJobStore
from ..jobs._store import not_found

if TYPE_CHECKING:
    from ..actors import ActorSystem


class NoJobs(LookupError):
    """The system has no job store."""


class SystemJobs:
    """The jobs of a running system (``system.jobs``)."""

    def __init__(self, system: ActorSystem) -> None:
        self.system = system

    def _jobs(self) -> Jobs:
        jobs = self.system.jobs
        if jobs is None:
            msg = (
                f"system {self.system.name!r} has no job store; open it with "
                "troupe.open_system(jobs='jobs.sqlite') to track jobs"
            )
            raise NoJobs(msg)
        return jobs

    async def list(self, status: JobStatus | None) -> list[JobRecord]:
        """Records, newest first."""
        return await self._jobs().list(status=status)

    async def get(self, job_id: str) -> JobRecord | None:
        """One record, or None."""
        return await self._jobs().get(job_id)

    async def cancel(self, job_id: str) -> JobRecord:
        """Cancel a live job (a job of this system is cancelled when this returns)."""
        return await self._jobs().cancel(job_id)


class StoreJobs:
    """A job store served alone (``troupe jobs serve``): read here, cancelled by flagging the owner."""

    def __init__(self, store: SQLiteJobStore) -> None:
        self.store = store

    async def list(self, status: JobStatus | None) -> list[JobRecord]:
        """Records, newest first."""
        return self.store.list(status=None if status is None else (status,))

    async def get(self, job_id: str) -> JobRecord | None:
        """One record, or None."""
        return self.store.get(job_id)

    async def cancel(self, job_id: str) -> JobRecord:
        """Flag a live job for its owner to cancel (within ~1 s); a job whose owner is gone is interrupted."""
        if self.store.get(job_id) is None:
            raise not_found(job_id, self.store.location)
        return self.store.request_cancel(job_id)


JobSource = SystemJobs | StoreJobs
__all__ = ["JobSource", "JobStoreError", "NoJobs", "StoreJobs", "SystemJobs"]
