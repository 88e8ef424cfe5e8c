"""A cancellation at every await of a job transition: nothing lost, nothing hung, every outcome known.

Each scenario runs in a system with a job store, once uncancelled and
then once with a cancellation at each await of its operations in turn
(`faultkit.each_cancel_point`, virtual time). Afterwards, with the system
still open: a task that reports its outcome has it durable in the store.
Once the system closed: the store holds a finished record for every job
id it gave out, no record is ``pending`` or ``running``, every task
handle is finished, and its record agrees with its outcome.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
import trio
import trio.testing

import troupe
from troupe import JobStatus

import faultkit
from kit import FakeStore

_HANG_GUARD = 600.0  # virtual seconds; nothing here takes more than a few


async def _work() -> int:
    await trio.sleep(1)
    return 1


async def _fails() -> None:
    await trio.sleep(1)
    raise ValueError("no rows")


class _Jobs:
    """The job handles a scenario got, and the checks made on them."""

    def __init__(self, cut: faultkit.Cut) -> None:
        self.cut = cut
        self.handles: list[troupe.TaskHandle[Any]] = []

    def keep(self, t: troupe.TaskHandle[Any]) -> troupe.TaskHandle[Any]:
        assert t.job_id is not None
        self.handles.append(t)
        return t

    def check_open(self, store: troupe.JobStore) -> None:
        """While the system runs: a finished task's outcome is durable, a live one's record is there."""
        for t in self.handles:
            record = store.get(t.job_id)  # type: ignore[arg-type]
            assert record is not None, (self.cut.at, t)
            if t.finished:
                assert record.status.finished, (self.cut.at, t, record)

    async def check_no_ghost(self, store: troupe.JobStore) -> None:
        """While the system runs: a record is live only while its task runs (nothing else will end it)."""
        await trio.testing.wait_all_tasks_blocked()  # the writer has written what was left to write
        running = {t.job_id for t in self.handles if not t.finished}
        for record in store.list(status=[JobStatus.PENDING, JobStatus.RUNNING]):
            assert record.id in running, (self.cut.at, record)

    async def check_closed(self, store: troupe.JobStore) -> None:
        """After the system closed: every job finished, in the store as in its handle."""
        assert store.list(status=[JobStatus.PENDING, JobStatus.RUNNING]) == [], self.cut.at
        for t in self.handles:
            assert t.finished, (self.cut.at, t)
            record = store.get(t.job_id)  # type: ignore[arg-type]
            assert record is not None, (self.cut.at, t)
            error = await t.error()
            if error is None:
                want = {JobStatus.SUCCEEDED, JobStatus.CANCELLED}  # a cooperative cancel may return a value
            elif isinstance(error, troupe.TaskCancelled):
                want = {JobStatus.CANCELLED, JobStatus.INTERRUPTED}  # interrupted: cut off by the shutdown
            else:
                want = {JobStatus.FAILED}
            assert record.status in want, (self.cut.at, t, error, record)


Attack = Callable[[_Jobs], Awaitable[object]]


async def _submit_and_result(jobs: _Jobs) -> None:
    done = jobs.keep(await troupe.submit_job(_work, name="work"))
    failed = jobs.keep(await troupe.submit_job(_fails, name="fails"))
    assert await done.result() == 1
    assert isinstance(await failed.error(), ValueError)


async def _run_task_as_job(jobs: _Jobs) -> None:
    now = jobs.keep(await troupe.run_task(_work, job=True))
    later = jobs.keep(await troupe.delay_task(_work, job=True))
    await later.execute()
    await troupe.wait_all(now, later)


async def _cancel(jobs: _Jobs) -> None:
    forever = jobs.keep(await troupe.submit_job(trio.sleep_forever))
    delayed = jobs.keep(await troupe.delay_task(_work, job=True))
    await forever.cancel(force=True)
    await delayed.cancel(force=True)
    assert isinstance(await forever.error(), troupe.TaskCancelled)


def _store_queries(setup: list[troupe.TaskHandle[Any]]) -> Attack:
    async def attack(jobs: _Jobs) -> None:
        system = troupe.current_system()
        assert system.jobs is not None
        done, live = setup
        record = await system.jobs.get(done.job_id)  # type: ignore[arg-type]
        assert record is not None
        assert len(await system.jobs.list()) == 2
        cancelled = await system.jobs.cancel(live.job_id)  # type: ignore[arg-type]
        assert cancelled.status is JobStatus.CANCELLED
        assert await system.jobs.purge(ids=["nope"]) == 0

    return attack


async def _queries_setup(jobs: _Jobs) -> list[troupe.TaskHandle[Any]]:
    done = jobs.keep(await troupe.submit_job(_work))
    await done.result()
    live = jobs.keep(await troupe.submit_job(trio.sleep_forever))
    return [done, live]


async def _refused(jobs: _Jobs) -> None:
    refused = jobs.keep(await troupe.submit_job(_work, name="café"))  # the store keeps ASCII only
    kept = jobs.keep(await troupe.submit_job(_fails, name="plain"))
    await troupe.wait_all(refused, kept)


class _AsciiOnly(FakeStore):
    """A store that refuses a save holding text that is not ASCII; not blocking, for virtual time."""

    blocking = False

    def __init__(self) -> None:
        super().__init__(self._refuse)

    @staticmethod
    def _refuse(records: Sequence[troupe.JobRecord]) -> None:
        for r in records:
            r.name.encode("ascii")


SCENARIOS: dict[str, tuple[Callable[[_Jobs], Awaitable[list[troupe.TaskHandle[Any]]]] | None, Any]] = {
    "submit_job + result()": (None, _submit_and_result),
    "run_task/delay_task(job=True)": (None, _run_task_as_job),
    "cancel(force=True)": (None, _cancel),
    "system.jobs.get/list/cancel/purge": (_queries_setup, _store_queries),
    "a record the store refuses": (None, _refused),
}


def _scenario(name: str, *, ghosts: bool) -> Callable[[faultkit.Cut], Awaitable[None]]:
    setup, attack = SCENARIOS[name]

    async def scenario(cut: faultkit.Cut) -> None:
        store: troupe.JobStore = (
            _AsciiOnly() if name == "a record the store refuses" else troupe.MemoryJobStore()
        )
        jobs = _Jobs(cut)
        with trio.fail_after(_HANG_GUARD):
            async with troupe.open_system(jobs=store) as system:
                run: Attack = attack if setup is None else attack(await setup(jobs))
                with cut:
                    await run(jobs)
                assert cut.at is None or cut.fired, cut.at  # each run reaches its cancel point
                jobs.check_open(store)
                if ghosts:
                    await jobs.check_no_ghost(store)
            await jobs.check_closed(store)
        assert system.statistics().failures == 0, cut.at

    return scenario


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_job_transitions_cancelled_at_every_await(name: str) -> None:
    runs = faultkit.each_cancel_point(_scenario(name, ghosts=False))
    faultkit.report(f"job cancel points: {name}", runs=runs, cancel_points=runs - 1, lost=0, hung=0)
    assert runs > 3  # the scenario has awaits to cancel at


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_no_job_is_left_live_without_its_task(name: str) -> None:
    runs = faultkit.each_cancel_point(_scenario(name, ghosts=True))
    faultkit.report(f"job cancel points, no ghost job: {name}", runs=runs, cancel_points=runs - 1, ghosts=0)
