"""Text UTF-8 cannot encode (lone surrogates, from ``os.fsdecode``) is stored as given (issue 17, item 1)."""

from __future__ import annotations

import os
import uuid
from collections import Counter
from pathlib import Path

import attrs
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

import troupe
from troupe import JobStatus

import faultkit

BAD_PATH = os.fsdecode(b"/data/\xff.csv")  # "/data/\udcff.csv": a file name that is not UTF-8
assert "\udcff" in BAD_PATH


async def _returns(value: object) -> object:
    return value


async def _fails(text: str) -> None:
    raise ValueError(text)


async def test_issue_17_1_a_bad_error_text_does_not_lose_its_batch(store: troupe.JobStore) -> None:
    # All 51 outcomes reach the writer together: before the fix the one
    # error holding a lone surrogate failed the whole commit, and the 50
    # others stayed `running` in the store (then `interrupted`).
    async with troupe.open_system(jobs=store) as system:
        jobs = system.jobs
        assert jobs is not None
        tasks: list[troupe.TaskHandle[object]] = []

        async def submit(fn: object, arg: object) -> None:
            tasks.append(await troupe.submit_job(fn, arg))  # type: ignore[call-overload]

        async with trio.open_nursery() as nursery:
            for i in range(50):
                nursery.start_soon(submit, _returns, i)
            nursery.start_soon(submit, _fails, BAD_PATH)
        for t in tasks:
            await troupe.wait_all(t)
        records = {r.id: r for r in await jobs.list()}
        assert Counter(r.status for r in records.values()) == {JobStatus.SUCCEEDED: 50, JobStatus.FAILED: 1}
        (bad,) = [r for r in records.values() if r.status is JobStatus.FAILED]
        assert bad.error == f"ValueError: {BAD_PATH}"
    assert system.statistics().failures == 0


async def test_issue_17_1_a_name_that_is_not_utf8_is_stored_as_given(store: troupe.JobStore) -> None:
    bad_name = os.fsdecode(b"import \xe9t\xe9.csv")
    outcomes: list[str] = []
    handles: dict[str, troupe.TaskHandle[object]] = {}

    async def submit(name: str) -> None:
        try:
            handles[name] = await troupe.submit_job(_returns, name, name=name)
        except Exception as exc:
            outcomes.append(type(exc).__name__)
        else:
            outcomes.append("ok")

    async with troupe.open_system(jobs=store) as system:
        jobs = system.jobs
        assert jobs is not None
        async with trio.open_nursery() as nursery:
            for i in range(100):
                nursery.start_soon(submit, f"innocent {i}")
            nursery.start_soon(submit, bad_name)
        assert outcomes == ["ok"] * 101
        for name, t in handles.items():
            assert await t.result() == name
            record = await jobs.get(t.job_id)  # type: ignore[arg-type]
            assert record is not None
            assert (record.name, record.status, record.result) == (name, JobStatus.SUCCEEDED, name)


async def test_issue_17_1_progress_and_repr_results_keep_their_text(store: troupe.JobStore) -> None:
    class Odd:
        def __repr__(self) -> str:
            return f"Odd({BAD_PATH})"  # a repr that is not escaped

    async def work() -> object:
        troupe.report_progress(0.5, f"reading {BAD_PATH}")
        await trio.lowlevel.checkpoint()
        return Odd()

    async with troupe.open_system(jobs=store) as system:
        jobs = system.jobs
        assert jobs is not None
        as_repr = await troupe.submit_job(work)
        as_json = await troupe.submit_job(_returns, {BAD_PATH: [BAD_PATH]})
        await troupe.wait_all(as_repr, as_json)
        record = await jobs.get(as_repr.job_id)  # type: ignore[arg-type]
        assert record is not None
        assert (record.progress_message, record.result, record.result_is_repr) == (
            f"reading {BAD_PATH}",
            f"Odd({BAD_PATH})",
            True,
        )
        record = await jobs.get(as_json.job_id)  # type: ignore[arg-type]
        assert record is not None
        assert record.result == {BAD_PATH: [BAD_PATH]}


# Every code point, with lone surrogates (category Cs), NUL and os.fsdecode's escapes drawn
# often. Joined from a list: st.text() leaves surrogates out of any alphabet.
_ANY_TEXT = st.lists(
    st.characters(codec=None) | st.characters(categories=["Cs"]) | st.sampled_from("\x00\udcff\ud83d\ude00"),
    max_size=40,
).map("".join)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | _ANY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_ANY_TEXT, inner, max_size=3),
    max_leaves=8,
)


def _records() -> st.SearchStrategy[troupe.JobRecord]:
    return st.builds(
        troupe.JobRecord,
        id=st.just("id"),
        name=_ANY_TEXT,
        status=st.sampled_from(JobStatus),
        created=st.floats(0, 2e9),
        started=st.none() | st.floats(0, 2e9),
        finished=st.none() | st.floats(0, 2e9),
        progress=st.floats(0, 1),
        progress_message=_ANY_TEXT,
        result=_JSON,
        result_is_repr=st.just(False),  # noqa: FBT003
        error=st.none() | _ANY_TEXT,
    ) | st.builds(
        troupe.JobRecord,
        id=st.just("id"),
        name=_ANY_TEXT,
        status=st.sampled_from(JobStatus),
        created=st.floats(0, 2e9),
        result=_ANY_TEXT,
        result_is_repr=st.just(True),  # noqa: FBT003
    )


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
def test_issue_17_1_every_text_round_trips_through_the_store(tmp_path: Path, kind: str) -> None:
    store: troupe.JobStore = (
        troupe.SQLiteJobStore(tmp_path / "jobs.sqlite", synchronous="normal")
        if kind == "sqlite"
        else troupe.MemoryJobStore()
    )
    store.open("owner")

    @faultkit.fuzz_settings(ci=150, soak=5000)
    @given(st.lists(_records(), min_size=1, max_size=5))
    def round_trip(drawn: list[troupe.JobRecord]) -> None:
        # fresh ids: a stored job keeps its `created`, and examples repeat ids
        records = [attrs.evolve(r, id=str(uuid.uuid4())) for r in drawn]
        store.save(records, "owner")
        for record in records:
            assert store.get(record.id) == record

    try:
        round_trip()
    finally:
        store.close("owner")
