"""``GET /api/events``: the bus's ``troupe.**`` events, batched, to many clients that never slow the system.

A tap on the bus hands the `Hub` every event as it is emitted; every
``interval`` (100 ms) the hub encodes what came once, as one batch, and
offers it to each client. A client's queue is bounded: a client that does
not keep up loses whole batches and is told so (``event: lagged``) before
its next batch. Nothing here ever waits for a client.

Actors' lives (``troupe.spawned``, ``troupe.started``, ``troupe.stopped``:
three events per actor, a storm when actors are spawned by the thousand)
are not tapped one by one: the system counts them anyway, and each batch
ends with one ``troupe.lifecycle`` item saying how many actors were spawned
and stopped since the last one. A client that asks for them
(``?lifecycle=each``) gets them one by one as well; only while such a
client is connected does the bus hand them over.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import trio

from ..jobs import JobStoreError
from ..protocol import BusEvent
from ._encode import dumps, event_json

INTERVAL = 0.1  # seconds: at most one batch per interval
SUMMARY_INTERVAL = 0.5  # seconds: a batch with nothing but the lifecycle summary, at most once per this long
CLIENT_BATCHES = 50  # batches a client may be behind before it loses some
BATCH_EVENTS = 5000  # events in one batch; more in one interval are dropped (and reported)
MAX_CLIENTS = 100  # event streams at once; more are refused (503)
STORE_POLL = 1.0  # seconds between reads of a job store served alone (troupe jobs serve)
LIFECYCLE = frozenset({"troupe.spawned", "troupe.started", "troupe.stopped"})
"""The topics summarised as one ``troupe.lifecycle`` item per batch (and sent one by one only on request)."""
SUMMARY_TOPIC = "troupe.lifecycle"


log = logging.getLogger("troupe.web")


def _safe_json(event: BusEvent) -> dict[str, Any]:
    try:
        return event_json(event)
    except Exception:  # a value nothing could show: the event still counts
        log.exception("the dashboard could not encode an event on %s", event.topic)
        return {"topic": event.topic, "data": None}


class Client:
    """One event stream's queue of encoded batches, and what it lost."""

    def __init__(self, capacity: int, *, lifecycle: bool) -> None:
        self.lifecycle = lifecycle  # also every lifecycle event, one by one (``?lifecycle=each``)
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
    """Batches the tap's events and fans them out to the clients.

    ``counts`` (set for a system) returns the system's actors spawned so far
    and ended so far: each batch's ``troupe.lifecycle`` item is their change.
    ``lifecycle`` (set for a system) is called with the number of
    ``?lifecycle=each`` clients whenever it changes: while it is not 0 the
    bus hands the hub those events one by one.
    """

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
        self.counts: Callable[[], tuple[int, int]] | None = None
        self.lifecycle: Callable[[int], None] | None = None
        self.each = 0  # clients that asked for every lifecycle event
        self.mixed = False  # lifecycle events are pending (some clients must not get them)
        self.summary_interval = SUMMARY_INTERVAL
        self._last = (0, 0)  # (spawned, ended) at the last summary
        self._summary_at = -math.inf  # when it was made (time.monotonic)

    def count_lives(self, counts: Callable[[], tuple[int, int]] | None) -> None:
        """Sum up actors' lives from ``counts`` (spawned, ended) from now on; None: no more."""
        self.counts = counts
        if counts is not None:
            self._last = counts()

    def add(self, event: BusEvent) -> None:
        """An event from the bus: kept for the next batch (when someone listens)."""
        if not self.clients:
            return
        if len(self.pending) < self.batch_events:
            self.pending.append(event)
        else:
            self.dropped += 1

    def _summary(self, *, due: bool) -> dict[str, Any] | None:
        """This batch's ``troupe.lifecycle`` item: actors spawned and stopped since the last (or None).

        Unless ``due`` (a batch goes anyway), at most one per ``summary_interval``:
        a storm of spawns alone is two small batches a second, not ten.
        """
        if self.counts is None:
            return None
        now = time.monotonic()
        if not due and now - self._summary_at < self.summary_interval:
            return None
        spawned, ended = self.counts()
        last = self._last
        if last == (spawned, ended):
            return None
        self._last, self._summary_at = (spawned, ended), now
        data = {"spawned": spawned - last[0], "stopped": ended - last[1], "alive": spawned - ended}
        return {"topic": SUMMARY_TOPIC, "data": data}

    def flush(self, *, final: bool = False) -> None:
        """Encode what came since the last flush once (twice with ``lifecycle=each`` clients); offer it."""
        pending, dropped, mixed = self.pending, self.dropped, self.mixed
        self.pending, self.dropped, self.mixed = [], 0, False
        if not self.clients:
            self._summary(due=True)  # what happened while no one watched is no news to the next client
            return
        summary = self._summary(due=final or bool(pending) or bool(dropped))
        if not pending and not dropped and summary is None:
            return
        items = [_safe_json(e) for e in pending]
        if summary is not None:
            items.append(summary)
        every = dumps(items) if items else b""
        count = len(items)
        if mixed and len(self.clients) > self.each:  # the others get the batch without them
            kept = [item for item, e in zip(items, pending, strict=False) if e.topic not in LIFECYCLE]
            if summary is not None:
                kept.append(summary)
            some, some_count = (dumps(kept) if kept else b""), len(kept)
        else:
            some, some_count = every, count
        for client in list(self.clients):
            batch, events = (every, count) if client.lifecycle else (some, some_count)
            if batch:
                client.offer(batch, events, dropped)
            else:
                client.lost_events += dropped
                client.wake.set()

    def stop(self) -> None:
        """The system stopped (or the dashboard): every stream says ``stopped`` and ends."""
        self.stopped = True
        self.flush(final=True)
        for client in list(self.clients):
            client.wake.set()

    def open(self, *, lifecycle: bool = False) -> Client | None:
        """A new client, or None when ``max_clients`` streams are open already.

        With ``lifecycle``, it also gets every ``troupe.spawned``, ``troupe.started`` and ``troupe.stopped``.
        """
        if len(self.clients) >= self.max_clients:
            return None
        client = Client(self.client_batches, lifecycle=lifecycle)
        self.clients.add(client)
        if lifecycle:
            self.each += 1
            if self.lifecycle is not None:
                self.lifecycle(self.each)
        return client

    def close(self, client: Client) -> None:
        """The client's stream ended (it is safe to say so twice)."""
        if client not in self.clients:
            return
        self.clients.discard(client)
        if client.lifecycle:
            self.each -= 1
            if self.lifecycle is not None:
                self.lifecycle(self.each)

    async def stream(self, client: Client) -> AsyncIterator[dict[str, Any]]:
        """The client's SSE events: ``hello``, then ``batch`` (and ``lagged``), then ``stopped``."""
        try:
            hello = {
                "interval": self.interval,
                "queue": client.capacity,
                "batch_events": self.batch_events,
                "lifecycle": "each" if client.lifecycle else "summary",
            }
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
            self.close(client)


class Tap:
    """The bus's ``troupe.**`` events handed over as they are emitted: no stream, nothing buffered.

    A stream (``events.listen``) keeps every event for up to ``hub.interval``
    in its buffer: under a storm of events those objects outlive many young
    collections and make the collector scan the whole actor tree again and
    again. The tap counts the event and keeps at most a batch's worth.
    The bus calls ``tell_nowait`` (its way to deliver to a target); it never raises.

    The lifecycle topics are not handed over at all (``_skips``, which the
    bus reads once per topic): the system counts them, and the hub sums them
    up. `LifecycleTap` hands them over while a client asks for each one.
    """

    PATTERN = "troupe.**"
    _skips = LIFECYCLE

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


class LifecycleTap:
    """``troupe.spawned``, ``.started`` and ``.stopped`` one by one, for ``lifecycle=each`` clients."""

    PATTERNS = tuple(sorted(LIFECYCLE))

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def tell_nowait(self, event: BusEvent) -> None:
        """One lifecycle event from the bus, kept for the next batch."""
        self.hub.mixed = True
        self.hub.add(event)


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
