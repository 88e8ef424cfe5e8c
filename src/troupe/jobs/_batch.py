"""`Batch`: the transitions and queries a job store commits together, and how a failed commit is split.

A batch is written in one ``save``. When that fails, the records are saved
apart (in halves, depth first) to find the ones the store refuses: each
of those is stored as its `fallback` (ASCII texts, no result, the reason
in its error), so one record's problem never costs the others theirs.
A store that fails even an empty save, or refuses a fallback, is down:
every record not yet stored fails with its error, as a whole batch did.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import trio

from ..actors import JobStoreError
from ._record import JobRecord, fallback
from ._store import JobStore

log = logging.getLogger("troupe.jobs")


@attrs.frozen
class _Failed:
    error: BaseException


class Batch:
    """Transitions and queries committed together; ``wait(id)`` until they are, or ``then(id, callback)``."""

    __slots__ = (
        "answers",
        "callbacks",
        "cancels",
        "done",
        "failed",
        "failure",
        "moved",
        "queries",
        "records",
        "substitutes",
    )

    def __init__(self) -> None:
        self.records: dict[str, JobRecord] = {}
        self.moved: set[str] = set()  # ids whose status changed (not only progress)
        self.queries: list[Callable[[JobStore], object]] = []
        self.answers: list[object] = []
        self.cancels: list[str] = []
        self.callbacks: list[tuple[str, Callable[[BaseException | None], None]]] = []
        self.failure: BaseException | None = None  # every record's: the store is closed
        self.failed: dict[str, JobStoreError] = {}  # the records that were not stored, and why
        self.substitutes: dict[str, JobRecord] = {}  # the fallbacks stored instead of refused records
        self.done = trio.Event()

    def error(self, job_id: str) -> BaseException | None:
        """Why the record of ``job_id`` was not stored, or None if it was."""
        return self.failure if self.failure is not None else self.failed.get(job_id)

    def then(self, job_id: str, callback: Callable[[BaseException | None], None]) -> None:
        """Call ``callback(failure)`` on the trio thread once the record of ``job_id`` is settled."""
        self.callbacks.append((job_id, callback))

    def settle(self) -> None:
        """The commit is over: wake the waiters, call the callbacks."""
        self.done.set()
        for job_id, callback in self.callbacks:
            try:
                callback(self.error(job_id))
            except Exception:  # one caller's bug must not stop the writer or the other callbacks
                log.exception("a job transition's callback failed")

    async def wait(self, job_id: str) -> None:
        """Return once the record of ``job_id`` is committed; raise the store's error if it was not."""
        await self.done.wait()
        error = self.error(job_id)
        if error is not None:
            raise error

    async def answer(self, index: int) -> Any:
        """The answer to query ``index``, once run."""
        await self.done.wait()
        found = self.answers[index]
        if isinstance(found, _Failed):
            raise found.error
        return found

    def run(self, store: JobStore, owner: str, *, poll: bool) -> None:
        """In the worker thread: the writes, then the queries, then the cancel poll."""
        if self.records:
            _Apart(store, owner, self).save(list(self.records.values()))
        for fn in self.queries:
            try:
                self.answers.append(fn(store))
            except Exception as exc:  # noqa: BLE001 - answered to its asker
                self.answers.append(_Failed(exc))
        if poll:
            try:
                self.cancels = store.cancel_requests(owner)
            except Exception as exc:  # noqa: BLE001 - a poll that fails is retried next time
                log.warning("could not read cancellation requests from %s: %s", store.location, exc)


class _Apart:
    """Saves a batch's records, apart if need be; fills the batch's ``failed`` and ``substitutes``."""

    def __init__(self, store: JobStore, owner: str, batch: Batch) -> None:
        self.store = store
        self.owner = owner
        self.batch = batch
        self.stored: set[str] = set()

    def _try(self, records: Sequence[JobRecord]) -> Exception | None:
        try:
            self.store.save(records, self.owner)
        except Exception as exc:  # noqa: BLE001 - which records it concerns is found out by the caller
            return exc
        self.stored.update(r.id for r in records)
        return None

    def save(self, records: Sequence[JobRecord]) -> None:
        error = self._try(records)
        if error is None:
            return
        down: Exception | None = error
        # A store that fails even an empty save is down: say so at once rather
        # than wait out its failure (a lock held elsewhere: 10 s) once per half.
        if len(records) == 1 or self._try(()) is None:
            down = self._isolate(records, error)
        if down is not None:
            failure = _store_error(down, self.store.location)
            for record in records:
                if record.id not in self.stored:
                    self.batch.failed[record.id] = failure

    def _isolate(self, records: Sequence[JobRecord], error: Exception) -> Exception | None:
        """``records`` failed with ``error``: store them apart; the store's error if it is down."""
        if len(records) == 1:
            (record,) = records
            substitute = fallback(record, error)
            down = self._try((substitute,))
            if down is None:
                self.batch.substitutes[record.id] = substitute
                log.warning(
                    "job %s: the store %s refused its record (%s); kept it with escaped texts, no result",
                    record.id,
                    self.store.location,
                    error,
                )
            return down
        middle = len(records) // 2
        for part in (records[:middle], records[middle:]):
            failed = self._try(part)
            if failed is not None:
                down = self._isolate(part, failed)
                if down is not None:
                    return down
        return None


def _store_error(error: Exception, location: str) -> JobStoreError:
    """The store's failure as the `JobStoreError` its waiters get."""
    if isinstance(error, JobStoreError):
        return error
    wrapped = JobStoreError(
        f"{location}: could not store job records ({type(error).__name__}: {error})", location=location
    )
    wrapped.__cause__ = error
    return wrapped
