"""A job task's outcome: handed to the store as its actor ends, reported once durable."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import trio
import trio.testing

import troupe
from troupe import JobStatus

from kit import FakeStore

_HANG_GUARD = 10.0  # seconds a worker-thread wait may take before the test fails instead of hanging


class _Gate:
    """Holds the first save that carries an outcome until released (in the store's worker thread)."""

    def __init__(self) -> None:
        self.holding = threading.Event()
        self.release = threading.Event()

    def __call__(self, records: Sequence[troupe.JobRecord]) -> None:
        if any(r.status.finished for r in records) and not self.holding.is_set():
            self.holding.set()
            assert self.release.wait(_HANG_GUARD)

    async def wait_holding(self) -> None:
        assert await trio.to_thread.run_sync(self.holding.wait, _HANG_GUARD)


async def test_the_outcome_is_reported_once_durable_and_the_actor_ends_before() -> None:
    gate = _Gate()
    store = FakeStore(gate)
    go = trio.Event()

    async def work() -> int:
        await go.wait()
        return 42

    async with troupe.open_system(jobs=store) as system:
        probe = await troupe.TestProbe.create(system)
        t = await troupe.submit_job(work)
        await t.subscribe(probe.ref)
        go.set()
        await gate.wait_holding()  # the outcome's commit has begun
        await trio.testing.wait_all_tasks_blocked()
        assert system.lookup(f"/system/tasks/{t.name}") is None  # its actor has ended
        assert not t.finished  # not reported: not durable yet
        await t.cancel(force=True)  # too late: its outcome is decided
        assert not t.cancellation_requested
        await probe.expect_no_message()
        gate.release.set()
        assert await t.result() == 42
        record = store.get(t.job_id)  # type: ignore[arg-type]
        assert record is not None
        assert record.status is JobStatus.SUCCEEDED
        signal = await probe.expect(troupe.TaskFinished)
        assert signal.task is t
        await probe.expect_no_message()
    assert system.statistics().failures == 0


async def test_a_failed_outcome_commit_leaves_the_outcome_standing() -> None:
    def disk_full_at_the_outcome(records: Sequence[troupe.JobRecord]) -> None:
        if any(r.status.finished for r in records):
            raise troupe.JobStoreError("fake.sqlite: the disk is full", location="fake.sqlite")

    store = FakeStore(disk_full_at_the_outcome)
    async with troupe.open_system(jobs=store) as system:
        async with system.events.listen("troupe.job.store_failed") as events:
            t = await troupe.submit_job(lambda: 7)
            assert await t.result() == 7  # the task's outcome stands
            failed = await events.receive()
        assert isinstance(failed.data, troupe.JobStoreError)
        assert "disk is full" in str(failed.data)
        record = store.get(t.job_id)  # type: ignore[arg-type]
        assert record is not None
        assert record.status is JobStatus.RUNNING  # its last durable state
    assert system.statistics().failures == 0


async def test_a_forced_cancel_of_a_delayed_job_returns_once_it_finished(store: troupe.JobStore) -> None:
    async with troupe.open_system(jobs=store) as system:
        t = await troupe.delay_task(lambda: 1, job=True)
        await t.cancel(force=True)
        assert t.finished  # as for a task that is not a job
        assert isinstance(await t.error(), troupe.TaskCancelled)
        assert system.jobs is not None
        record = await system.jobs.get(t.job_id)  # type: ignore[arg-type]
        assert record is not None
        assert record.status is JobStatus.CANCELLED


async def test_outcomes_in_the_commit_at_shutdown_are_reported_by_a_blocking_store() -> None:
    gate = _Gate()
    store = FakeStore(gate)

    async def release_once_the_shutdown_waits() -> None:
        await trio.testing.wait_all_tasks_blocked()
        gate.release.set()

    async with trio.open_nursery() as outer, troupe.open_system(jobs=store):
        t = await troupe.submit_job(lambda: "done")
        await gate.wait_holding()
        outer.start_soon(release_once_the_shutdown_waits)
    assert t.finished
    assert await t.result() == "done"
    record = store.get(t.job_id)  # type: ignore[arg-type]
    assert record is not None
    assert record.status is JobStatus.SUCCEEDED


async def test_outcomes_handed_over_as_the_system_shuts_down_are_all_reported() -> None:
    # The memory store's writer yields once per batch; a shutdown that cancelled
    # it there, after it had taken the batch, lost the batch: 76 of 900 tasks
    # in this shape stayed unfinished, their outcomes never written.
    async def noop() -> None:
        pass

    for _ in range(50):
        store = troupe.MemoryJobStore()
        async with troupe.open_system(jobs=store):
            tasks = [await troupe.submit_job(noop) for _ in range(3)]
        assert all(t.finished for t in tasks)
        for t in tasks:
            record = store.get(t.job_id)  # type: ignore[arg-type]
            assert record is not None
            assert record.status.finished
