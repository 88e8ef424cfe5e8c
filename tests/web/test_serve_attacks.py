"""The server's life under attack: it stops with the system whatever is open; a cancelled serve ends."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import httpx
import pytest
import trio

import troupe
import troupe.web
from troupe.actors._cell import failure_log

from apikit import next_event, port_is_free, sse
from kit import eventually


async def test_everything_open_ends_when_the_system_stops() -> None:
    ends: list[str] = []
    async with httpx.AsyncClient(timeout=10) as client, trio.open_nursery() as outer:

        async def listen(url: str, task_status: trio.TaskStatus[None]) -> None:
            async with client.stream("GET", url) as response:
                events = sse(response)
                await next_event(events)
                task_status.started()
                names = [name async for name, _ in events]
                ends.append(names[-1] if names else "nothing")

        async def waits(ctx: troupe.TaskContext) -> None:
            await ctx.channel.write("started")
            await trio.sleep_forever()

        with trio.fail_after(15):
            async with troupe.open_system() as system:
                dashboard = await troupe.web.serve(system, port=0)
                for _ in range(10):
                    await outer.start(listen, dashboard.url + "api/events")
                await outer.start(listen, dashboard.url + "api/events?lifecycle=each")
                bound = await troupe.run_task(waits, channel=True)
                await outer.start(listen, dashboard.url + dashboard.bind(bound).lstrip("/"))
                idle = trio.socket.socket()
                await idle.connect(("127.0.0.1", dashboard.port))  # connected, asks nothing
                half = trio.socket.socket()
                await half.connect(("127.0.0.1", dashboard.port))
                await half.send(b"GET /api/system HTTP/1.1\r\nHost: 127.0.0")  # half a request
            # open_system returned: the server and its streams are gone
            idle.close()
            half.close()
            assert dashboard.stopped
            with pytest.raises(httpx.ConnectError):
                await client.get(dashboard.url + "api/system")
    assert len(ends) == 12
    assert (
        ends.count("stopped") >= 11
    )  # every event stream; the bound one ends stopped, or with its task's end
    assert set(ends) <= {"stopped", "end"}


async def test_a_client_that_reads_nothing_does_not_hold_the_shutdown() -> None:
    stopped = trio.Event()
    shutdown_started = trio.Event()
    async with trio.open_nursery() as nursery:
        reader = trio.socket.socket()
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)

        async def run_system() -> None:
            async with troupe.open_system(shutdown_timeout=3) as system:
                dashboard = await troupe.web.serve(system, port=0)
                hub = dashboard._site.hub
                hub.interval = 0.005
                await reader.connect(("127.0.0.1", dashboard.port))
                await reader.send(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                await eventually(lambda: hub.clients)
                (client,) = hub.clients
                with trio.fail_after(30):
                    while not client.lost_batches:  # its socket is full: sends to it wait
                        await system.events.publish("troupe.test.big", "y" * 100_000)
                        await trio.sleep(hub.interval)
                shutdown_started.set()
            stopped.set()

        nursery.start_soon(run_system)
        await shutdown_started.wait()
        with trio.move_on_after(5):  # far more than the dashboard's own bound (GRACE * 4)
            await stopped.wait()
        held = not stopped.is_set()
        reader.close()  # lets a held shutdown go on, so that this test ends either way
    assert not held, "the system's shutdown waited on a client that reads nothing"


async def test_serve_cancelled_before_it_listens_leaves_nothing() -> None:
    async with troupe.open_system() as system:
        with trio.CancelScope() as scope:
            scope.cancel()
            await troupe.web.serve(system, port=0)
        assert scope.cancelled_caught
        assert not failure_log.handlers
        assert [ref.path for ref in system.actors()] == []


async def test_serve_cancelled_once_it_listens_stops_its_server(monkeypatch: pytest.MonkeyPatch) -> None:
    async with troupe.open_system() as system:
        ports: list[int] = []
        spawn = system._spawn_system

        async def cancelled_spawn(factory: object, *, name: str) -> object:
            ports.append(int(name.rsplit("-", 1)[1]))
            scope.cancel()
            return await spawn(factory, name=name)  # type: ignore[arg-type]

        monkeypatch.setattr(system, "_spawn_system", cancelled_spawn)
        with trio.CancelScope() as scope:
            await troupe.web.serve(system, port=0)
        monkeypatch.undo()
        assert scope.cancelled_caught
        (port,) = ports
        async with httpx.AsyncClient(timeout=5) as client:
            with pytest.raises(httpx.TransportError):
                await client.get(f"http://127.0.0.1:{port}/api/system")


async def test_serve_twice_on_one_port_is_a_web_error_and_the_first_goes_on() -> None:
    async with troupe.open_system() as system:
        first = await troupe.web.serve(system, port=0)
        with pytest.raises(troupe.web.WebError, match=f"127.0.0.1:{first.port}"):
            await troupe.web.serve(system, port=first.port)
        with pytest.raises(troupe.web.WebError, match="port is a number"):
            await troupe.web.serve(system, port=70000)
        async with httpx.AsyncClient(timeout=5) as client:
            assert (await client.get(first.url + "api/system")).status_code == 200
        assert [ref.path for ref in system.actors()] == []


async def test_stop_twice_at_once_and_stop_after_the_system() -> None:
    async with troupe.open_system() as system:
        dashboard = await troupe.web.serve(system, port=0)
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for _ in range(3):
                    nursery.start_soon(dashboard.stop)
        assert dashboard.stopped
        assert port_is_free(dashboard.port)
    with trio.fail_after(5):
        await dashboard.stop()


@pytest.mark.parametrize("kind", ["directory", "empty", "other-sqlite", "text", "missing-parent"])
async def test_serve_store_on_what_is_not_a_job_store(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "jobs.sqlite"
    if kind == "directory":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "other-sqlite":
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE things (x INTEGER)")
        conn.close()
    elif kind == "text":
        path.write_text("id,name\n1,two\n")
    else:
        path = tmp_path / "nowhere" / "jobs.sqlite"
    with pytest.raises(troupe.JobStoreError) as caught:
        async with troupe.web.serve_store(path, port=0):
            pass
    assert str(path) in str(caught.value)


async def _answer() -> str:
    return "answer"


async def test_a_store_that_goes_away_while_served_is_a_503(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite"
    async with troupe.open_system(jobs=db):
        t = await troupe.submit_job(_answer, name="done")
        await t.result()
    async with (
        troupe.web.serve_store(db, port=0) as dashboard,
        httpx.AsyncClient(base_url=dashboard.url, timeout=10) as client,
    ):
        assert (await client.get("/api/jobs")).status_code == 200
        db.write_bytes(b"not a database any more" * 100)  # the same file, overwritten
        for response in [await client.get("/api/jobs"), await client.get(f"/api/jobs/{t.job_id}")]:
            assert response.status_code in {404, 503}, response.text
            assert set(response.json()) == {"error"}
        assert (await client.get("/api/system")).status_code == 200
