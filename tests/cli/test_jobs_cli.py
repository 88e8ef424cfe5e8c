"""``troupe jobs list|show|cancel|purge``: tables, JSON for scripts, one-line errors."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import trio

import troupe
from troupe import JobStatus
from troupe.cli import main

FIELDS = [
    "id",
    "name",
    "status",
    "created",
    "started",
    "finished",
    "progress",
    "progress_message",
    "result",
    "result_is_repr",
    "error",
]


def make_store(path: Path) -> dict[str, str]:
    """A store with one succeeded, one failed and one cancelled job; their ids by name."""

    def parse(day: str) -> dict[str, int]:
        troupe.report_progress(1.0, "parsed")
        return {"rows": 3, "day": int(day)}

    def broken() -> None:
        msg = "no rows for 2026-13"
        raise ValueError(msg)

    async def fill() -> dict[str, str]:
        async with troupe.open_system(jobs=str(path)):
            ok = await troupe.submit_job(parse, "22", name="parse")
            bad = await troupe.submit_job(broken, name="broken")
            gone = await troupe.delay_task(lambda: 1, job=True)
            await gone.cancel(force=True)
            await troupe.wait_all(ok, bad)
            ids = {"parse": ok.job_id, "broken": bad.job_id, "gone": gone.job_id}
            return {name: job_id for name, job_id in ids.items() if job_id is not None}

    return trio.run(fill)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_list_shows_a_table_newest_first_and_filters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "jobs.sqlite"
    ids = make_store(db)
    status, out, _ = run(capsys, "jobs", "list", "--db", str(db))
    assert status == 0
    assert f"jobs in {db} (3)" in out
    for name, job_id in ids.items():
        assert job_id[:8] in out, name
    assert out.index("broken") < out.index("parse")  # newest first
    status, out, _ = run(
        capsys, "jobs", "list", "--db", str(db), "--status", "failed", "--status", "cancelled"
    )
    assert status == 0
    assert "broken" in out
    assert "parse" not in out
    status, out, _ = run(capsys, "jobs", "list", "--db", str(db), "--limit", "1")
    assert f"jobs in {db} (1 of 3)" in out
    status, out, _ = run(capsys, "jobs", "list", "--db", str(db), "--limit", "3")
    assert f"jobs in {db} (3)" in out


def make_many(path: Path, count: int) -> list[str]:
    """A store with ``count`` succeeded jobs; their ids."""

    async def fill() -> list[str]:
        async with troupe.open_system(jobs=str(path)):
            tasks = [await troupe.submit_job(int, str(i), name=f"job-{i}") for i in range(count)]
            await troupe.wait_all(*tasks)
        return [t.job_id for t in tasks if t.job_id is not None]

    return trio.run(fill)


def test_issue_18_list_with_a_limit_says_how_many_of_how_many(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "jobs.sqlite"
    make_many(db, 32)
    status, out, _ = run(capsys, "jobs", "list", "--db", str(db), "--limit", "5")
    assert status == 0
    assert out.startswith(f"jobs in {db} (5 of 32)\n")
    assert out.count("job-") == 5


def test_issue_18_a_prefix_shorter_than_4_characters_says_so_and_lists_the_matches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "jobs.sqlite"
    ids = make_many(db, 32)
    first = max({i[0] for i in ids}, key=lambda c: sum(i.startswith(c) for i in ids))  # 32 ids, 16 digits
    matches = [i for i in ids if i.startswith(first)]
    assert len(matches) >= 2
    status, out, err = run(capsys, "jobs", "show", first, "--db", str(db))
    assert (status, out) == (2, "")
    [line] = err.splitlines()
    assert line.startswith(f"troupe: an id prefix needs at least 4 characters; {len(matches)} jobs ("), line
    assert line.endswith(f") in {db} start with {first!r}")
    named = re.findall(r"\b[0-9a-f]{8}\b", line)
    assert len(named) == min(5, len(matches))
    assert set(named) <= {i[:8] for i in matches}
    assert line.count("...") == (len(matches) > 5)
    status, out, err = run(capsys, "jobs", "show", "zz", "--db", str(db))
    assert status == 2
    assert err.startswith("troupe: no job 'zz' in ")


def test_issue_18_a_prefix_that_several_ids_share_lists_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "jobs.sqlite"
    make_many(db, 7)
    with sqlite3.connect(db) as conn:  # seven ids that share their first four characters
        conn.execute("UPDATE troupe_jobs SET id = 'abcd' || substr(id, 5)")
    conn.close()
    status, out, err = run(capsys, "jobs", "show", "abcd", "--db", str(db))
    assert (status, out) == (2, "")
    assert err.startswith("troupe: 7 jobs (abcd")
    assert err.endswith(f", ...) in {db} start with 'abcd'; give more of the id\n")


def test_json_has_the_record_field_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "jobs.sqlite"
    ids = make_store(db)
    status, out, _ = run(capsys, "jobs", "list", "--db", str(db), "--json")
    assert status == 0
    records = json.loads(out)
    assert [list(r) for r in records] == [FIELDS] * 3
    by_id = {r["id"]: r for r in records}
    parsed = by_id[ids["parse"]]
    assert parsed["status"] == "succeeded"
    assert parsed["result"] == {"rows": 3, "day": 22}
    assert parsed["progress"] == 1.0
    assert parsed["progress_message"] == "parsed"
    assert by_id[ids["broken"]]["error"] == "ValueError: no rows for 2026-13"
    assert by_id[ids["gone"]]["started"] is None

    status, out, _ = run(capsys, "jobs", "show", ids["broken"][:8], "--db", str(db), "--json")
    assert status == 0
    assert json.loads(out)["id"] == ids["broken"]


def test_show_prints_the_whole_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "jobs.sqlite"
    ids = make_store(db)
    status, out, _ = run(capsys, "jobs", "show", ids["broken"], "--db", str(db))
    assert status == 0
    assert f"job {ids['broken']}" in out
    assert "failed" in out
    assert "ValueError: no rows for 2026-13" in out
    status, out, _ = run(capsys, "jobs", "show", ids["parse"][:6], "--db", str(db))
    assert status == 0
    assert "100% parsed" in out
    assert '"rows": 3' in out


def test_purge_deletes_finished_jobs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "jobs.sqlite"
    ids = make_store(db)
    status, out, _ = run(capsys, "jobs", "purge", "--db", str(db), "--older-than", "7d")
    assert (status, out.strip()) == (0, f"purged 0 finished job(s) from {db}")
    status, out, _ = run(capsys, "jobs", "purge", "--db", str(db), "--id", ids["broken"], "--json")
    assert (status, json.loads(out)) == (0, {"purged": 1})
    status, out, _ = run(capsys, "jobs", "list", "--db", str(db), "--json")
    assert sorted(r["id"] for r in json.loads(out)) == sorted([ids["parse"], ids["gone"]])
    status, out, _ = run(capsys, "jobs", "purge", "--db", str(db))
    assert (status, out.strip()) == (0, f"purged 2 finished job(s) from {db}")


def test_cancel_of_a_finished_job_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "jobs.sqlite"
    ids = make_store(db)
    status, out, _ = run(capsys, "jobs", "cancel", ids["parse"], "--db", str(db))
    assert status == 1
    assert "already finished: succeeded" in out


async def test_cancel_from_another_process_cancels_a_running_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("troupe.jobs._jobs._POLL_INTERVAL", 0.02)  # the owner looks for requests often
    db = tmp_path / "jobs.sqlite"
    async with troupe.open_system(jobs=str(db)) as system:
        jobs = system.jobs
        assert jobs is not None
        t = await troupe.submit_job(trio.sleep_forever, name="forever")
        assert t.job_id is not None
        command = [sys.executable, "-m", "troupe.cli", "jobs", "cancel", t.job_id[:8], "--db", str(db)]
        done = await trio.run_process(command, capture_stdout=True, capture_stderr=True, check=False)
        assert done.returncode == 0, done.stderr
        assert b"cancellation of job" in done.stdout
        with trio.fail_after(30):
            assert isinstance(await t.error(), troupe.TaskCancelled)
        record = await jobs.get(t.job_id)
        assert record is not None
        assert record.status is JobStatus.CANCELLED


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["jobs", "list", "--db", "{missing}"], "missing.sqlite: no such job store"),
        (["jobs", "list", "--db", "{not_a_store}"], "is not a troupe job store"),
        (["jobs", "show", "nope", "--db", "{db}"], "no job 'nope' in"),
        (["jobs", "list", "--db", "{db}", "--status", "done"], "'done' is not one of 'pending', 'running'"),
        (["jobs", "purge", "--db", "{db}", "--older-than", "soon"], "--older-than takes an age like"),
        (["jobs", "list"], "Missing option '--db'"),
    ],
)
def test_errors_are_one_line_with_exit_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    db = tmp_path / "jobs.sqlite"
    make_store(db)
    not_a_store = tmp_path / "other.sqlite"
    with sqlite3.connect(not_a_store) as conn:
        conn.execute("create table users (id integer)")
    conn.close()
    paths = {"missing": str(tmp_path / "missing.sqlite"), "not_a_store": str(not_a_store), "db": str(db)}
    status, out, err = run(capsys, *[a.format(**paths) for a in argv])
    assert status == 2
    assert out == ""
    [line] = err.strip().splitlines()
    assert line.startswith("troupe: ")
    assert message in line
    assert not (tmp_path / "missing.sqlite").exists()  # a reader never creates a store


def test_issue_17_1_texts_that_are_not_utf8_or_look_like_markup_are_printed_as_they_are(
    tmp_path: Path,
) -> None:
    db = tmp_path / "jobs.sqlite"
    bad = os.fsdecode(b"/data/\xff.csv")  # a lone surrogate: what os.fsdecode gives for a non-UTF-8 name

    async def fails() -> None:
        troupe.report_progress(0.5, f"[bold]read {bad}")
        raise ValueError(bad)

    async def fill() -> str:
        async with troupe.open_system(jobs=str(db)):
            t = await troupe.submit_job(fails, name=f"load {bad} [/]")
            await troupe.wait_all(t)
        assert t.job_id is not None
        return t.job_id

    job_id = trio.run(fill)
    strict = {**os.environ, "PYTHONIOENCODING": "utf-8:strict", "COLUMNS": "200"}  # as in a UTF-8 locale

    def troupe_jobs(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "troupe.cli", "jobs", *args, "--db", str(db)]
        return subprocess.run(command, capture_output=True, text=True, env=strict, check=False)

    for args in (["list"], ["show", job_id]):
        done = troupe_jobs(*args)
        assert done.returncode == 0, done.stderr  # before: UnicodeEncodeError, rich's MarkupError
        assert done.stderr == ""
        assert "load /data/\\udcff.csv [/]" in done.stdout
    assert "ValueError: /data/\\udcff.csv" in done.stdout
    assert "50% [bold]read /data/\\udcff.csv" in done.stdout
    for args in (["list", "--json"], ["show", job_id, "--json"]):
        done = troupe_jobs(*args)
        assert done.returncode == 0, done.stderr
        found = json.loads(done.stdout)
        record = found[0] if isinstance(found, list) else found
        assert record["name"] == f"load {bad} [/]"  # JSON's escapes give the identical text back
        assert record["error"] == f"ValueError: {bad}"
        assert record["progress_message"] == f"[bold]read {bad}"
