"""The `JobStore` interface, and `MemoryJobStore`, the store that forgets."""

from __future__ import annotations

import abc
import builtins
import time
from collections.abc import Collection, Sequence
from typing import final

import attrs

from ..actors import JobStoreError
from ._record import LIVE, JobRecord, JobStatus


class JobStore(abc.ABC):
    """Where job records live. `SQLiteJobStore` is the default; subclass this for others.

    The methods are synchronous: the system's store actor calls them one at
    a time from a worker thread, so an implementation needs no locking of
    its own within one process. Every failure is a `JobStoreError` that
    names ``location`` and says what to do.

    ``owner`` identifies one writer (one open system). Records carry their
    owner, so that a store shared by several processes knows whose jobs a
    crashed process left behind.
    """

    blocking: bool = True
    """Whether its methods may block (do I/O); then they run in a worker thread."""

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the records are (a file path), for messages."""

    @abc.abstractmethod
    def open(self, owner: str | None) -> None:
        """Open for writing as ``owner`` (None: read only).

        A writer marks the ``pending``/``running`` jobs of owners that are
        gone as ``interrupted``.
        """

    @abc.abstractmethod
    def save(self, records: Sequence[JobRecord], owner: str) -> None:
        """Insert or replace these records, durably, all or none.

        If it raises, the system's writer saves the records apart (in
        halves) to find those this store refuses, and stores each of them
        as a fallback (ASCII texts, no result, the reason in its error),
        so that one bad record does not cost the others. ``save([])``
        should fail when the store is down: the writer then gives up at
        once instead of retrying.
        """

    @abc.abstractmethod
    def get(self, job_id: str) -> JobRecord | None:
        """One record, or None."""

    @abc.abstractmethod
    def list(
        self, *, status: Collection[JobStatus] | None = None, limit: int | None = None
    ) -> builtins.list[JobRecord]:
        """Records, newest first, optionally only those with these statuses."""

    @abc.abstractmethod
    def purge(self, *, older_than: float | None = None, ids: Collection[str] | None = None) -> int:
        """Delete finished records (finished more than ``older_than`` seconds ago; these ``ids``)."""

    @abc.abstractmethod
    def request_cancel(self, job_id: str) -> JobRecord:
        """Ask the owner of a live job to cancel it (from another process)."""

    @abc.abstractmethod
    def cancel_requests(self, owner: str) -> builtins.list[str]:
        """Ids of ``owner``'s live jobs whose cancellation was requested."""

    @abc.abstractmethod
    def close(self, owner: str | None) -> None:
        """Mark ``owner``'s jobs still live as ``interrupted``, and let go."""


def purgeable(record: JobRecord, cutoff: float | None, ids: Collection[str] | None) -> bool:
    """Whether ``purge`` deletes ``record``: finished, before the cutoff, among ``ids``."""
    if not record.status.finished:
        return False
    if ids is not None and record.id not in ids:
        return False
    return cutoff is None or (record.finished or record.created) < cutoff


INTERRUPTED_ERROR = "Interrupted: the process running this job ended before it finished"


def interrupted(record: JobRecord, now: float) -> JobRecord:
    """``record`` cut off while live (its process ended)."""
    return attrs.evolve(
        record,
        status=JobStatus.INTERRUPTED,
        finished=now,
        error=INTERRUPTED_ERROR,
    )


def not_found(job_id: str, location: str) -> JobStoreError:
    """The error for an unknown job id."""
    return JobStoreError(
        f"no job {job_id!r} in {location}; `troupe jobs list --db {location}` shows the ids",
        location=location,
    )


@final
class MemoryJobStore(JobStore):
    """A job store in memory: for tests and for tracking without persistence.

    Example:
        ```python
        async with troupe.open_system(jobs=troupe.MemoryJobStore()) as system:
            t = await troupe.submit_job(work)
        ```
    """

    blocking = False  # plain dict operations: called on the trio thread

    def __init__(self) -> None:
        self._records: dict[str, tuple[JobRecord, str]] = {}
        self._cancels: set[str] = set()

    @property
    def location(self) -> str:
        """``":memory:"``."""
        return ":memory:"

    def open(self, owner: str | None) -> None:
        """Nothing to open."""

    def save(self, records: Sequence[JobRecord], owner: str) -> None:
        """Keep the records."""
        for record in records:
            self._records[record.id] = (record, owner)

    def get(self, job_id: str) -> JobRecord | None:
        """One record, or None."""
        found = self._records.get(job_id)
        return None if found is None else found[0]

    def list(
        self, *, status: Collection[JobStatus] | None = None, limit: int | None = None
    ) -> builtins.list[JobRecord]:
        """Records, newest first."""
        records = [r for r, _ in self._records.values() if status is None or r.status in status]
        records.sort(key=lambda r: r.created, reverse=True)
        return records if limit is None else records[:limit]

    def purge(self, *, older_than: float | None = None, ids: Collection[str] | None = None) -> int:
        """Delete finished records."""
        cutoff = None if older_than is None else time.time() - older_than
        doomed = [i for i, (r, _) in self._records.items() if purgeable(r, cutoff, ids)]
        for job_id in doomed:
            del self._records[job_id]
        return len(doomed)

    def request_cancel(self, job_id: str) -> JobRecord:
        """Remember the request."""
        record = self.get(job_id)
        if record is None:
            raise not_found(job_id, self.location)
        if record.status in LIVE:
            self._cancels.add(job_id)
        return record

    def cancel_requests(self, owner: str) -> builtins.list[str]:
        """The requests for ``owner``'s live jobs."""
        found = [i for i in self._cancels if i in self._records and self._records[i][1] == owner]
        self._cancels.difference_update(found)
        return found

    def close(self, owner: str | None) -> None:
        """Mark ``owner``'s live jobs interrupted."""
        now = time.time()
        for job_id, (record, who) in list(self._records.items()):
            if who == owner and record.status in LIVE:
                self._records[job_id] = (interrupted(record, now), who)
