"""A job that returns a message keeps it as that message (issue 17, item 3).

A field named ``type`` overwrote the wire tag, so such a result came back as
a plain dict; ``BusEvent`` and ``DeadLetter`` could not be encoded at all, so
a job returning one crashed its task actor and ended ``interrupted``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

import troupe
from troupe import JobStatus


@troupe.message(name="tests.jobs.Shape")
class Shape:
    type: str
    sides: int = 3


@troupe.message(name="tests.jobs.Ping")
class Ping:
    n: int


RESULTS = [
    Shape(type="triangle"),
    troupe.BusEvent("shapes.drawn", {"type": "not a tag", "sides": [3, 4]}),
    troupe.BusEvent("shapes.drawn", Shape(type="square", sides=4)),
    troupe.DeadLetter("/user/printer", Ping(1), troupe.DeadLetterReason.STOPPED),
]


async def _returns(value: object) -> object:
    return value


async def _run_jobs(jobs: troupe.JobStore | str | Path) -> list[str]:
    ids = []
    async with troupe.open_system(jobs=jobs) as system:
        assert system.jobs is not None
        for value in RESULTS:
            with trio.fail_after(10):
                t = await troupe.submit_job(_returns, value, name=type(value).__name__)
                assert await t.result() == value
            assert t.job_id is not None
            record = await system.jobs.get(t.job_id)
            assert record is not None
            assert record.status is JobStatus.SUCCEEDED, record.error
            assert record.result == value
            assert type(record.result) is type(value)
            assert record.result_is_repr is False
            ids.append(t.job_id)
    return ids


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_issue_17_3_a_job_returning_a_message_keeps_it_as_that_message(
    kind: str, tmp_path: Path
) -> None:
    store = troupe.MemoryJobStore() if kind == "memory" else troupe.SQLiteJobStore(tmp_path / "jobs.sqlite")
    await _run_jobs(store)


async def test_issue_17_3_message_results_read_back_from_disk_are_those_messages(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    ids = await _run_jobs(path)
    reader = troupe.SQLiteJobStore(path)
    reader.open(None)  # a fresh reader decodes what the writer stored
    try:
        for job_id, value in zip(ids, RESULTS, strict=True):
            record = reader.get(job_id)
            assert record is not None
            assert record.status is JobStatus.SUCCEEDED
            assert record.result == value
            assert type(record.result) is type(value)
    finally:
        reader.close(None)
