"""``/system/jobs``: the one actor that writes a system's job records.

The actor owns a `Ledger`: the records of the jobs in flight and the batch
being filled. A transition is applied to the ledger at once (a method call
on the trio thread, no message) and joins the current batch; the actor's
writer loop takes the whole batch, commits it in one transaction in a
worker thread, then wakes everyone who waits for it with one event. So the
disk sees one commit per batch, and each transition is still answered only
once it is durable.

Why not a message per transition: three asks per job task (pending,
running, outcome) through the mailbox, each with its own deferred reply,
made a tracked task cost 2.3-2.6x an untracked one (bench/jobs.py, 5000
concurrent tasks, memory store); the ledger brings that to the figure in
docs/guide/jobs.md. Only the actor's writer loop and its ``on_stop`` touch
the store.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import trio

from ..actors import Actor, ActorSystem, JobStoreError
from ..actors._explore import run_blocking
from ._batch import Batch
from ._record import JobRecord, JobStatus, error_text, storable
from ._store import JobStore

log = logging.getLogger("troupe.jobs")

T = TypeVar("T")

_OUTCOMES = {
    "succeeded": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELLED,
    "interrupted": JobStatus.INTERRUPTED,
}
_SHUTDOWN_ERROR = "Interrupted: the system shut down before the job finished"
_ABANDONED_ERROR = (
    "Cancelled: the call that started this job was cancelled before it returned; the job never ran"
)


class Ledger:
    """The live job records of one system, and the batch being filled."""

    def __init__(self, store: JobStore, owner: str, system: ActorSystem) -> None:
        self.store = store
        self.owner = owner
        self.system = system
        self.live: dict[str, JobRecord] = {}
        self.stored: dict[str, JobRecord] = {}  # the last durable version of each live record
        self.cancels: dict[str, Callable[[], Any]] = {}
        self.done_waiters: dict[str, trio.Event] = {}
        self.batch = Batch()
        self.wake = trio.Event()
        self.closed = False
        self.limiter = trio.CapacityLimiter(1)

    def _open(self) -> Batch:
        if self.closed:
            msg = f"the job store {self.store.location} is closed: its system has shut down"
            raise JobStoreError(msg, location=self.store.location)
        return self.batch

    def _live(self, job_id: str) -> JobRecord:
        record = self.live.get(job_id)
        if record is None:
            msg = f"job {job_id} is not a live job of this system"
            raise JobStoreError(msg, location=self.store.location)
        return record

    def _put(self, record: JobRecord, *, moved: bool = True) -> Batch:
        batch = self._open()
        if record.status.finished:
            self.live.pop(record.id, None)
            self.cancels.pop(record.id, None)
        else:
            self.live[record.id] = record
        batch.records[record.id] = record
        if moved:
            batch.moved.add(record.id)
        self.wake.set()
        return batch

    def pending(self, name: str, cancel: Callable[[], Any], *, running: bool) -> tuple[str, Batch]:
        """A new job (``running`` at once if it starts now); its id and the batch that makes it durable."""
        self._open()
        now = time.time()
        if running:
            record = JobRecord(str(uuid.uuid4()), name, JobStatus.RUNNING, now, now)
        else:
            record = JobRecord(str(uuid.uuid4()), name, JobStatus.PENDING, now)
        self.cancels[record.id] = cancel
        return record.id, self._put(record)

    def abandon(self, job_id: str, batch: Batch) -> None:
        """The caller of `pending` gave up waiting (cancelled): no task will run the job.

        Not yet taken by the writer, its record never reaches the store;
        taken, it may be durable already, and is recorded ``cancelled``.
        """
        record = self.live.get(job_id)
        if record is None or self.closed:  # its commit failed, or the shutdown marks it interrupted
            return
        if batch is self.batch:
            del batch.records[job_id]
            batch.moved.discard(job_id)
            del self.live[job_id]
            self.cancels.pop(job_id, None)
            return
        self._put(
            attrs.evolve(record, status=JobStatus.CANCELLED, finished=time.time(), error=_ABANDONED_ERROR)
        )

    def running(self, job_id: str) -> Batch:
        """The job's work starts."""
        return self._put(attrs.evolve(self._live(job_id), status=JobStatus.RUNNING, started=time.time()))

    def progress(self, job_id: str, fraction: float, message: str) -> None:
        """Progress, written with the next batch (nobody waits for it)."""
        current = self.live.get(job_id)
        if current is not None and not self.closed:
            self._put(attrs.evolve(current, progress=fraction, progress_message=message), moved=False)

    def finished(self, job_id: str, outcome: str, result: object, error: BaseException | None) -> Batch:
        """The job's outcome."""
        record = self._live(job_id)
        status = _OUTCOMES[outcome]
        value, is_repr = storable(result) if status is not JobStatus.FAILED else (None, False)
        if status is JobStatus.INTERRUPTED:
            text: str | None = _SHUTDOWN_ERROR
        else:
            text = None if error is None else error_text(error)
        # the constructor, not attrs.evolve: evolve introspects the fields on every call
        return self._put(
            JobRecord(
                record.id,
                record.name,
                status,
                record.created,
                record.started,
                time.time(),
                1.0 if status is JobStatus.SUCCEEDED else record.progress,
                record.progress_message,
                value,
                is_repr,
                text,
            )
        )

    def query(self, fn: Callable[[JobStore], object]) -> tuple[Batch, int]:
        """Run ``fn(store)`` after the transitions queued so far."""
        batch = self._open()
        batch.queries.append(fn)
        self.wake.set()
        return batch, len(batch.queries) - 1

    def done_event(self, job_id: str) -> trio.Event | None:
        """An event set once a live job's outcome is durable (None if not live)."""
        if job_id not in self.live:
            return None
        return self.done_waiters.setdefault(job_id, trio.Event())

    async def flush(self, *, poll: bool) -> Batch:
        """Commit the current batch, then publish and settle it.

        Once taken, a batch is always settled: the worker thread is not
        abandoned on cancellation, and a store that does not block is
        written without a checkpoint between taking and settling.
        """
        if self.store.blocking:
            batch = self._take()
            await run_blocking(lambda: batch.run(self.store, self.owner, poll=poll), limiter=self.limiter)
        else:
            await trio.lowlevel.checkpoint()
            batch = self._take()
            batch.run(self.store, self.owner, poll=poll)
        if batch.failed:
            self._roll_back(batch)
            for failure in {id(e): e for e in batch.failed.values()}.values():
                log.error("job store %s: %s", self.store.location, failure)
                self.system._emit("troupe.job.store_failed", failure)
        self._published(batch)
        batch.settle()
        return batch

    def _take(self) -> Batch:
        batch = self.batch
        self.batch = Batch()
        return batch

    def _roll_back(self, batch: Batch) -> None:
        """After a failed commit: the live records are what the store holds."""
        for job_id in batch.failed:
            if job_id in self.batch.records:  # a newer change is queued: it will be written next
                continue
            previous = self.stored.get(job_id)
            if previous is not None:
                self.live[job_id] = previous
            elif job_id in self.live:  # its pending record was never stored
                del self.live[job_id]
                self.cancels.pop(job_id, None)

    def _published(self, batch: Batch) -> None:
        # The topic is only formatted when someone listens: a flush of 5000
        # records spent 3.7-6 ms of the loop's time publishing to nobody.
        system = self.system
        listened = bool(system._events._subs)
        failed, substitutes = batch.failed, batch.substitutes
        for job_id, given in batch.records.items():
            if failed and job_id in failed:
                continue
            # what the store holds: a record it refused is kept as its fallback
            record = substitutes.get(job_id, given) if substitutes else given
            if record.status.finished:
                self.stored.pop(job_id, None)
                event = self.done_waiters.pop(job_id, None)
                if event is not None:
                    event.set()
            else:
                self.stored[job_id] = record
            if listened:
                topic = record.status.value if job_id in batch.moved else "progress"
                system._emit(f"troupe.job.{topic}", record)


class JobsActor(Actor[Any]):
    """Runs the ledger's writer loop; at stop, writes what is left and closes the store."""

    def __init__(self, ledger: Ledger, poll_interval: float) -> None:
        self.ledger = ledger
        self.poll_interval = poll_interval

    async def on_start(self) -> None:
        self.context.start_soon(self._writer, name="troupe jobs writer")

    async def receive(self, msg: Any) -> None:
        msg_text = f"/system/jobs takes no messages; use system.jobs (got {msg!r})"
        raise TypeError(msg_text)

    async def _writer(self) -> None:
        ledger = self.ledger
        while True:
            if ledger.live:
                with trio.move_on_after(self.poll_interval):
                    await ledger.wake.wait()
            else:
                await ledger.wake.wait()
            ledger.wake = trio.Event()
            batch = await ledger.flush(poll=bool(ledger.live))
            for job_id in batch.cancels:
                cancel = ledger.cancels.get(job_id)
                if cancel is not None:
                    self.context.start_soon(_quietly, cancel, job_id)

    async def on_stop(self) -> None:
        # The writer loop is cancelled by now: write what is left, then close,
        # which marks what is still live (cut off by the shutdown) interrupted.
        ledger = self.ledger
        if ledger.batch.records or ledger.batch.queries:
            await ledger.flush(poll=False)
        ledger.closed = True
        ledger.batch.failure = JobStoreError(
            f"the job store {ledger.store.location} is closed", location=ledger.store.location
        )
        ledger.batch.settle()
        store, owner = ledger.store, ledger.owner
        try:
            if store.blocking:
                await run_blocking(store.close, owner, limiter=ledger.limiter)
            else:
                store.close(owner)
        except Exception as exc:  # noqa: BLE001 - the system is closing: say it, go on
            log.error("could not close the job store %s: %s", store.location, exc)  # noqa: TRY400


async def _quietly(cancel: Callable[[], Any], job_id: str) -> None:
    try:
        await cancel()
    except Exception as exc:  # noqa: BLE001 - a cancel that cannot act is not the store's failure
        log.warning("could not cancel job %s (asked by `troupe jobs cancel`): %s", job_id, exc)
