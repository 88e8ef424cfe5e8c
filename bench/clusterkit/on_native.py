"""The roles as trio programs on troupe's own trio-native NATS client (``troupe.cluster._nats``), no actors.

The other side of the issue's "nats-py through a bridge, or a trio-native
client: measure both": the same roles as [`on_bridge`][clusterkit.on_bridge],
line for line, with ``NatsClient`` in place of the bridge. Requests use one
wildcard inbox subscription and reschedule the waiting task from the
client's callback, as the bridge does. troupe's own rows (actors, refs,
the codec) come on top of this client.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import outcome
import trio

from troupe.cluster._nats import NatsClient, Options

from .common import ASK_SUBJECT, BURST, PAYLOAD, TELL_SUBJECT, answer, answered, now, report, time_asks

_NO_RESPONDERS = 503


@asynccontextmanager
async def _connected(url: str) -> AsyncIterator[NatsClient]:
    client = NatsClient(Options(url, name="bench"))
    await client.connect()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.run)
        try:
            yield client
        finally:
            await client.close()
            nursery.cancel_scope.cancel()


class _Requests:
    """Requests over one wildcard inbox; a reply reschedules its waiting task."""

    def __init__(self, client: NatsClient) -> None:
        self._client = client
        self._prefix = "_INBOX.bench"
        self._waiters: dict[str, trio.lowlevel.Task] = {}
        self._next = 0
        client.subscribe(f"{self._prefix}.*", self._on_reply)

    def _on_reply(self, subject: str, _reply: str | None, payload: bytes, status: int | None) -> None:
        task = self._waiters.pop(subject[len(self._prefix) + 1 :], None)
        if task is None:
            return
        if status == _NO_RESPONDERS:
            trio.lowlevel.reschedule(
                task, outcome.Error(RuntimeError("no responder: start one before asking"))
            )
        else:
            trio.lowlevel.reschedule(task, outcome.Value(payload))

    async def request(self, subject: str, payload: bytes, timeout: float) -> bytes:
        self._next += 1
        token = str(self._next)
        self._waiters[token] = trio.lowlevel.current_task()
        self._client.publish(subject, payload, f"{self._prefix}.{token}")

        def abort(_: Any) -> trio.lowlevel.Abort:
            self._waiters.pop(token, None)
            return trio.lowlevel.Abort.SUCCEEDED

        with trio.fail_after(timeout):
            data: bytes = await trio.lowlevel.wait_task_rescheduled(abort)
        return data


async def _until(done: trio.Event) -> None:
    """Return once ``done`` is set, or at SIGTERM (the orchestrator asks for a report)."""
    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def on_done() -> None:
                await done.wait()
                nursery.cancel_scope.cancel()

            async def on_signal() -> None:
                async for _ in signals:
                    nursery.cancel_scope.cancel()

            nursery.start_soon(on_done)
            nursery.start_soon(on_signal)


async def subscriber(url: str, n: int) -> None:
    """Count ``n`` messages of the tell stream (see [`clusterkit`][clusterkit])."""
    async with _connected(url) as client:
        done = trio.Event()
        count = 0
        end: float | None = None

        def on_msg(_subject: str, _reply: str | None, _payload: bytes, _status: int | None) -> None:
            nonlocal count, end
            count += 1
            if count == n:
                end = now()
                done.set()

        client.subscribe(TELL_SUBJECT, on_msg)
        await client.flush()
        report(ready=True)
        await _until(done)
        report(end=end, count=count)


async def publisher(url: str, n: int) -> None:
    """Publish the tell stream: ``n`` payloads."""
    async with _connected(url) as client:
        start = now()
        for i in range(n):
            client.publish(TELL_SUBJECT, PAYLOAD)
            if i % BURST == BURST - 1:
                await client.wait_writable()
                await trio.lowlevel.checkpoint()
        await client.flush()
        report(start=start, done=now(), count=n)


async def responder(url: str) -> None:
    """Answer requests until SIGTERM."""
    async with _connected(url) as client:
        count = 0

        def on_msg(_subject: str, reply: str | None, _payload: bytes, _status: int | None) -> None:
            nonlocal count
            count += 1
            if reply is not None:
                client.publish(reply, answer(count))

        client.subscribe(ASK_SUBJECT, on_msg)
        await client.flush()
        report(ready=True)
        await _until(trio.Event())
        report(count=count)


async def requester(url: str, n: int) -> None:
    """Make ``n`` requests, one after the other."""
    async with _connected(url) as client:
        requests = _Requests(client)
        await client.flush()

        async def ask() -> int:
            return answered(await requests.request(ASK_SUBJECT, PAYLOAD, timeout=10))

        await time_asks(ask, n)
