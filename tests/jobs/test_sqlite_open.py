"""Each way opening a SQLite job store fails is a `JobStoreError` naming the file and what to do (#17, 14)."""

from __future__ import annotations

import errno
import os
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import troupe
from troupe import JobStatus
from troupe.cli import main

Make = Callable[[Path], Path]  # builds a bad store in a folder; returns the path to open


def _store(tmp: Path) -> Path:
    """A real store with one finished job."""
    db = tmp / "jobs.sqlite"
    store = troupe.SQLiteJobStore(db)
    store.open("maker")
    store.save([troupe.JobRecord("j1", "one", JobStatus.SUCCEEDED, 1.0, 1.0, 2.0)], "maker")
    store.close("maker")
    return db


def _set_meta(value_sql: str) -> Make:
    def make(tmp: Path) -> Path:
        db = _store(tmp)
        with sqlite3.connect(db) as con:
            con.execute(value_sql)
        con.close()
        return db

    return make


def _wrong_meta_columns(tmp: Path) -> Path:
    db = _store(tmp)
    with sqlite3.connect(db) as con:
        con.execute("DROP TABLE troupe_meta")
        con.execute("CREATE TABLE troupe_meta (k TEXT, v TEXT)")
        con.execute("INSERT INTO troupe_meta VALUES ('format', 'troupe-jobs')")
    con.close()
    return db


def _a_folder(tmp: Path) -> Path:
    folder = tmp / "jobs.sqlite"
    folder.mkdir()
    return folder


def _a_fifo(tmp: Path) -> Path:
    fifo = tmp / "jobs.sqlite"
    os.mkfifo(fifo)  # before: a reader blocked for ever opening it
    return fifo


def _a_symlink_loop(tmp: Path) -> Path:
    loop = tmp / "jobs.sqlite"
    loop.symlink_to(loop)
    return loop


# (case, how to make it, what the one line says)
CASES: list[tuple[str, Make, str]] = [
    (
        "version not a number",
        _set_meta("UPDATE troupe_meta SET value = 'two' WHERE key = 'version'"),
        r"jobs.sqlite: its troupe_meta table is damaged \(its schema version 'two' is not a number\); ",
    ),
    (
        "negative version",
        _set_meta("UPDATE troupe_meta SET value = '-1' WHERE key = 'version'"),
        r"jobs.sqlite: its troupe_meta table is damaged \(its schema version '-1' is not a number",
    ),
    (
        "no version",
        _set_meta("DELETE FROM troupe_meta WHERE key = 'version'"),
        r"jobs.sqlite: its troupe_meta table is damaged \(it has no schema version\)",
    ),
    (
        "wrong meta columns",
        _wrong_meta_columns,
        r"jobs.sqlite: its troupe_meta table is damaged \(SQLite: no such column: key\); restore",
    ),
    (
        "a folder",
        _a_folder,
        r"jobs.sqlite: this is a folder, not a job store file; point jobs=/--db at a file",
    ),
    ("a FIFO", _a_fifo, r"jobs.sqlite: this is not a regular file \(a FIFO, socket or device\); point"),
    (
        "a symlink loop",
        _a_symlink_loop,
        r"jobs.sqlite: cannot reach it \(Too many levels of symbolic links\)",
    ),
]


@pytest.mark.parametrize(("make", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("writer", [True, False], ids=["writer", "reader"])
async def test_issue_17_14_a_bad_store_is_a_job_store_error(
    tmp_path: Path, make: Make, message: str, writer: bool
) -> None:
    db = make(tmp_path)
    store = troupe.SQLiteJobStore(db)
    with pytest.raises(troupe.JobStoreError, match=message) as info:
        store.open("owner" if writer else None)
    assert info.value.location == str(db)
    if writer:
        with pytest.raises(troupe.JobStoreError, match=message):
            async with troupe.open_system(jobs=db):
                pass


@pytest.mark.parametrize(("make", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_issue_17_14_the_command_line_says_it_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Make, message: str
) -> None:
    db = make(tmp_path)
    for command in ("list", "purge"):
        assert main(["jobs", command, "--db", str(db)]) == 2
        out, err = capsys.readouterr()
        assert out == ""
        [line] = err.splitlines()  # before: a traceback
        assert line.startswith(f"troupe: {db}: ")
        assert re.search(message, line), line


def test_issue_17_14_a_nul_in_the_path(tmp_path: Path) -> None:
    store = troupe.SQLiteJobStore(f"{tmp_path}/jobs\0.sqlite")
    for owner in ("owner", None):
        with pytest.raises(
            troupe.JobStoreError, match=r"jobs\\x00.sqlite': the path holds a NUL character; give"
        ):
            store.open(owner)


def test_issue_17_14_an_owners_folder_that_is_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "jobs.sqlite"
    store = troupe.SQLiteJobStore(db)
    store.open("live")
    store.save([troupe.JobRecord("j1", "running", JobStatus.RUNNING, 1.0, 1.0)], "live")
    owners = tmp_path / "jobs.sqlite.owners"
    (owners / "live.lock").rename(tmp_path / "live.lock")
    owners.rmdir()
    owners.write_text("not a folder")
    try:
        with pytest.raises(
            troupe.JobStoreError, match=r"jobs.sqlite: .*jobs.sqlite.owners is not a folder; move it aside"
        ):
            troupe.SQLiteJobStore(db).open("second")
        # `troupe jobs cancel` looks at the owner's lock too
        assert main(["jobs", "cancel", "j1", "--db", str(db)]) == 2
        _, err = capsys.readouterr()
        [line] = err.splitlines()
        assert "jobs.sqlite.owners is not a folder; move it aside" in line
    finally:
        store.close("live")


def test_issue_17_14_a_path_that_is_not_utf8_is_a_store_like_any_other(tmp_path: Path) -> None:
    db = Path(os.fsdecode(bytes(tmp_path) + b"/jobs-\xff.sqlite"))  # a lone surrogate in the str
    writer = troupe.SQLiteJobStore(db)
    writer.open("owner")
    writer.save([troupe.JobRecord("j1", "one", JobStatus.SUCCEEDED, 1.0)], "owner")
    writer.close("owner")
    reader = troupe.SQLiteJobStore(db)
    reader.open(None)  # before: UnicodeEncodeError quoting the path into a file: URI
    assert [r.id for r in reader.list()] == ["j1"]
    reader.close(None)


@pytest.fixture
def untraversable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder nobody may enter: ``chmod 000``, or, as root (who ignores it), every stat under it refused."""
    locked = tmp_path / "locked"
    locked.mkdir()
    _store(locked)
    locked.chmod(0)
    if os.geteuid() == 0:  # root ignores permissions: refuse the stat the way the kernel would
        real_stat = os.stat

        def stat(path: object, *args: object, **kwargs: object) -> os.stat_result:
            if str(path).startswith(str(locked) + os.sep):
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "stat", stat)
    try:
        yield locked / "jobs.sqlite"
    finally:
        locked.chmod(0o755)


def test_issue_17_14_a_folder_that_cannot_be_entered(
    untraversable: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message = (
        r"locked/jobs.sqlite: cannot reach it \(Permission denied\); check the permissions of its folders"
    )
    for owner in ("owner", None):
        with pytest.raises(troupe.JobStoreError, match=message):
            troupe.SQLiteJobStore(untraversable).open(owner)
    assert main(["jobs", "list", "--db", str(untraversable)]) == 2
    _, err = capsys.readouterr()
    [line] = err.splitlines()
    assert "cannot reach it (Permission denied)" in line
