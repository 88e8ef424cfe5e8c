"""Tasks as jobs: transitions, outcomes, progress, cancel, queries (for every store)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import trio

import troupe
from troupe import JobStatus

from kit import FakeStore


@troupe.message(name="tests.jobs.Report")
class Report:
    rows: int


async def test_submit_job_records_pending_running_and_the_outcome(store: troupe.JobStore) -> None:
    gate = trio.Event()
    seen: list[JobStatus] = []

    async def work(n: int) -> dict[str, int]:
        task = troupe.current_task()
        assert task is not None
        assert task.job_id is not None
        record = store.get(task.job_id)
        assert record is not None
        seen.append(record.status)  # running is durable before the body starts
        await gate.wait()
        return {"n": n}

    async with troupe.open_system(jobs=store) as system:
        assert system.jobs is not None
        t = await troupe.submit_job(work, 3, name="report")
        assert t.job_id is not None
        started = store.get(t.job_id)  # durable when submit_job returned
        assert started is not None
        assert started.status is JobStatus.RUNNING  # it starts at once (HPC-GAP: started on return)
        assert started.started is not None
        gate.set()
        assert await t.result() == {"n": 3}
        record = store.get(t.job_id)  # durable before result() returned
        assert record is not None
        assert record.status is JobStatus.SUCCEEDED
        assert record.name == "report"
        assert record.result == {"n": 3}
        assert record.progress == 1.0
        assert record.created <= record.started <= record.finished  # type: ignore[operator]
        assert await system.jobs.get(t.job_id) == record
    assert seen == [JobStatus.RUNNING]


async def test_a_scheduled_job_stays_pending_until_its_condition_holds(store: troupe.JobStore) -> None:
    async with troupe.open_system(jobs=store) as system:
        assert system.jobs is not None
        m = await troupe.new_milestone()
        t = await troupe.schedule_task(m, lambda: 1, job=True)
        await trio.testing.wait_all_tasks_blocked()
        record = await system.jobs.get(t.job_id)  # type: ignore[arg-type]
        assert record is not None
        assert record.status is JobStatus.PENDING
        assert record.started is None
        await m.achieve()
        assert await t.result() == 1
        done = await system.jobs.get(t.job_id)  # type: ignore[arg-type]
        assert done is not None
        assert done.status is JobStatus.SUCCEEDED


async def _returns(value: object) -> object:
    return value


@pytest.mark.parametrize(
    ("value", "stored", "is_repr"),
    [
        (Report(rows=3), Report(rows=3), False),
        ([1, "a", None, {"k": 2.5}], [1, "a", None, {"k": 2.5}], False),
        (None, None, False),
        ({1, 2}, "{1, 2}", True),
        ((1, 2), "(1, 2)", True),  # a tuple would come back a list: kept as its repr
    ],
)
async def test_results_are_kept_as_messages_json_or_repr(
    store: troupe.JobStore, value: object, stored: object, is_repr: bool
) -> None:
    async with troupe.open_system(jobs=store) as system:
        assert system.jobs is not None
        t = await troupe.submit_job(_returns, value)
        assert await t.result() == value
        record = await system.jobs.get(t.job_id)  # type: ignore[arg-type]
        assert record is not None
        assert record.result == stored
        assert record.result_is_repr is is_repr


async def test_a_failed_task_is_a_failed_job_with_its_error(store: troupe.JobStore) -> None:
    def bad() -> None:
        raise ValueError("no rows for 2026-13")

    async with troupe.open_system(jobs=store) as system:
        assert system.jobs is not None
        t = await troupe.run_task(bad, job=True)
        assert isinstance(await t.error(), ValueError)
        record = await system.jobs.get(t.job_id)  # type: ignore[arg-type]
        assert record is not None
        assert record.status is JobStatus.FAILED
        assert record.error == "ValueError: no rows for 2026-13"
        assert record.result is None


async def test_cancelled_jobs(store: troupe.JobStore, autojump_clock: trio.testing.MockClock) -> None:
    async def looping() -> None:
        while True:
            troupe.on_cancellation_return(314)
            await trio.sleep(1)

    async with troupe.open_system(jobs=store) as system:
        jobs = system.jobs
        assert jobs is not None
        forced = await troupe.submit_job(trio.sleep_forever)
        cancelled = await jobs.cancel(forced.job_id)  # type: ignore[arg-type]
        assert cancelled.status is JobStatus.CANCELLED
        assert cancelled.error is not None
        assert cancelled.error.startswith("TaskCancelled")
        assert isinstance(await forced.error(), troupe.TaskCancelled)

        cooperative = await troupe.submit_job(looping)
        await trio.sleep(2.5)
        await cooperative.cancel()
        assert await cooperative.result() == 314  # type: ignore[func-returns-value]
        record = await jobs.get(cooperative.job_id)  # type: ignore[arg-type]
        assert record is not None
        assert record.status is JobStatus.CANCELLED
        assert record.result == 314

        delayed = await troupe.delay_task(lambda: 1, job=True)
        await delayed.cancel(force=True)
        record = await jobs.get(delayed.job_id)  # type: ignore[arg-type]
        assert record is not None
        assert record.status is JobStatus.CANCELLED
        assert record.started is None

        assert (await jobs.cancel(delayed.job_id)).status is JobStatus.CANCELLED  # type: ignore[arg-type]
        with pytest.raises(troupe.JobStoreError, match="no job 'nope'"):
            await jobs.cancel("nope")


async def test_progress_from_async_and_thread_bodies(store: troupe.JobStore) -> None:
    seen = trio.Event()

    async def async_body() -> None:
        troupe.report_progress(0.25, "a quarter")
        await seen.wait()  # progress is coalesced with later changes of the same batch

    def thread_body() -> None:
        troupe.report_progress(0.5, "half, from a thread")
        with pytest.raises(ValueError, match="from 0 to 1"):
            troupe.report_progress(1.5)
        trio.from_thread.run(seen.wait)

    async with troupe.open_system(jobs=store) as system:
        jobs = system.jobs
        assert jobs is not None
        async with system.events.listen("troupe.job.progress") as events:
            a = await troupe.submit_job(async_body)
            event = await events.receive()
            assert isinstance(event.data, troupe.JobRecord)
            assert (event.data.progress, event.data.progress_message) == (0.25, "a quarter")
            assert event.data.status is JobStatus.RUNNING
            b = await troupe.submit_job(thread_body)
            event = await events.receive()
            assert event.data.progress_message == "half, from a thread"
            seen.set()
        await a.result()
        await b.result()
        rec = await jobs.get(b.job_id)  # type: ignore[arg-type]
        assert rec is not None
        assert rec.progress_message == "half, from a thread"
        assert rec.progress == 1.0


async def test_progress_outside_a_job_does_nothing(system: troupe.ActorSystem) -> None:
    troupe.report_progress(0.5)
    t = await troupe.run_task(troupe.report_progress, 0.5)
    await t.result()
    with pytest.raises(ValueError, match="got nan"):
        troupe.report_progress(float("nan"))
    with pytest.raises(ValueError, match="from 0 to 1"):
        troupe.report_progress(True)  # noqa: FBT003


async def test_lifecycle_events_carry_the_records(store: troupe.JobStore) -> None:
    with trio.fail_after(5):
        async with troupe.open_system(jobs=store) as system, system.events.listen("troupe.job.*") as events:
            now = await troupe.submit_job(_returns, 7)  # started at once: recorded running at once
            assert await now.result() == 7
            later = await troupe.delay_task(_returns, 8, job=True)
            assert await later.result() == 8
            seen = [(await events.receive()) for _ in range(5)]
    assert [(e.topic, e.data.id) for e in seen] == [
        ("troupe.job.running", now.job_id),
        ("troupe.job.succeeded", now.job_id),
        ("troupe.job.pending", later.job_id),
        ("troupe.job.running", later.job_id),
        ("troupe.job.succeeded", later.job_id),
    ]
    assert all(isinstance(e.data, troupe.JobRecord) for e in seen)


async def test_jobs_cut_off_by_a_shutdown_are_interrupted(store: troupe.JobStore) -> None:
    async with troupe.open_system(jobs=store) as system:
        running = await troupe.submit_job(trio.sleep_forever)
        delayed = await troupe.delay_task(lambda: 1, job=True)
        await trio.testing.wait_all_tasks_blocked()
    for t in (running, delayed):
        assert t.job_id is not None
        record = store.get(t.job_id) if isinstance(store, troupe.MemoryJobStore) else None
        if record is None:
            async with troupe.open_system(jobs=store) as again:
                assert again.jobs is not None
                record = await again.jobs.get(t.job_id)
        assert record is not None
        assert record.status is JobStatus.INTERRUPTED
        assert record.error is not None
        assert "shut down" in record.error or "ended" in record.error
    assert system.statistics().failures == 0


async def test_without_a_store_jobs_are_refused(system: troupe.ActorSystem) -> None:
    assert system.jobs is None
    with pytest.raises(troupe.JobStoreError, match=r"no job store.*open_system\(jobs="):
        await troupe.submit_job(_returns, 1)
    with pytest.raises(troupe.JobStoreError, match="no job store"):
        await troupe.run_task(_returns, 1, job=True)
    assert system.statistics().actors_started == 0  # nothing was started


async def test_bad_arguments(store: troupe.JobStore) -> None:
    async with troupe.open_system(jobs=store) as system:
        jobs = system.jobs
        assert jobs is not None
        with pytest.raises(TypeError, match="callable"):
            await troupe.submit_job(42)  # type: ignore[call-overload]
        with pytest.raises(TypeError, match="name is a non-empty str"):
            await troupe.submit_job(_returns, 1, name="")
        with pytest.raises(ValueError, match="status is one of pending, running"):
            await jobs.list(status="done")
        with pytest.raises(ValueError, match="limit"):
            await jobs.list(limit=-1)
        with pytest.raises(ValueError, match="older_than"):
            await jobs.purge(older_than=-1)
        assert await jobs.get("no-such-id") is None
    with pytest.raises(TypeError, match="jobs= is a file path or a JobStore"):
        async with troupe.open_system(jobs=42):  # type: ignore[arg-type]
            pass


async def test_list_and_purge(store: troupe.JobStore) -> None:
    async with troupe.open_system(jobs=store) as system:
        jobs = system.jobs
        assert jobs is not None
        done = [await troupe.submit_job(_returns, i, name=f"job {i}") for i in range(4)]
        for t in done:
            await t.result()
        failed = await troupe.submit_job(_fail)
        await failed.error()
        live = await troupe.submit_job(trio.sleep_forever)
        await trio.testing.wait_all_tasks_blocked()
        everything = await jobs.list()
        assert len(everything) == 6
        assert [r.name for r in await jobs.list(status="succeeded", limit=2)] == ["job 3", "job 2"]
        assert [r.status for r in await jobs.list(status=["failed", JobStatus.RUNNING])] == [
            JobStatus.RUNNING,
            JobStatus.FAILED,
        ]
        assert await jobs.purge(ids=[done[0].job_id, live.job_id]) == 1  # type: ignore[list-item]
        assert await jobs.purge(older_than=3600) == 0
        assert await jobs.purge() == 4
        assert [r.id for r in await jobs.list()] == [live.job_id]
        await live.cancel(force=True)


async def _fail() -> None:
    raise RuntimeError("x")


async def test_command_tasks_as_jobs(store: troupe.JobStore, tmp_path: Path) -> None:
    script = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(int(sys.argv[1]))"
    async with troupe.open_system(jobs=store) as system:
        jobs = system.jobs
        assert jobs is not None
        ok = await troupe.run_command([sys.executable, "-c", script, "0"], job=True)
        assert (await ok.result()).returncode == 0
        record = await jobs.get(ok.job_id)  # type: ignore[arg-type]
        assert record is not None
        assert record.status is JobStatus.SUCCEEDED
        assert record.name.startswith(
            f"{Path(sys.executable).name} -c import sys"
        )  # the program, not its path
        assert ok.name.startswith(Path(sys.executable).name + "-")
        assert record.result["returncode"] == 0
        assert record.result["stdout"].strip() == "out"
        assert record.result["stderr"].strip() == "err"
        bad = await troupe.run_command([sys.executable, "-c", script, "3"], job=True)
        assert isinstance(await bad.error(), subprocess.CalledProcessError)
        record = await jobs.get(bad.job_id)  # type: ignore[arg-type]
        assert record is not None
        assert record.status is JobStatus.FAILED
        assert "exit status 3" in (record.error or "")
        assert "stderr: err" in (record.error or "")
        shell = await troupe.run_command("/bin/echo hello there", shell=True, job=True)
        await shell.result()
        record = await jobs.get(shell.job_id)  # type: ignore[arg-type]
        assert record is not None
        assert record.name == "echo hello there"


async def test_a_command_job_is_running_in_the_file_before_the_command_starts(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite"
    reader = (
        "import sqlite3, sys; con = sqlite3.connect(sys.argv[1]); "
        "print([r[0] for r in con.execute('select status from troupe_jobs')])"
    )
    async with troupe.open_system(jobs=db):
        t = await troupe.run_command([sys.executable, "-c", reader, str(db)], job=True)
        result = await t.result()
    assert result.stdout.decode().strip() == "['running']"


async def test_a_message_type_unknown_to_the_reader_comes_back_encoded(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite"
    async with troupe.open_system(jobs=db) as system:
        t = await troupe.submit_job(_returns, Report(rows=2))
        await t.result()
    code = (
        "import sys, troupe; s = troupe.SQLiteJobStore(sys.argv[1]); s.open(None); "
        "print(s.get(sys.argv[2]).result)"
    )
    out = subprocess.run(  # noqa: ASYNC221 - a short child that reads the store
        [sys.executable, "-c", code, str(db), str(t.job_id)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "{'type': 'tests.jobs.Report', 'rows': 2}"
    assert system.jobs is not None


def _unused(*_: Any) -> None:
    pass


async def test_a_submit_job_cancelled_before_its_job_is_written_leaves_no_record(
    store: troupe.JobStore,
) -> None:
    async with troupe.open_system(jobs=store) as system:
        assert system.jobs is not None
        with trio.CancelScope() as scope:
            scope.cancel()
            await troupe.submit_job(_returns, 1)  # cancelled while its record waits for the writer
        await trio.testing.wait_all_tasks_blocked()
        # taken by the writer before the cancel arrived, it is recorded cancelled; else never
        found = [r.status for r in await system.jobs.list()]
        assert found in ([], [JobStatus.CANCELLED])  # before: `running` for ever, with no task


async def test_a_submit_job_cancelled_while_its_job_is_written_records_it_cancelled() -> None:
    holding, release = threading.Event(), threading.Event()

    def hold_the_first_save(records: Sequence[troupe.JobRecord]) -> None:
        if not holding.is_set():
            holding.set()
            assert release.wait(10)

    store = FakeStore(hold_the_first_save)
    async with troupe.open_system(jobs=store) as system:
        assert system.jobs is not None
        async with system.events.listen("troupe.job.cancelled") as events:
            with trio.CancelScope() as scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(troupe.submit_job, _returns, 1)
                    assert await trio.to_thread.run_sync(holding.wait, 10)  # its `running` is being written
                    scope.cancel()
            release.set()
            with trio.fail_after(10):
                await events.receive()
        [record] = await system.jobs.list()
        assert record.status is JobStatus.CANCELLED  # before: `running` until the system closed
        assert record.error == (
            "Cancelled: the call that started this job was cancelled before it returned; the job never ran"
        )
    assert system.statistics().failures == 0
