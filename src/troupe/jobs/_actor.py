"""``/system/jobs``: the one actor that writes a system's job records.

It owns the records of the jobs in flight and applies their transitions.
Writes are batched: ``receive`` only queues (and defers the answer); a
writer loop takes everything queued, commits it in one transaction in a
worker thread, then answers. Whatever arrives during a commit goes into
the next one, so the commit rate, not the transition rate, is what the
disk sees, and every transition is still answered only once it is durable.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import trio

from ..actors import Actor, JobStoreError, Reply
from ..protocol import message
from ._record import JobRecord, JobStatus, error_text, storable
from ._store import JobStore

log = logging.getLogger("troupe.jobs")

T = TypeVar("T")


@message(name="troupe.jobs.Pending")
class Pending:
    name: str
    cancel: Any


@message(name="troupe.jobs.Running")
class Running:
    job_id: str


@message(name="troupe.jobs.Progress")
class Progress:
    job_id: str
    fraction: float
    message: str


@message(name="troupe.jobs.Finished")
class Finished:
    job_id: str
    outcome: str
    result: Any
    error: Any


@message(name="troupe.jobs.Query")
class Query:
    """Run ``fn(store)`` in the worker thread, after the writes queued before it."""

    fn: Any


@message(name="troupe.jobs.CancelFn")
class CancelFn:
    """The cancel function of a job of ours that is still live, or None."""

    job_id: str


@message(name="troupe.jobs.AwaitDone")
class AwaitDone:
    """Answer with the job's record once its outcome is durable."""

    job_id: str


JobsMsg = Pending | Running | Progress | Finished | Query | CancelFn | AwaitDone

_OUTCOMES = {
    "succeeded": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELLED,
    "interrupted": JobStatus.INTERRUPTED,
}


_SHUTDOWN_ERROR = "Interrupted: the system shut down before the job finished"


class JobsActor(Actor[JobsMsg]):
    """Owns the live job records of one system and writes every change to its store."""

    def __init__(self, store: JobStore, owner: str, poll_interval: float) -> None:
        self.store = store
        self.owner = owner
        self.poll_interval = poll_interval
        self.live: dict[str, JobRecord] = {}
        self.stored: dict[str, JobRecord] = {}  # the last durable version of each live record
        self.cancels: dict[str, Callable[[], Any]] = {}
        self.done_waiters: dict[str, list[Reply[Any]]] = {}
        self.dirty: dict[str, JobRecord] = {}
        self.moved: set[str] = set()  # ids among dirty whose status changed (not only progress)
        self.acks: list[tuple[Reply[Any], object]] = []
        self.queries: list[tuple[Callable[[JobStore], object], Reply[Any]]] = []
        self.wake = trio.Event()
        self.limiter = trio.CapacityLimiter(1)

    async def on_start(self) -> None:
        self.context.start_soon(self._writer, name="troupe jobs writer")

    async def receive(self, msg: JobsMsg) -> Any:
        try:
            return self._apply(msg)
        except JobStoreError as exc:  # the asker's mistake, not this actor's failure
            self.context.defer_reply().fail(exc)
            return None

    def _apply(self, msg: JobsMsg) -> Any:
        match msg:
            case Pending(name=name, cancel=cancel):
                record = JobRecord(
                    id=str(uuid.uuid4()), name=name, status=JobStatus.PENDING, created=time.time()
                )
                self.cancels[record.id] = cancel
                self._put(record, record.id)
            case Running(job_id=job_id):
                self._put(
                    attrs.evolve(self._live(job_id), status=JobStatus.RUNNING, started=time.time()), None
                )
            case Progress(job_id=job_id, fraction=fraction, message=text):
                current = self.live.get(job_id)
                if current is not None:
                    progressed = attrs.evolve(current, progress=fraction, progress_message=text)
                    self._put(progressed, None, ack=False, moved=False)
            case Finished(job_id=job_id, outcome=outcome, result=result, error=error):
                self._finish(job_id, outcome, result, error)
            case Query(fn=fn):
                self.queries.append((fn, self.context.defer_reply()))
                self.wake.set()
            case CancelFn(job_id=job_id):
                return self.cancels.get(job_id) if job_id in self.live else None
            case AwaitDone(job_id=job_id):
                if job_id in self.live:
                    self.done_waiters.setdefault(job_id, []).append(self.context.defer_reply())
                else:
                    self.queries.append((lambda store: store.get(job_id), self.context.defer_reply()))
                    self.wake.set()
        return None

    def _live(self, job_id: str) -> JobRecord:
        record = self.live.get(job_id)
        if record is None:
            msg = f"job {job_id} is not a live job of this system"
            raise JobStoreError(msg, location=self.store.location)
        return record

    def _finish(self, job_id: str, outcome: str, result: object, error: BaseException | None) -> None:
        record = self._live(job_id)
        status = _OUTCOMES[outcome]
        value, is_repr = storable(result) if status is not JobStatus.FAILED else (None, False)
        record = attrs.evolve(
            record,
            status=status,
            finished=time.time(),
            progress=1.0 if status is JobStatus.SUCCEEDED else record.progress,
            result=value,
            result_is_repr=is_repr,
            error=_SHUTDOWN_ERROR
            if status is JobStatus.INTERRUPTED
            else None
            if error is None
            else error_text(error),
        )
        self._put(record, None)

    def _put(self, record: JobRecord, answer: object, *, ack: bool = True, moved: bool = True) -> None:
        if record.status.finished:
            self.live.pop(record.id, None)
            self.cancels.pop(record.id, None)
        else:
            self.live[record.id] = record
        self.dirty[record.id] = record
        if moved:
            self.moved.add(record.id)
        if ack:
            self.acks.append((self.context.defer_reply(), answer))
        self.wake.set()

    async def _writer(self) -> None:
        while True:
            if self.live:
                with trio.move_on_after(self.poll_interval):
                    await self.wake.wait()
            else:
                await self.wake.wait()
            self.wake = trio.Event()
            await self._flush(poll=bool(self.live))

    async def _flush(self, *, poll: bool) -> None:
        """Commit what is queued in one transaction, then answer and publish."""
        dirty, moved, acks, queries = self.dirty, self.moved, self.acks, self.queries
        self.dirty, self.moved, self.acks, self.queries = {}, set(), [], []
        records = list(dirty.values())
        batch = _Batch(records, [fn for fn, _ in queries], poll=poll)
        await self._call(batch.run, self.store, self.owner)
        for reply, answer in acks:
            if batch.failure is None:
                reply.send(answer)
            else:
                reply.fail(batch.failure)
        for (_, reply), answer in zip(queries, batch.answers, strict=True):
            if isinstance(answer, _Failed):
                reply.fail(answer.error)
            else:
                reply.send(answer)
        if batch.failure is not None:
            self._roll_back(records)
            log.error("job store %s: %s", self.store.location, batch.failure)
            self.context.system._emit("troupe.job.store_failed", batch.failure)
            return
        self._published(records, moved)
        for job_id in batch.cancels:
            cancel = self.cancels.get(job_id)
            if cancel is not None:
                self.context.start_soon(_quietly, cancel, job_id)

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        if self.store.blocking:
            return await trio.to_thread.run_sync(fn, *args, limiter=self.limiter)
        await trio.lowlevel.checkpoint()
        return fn(*args)

    def _roll_back(self, records: list[JobRecord]) -> None:
        """After a failed commit: the live records are what the store holds."""
        for record in records:
            if record.id in self.dirty:  # a newer change is queued: it will be written next
                continue
            previous = self.stored.get(record.id)
            if previous is not None:
                self.live[record.id] = previous
            elif record.id in self.live:  # its pending record was never stored
                del self.live[record.id]
                self.cancels.pop(record.id, None)

    def _published(self, records: list[JobRecord], moved: set[str]) -> None:
        system = self.context.system
        for record in records:
            if record.status.finished:
                self.stored.pop(record.id, None)
            else:
                self.stored[record.id] = record
            if record.status.finished:
                for reply in self.done_waiters.pop(record.id, ()):
                    reply.send(record)
            topic = record.status.value if record.id in moved else "progress"
            system._emit(f"troupe.job.{topic}", record)

    async def on_stop(self) -> None:
        # The writer loop is cancelled by now: write what is left, then close,
        # which marks what is still live (cut off by the shutdown) interrupted.
        if self.dirty or self.acks or self.queries:
            await self._flush(poll=False)
        try:
            await self._call(self.store.close, self.owner)
        except Exception as exc:  # noqa: BLE001 - the system is closing: say it, go on
            log.error("could not close the job store %s: %s", self.store.location, exc)  # noqa: TRY400


@attrs.frozen
class _Failed:
    error: BaseException


@attrs.define
class _Batch:
    """One worker-thread call: the writes, then the queries, then the cancel poll."""

    records: list[JobRecord]
    queries: list[Callable[[JobStore], object]]
    poll: bool
    failure: BaseException | None = None
    answers: list[object] = attrs.Factory(list)
    cancels: list[str] = attrs.Factory(list)

    def run(self, store: JobStore, owner: str) -> None:
        if self.records:
            try:
                store.save(self.records, owner)
            except Exception as exc:  # noqa: BLE001 - answered to every waiter of the batch
                self.failure = exc
        for fn in self.queries:
            try:
                self.answers.append(fn(store))
            except Exception as exc:  # noqa: BLE001 - answered to its asker
                self.answers.append(_Failed(exc))
        if self.poll:
            try:
                self.cancels = store.cancel_requests(owner)
            except Exception as exc:  # noqa: BLE001 - a poll that fails is retried next time
                log.warning("could not read cancellation requests from %s: %s", store.location, exc)


async def _quietly(cancel: Callable[[], Any], job_id: str) -> None:
    try:
        await cancel()
    except Exception as exc:  # noqa: BLE001 - a cancel that cannot act is not the store's failure
        log.warning("could not cancel job %s: %s", job_id, exc)
