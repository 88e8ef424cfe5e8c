"""The event bus: dot-separated topics with ``*`` and ``**`` wildcards."""

from __future__ import annotations

import functools
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, final

import trio

from .._util import NoPublicConstructor
from ..protocol import BusEvent, DeadLetterReason
from ._actor import accepts_type, describe_accepts
from ._errors import MailboxFull, MessageTypeError

if TYPE_CHECKING:
    from ._ref import ActorRef


_CACHE_SIZE = 1024
"""Topics whose matching subscribers are remembered (the most recently added ones).

Runtimes publish on a few fixed topics; an application that publishes on a
topic per order or per user would otherwise grow the cache without bound
(100k topics: 14.8 MiB)."""


def _check_topic(topic: str, *, pattern: bool) -> tuple[str, ...]:
    if not isinstance(topic, str) or not topic:
        msg = f"a topic is a non-empty dot-separated str, got {topic!r}"
        raise ValueError(msg)
    parts = tuple(topic.split("."))
    for i, part in enumerate(parts):
        if not part:
            msg = f"topic {topic!r} has an empty segment; write it like 'orders.created'"
            raise ValueError(msg)
        if part in {"*", "**"}:
            if not pattern:
                msg = f"cannot publish on {topic!r}: wildcards are for listening only"
                raise ValueError(msg)
            if part == "**" and i != len(parts) - 1:
                msg = f"pattern {topic!r}: '**' may only be the last segment"
                raise ValueError(msg)
        elif "*" in part:
            msg = f"pattern {topic!r}: '*' must be a whole segment"
            raise ValueError(msg)
    return parts


def _matches(pattern: tuple[str, ...], topic: tuple[str, ...]) -> bool:
    if pattern and pattern[-1] == "**":
        head = pattern[:-1]
        if len(topic) <= len(head):
            return False
        topic = topic[: len(head)]
        pattern = head
    if len(pattern) != len(topic):
        return False
    return all(p in {"*", t} for p, t in zip(pattern, topic, strict=True))


@final
class EventBus(metaclass=NoPublicConstructor):
    """Publish/subscribe on dot-separated topics (``system.events``).

    ``a.*`` matches one more segment (``a.b``, not ``a.b.c``); ``a.**`` any
    depth below ``a``. Streams and subscribed actors receive
    [`BusEvent`][troupe.BusEvent]s. The runtime publishes ``troupe.spawned``,
    ``troupe.started``, ``troupe.stopped``, ``troupe.restarted`` and
    ``troupe.failed`` (data: the actor's path) and ``troupe.dead_letter``
    (data: the [`DeadLetter`][troupe.DeadLetter]).

    Example:
        ```python
        async with system.events.listen("orders.*") as events:
            await system.events.publish("orders.created", order)
            ev = await events.receive()
            assert ev.topic == "orders.created"
        ```
    """

    __slots__ = ("_cache", "_subs")

    def __init__(self) -> None:
        self._subs: list[tuple[tuple[str, ...], Any]] = []
        self._cache: dict[str, list[Any]] = {}

    async def publish(self, topic: str, data: object = None) -> None:
        """Send ``BusEvent(topic, data)`` to every matching listener and subscriber.

        Never waits for a listener: streams buffer, and subscribed actors are
        told with ``tell_nowait`` (a full mailbox's overflow policy applies;
        what it refuses is a dead letter).

        Raises:
            ValueError: ``topic`` is empty or holds wildcards.
        """
        _check_topic(topic, pattern=False)
        await trio.lowlevel.checkpoint()
        self._emit(topic, data)

    async def subscribe(self, topic: str, ref: ActorRef[Any]) -> None:
        """Deliver matching events to ``ref`` as [`BusEvent`][troupe.BusEvent] messages.

        The subscription ends when the actor terminates (it is not kept to
        dead-letter every later event); subscribing a stopped actor does
        nothing.

        Raises:
            MessageTypeError: ``ref``'s actor does not accept ``BusEvent``.
            ValueError: the pattern is malformed.
        """
        parts = _check_topic(topic, pattern=True)
        cell = ref._cell
        if not accepts_type(cell.accepts, BusEvent):
            raise MessageTypeError(cell.path, BusEvent(topic, None), describe_accepts(cell.accepts))
        await trio.lowlevel.checkpoint()
        if not ref.alive:  # a stopped actor gets nothing: subscribing it would only make dead letters
            return
        self._add(parts, ref)
        cell.subscribed = True

    async def unsubscribe(self, topic: str, ref: ActorRef[Any]) -> None:
        """Stop delivering ``topic`` to ``ref`` (a no-op if it was not subscribed)."""
        parts = _check_topic(topic, pattern=True)
        await trio.lowlevel.checkpoint()
        self._remove(parts, ref)

    def _add(self, parts: tuple[str, ...], target: Any) -> None:
        self._subs.append((parts, target))
        self._cache.clear()

    def _tap(self, topic: str, target: Any) -> Callable[[], None]:
        """Hand ``target.tell_nowait`` the events matching ``topic`` as they are emitted; return the undo.

        For troupe's own observers (the dashboard): nothing is buffered and
        nothing awaited. ``target._skips``, if it has one, names topics it
        never wants: the bus builds no event for them (`_targets`).
        """
        parts = _check_topic(topic, pattern=True)
        self._add(parts, target)
        return functools.partial(self._remove, parts, target)

    def _forget(self, cell: object) -> None:
        """Drop every subscription of the actor in ``cell`` (it has terminated)."""
        kept = [(p, t) for p, t in self._subs if getattr(t, "_cell", None) is not cell]
        if len(kept) != len(self._subs):
            self._subs = kept
            self._cache.clear()

    def _remove(self, parts: tuple[str, ...], target: object) -> None:
        for i, (p, t) in enumerate(self._subs):
            if p == parts and t is target:
                del self._subs[i]
                self._cache.clear()
                return

    @asynccontextmanager
    async def listen(self, topic: str) -> AsyncIterator[trio.MemoryReceiveChannel[BusEvent]]:
        """Stream the events matching ``topic`` while the block runs.

        Example:
            ```python
            async with system.events.listen("troupe.**") as events:
                async for ev in events:
                    print(ev.topic, ev.data)
            ```
        """
        parts = _check_topic(topic, pattern=True)
        send, receive = trio.open_memory_channel[BusEvent](math.inf)
        self._add(parts, send)
        try:
            yield receive
        finally:
            # Unregistered before the stream closes, with no checkpoint between:
            # an event emitted in between would find a broken stream.
            self._remove(parts, send)
            send.close()
            receive.close()
        await trio.lowlevel.checkpoint()

    def _targets(self, topic: str) -> list[Any]:
        cache = self._cache
        found = cache.get(topic)
        if found is None:
            parts = tuple(topic.split("."))
            # A target may name topics it never wants (``_skips``, see `_tap`): the
            # dashboard's tap skips the lifecycle storm, and no event is built for it.
            found = [t for p, t in self._subs if _matches(p, parts) and topic not in getattr(t, "_skips", ())]
            if len(cache) >= _CACHE_SIZE:  # bounded: forget the oldest topic
                del cache[next(iter(cache))]
            cache[topic] = found
        return found

    def _emit(self, topic: str, data: object) -> None:
        if not self._subs:
            return
        targets = self._targets(topic)
        if not targets:
            return
        event = BusEvent(topic, data)
        for target in list(targets):
            if isinstance(target, trio.MemorySendChannel):
                try:
                    target.send_nowait(event)
                except trio.BrokenResourceError:  # the listener closed its stream inside the block
                    self._subs = [(p, t) for p, t in self._subs if t is not target]
                    self._cache.clear()
            else:
                _deliver_event(target, event)


def _deliver_event(ref: ActorRef[Any], event: BusEvent) -> None:
    try:
        ref.tell_nowait(event)
    except MailboxFull:
        cell = ref._cell
        cell.system._dead_letters._add(cell.path, event, DeadLetterReason.DROPPED)
