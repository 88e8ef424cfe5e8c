"""``serve_store``: a job store served alone (``troupe jobs serve --db PATH``), read-only without a token."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio

import troupe
import troupe.web

from apikit import bearer, next_event, streaming


async def _answer() -> str:
    return "answer"


async def _record_one(db: Path) -> str:
    async with troupe.open_system(jobs=db) as system:
        t = await troupe.submit_job(_answer, name="done")
        await t.result()
        assert system.jobs is not None
        assert t.job_id is not None
        return t.job_id


async def test_read_only_without_a_token(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite"
    job_id = await _record_one(db)
    async with troupe.web.serve_store(db, port=0) as dashboard:
        assert dashboard.token is None
        async with httpx.AsyncClient(base_url=dashboard.url) as client:
            system = (await client.get("/api/system")).json()
            assert system["mode"] == "store"
            assert system["name"] == str(db)
            assert system["read_only"] is True
            listed = (await client.get("/api/jobs")).json()
            assert [j["id"] for j in listed["items"]] == [job_id]
            one = (await client.get(f"/api/jobs/{job_id}")).json()
            assert one["result"] == "answer"
            refused = await client.post(f"/api/jobs/{job_id}/cancel", headers=bearer("anything"))
            assert refused.status_code == 403
            assert "read-only" in refused.json()["error"]
            for path in ["/api/actors", "/api/tasks", "/api/deadletters"]:
                response = await client.get(path)
                assert response.status_code == 404
                assert "job store alone" in response.json()["error"]
    assert dashboard.stopped


async def test_with_a_token_a_cancel_reaches_the_owner(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite"
    async with troupe.open_system(jobs=db) as system:

        async def forever() -> None:
            await trio.sleep_forever()

        t = await troupe.submit_job(forever, name="forever")
        async with (
            troupe.web.serve_store(db, port=0, token="tok") as dashboard,  # noqa: S106 - a test token
            httpx.AsyncClient(base_url=dashboard.url) as client,
        ):
            url = f"/api/jobs/{t.job_id}/cancel"
            assert (await client.post(url)).status_code == 401
            assert (await client.post(url, headers=bearer("nope"))).status_code == 401
            assert not t.finished
            response = await client.post(url, headers=bearer("tok"))
            assert response.status_code == 200
            assert response.json()["cancelled"] is True
            with trio.fail_after(10):  # the owner polls its cancel requests about every second
                await t.error()
            status = (await client.get(f"/api/jobs/{t.job_id}")).json()["status"]
            assert status == "cancelled"
            assert (await client.post(url, headers=bearer("tok"))).status_code == 409
        assert system.jobs is not None


async def test_a_missing_or_damaged_store_is_the_stores_error(tmp_path: Path) -> None:
    with pytest.raises(troupe.JobStoreError, match="no such job store"):
        async with troupe.web.serve_store(tmp_path / "none.sqlite", port=0):
            pass
    damaged = tmp_path / "damaged.sqlite"
    damaged.write_bytes(b"this is not a database" * 100)
    with pytest.raises(troupe.JobStoreError) as caught:
        async with troupe.web.serve_store(damaged, port=0):
            pass
    assert str(damaged) in str(caught.value)


async def test_the_event_stream_shows_the_stores_changes(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite"
    await _record_one(db)
    async with (
        troupe.web.serve_store(db, port=0) as dashboard,
        httpx.AsyncClient(base_url=dashboard.url) as client,
        streaming(client, "/api/events") as (_, events),
    ):
        dashboard._site.hub.poll = 0.02
        assert (await next_event(events))[0] == "hello"
        seen: list[tuple[str, str]] = []
        async with troupe.open_system(jobs=db):
            release = trio.Event()

            async def waits() -> None:
                await release.wait()

            t = await troupe.submit_job(waits, name="watched")
            while ("troupe.job.running", "watched") not in seen:
                _, batch = await next_event(events, "lagged")
                seen.extend((e["topic"], e["data"]["name"]) for e in batch)
            release.set()
            await t.result()
            while ("troupe.job.succeeded", "watched") not in seen:
                _, batch = await next_event(events, "lagged")
                seen.extend((e["topic"], e["data"]["name"]) for e in batch)
        assert ("troupe.job.succeeded", "done") not in seen  # what was there before is not news
