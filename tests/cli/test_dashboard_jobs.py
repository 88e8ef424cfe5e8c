"""``troupe jobs serve --db PATH``: a job store served alone, by the real command in a subprocess."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
import trio
from dashkit import TROUPE, WAIT, interrupt, serving, url_in

import troupe


async def _answer() -> str:
    return "answer"


async def _record_one(db: Path) -> str:
    async with troupe.open_system(jobs=db):
        t = await troupe.submit_job(_answer, name="done")
        await t.result()
        assert t.job_id is not None
        return t.job_id


async def test_jobs_serve_is_read_only_without_a_token(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite"
    job_id = await _record_one(db)

    def check() -> tuple[int, str, str]:
        with serving("jobs", "serve", "--db", str(db), "--port", "0") as (proc, line):
            assert "read-only" in line, line
            url = url_in(line)
            system = httpx.get(url + "api/system").json()
            assert system["mode"] == "store"
            assert system["read_only"] is True
            listed = httpx.get(url + "api/jobs").json()
            assert [j["id"] for j in listed["items"]] == [job_id]
            refused = httpx.post(f"{url}api/jobs/{job_id}/cancel", headers={"Authorization": "Bearer x"})
            assert refused.status_code == 403
            assert "read-only" in refused.json()["error"]
            return interrupt(proc)

    status, out, err = await trio.to_thread.run_sync(check)
    assert (status, out, err) == (0, "", "")  # Ctrl-C is how it is stopped


async def test_jobs_serve_with_a_token_cancels(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite"
    async with troupe.open_system(jobs=db):

        async def forever() -> None:
            await trio.sleep_forever()

        t = await troupe.submit_job(forever, name="forever")

        def cancel() -> tuple[int, int, int]:
            with serving("jobs", "serve", "--db", str(db), "--port", "0", "--token", "tok") as (proc, line):
                assert "read-only" not in line, line
                url = f"{url_in(line)}api/jobs/{t.job_id}/cancel"
                without = httpx.post(url).status_code
                done = httpx.post(url, headers={"Authorization": "Bearer tok"})
                assert done.json()["cancelled"] is True
                status, _, _ = interrupt(proc)
                return without, done.status_code, status

        assert await trio.to_thread.run_sync(cancel) == (401, 200, 0)
        with trio.fail_after(WAIT):  # the owner reads its cancel requests about every second
            await t.error()


@pytest.mark.parametrize(
    ("content", "said"), [(None, "no such job store"), ("garbage", "this is not a troupe job store")]
)
def test_jobs_serve_a_bad_store_is_one_line(tmp_path: Path, content: str | None, said: str) -> None:
    db = tmp_path / "jobs.sqlite"
    if content is not None:
        db.write_text(content)
    done = subprocess.run(
        [*TROUPE, "jobs", "serve", "--db", str(db), "--port", "0"],
        check=False,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith(f"troupe: {db}: {said}")
    assert done.stderr.count("\n") == 1, done.stderr
