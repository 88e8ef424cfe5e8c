"""One record a store cannot keep never fails the others of its batch (issue 17, item 1)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

import troupe
from troupe import JobStatus

import faultkit
from kit import FakeStore


async def _returns(value: object) -> object:
    return value


def _ascii_only(records: Sequence[troupe.JobRecord]) -> None:
    """A store that keeps ASCII only, as some do: it refuses the whole save."""
    for r in records:
        for text in (r.name, r.progress_message, r.error or ""):
            text.encode("ascii")  # raises UnicodeEncodeError


async def _submit_all(
    names: Sequence[str],
) -> tuple[dict[str, troupe.TaskHandle[object]], dict[str, Exception]]:
    """``submit_job(_returns, name, name=name)`` for each name at once: their records share batches."""
    handles: dict[str, troupe.TaskHandle[object]] = {}
    errors: dict[str, Exception] = {}

    async def submit(name: str) -> None:
        try:
            handles[name] = await troupe.submit_job(_returns, name, name=name)
        except Exception as exc:
            errors[name] = exc

    async with trio.open_nursery() as nursery:
        for name in names:
            nursery.start_soon(submit, name)
    return handles, errors


async def test_issue_17_1_a_record_the_store_refuses_is_kept_as_its_fallback() -> None:
    store = FakeStore(_ascii_only)
    names = [f"innocent {i}" for i in range(50)] + ["café"]
    async with troupe.open_system(jobs=store) as system:
        jobs = system.jobs
        assert jobs is not None
        async with system.events.listen("troupe.job.succeeded") as events:
            handles, errors = await _submit_all(names)
            assert errors == {}  # before: all 51 raised UnicodeEncodeError
            for name, t in handles.items():
                assert await t.result() == name  # the task's outcome stands
            published = {(await events.receive()).data.id for _ in names}
        assert published == {t.job_id for t in handles.values()}
        for name, t in handles.items():
            record = await jobs.get(t.job_id)  # type: ignore[arg-type]
            assert record is not None
            assert record.status is JobStatus.SUCCEEDED
            if name != "café":
                assert (record.name, record.result, record.error) == (name, name, None)
        bad = await jobs.get(handles["café"].job_id)  # type: ignore[arg-type]
        assert bad is not None
        assert bad.name == "caf\\xe9"
        assert bad.result is None
        assert bad.error is not None
        assert bad.error.startswith(
            "JobStoreError: this job's record could not be stored as given (UnicodeEncodeError: 'ascii' codec"
        )
        assert bad.error.endswith("it is kept with its texts escaped and without its result")
    assert system.statistics().failures == 0


async def test_issue_17_1_a_failed_job_refused_keeps_its_error_first() -> None:
    async def fails() -> None:
        msg = "no rows in naïve.csv"
        raise ValueError(msg)

    store = FakeStore(_ascii_only)
    async with troupe.open_system(jobs=store) as system:
        jobs = system.jobs
        assert jobs is not None
        t = await troupe.submit_job(fails)
        assert isinstance(await t.error(), ValueError)
        record = await jobs.get(t.job_id)  # type: ignore[arg-type]
        assert record is not None
        assert record.status is JobStatus.FAILED
        assert record.error is not None
        first, note = record.error.split("\n")
        assert first == "ValueError: no rows in na\\xefve.csv"
        assert note.startswith("JobStoreError: this job's record could not be stored as given")


class _Shifty(dict[str, object]):
    """A result that is JSON when the task ends, and no longer when the store encodes it (as if changed)."""

    calls = 0

    def items(self) -> object:  # type: ignore[override]
        _Shifty.calls += 1
        return [("when", object())] if _Shifty.calls > 1 else super().items()


async def test_issue_17_1_a_result_the_encoder_chokes_on_fails_only_its_record(tmp_path: Path) -> None:
    shifty = _Shifty(when="now")
    async with troupe.open_system(jobs=tmp_path / "jobs.sqlite") as system:
        jobs = system.jobs
        assert jobs is not None
        handles: list[troupe.TaskHandle[object]] = [await troupe.submit_job(trio.sleep, 1) for _ in range(20)]
        odd = await troupe.submit_job(_returns, shifty)
        handles.append(odd)
        await troupe.wait_all(*handles)
        assert await odd.result() is shifty
        assert _Shifty.calls >= 2  # checked when the task ended, encoded when stored
        records = {r.id: r for r in await jobs.list()}
    assert [r.status for r in records.values()] == [JobStatus.SUCCEEDED] * 21
    bad = records[odd.job_id]  # type: ignore[index]
    assert bad.result is None
    assert bad.error is not None
    assert f"job {odd.job_id}'s result cannot be stored (TypeError: Object of type object" in bad.error


class _Down:
    """A store that is down from the first save with an outcome; counts the saves it is asked for."""

    def __init__(self, *, empty_ok: bool, error: Exception) -> None:
        self.empty_ok = empty_ok
        self.error = error
        self.down = False
        self.saves = 0

    def __call__(self, records: Sequence[troupe.JobRecord]) -> None:
        if self.down:
            self.saves += 1
            if records or not self.empty_ok:
                raise self.error


@pytest.mark.parametrize("empty_ok", [False, True])
async def test_issue_17_1_a_store_that_is_down_fails_every_record_at_little_cost(empty_ok: bool) -> None:
    error = troupe.JobStoreError("fake.sqlite: the disk is full", location="fake.sqlite")
    hook = _Down(empty_ok=empty_ok, error=error)
    store = FakeStore(hook)
    names = [f"job {i}" for i in range(64)]
    async with troupe.open_system(jobs=store) as system:
        hook.down = True
        handles, errors = await _submit_all(names)
        assert handles == {}
        assert set(errors) == set(names)
        assert all(e is error for e in errors.values())
        # the batch, then an empty save; if that works, halves down to one record and its fallback
        assert hook.saves <= (2 if not empty_ok else 2 + math.log2(64) + 1)
        assert store.list() == []
    assert system.statistics().failures == 0


async def test_issue_17_1_a_custom_stores_own_error_reaches_the_tasks_as_a_job_store_error() -> None:
    hook = _Down(empty_ok=False, error=OSError(5, "Input/output error"))
    store = FakeStore(hook)
    async with troupe.open_system(jobs=store):
        hook.down = True
        with pytest.raises(
            troupe.JobStoreError, match=r"fake.sqlite: could not store job records \(OSError"
        ) as info:
            await troupe.submit_job(_returns, 1)
        assert info.value.__cause__ is hook.error
        assert info.value.location == "fake.sqlite"


class _Unshowable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str")


class _NoRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class _NoEq(list[int]):
    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no ==")

    __hash__ = None


async def test_issue_17_1_results_and_errors_that_cannot_be_shown_are_still_recorded(
    store: troupe.JobStore,
) -> None:
    async def raises() -> None:
        raise _Unshowable

    async with troupe.open_system(jobs=store) as system:
        jobs = system.jobs
        assert jobs is not None
        failed = await troupe.submit_job(raises)
        no_repr = await troupe.submit_job(_returns, _NoRepr())
        no_eq = await troupe.submit_job(_returns, _NoEq([1]))
        with trio.fail_after(10):
            await troupe.wait_all(failed, no_repr, no_eq)
        record = await jobs.get(failed.job_id)  # type: ignore[arg-type]
        assert record is not None
        assert (record.status, record.error) == (
            JobStatus.FAILED,
            "_Unshowable: <its message could not be shown: str() raised RuntimeError>",
        )
        for t, shown in (
            (no_repr, "<_NoRepr object; its repr raised RuntimeError: no repr>"),
            (no_eq, "[1]"),
        ):
            record = await jobs.get(t.job_id)  # type: ignore[arg-type]
            assert record is not None
            assert (record.status, record.result, record.result_is_repr) == (JobStatus.SUCCEEDED, shown, True)
    assert system.statistics().failures == 0


@faultkit.fuzz_settings(ci=30, soak=1000)
@given(st.lists(st.booleans(), min_size=1, max_size=60))
def test_issue_17_1_any_mix_of_refused_records_costs_only_their_own(refused: list[bool]) -> None:
    # For any batch (the names submitted at once) and any records in it the store
    # refuses: every submission succeeds, every record is stored, as given or as
    # its fallback, and only the refused ones as fallbacks.
    names = [f"job {i} {'é' if bad else 'e'}" for i, bad in enumerate(refused)]

    async def scenario() -> None:
        store = FakeStore(_ascii_only)
        async with troupe.open_system(jobs=store) as system:
            handles, errors = await _submit_all(names)
            assert errors == {}
            await troupe.wait_all(*handles.values())
            for name, t in handles.items():
                record = store.get(t.job_id)  # type: ignore[arg-type]
                assert record is not None
                assert record.status is JobStatus.SUCCEEDED
                if "é" in name:
                    assert (record.name, record.result) == (name.replace("é", "\\xe9"), None)
                    assert record.error is not None
                else:
                    assert (record.name, record.result, record.error) == (name, name, None)
        assert system.statistics().failures == 0

    trio.run(scenario)
