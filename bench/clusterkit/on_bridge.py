"""The roles as trio programs using nats-py through [`Bridge`][clusterkit.bridge.Bridge].

The same roles as [`on_nats`][clusterkit.on_nats], message for message: a
subscription's handler counts (or answers) in trio's thread, a sender
queues ``BURST`` messages between checkpoints, requests go one after the
other from a trio task. No pool: the pool's ceiling on this machine is
raw nats-py's (see ``bench/cluster.py``).
"""

from __future__ import annotations

import signal

import trio

from .bridge import Bridge
from .common import (
    ASK_SUBJECT,
    BURST,
    PAYLOAD,
    TELL_SUBJECT,
    answer,
    answered,
    now,
    report,
    time_asks,
)


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
    async with Bridge.open(url) as bridge:
        done = trio.Event()
        count = 0
        end: float | None = None

        def on_msg(_subject: str, _reply: str, _data: bytes) -> None:
            nonlocal count, end
            count += 1
            if count == n:
                end = now()
                done.set()

        await bridge.subscribe(TELL_SUBJECT, on_msg)
        report(ready=True)
        await _until(done)
        report(end=end, count=count)


async def publisher(url: str, n: int) -> None:
    """Publish the tell stream from trio: ``n`` payloads."""
    async with Bridge.open(url) as bridge:
        start = now()
        for i in range(n):
            bridge.publish_nowait(TELL_SUBJECT, PAYLOAD)
            if i % BURST == BURST - 1:
                await trio.lowlevel.checkpoint()
        await bridge.flush()
        report(start=start, done=now(), count=n)


async def responder(url: str) -> None:
    """Answer requests until SIGTERM."""
    async with Bridge.open(url) as bridge:
        count = 0

        def on_msg(_subject: str, reply: str, _data: bytes) -> None:
            nonlocal count
            count += 1
            bridge.publish_nowait(reply, answer(count))

        await bridge.subscribe(ASK_SUBJECT, on_msg)
        report(ready=True)
        await _until(trio.Event())
        report(count=count)


async def requester(url: str, n: int) -> None:
    """Make ``n`` requests from trio, one after the other."""
    async with Bridge.open(url) as bridge:

        async def ask() -> int:
            return answered(await bridge.request(ASK_SUBJECT, PAYLOAD, timeout=10))

        await time_asks(ask, n)
