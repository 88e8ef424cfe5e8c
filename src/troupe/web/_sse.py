"""``GET /api/events``: the bus's ``troupe.**`` events, batched, to many clients that never slow the system.

One pump listens to the bus and hands the `Hub` every event; every
``interval`` (100 ms) the hub encodes what came once, as one batch, and
offers it to each client. A client's queue is bounded: a client that does
not keep up loses whole batches and is told so (``event: lagged``) before
its next batch. Nothing here ever waits for a client.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import trio

from ._encode import dumps, event_json

if TYPE_CHECKING:
    from ..protocol import BusEvent

INTERVAL = 0.1  # seconds: at most one batch per interval
CLIENT_BATCHES = 50  # batches a client may be behind before it loses some
BATCH_EVENTS = 5000  # events in one batch; more in one interval are dropped (and reported)
MAX_CLIENTS = 100  # event streams at once; more are refused (503)


class Client:
    """One event stream's queue of encoded batches, and what it lost."""

    def __init__(self, capacity: int) -> None:
        self.queue: deque[bytes] = deque()
        self.capacity = capacity
        self.lost_batches = 0
        self.lost_events = 0
        self.wake = trio.Event()

    def offer(self, batch: bytes, events: int, dropped: int) -> None:
        """Queue a batch of ``events`` events (``dropped`` more did not fit in it); or lose it if full."""
        self.lost_events += dropped
        if len(self.queue) >= self.capacity:
            self.lost_batches += 1
            self.lost_events += events
        else:
            self.queue.append(batch)
        self.wake.set()


class Hub:
    """Batches the pump's events and fans them out to the clients."""

    def __init__(self) -> None:
        self.clients: set[Client] = set()
        self.pending: list[BusEvent] = []
        self.dropped = 0
        self.stopped = False
        self.interval = INTERVAL
        self.client_batches = CLIENT_BATCHES
        self.batch_events = BATCH_EVENTS
        self.max_clients = MAX_CLIENTS

    def add(self, event: BusEvent) -> None:
        """An event from the bus: kept for the next batch (when someone listens)."""
        if not self.clients:
            return
        if len(self.pending) < self.batch_events:
            self.pending.append(event)
        else:
            self.dropped += 1

    def flush(self) -> None:
        """Encode what came since the last flush, once, and offer it to every client."""
        pending, dropped = self.pending, self.dropped
        if not pending and not dropped:
            return
        self.pending, self.dropped = [], 0
        if not self.clients:
            return
        batch = dumps([event_json(e) for e in pending]) if pending else b""
        for client in list(self.clients):
            if batch:
                client.offer(batch, len(pending), dropped)
            else:
                client.lost_events += dropped
                client.wake.set()

    def stop(self) -> None:
        """The system stopped (or the dashboard): every stream says ``stopped`` and ends."""
        self.stopped = True
        self.flush()
        for client in list(self.clients):
            client.wake.set()

    def open(self) -> Client | None:
        """A new client, or None when ``max_clients`` streams are open already."""
        if len(self.clients) >= self.max_clients:
            return None
        client = Client(self.client_batches)
        self.clients.add(client)
        return client

    async def stream(self, client: Client) -> AsyncIterator[dict[str, Any]]:
        """The client's SSE events: ``hello``, then ``batch`` (and ``lagged``), then ``stopped``."""
        try:
            hello = {"interval": self.interval, "queue": client.capacity, "batch_events": self.batch_events}
            yield {"event": "hello", "data": dumps(hello).decode()}
            while True:
                if client.lost_events or client.lost_batches:
                    lost = {"batches": client.lost_batches, "events": client.lost_events}
                    client.lost_batches = client.lost_events = 0
                    yield {"event": "lagged", "data": dumps(lost).decode()}
                elif client.queue:
                    yield {"event": "batch", "data": client.queue.popleft().decode()}
                elif self.stopped:
                    yield {"event": "stopped", "data": dumps({"reason": "the system stopped"}).decode()}
                    return
                else:
                    client.wake = trio.Event()
                    await client.wake.wait()
        finally:
            self.clients.discard(client)


async def pump(events: trio.MemoryReceiveChannel[BusEvent], hub: Hub, see: Any) -> None:
    """Feed the hub from the bus: at most one flush per ``hub.interval``; ``see(event)`` counts each one."""
    while True:
        event = await events.receive()
        see(event)
        hub.add(event)
        await trio.sleep(hub.interval)  # the bus's stream buffers meanwhile (it never blocks the system)
        while True:
            try:
                event = events.receive_nowait()
            except trio.WouldBlock:
                break
            see(event)
            hub.add(event)
        hub.flush()
