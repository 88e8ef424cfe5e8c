"""The roles on raw nats-py, the official client, on asyncio: the baselines troupe is measured against.

Written the way nats-py's documentation shows: callback subscriptions,
``publish`` without waiting for each message, ``request`` for round trips,
``msg.respond`` to answer. Default connection options.
"""

from __future__ import annotations

import asyncio
import signal

import nats
from nats.aio.msg import Msg

from .common import (
    ASK_SUBJECT,
    BURST,
    PAYLOAD,
    POOL_QUEUE,
    POOL_SUBJECT,
    TELL_SUBJECT,
    answer,
    answered,
    burn,
    item,
    now,
    report,
    time_asks,
)

LOOP = "asyncio"
"""Its roles run in ``asyncio.run`` (see [`clusterkit.__main__`][clusterkit.__main__])."""


async def _until(done: asyncio.Event) -> None:
    """Return once ``done`` is set, or at SIGTERM (the orchestrator asks for a report)."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    waits = [asyncio.create_task(done.wait()), asyncio.create_task(stop.wait())]
    _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()


async def subscriber(url: str, n: int) -> None:
    """Count ``n`` messages of the tell stream (see [`clusterkit`][clusterkit])."""
    nc = await nats.connect(url)
    done = asyncio.Event()
    count = 0
    end: float | None = None

    async def on_msg(_: Msg) -> None:
        nonlocal count, end
        count += 1
        if count == n:
            end = now()
            done.set()

    await nc.subscribe(TELL_SUBJECT, cb=on_msg)
    await nc.flush()  # the server has the subscription
    report(ready=True)
    await _until(done)
    report(end=end, count=count)
    await nc.close()


async def publisher(url: str, n: int) -> None:
    """Publish the tell stream: ``n`` payloads."""
    nc = await nats.connect(url)
    start = now()
    for i in range(n):
        await nc.publish(TELL_SUBJECT, PAYLOAD)
        if i % BURST == BURST - 1:
            await asyncio.sleep(0)  # the flusher writes what is pending
    await nc.flush()
    report(start=start, done=now(), count=n)
    await nc.close()


async def responder(url: str) -> None:
    """Answer requests until SIGTERM."""
    nc = await nats.connect(url)
    count = 0

    async def on_msg(msg: Msg) -> None:
        nonlocal count
        count += 1
        await msg.respond(answer(count))

    await nc.subscribe(ASK_SUBJECT, cb=on_msg)
    await nc.flush()
    report(ready=True)
    await _until(asyncio.Event())
    report(count=count)
    await nc.close()


async def requester(url: str, n: int) -> None:
    """Make ``n`` requests, one after the other."""
    nc = await nats.connect(url)

    async def ask() -> int:
        return answered((await nc.request(ASK_SUBJECT, PAYLOAD, timeout=10)).data)

    await time_asks(ask, n)
    await nc.close()


async def pool_worker(url: str, cost: int) -> None:
    """Handle the pool's items until SIGTERM."""
    nc = await nats.connect(url)
    count = 0

    async def on_item(msg: Msg) -> None:
        nonlocal count
        count += 1
        await msg.respond(b"%d" % burn(cost))

    await nc.subscribe(POOL_SUBJECT, queue=POOL_QUEUE, cb=on_item)
    await nc.flush()
    report(ready=True)
    await _until(asyncio.Event())
    report(count=count)
    await nc.close()


async def pool_client(url: str, n: int, cost: int, window: int) -> None:
    """Send the pool ``n`` items, ``window`` at a time, and wait for every answer."""
    nc = await nats.connect(url)
    expected = b"%d" % burn(cost)
    inbox = nc.new_inbox()
    done = asyncio.Event()
    sent = count = 0
    wrong: list[bytes] = []

    async def on_answer(msg: Msg) -> None:
        nonlocal sent, count
        count += 1
        if msg.data != expected:
            wrong.append(msg.data)
        if sent < n:
            await nc.publish(POOL_SUBJECT, item(sent), reply=inbox)
            sent += 1
        if count == n:
            done.set()

    await nc.subscribe(inbox, cb=on_answer)
    await nc.flush()
    start = now()
    while sent < min(window, n):
        await nc.publish(POOL_SUBJECT, item(sent), reply=inbox)
        sent += 1
    await done.wait()
    end = now()
    if wrong:
        msg = (
            f"pool: {len(wrong)} wrong answers, like {wrong[0]!r} (expected {expected!r}); a worker is broken"
        )
        raise RuntimeError(msg)
    report(start=start, end=end, count=count)
    await nc.close()
