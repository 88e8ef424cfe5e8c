"""SQLiteJobStore: crash safety, two processes, and every kind of bad file."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

import troupe
from troupe import JobStatus

from kit import FakeStore

WRITER = Path(__file__).parent / "store_writer.py"


def _writer(db: Path, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(db), str(count)], stdout=subprocess.PIPE, text=True
    )


def _integrity(db: Path) -> str:
    with sqlite3.connect(db) as con:
        return str(con.execute("PRAGMA integrity_check").fetchone()[0])


def _open(db: Path) -> troupe.SQLiteJobStore:
    store = troupe.SQLiteJobStore(db)
    store.open("test-owner")
    return store


def test_two_processes_share_one_store(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite"
    children = [_writer(db, 25), _writer(db, 25)]
    outputs = [child.communicate()[0] for child in children]
    assert [child.returncode for child in children] == [0, 0]
    done = {line.split()[1] for out in outputs for line in out.splitlines() if line.startswith("done")}
    assert len(done) == 2 * 4 * 25
    assert _integrity(db) == "ok"
    store = _open(db)
    try:
        records = store.list()
        assert len(records) == 200
        assert {r.id for r in records} == done
        assert all(r.status is JobStatus.SUCCEEDED for r in records)
    finally:
        store.close("test-owner")


_OPENER = """
import sys, troupe
store = troupe.SQLiteJobStore(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()  # the start signal: every opener goes at once
store.open(sys.argv[2])
store.close(sys.argv[2])
print("opened")
"""


def test_processes_creating_one_store_at_the_same_moment_all_open_it(tmp_path: Path) -> None:
    # Regression: switching a new file to WAL made SQLite answer "locked" at
    # once (no busy wait) to all but one of the openers racing for it.
    for round_ in range(8):
        db = tmp_path / f"new-{round_}.sqlite"
        openers = [
            subprocess.Popen(
                [sys.executable, "-c", _OPENER, str(db), f"owner-{k}"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for k in range(3)
        ]
        for opener in openers:  # all started and imported before any goes
            assert opener.stdout is not None
            assert opener.stdout.readline() == "ready\n"
        for opener in openers:
            assert opener.stdin is not None
            opener.stdin.write("go\n")
            opener.stdin.flush()
        results = [opener.communicate() for opener in openers]
        assert [out for out, _ in results] == ["opened\n"] * 3, [err for _, err in results]
        assert _integrity(db) == "ok"


def test_a_live_owners_jobs_are_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite"
    first = _open(db)
    record = troupe.JobRecord(id="j1", name="busy", status=JobStatus.RUNNING, created=1.0, started=2.0)
    first.save([record], "test-owner")
    second = troupe.SQLiteJobStore(db)
    second.open("second-owner")  # the first owner still holds its lock
    assert second.get("j1") == record
    second.close("second-owner")
    first.close("test-owner")  # a clean close: what it left live is interrupted
    reader = troupe.SQLiteJobStore(db)
    reader.open(None)
    closed = reader.get("j1")
    assert closed is not None
    assert closed.status is JobStatus.INTERRUPTED
    reader.close(None)


async def test_the_store_is_wal_and_versioned(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "dir" / "jobs.sqlite"
    async with troupe.open_system(jobs=db):
        with sqlite3.connect(db) as con:
            assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            meta = dict(con.execute("SELECT key, value FROM troupe_meta").fetchall())
    assert meta == {"format": "troupe-jobs", "version": "2"}


@pytest.mark.parametrize("count", [1, 199, 200, 201, 457])
def test_a_batch_of_any_size_is_written_whole_and_updates_in_place(tmp_path: Path, count: int) -> None:
    # the writer inserts up to 200 rows per statement: around and across that bound
    store = _open(tmp_path / "jobs.sqlite")
    now = 1_800_000_000.0
    pending = [troupe.JobRecord(f"job-{i:04}", f"n{i}", JobStatus.PENDING, now + i) for i in range(count)]
    store.save(pending, "test-owner")
    done = [
        troupe.JobRecord(
            r.id, r.name, JobStatus.SUCCEEDED, r.created, r.created, r.created + 1, 1.0, "", {"i": i}
        )
        for i, r in enumerate(pending)
    ]
    store.save([*done[::2], *pending[1::2]], "test-owner")
    stored = {r.id: r for r in store.list()}
    store.close("test-owner")
    assert len(stored) == count
    for i, r in enumerate(pending):
        assert stored[r.id] == (done[i] if i % 2 == 0 else r)


def test_an_empty_file_is_migrated_and_a_reader_never_creates_one(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite"
    reader = troupe.SQLiteJobStore(db)
    with pytest.raises(troupe.JobStoreError, match=r"jobs.sqlite: no such job store"):
        reader.open(None)
    assert not db.exists()
    db.touch()
    with pytest.raises(troupe.JobStoreError, match=r"older than this troupe's.*open it once"):
        reader.open(None)
    store = _open(db)
    store.close("test-owner")
    reader.open(None)
    assert reader.list() == []
    reader.close(None)


def test_a_version_1_store_is_read_as_it_is_and_migrated_by_a_writer(tmp_path: Path) -> None:
    from troupe.jobs import _schema  # noqa: PLC0415 - the schema as the version-1 troupe wrote it

    db = tmp_path / "jobs.sqlite"
    with sqlite3.connect(db) as con:
        for statement in _schema.MIGRATIONS[0]:
            con.execute(statement)
        con.execute("INSERT INTO troupe_meta VALUES ('format', 'troupe-jobs'), ('version', '1')")
        con.execute(
            "INSERT INTO troupe_jobs (id, name, status, owner, created, finished) "
            "VALUES ('j1', 'old', 'succeeded', 'gone', 1.0, 2.0)"
        )
    reader = troupe.SQLiteJobStore(db)
    reader.open(None)  # the command line reads it without migrating
    assert [r.name for r in reader.list()] == ["old"]
    reader.close(None)
    store = _open(db)
    store.close("test-owner")
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT value FROM troupe_meta WHERE key = 'version'").fetchone() == ("2",)
        indexes = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "troupe_jobs_by_owner" not in indexes
    assert "troupe_jobs_by_status" in indexes
    reader.open(None)
    (record,) = reader.list()
    assert (record.id, record.status, record.finished) == ("j1", JobStatus.SUCCEEDED, 2.0)
    reader.close(None)


async def _store_one(db: Path) -> str:
    async with troupe.open_system(jobs=db):
        t = await troupe.submit_job(_value, 42)
        await t.result()
    assert t.job_id is not None
    return t.job_id


async def _value(v: int) -> int:
    return v


def _row_count(db: Path) -> int:
    with sqlite3.connect(db) as con:
        return int(con.execute("SELECT count(*) FROM troupe_jobs").fetchone()[0])


async def test_a_file_that_is_not_a_store(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("my notes\n" * 100)
    with pytest.raises(
        troupe.JobStoreError, match=r"notes.txt: this is not a troupe job store .*file is not a"
    ):
        async with troupe.open_system(jobs=text):
            pass
    assert text.read_text() == "my notes\n" * 100
    other = tmp_path / "app.db"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE users (name TEXT)")
    with pytest.raises(
        troupe.JobStoreError, match=r"app.db: this is not a troupe job store \(it holds other tables: users\)"
    ):
        async with troupe.open_system(jobs=other):
            pass


async def test_a_store_from_a_newer_troupe(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite"
    job_id = await _store_one(db)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE troupe_meta SET value = '7' WHERE key = 'version'")
    with pytest.raises(troupe.JobStoreError, match=r"newer troupe \(store schema version 7.*upgrade troupe"):
        async with troupe.open_system(jobs=db):
            pass
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT status FROM troupe_jobs WHERE id = ?", (job_id,)).fetchone() == (
            "succeeded",
        )


async def test_a_read_only_file(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite"
    job_id = await _store_one(db)
    db.chmod(0o444)
    try:
        with pytest.raises(troupe.JobStoreError, match=r"jobs.sqlite: the file is read-only.*chmod u\+w"):
            async with troupe.open_system(jobs=db):
                pass
        reader = troupe.SQLiteJobStore(db)
        reader.open(None)  # reading needs no write access
        record = reader.get(job_id)
        assert record is not None
        assert record.result == 42
        with pytest.raises(troupe.JobStoreError, match="read-only, so troupe cannot purge jobs"):
            reader.purge()
        reader.close(None)
    finally:
        db.chmod(0o644)


async def test_a_full_disk(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite"
    first = await _store_one(db)
    store = troupe.SQLiteJobStore(db, synchronous="normal")
    async with troupe.open_system(jobs=store) as system:
        assert store._conn is not None
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages}")  # simulate: no room for one more page
        with pytest.raises(troupe.JobStoreError, match=r"jobs.sqlite: could not store .*the disk is full"):
            for i in range(10_000):
                await troupe.submit_job(_value, i, name="x" * 1000)
        store._conn.execute("PRAGMA max_page_count = 1000000")
        assert system.jobs is not None
        record = await system.jobs.get(first)
        assert record is not None
        assert record.result == 42
    assert _integrity(db) == "ok"


async def test_a_corrupt_result_payload(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite"
    good = await _store_one(db)
    bad = await _store_one(db)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE troupe_jobs SET result = '{not json' WHERE id = ?", (bad,))
    async with troupe.open_system(jobs=db) as system:
        jobs = system.jobs
        assert jobs is not None
        with pytest.raises(
            troupe.JobStoreError, match=rf"jobs.sqlite: job {bad} has a corrupt record .*purge --db"
        ):
            await jobs.get(bad)
        with pytest.raises(troupe.JobStoreError, match="corrupt record"):
            await jobs.list()
        record = await jobs.get(good)
        assert record is not None
        assert record.result == 42
        assert await jobs.purge(ids=[bad]) == 1
        assert [r.id for r in await jobs.list()] == [good]


def _disk_full_when_running(records: Sequence[troupe.JobRecord]) -> None:
    if any(r.status is JobStatus.RUNNING for r in records):
        raise troupe.JobStoreError("fake.sqlite: the disk is full", location="fake.sqlite")


async def test_a_failing_running_transition_does_not_start_the_work() -> None:
    ran: list[int] = []

    async def work() -> None:
        ran.append(1)

    store = FakeStore(_disk_full_when_running)  # its disk fills up when a job starts running
    async with troupe.open_system(jobs=store) as system:
        with pytest.raises(troupe.JobStoreError, match="disk is full"):
            await troupe.submit_job(work)  # it would start at once: nothing is started
        assert store.list() == []
        async with system.events.listen("troupe.job.store_failed") as events:
            t = await troupe.delay_task(work, job=True)  # pending is stored
            await t.execute()
            error = await t.error()
            await events.receive()
        assert isinstance(error, troupe.JobStoreError)
        assert "disk is full" in str(error)
        assert ran == []
        record = store.get(t.job_id)  # type: ignore[arg-type]
        assert record is not None
        assert record.status is JobStatus.FAILED  # it never ran: its outcome is the store's error
        assert record.started is None
        assert record.error == "JobStoreError: fake.sqlite: the disk is full"
    assert system.statistics().failures == 0
