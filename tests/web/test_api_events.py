"""``GET /api/events``: batched SSE of ``troupe.**``, lagged clients, many clients, ``stopped`` at the end."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import trio

import troupe
import troupe.web

from apikit import next_event, served, sse, streaming
from kit import eventually


class Echo(troupe.Actor[str]):
    async def receive(self, msg: str) -> str:
        return msg


class Idle(troupe.Actor[str]):
    async def receive(self, msg: str) -> None:
        pass


async def test_events_come_in_batches() -> None:
    async with served() as (system, _, client), streaming(client, "/api/events") as (response, events):
        assert response.headers["content-type"].startswith("text/event-stream")
        name, hello = await next_event(events)
        assert name == "hello"
        assert hello["interval"] == 0.1
        assert hello["lifecycle"] == "summary"
        await system.events.publish("troupe.test.one", 1)
        name, batch = await next_event(events)
        assert name == "batch"
        assert [(e["topic"], e["data"]) for e in batch if e["topic"] != "troupe.lifecycle"] == [
            ("troupe.test.one", 1)
        ]


async def _batches_until(events: Any, done: Any) -> list[dict[str, Any]]:
    """The items of the batches read until ``done(items so far)``."""
    seen: list[dict[str, Any]] = []
    while not done(seen):
        name, batch = await next_event(events)
        assert name == "batch"
        seen.extend(batch)
    return seen


async def _settle(system: troupe.ActorSystem, *streams: Any) -> None:
    """Read until what came before now is summed up (the dashboard's own actor spawns as it starts)."""
    await system.events.publish("troupe.test.mark", "settled")
    for events in streams:
        await _batches_until(events, lambda s: any(e["topic"] == "troupe.test.mark" for e in s))


def _spawned(items: list[dict[str, Any]]) -> int:
    return sum(e["data"]["spawned"] for e in items if e["topic"] == "troupe.lifecycle")


async def test_actors_lives_come_summed_up_once_per_batch() -> None:
    async with served() as (system, _, client), streaming(client, "/api/events") as (_, events):
        await next_event(events)
        await _settle(system, events)
        refs = [await system.spawn(Idle) for _ in range(300)]
        for ref in refs[:100]:
            await ref.stop()
        seen = await _batches_until(events, lambda s: _spawned(s) >= 300 and _stopped(s) >= 100)
        assert _spawned(seen) == 300
        assert _stopped(seen) == 100
        assert not [e for e in seen if e["topic"] in {"troupe.spawned", "troupe.started", "troupe.stopped"}]
        summaries = [e["data"] for e in seen if e["topic"] == "troupe.lifecycle"]
        assert summaries[-1]["alive"] == system.statistics().alive
        # one summary per batch: far fewer items than the 700 events they stand for
        assert len(summaries) < 50


async def test_a_storm_of_spawns_alone_is_a_summary_every_half_second() -> None:
    async with served() as (system, dashboard, client), streaming(client, "/api/events") as (_, events):
        hub = dashboard._site.hub
        await next_event(events)
        await _settle(system, events)
        started = trio.current_time()
        spawned = 0
        while trio.current_time() - started < 0.8:  # most of a second of nothing but spawns
            await system.spawn(Idle)
            spawned += 1
        seen: list[dict[str, Any]] = []
        batches = 0
        while _spawned(seen) < spawned:
            name, batch = await next_event(events)
            assert name == "batch"
            assert [e["topic"] for e in batch] == ["troupe.lifecycle"]
            seen.extend(batch)
            batches += 1
        elapsed = trio.current_time() - started
        assert _spawned(seen) == spawned
        assert batches <= elapsed / hub.summary_interval + 2


def _stopped(items: list[dict[str, Any]]) -> int:
    return sum(e["data"]["stopped"] for e in items if e["topic"] == "troupe.lifecycle")


async def test_lifecycle_each_streams_every_life_event_and_only_to_who_asked() -> None:
    async with (
        served() as (system, _, client),
        streaming(client, "/api/events?lifecycle=each") as (_, each),
        streaming(client, "/api/events") as (_, summary),
    ):
        name, hello = await next_event(each)
        assert (name, hello["lifecycle"]) == ("hello", "each")
        await next_event(summary)
        await _settle(system, each, summary)
        ref = await system.spawn(Idle, name="idle")
        await ref.stop()
        await system.events.publish("troupe.test.after", 1)
        seen = await _batches_until(each, lambda s: any(e["topic"] == "troupe.test.after" for e in s))
        topics = [(e["topic"], e["data"]) for e in seen if e["topic"] != "troupe.lifecycle"]
        assert topics == [
            ("troupe.spawned", "/user/idle"),
            ("troupe.started", "/user/idle"),
            ("troupe.stopped", "/user/idle"),
            ("troupe.test.after", 1),
        ]
        others = await _batches_until(summary, lambda s: any(e["topic"] == "troupe.test.after" for e in s))
        assert [e["topic"] for e in others if e["topic"] != "troupe.lifecycle"] == ["troupe.test.after"]
        assert _spawned(others) == 1


async def test_the_bus_hands_over_life_events_only_while_a_client_wants_each() -> None:
    async with served() as (system, dashboard, client):
        bus = system.events

        def lifecycle_taps() -> list[object]:
            return [t for p, t in bus._subs if p[-1] in {"spawned", "started", "stopped"}]

        assert lifecycle_taps() == []
        async with streaming(client, "/api/events?lifecycle=each") as (_, events):
            await next_event(events)
            assert len(lifecycle_taps()) == 3
            async with streaming(client, "/api/events?lifecycle=each") as (_, again):
                await next_event(again)
                assert len(lifecycle_taps()) == 3  # one tap serves every such client
        hub = dashboard._site.hub
        with trio.fail_after(5):
            while hub.clients:  # noqa: ASYNC110 - the server's side notices the closed stream
                await trio.sleep(0.01)
        assert lifecycle_taps() == []
        assert hub.each == 0


async def test_a_bad_lifecycle_choice_is_a_json_400() -> None:
    async with served() as (_, _dashboard, client):
        response = await client.get("/api/events", params={"lifecycle": "all"})
        assert response.status_code == 400
        assert "lifecycle must be 'summary'" in response.json()["error"]


async def test_at_most_one_batch_per_interval() -> None:
    async with served() as (system, dashboard, client), streaming(client, "/api/events") as (_, events):
        await next_event(events)
        started = trio.current_time()
        for i in range(2000):
            await system.events.publish("troupe.test.tick", i)
        seen: list[Any] = []
        batches = 0
        while len(seen) < 2000:
            name, batch = await next_event(events)
            assert name == "batch"
            batches += 1
            seen.extend(e["data"] for e in batch if e["topic"] == "troupe.test.tick")
        elapsed = trio.current_time() - started
        assert seen == list(range(2000))  # in order, none lost
        assert batches <= elapsed / dashboard._site.hub.interval + 2


async def test_a_slow_client_loses_batches_and_is_told() -> None:
    async with served() as (system, dashboard, _):
        hub = dashboard._site.hub
        hub.client_batches = 2
        hub.interval = 0.002
        big = "x" * 200_000
        echo = await system.spawn(Echo, name="echo")
        with trio.socket.socket() as sock, trio.fail_after(15):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            await sock.connect(("127.0.0.1", dashboard.port))
            await sock.send(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            while not hub.clients:  # noqa: ASYNC110 - outside state: the stream opened on the server's side
                await trio.sleep(0.01)
            (slow,) = hub.clients
            # It reads nothing now: the batches fill the sockets, then its queue, then are lost.
            sent = 0
            while not slow.lost_batches:
                await system.events.publish("troupe.test.big", big)
                sent += 1
                assert sent < 500, "the slow client never lagged"
                await trio.sleep(hub.interval * 2)
            assert await echo.ask("still answering") == "still answering"  # nothing waited on the client
            received = bytearray()

            async def read_all() -> None:
                while b"troupe.test.last" not in received:
                    chunk = await sock.recv(1 << 20)
                    assert chunk, "the stream ended"
                    received.extend(chunk)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(read_all)
                while slow.queue:  # noqa: ASYNC110 - outside state: the client catches up
                    await trio.sleep(0.01)
                await system.events.publish("troupe.test.last", "last")
        text = received.decode()
        blocks = text.split("\r\n\r\n")
        lagged = [b for b in blocks if "event: lagged" in b]
        assert len(lagged) == 1
        shown = json.loads(lagged[0].split("data: ", 1)[1].split("\r\n")[0])
        delivered = text.count('"topic":"troupe.test.big"')
        assert shown["batches"] >= 1
        assert delivered + shown["events"] == sent  # each event delivered or counted as lost


async def test_many_clients_at_once_and_the_limit() -> None:
    async with served() as (system, dashboard, client):
        hub = dashboard._site.hub
        hub.max_clients = 30
        got: list[list[str]] = []

        async def listen(task_status: trio.TaskStatus[None]) -> None:
            async with streaming(client, "/api/events") as (_, events):
                await next_event(events)
                task_status.started()
                topics: list[str] = []
                while "troupe.test.all" not in topics:  # the first batch may hold the dashboard's own start
                    _, batch = await next_event(events)
                    topics = [e["topic"] for e in batch]
                got.append([t for t in topics if t == "troupe.test.all"])  # a lifecycle summary may follow it

        async with trio.open_nursery() as nursery:
            for _ in range(30):
                await nursery.start(listen)
            refused = await client.get("/api/events")
            assert refused.status_code == 503
            assert "30 event streams are open already" in refused.json()["error"]
            await system.events.publish("troupe.test.all", None)
        assert got == [["troupe.test.all"]] * 30
        await eventually(lambda: not hub.clients)  # the streams' ends are seen by the server a little later


async def test_head_opens_no_stream() -> None:
    async with served() as (_, dashboard, client):
        response = await client.head("/api/events")
        assert response.status_code == 200
        assert not dashboard._site.hub.clients


async def test_streams_say_stopped_when_the_system_stops() -> None:
    got: list[str] = []
    async with httpx.AsyncClient(timeout=10) as client, trio.open_nursery() as outer:

        async def listen(url: str, task_status: trio.TaskStatus[None]) -> None:
            async with client.stream("GET", url) as response:
                events = sse(response)
                await next_event(events)
                task_status.started()
                got.extend([name async for name, _ in events])

        async with troupe.open_system() as system:
            dashboard = await troupe.web.serve(system, port=0)
            await outer.start(listen, dashboard.url + "api/events")
            await outer.start(listen, dashboard.url + "api/events")
    assert got.count("stopped") == 2
    assert got[-1] == "stopped"


async def test_events_of_each_kind_are_json() -> None:
    async with served() as (system, _, client), streaming(client, "/api/events") as (_, events):
        await next_event(events)

        async def job() -> int:
            return 1

        t = await troupe.submit_job(job, name="kinds")
        await t.result()
        ref = await system.spawn(Idle, name="gone")
        await ref.stop()
        await ref.tell("late")
        await system.events.publish("troupe.test.object", object())
        seen: dict[str, Any] = {}
        while "troupe.test.object" not in seen:
            _, batch = await next_event(events)
            seen.update((e["topic"], e["data"]) for e in batch)
        assert seen["troupe.job.succeeded"]["name"] == "kinds"
        assert seen["troupe.job.succeeded"]["status"] == "succeeded"
        assert seen["troupe.dead_letter"] == {
            "message": "'late'",
            "recipient": "/user/gone",
            "reason": "stopped",
        }
        assert seen["troupe.task.finished"].startswith("job-")
        assert seen["troupe.test.object"].startswith("<object object at")
