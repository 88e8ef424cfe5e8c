"""Kore's ``bind_request``: a task's channel streamed to an HTTP client (``Dashboard.bind``)."""

from __future__ import annotations

import pytest
import trio

import troupe

from apikit import next_event, served, streaming


async def test_a_bound_task_streams_its_writes_then_its_end() -> None:
    async with served() as (_, dashboard, client):
        go = trio.Event()

        async def talk(ctx: troupe.TaskContext) -> str:
            await ctx.channel.write({"step": 1})
            await go.wait()
            await ctx.channel.write("two")
            await ctx.channel.write(b"three")
            return "finished"

        t = await troupe.run_task(talk, channel=True)
        path = dashboard.bind(t)
        assert path.startswith("/api/bound/")
        async with streaming(client, path) as (response, events):
            assert response.status_code == 200
            assert await next_event(events) == ("message", {"step": 1})
            go.set()
            assert await next_event(events) == ("message", "two")
            assert await next_event(events) == ("message", "three")
            assert await next_event(events) == (
                "end",
                {"outcome": "succeeded", "error": None, "result": "finished"},
            )
        again = await client.get(path)
        assert again.status_code == 404
        assert "streamed already" in again.json()["error"]


async def test_a_failed_task_ends_failed() -> None:
    async with served() as (_, dashboard, client):

        async def fails(ctx: troupe.TaskContext) -> None:
            await ctx.channel.write("before")
            raise ValueError("bad input")

        t = await troupe.run_task(fails, channel=True)
        path = dashboard.bind(t)
        async with streaming(client, path) as (_, events):
            got = [item async for item in events]
        assert got == [
            ("message", "before"),
            ("end", {"outcome": "failed", "error": "ValueError: bad input", "result": None}),
        ]


async def test_the_client_leaving_ends_the_binding_not_the_task() -> None:
    async with served() as (_, dashboard, client):
        first_read = trio.Event()

        async def chatty(ctx: troupe.TaskContext) -> int:
            for i in range(50):  # far more than the channel holds: someone must keep reading
                await ctx.channel.write(i)
                if i == 0:
                    await first_read.wait()
            return 50

        t = await troupe.run_task(chatty, channel=2)
        path = dashboard.bind(t)
        async with streaming(client, path) as (_, events):
            assert await next_event(events) == ("message", 0)
        first_read.set()  # the client has gone
        with trio.fail_after(5):
            assert await t.result() == 50
        assert path.rsplit("/", 1)[1] not in dashboard._site.bindings.items


async def test_a_stream_says_stopped_when_the_dashboard_stops_first() -> None:
    async with served() as (_, dashboard, client):

        async def waits(ctx: troupe.TaskContext) -> None:
            await trio.sleep_forever()

        t = await troupe.run_task(waits, channel=True)
        path = dashboard.bind(t)
        async with streaming(client, path) as (_, events), trio.open_nursery() as nursery:
            nursery.start_soon(dashboard.stop)
            assert [name async for name, _ in events] == ["stopped"]
        assert not t.finished
        await t.cancel(force=True)


async def test_bind_refuses_what_it_cannot_stream() -> None:
    async with served() as (_, dashboard, _):

        async def plain() -> None:
            pass

        t = await troupe.run_task(plain)
        with pytest.raises(troupe.TaskStateError, match="has no channel"):
            dashboard.bind(t)
        with pytest.raises(TypeError, match="bind takes a TaskHandle"):
            dashboard.bind("task")  # type: ignore[arg-type]

        async def talk(ctx: troupe.TaskContext) -> None:
            await ctx.channel.write(1)

        bound = await troupe.run_task(talk, channel=True)
        dashboard.bind(bound)
        with pytest.raises(troupe.TaskStateError, match="already"):
            dashboard.bind(bound)
