"""``GET /api/events``: the bus's ``troupe.**`` events, batched, to many clients that never slow the system.

A tap on the bus hands the `Hub` every event as it is emitted; every
``interval`` (100 ms) the hub encodes what came once, as one batch, and
offers it to each client. A client's queue is bounded: a client that does
not keep up loses whole batches and is told so (``event: lagged``) before
its next batch. Nothing here ever waits for a client.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import trio

from ..jobs import JobStoreError
from ..protocol import BusEvent
from ._encode import dumps, event_json

INTERVAL = 0.1  # seconds: at most one batch per interval
CLIENT_BATCHES = 50  # batches a client may be behind before it loses some
BATCH_EVENTS = 5000  # events in one batch; more in one interval are dropped (and reported)
MAX_CLIENTS = 100  # event streams at once; more are refused (503)
STORE_POLL = 1.0  # seconds between reads of a job store served alone (troupe jobs serve)


log = logging.getLogger("troupe.web")


def _safe_json(event: BusEvent) -> dict[str, Any]:
    try:
        return event_json(event)
    except Exception:  # a value nothing could show: the event still counts
        log.exception("the dashboard could not encode an event on %s", event.topic)
        return {"topic": event.topic, "data": None}


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
    """Batches the tap's events and fans them out to the clients."""

    def __init__(self) -> None:
        self.clients: set[Client] = set()
        self.pending: list[BusEvent] = []
        self.dropped = 0
        self.stopped = False
        self.interval = INTERVAL
        self.client_batches = CLIENT_BATCHES
        self.batch_events = BATCH_EVENTS
        self.max_clients = MAX_CLIENTS
        self.poll = STORE_POLL

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
        batch = dumps([_safe_json(e) for e in pending]) if pending else b""
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


class Tap:
    """The bus's ``troupe.**`` events handed over as they are emitted: no stream, nothing buffered.

    A stream (``events.listen``) keeps every event for up to ``hub.interval``
    in its buffer: under a storm of lifecycle events (spawn/stop churn) those
    objects outlive many young collections and make the collector scan the
    whole actor tree again and again (the dashboard cost spawn 45% of its
    rate). The tap counts the event and keeps at most a batch's worth.
    The bus calls ``tell_nowait`` (its way to deliver to a target); it never raises.
    """

    PATTERN = ("troupe", "**")

    def __init__(self, hub: Hub, see: Any) -> None:
        self.hub = hub
        self.see = see

    def tell_nowait(self, event: BusEvent) -> None:
        """One event from the bus, in the emitting task: counted, kept for the next batch."""
        try:
            self.see(event)
            self.hub.add(event)
        except Exception:  # a bug here must never reach the actor that emitted the event
            log.exception("the dashboard could not take an event on %s", event.topic)


async def flusher(hub: Hub) -> None:
    """Offer what the tap kept to the clients, once per ``hub.interval``."""
    while True:
        await trio.sleep(hub.interval)
        hub.flush()


async def poll_store(list_records: Any, hub: Hub) -> None:
    """For a store served alone: read it every ``hub.poll`` seconds while someone listens; changes are events.

    What the store holds at the start is not news. A job seen for the first time, or whose status changed, is
    ``troupe.job.<status>``; one whose progress changed is
    ``troupe.job.progress`` (the topics a running system publishes).
    """
    seen = {r.id: (r.status, r.progress, r.progress_message) for r in await list_records(None)}
    while True:
        await trio.sleep(hub.poll)
        if not hub.clients:
            continue
        try:
            records = await list_records(None)
        except JobStoreError as exc:  # the file went away or broke: said once per failure, tried again
            log.warning("the dashboard cannot read the job store: %s", exc)
            continue
        for record in reversed(records):  # oldest first
            was = seen.get(record.id)
            now = (record.status, record.progress, record.progress_message)
            if was != now:
                seen[record.id] = now
                topic = "progress" if was is not None and was[0] == record.status else record.status.value
                hub.add(BusEvent(f"troupe.job.{topic}", record))
        hub.flush()
