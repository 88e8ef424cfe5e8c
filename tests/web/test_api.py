"""The JSON API against the real server (hypercorn's trio worker) on a free loopback port."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest
import trio

import troupe
import troupe.web
from troupe.jobs._record import as_json

from apikit import TOKEN, bearer, served


class Worker(troupe.Actor[str]):
    async def on_start(self) -> None:
        if self.ref.name == "parent":
            await self.context.spawn(Worker, name="child-a")
            await self.context.spawn(Worker, name="child-b")

    async def receive(self, msg: str) -> None:
        if msg == "boom":
            raise ValueError("the worker was told to fail")


async def test_system_shape() -> None:
    async with served() as (system, dashboard, client):
        assert dashboard.url == f"http://127.0.0.1:{dashboard.port}/"
        assert dashboard.host == "127.0.0.1"
        assert dashboard.token == TOKEN
        await system.spawn(Worker, name="w")
        body = (await client.get("/api/system")).json()
        assert body["mode"] == "system"
        assert body["name"] == system.name
        assert body["running"] is True
        assert body["has_jobs"] is True
        assert body["read_only"] is False
        assert isinstance(body["started_at"], float)
        assert body["uptime"] >= 0
        assert set(body["stats"]) == {"actors", "started", "restarts", "failures", "dead_letters"}
        assert body["stats"]["actors"] >= 1


async def test_a_token_is_made_when_none_is_given() -> None:
    async with troupe.open_system() as system:
        dashboard = await troupe.web.serve(system, port=0)
        assert dashboard.token is not None
        assert len(dashboard.token) >= 32


async def test_actors_in_tree_order_with_states_and_failures() -> None:
    async with served() as (system, _, client):
        parent = await system.spawn(Worker, name="parent")
        await system.spawn(Worker, name="other")
        body = (await client.get("/api/actors", params={"under": "/user"})).json()
        assert body["total"] == 4
        assert body["offset"] == 0
        paths = [a["path"] for a in body["items"]]
        assert paths == ["/user/parent", "/user/parent/child-a", "/user/parent/child-b", "/user/other"]
        first = body["items"][0]
        assert first == {
            "path": "/user/parent",
            "name": "parent",
            "parent": "/user",
            "class": "Worker",
            "state": "running",
            "queued": 0,
            "capacity": 1024,
            "restarts": 0,
            "children": 2,
            "failure": None,
        }
        assert body["items"][1]["parent"] == "/user/parent"

        child = system.lookup("/user/parent/child-a")
        assert child is not None
        await child.tell("boom")
        for _ in range(200):  # the restart happens in the actor's own task
            row = (await client.get("/api/actors", params={"under": "/user/parent/child-a"})).json()["items"][
                0
            ]
            if row["restarts"]:
                break
            await trio.sleep(0.01)
        assert row["restarts"] == 1
        assert row["failure"] == "ValueError: the worker was told to fail"

        page = (await client.get("/api/actors", params={"under": "/user", "offset": 1, "limit": 2})).json()
        assert [a["path"] for a in page["items"]] == paths[1:3]
        assert page["total"] == 4
        subtree = (await client.get("/api/actors", params={"under": parent.path})).json()
        assert [a["path"] for a in subtree["items"]] == paths[:3]
        everything = (await client.get("/api/actors")).json()
        assert everything["items"][0]["path"] == "/user/parent"  # /user first, then /system
        assert any(a["path"].startswith("/system/") for a in everything["items"])


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ({"limit": "1001"}, 400, "at most 1000"),
        ({"limit": "-1"}, 400, "whole number"),
        ({"offset": "x"}, 400, "whole number"),
        ({"offset": "9" * 5000}, 400, "whole number"),
        ({"under": "user"}, 400, "actor's path"),
        ({"under": "/user/nobody"}, 404, "no live actor"),
    ],
)
async def test_actors_refuse_bad_queries(query: dict[str, str], status: int, words: str) -> None:
    async with served() as (_, _, client):
        response = await client.get("/api/actors", params=query)
        assert response.status_code == status
        assert words in response.json()["error"]


async def test_tasks_live_and_counted() -> None:
    async with served() as (system, _, client):
        release = trio.Event()

        async def waits(ctx: troupe.TaskContext) -> str:
            await release.wait()
            return "done"

        async def fails() -> None:
            raise RuntimeError("no")

        t = await troupe.run_task(waits, channel=True, job=True)
        body = (await client.get("/api/tasks")).json()
        assert body["counts"]["running"] == 1
        assert body["total"] == 1
        (item,) = body["items"]
        assert item == {"name": t.name, "state": "running", "job_id": t.job_id, "has_channel": True}
        release.set()
        await t.result()
        failing = await troupe.run_task(fails)
        await failing.error()
        for _ in range(200):  # counted from the events, every 100 ms
            counts = (await client.get("/api/tasks")).json()["counts"]
            if counts["finished"] and counts["failed"]:
                break
            await trio.sleep(0.02)
        assert counts == {"pending": 0, "running": 0, "finished": 1, "failed": 1, "cancelled": 0}
        assert system.jobs is not None


async def test_jobs_list_and_get_as_the_command_line_prints_them() -> None:
    async with served() as (system, _, client):

        async def answer(x: int) -> dict[str, int]:
            return {"x": x}

        done = await troupe.submit_job(answer, 1, name="one")
        await done.result()
        release = trio.Event()

        async def waits() -> None:
            await release.wait()

        live = await troupe.submit_job(waits, name="live")
        jobs = system.jobs
        assert jobs is not None
        listed = (await client.get("/api/jobs")).json()
        assert listed["total"] == 2
        assert [j["name"] for j in listed["items"]] == ["live", "one"]  # newest first
        record = await jobs.get(done.job_id)  # type: ignore[arg-type]
        assert record is not None
        assert listed["items"][1] == json.loads(json.dumps(as_json(record)))
        running = (await client.get("/api/jobs", params={"status": "running"})).json()
        assert [j["id"] for j in running["items"]] == [live.job_id]
        assert (await client.get("/api/jobs", params={"status": "all"})).json()["total"] == 2
        paged = (await client.get("/api/jobs", params={"offset": 1, "limit": 1})).json()
        assert paged["total"] == 2
        assert [j["name"] for j in paged["items"]] == ["one"]
        one = (await client.get(f"/api/jobs/{done.job_id}")).json()
        assert one["status"] == "succeeded"
        assert one["result"] == {"x": 1}
        release.set()


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/api/jobs?status=finished", 400, "status is one of pending, running"),
        ("/api/jobs/00000000-0000-0000-0000-000000000000", 404, "no job"),
        ("/api/jobs/bad%20id", 400, "is not a job id"),
        ("/api/jobs/%F0%9F%92%A5", 400, "is not a job id"),
    ],
)
async def test_jobs_errors(path: str, status: int, words: str) -> None:
    async with served() as (_, _, client):
        response = await client.get(path)
        assert response.status_code == status
        assert words in response.json()["error"]


async def test_no_job_store_is_a_404_that_says_how_to_have_one() -> None:
    async with served(jobs=False) as (_, dashboard, client):
        for response in [
            await client.get("/api/jobs"),
            await client.get("/api/jobs/abcd"),
            await client.post("/api/jobs/abcd/cancel", headers=bearer(dashboard.token or "")),
        ]:
            assert response.status_code == 404
            assert "open_system(jobs=" in response.json()["error"]
        assert (await client.get("/api/system")).json()["has_jobs"] is False


async def test_cancel_needs_the_token() -> None:
    async with served() as (system, dashboard, client):

        async def forever() -> None:
            await trio.sleep_forever()

        t = await troupe.submit_job(forever, name="forever")
        url = f"/api/jobs/{t.job_id}/cancel"
        for headers in [
            {},
            bearer("wrong"),
            {"Authorization": "Basic " + TOKEN},
            bearer(TOKEN + "X"),
        ]:
            response = await client.post(url, headers=headers)
            assert response.status_code == 401, headers
            assert "Authorization: Bearer" in response.json()["error"]
            assert "set-cookie" not in response.headers
        assert not t.finished
        jobs = system.jobs
        assert jobs is not None
        record = await jobs.get(t.job_id)  # type: ignore[arg-type]
        assert record is not None
        assert record.status is troupe.JobStatus.RUNNING

        response = await client.post(url, headers=bearer(TOKEN))
        assert response.status_code == 200
        body = response.json()
        assert body["cancelled"] is True
        assert body["job"]["status"] == "cancelled"
        assert t.finished
        again = await client.post(url, headers=bearer(TOKEN))
        assert again.status_code == 409
        assert "already finished (cancelled)" in again.json()["error"]
        unknown = await client.post("/api/jobs/0000/cancel", headers=bearer(TOKEN))
        assert unknown.status_code == 404
        malformed = await client.post("/api/jobs/a%20b/cancel", headers=bearer(TOKEN))
        assert malformed.status_code == 400
        assert (await client.get(url)).status_code == 405
        assert dashboard.token == TOKEN


async def test_dead_letters() -> None:
    async with served() as (system, _, client):
        ref = await system.spawn(Worker, name="gone")
        await ref.stop()
        await ref.tell("hello")
        for _ in range(200):
            body = (await client.get("/api/deadletters")).json()
            if body["latest"]:
                break
            await trio.sleep(0.02)
        assert body["count"] == 1
        assert body["latest"] == [{"message": "'hello'", "recipient": "/user/gone", "reason": "stopped"}]


async def test_the_page_and_its_files() -> None:
    async with served() as (_, _, client):
        page = await client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert "<html" in page.text
        script = await client.get("/static/app.js")
        assert script.status_code == 200
        missing = await client.get("/static/nothing.js")
        assert missing.status_code == 404
        assert "error" in missing.json()


@pytest.mark.parametrize(
    "path",
    [
        "/api/../../etc/passwd",
        "/static/../_serve.py",
        "/static/%2e%2e/_serve.py",
        "/%00",
        "/api/actors/extra",
        "/api/jobs/" + "a" * 300,
        "/api/bound/" + "k" * 50,
    ],
)
async def test_garbage_paths_are_json_4xx(path: str) -> None:
    async with served() as (_, _, client):
        response = await client.get(path)
        assert 400 <= response.status_code < 500
        assert "error" in response.json()
        assert "Traceback" not in response.text


async def test_huge_query_values_are_refused_not_served() -> None:
    async with served() as (_, _, client):
        response = await client.get("/api/actors", params={"under": "/" + "x" * 60_000})
        assert 400 <= response.status_code < 500
        assert (await client.get("/api/system")).status_code == 200  # the server goes on


async def test_a_failing_handler_is_a_generic_500_and_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with served() as (_, dashboard, client):

        def broken(**_: object) -> None:
            raise RuntimeError("secret internals")

        monkeypatch.setattr(dashboard._site.view, "actors_json", broken)
        with caplog.at_level(logging.ERROR, logger="troupe.web"):
            response = await client.get("/api/actors")
        assert response.status_code == 500
        assert "secret internals" not in response.text
        assert "Traceback" not in response.text
        assert "logged under 'troupe.web'" in response.json()["error"]
        assert any("secret internals" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


async def test_another_host_name_is_refused_on_loopback() -> None:
    async with served() as (_, dashboard, client):
        for host in ["evil.example", "127.0.0.1.evil.example:80", ""]:
            response = await client.get("/api/system", headers={"Host": host})
            assert response.status_code == 421
            assert "answers on 127.0.0.1 or localhost only" in response.json()["error"]
        for host in ["localhost", f"localhost:{dashboard.port}", "127.0.0.1"]:
            assert (await client.get("/api/system", headers={"Host": host})).status_code == 200


def test_without_the_extra_the_import_says_what_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['starlette'] = None\n"
        "import troupe\n"
        "assert 'hypercorn' not in sys.modules and 'sse_starlette' not in sys.modules\n"
        "try:\n"
        "    import troupe.web\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    ran = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60)
    assert ran.stdout.strip() == "troupe.web needs the 'web' extra: pip install 'trio-troupe[web]'"
