"""Kore's ``bind_request``: a task's channel streamed to one HTTP client (``GET /api/bound/{key}``).

`Dashboard.bind` binds the task's ``events()`` at once (so no write is
missed) under an unguessable key. The first GET on the key streams each
message the task writes (``event: message``), then ``event: end`` with the
outcome. A client that goes away ends the binding, not the task: the
dashboard goes on reading the channel and drops what it reads, so the task
never waits on a full channel, until the task ends.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from typing import Any

import trio

from ..tasks import ChannelClosed, ChannelEvent, TaskCancelled, TaskHandle
from ._encode import dumps, shorten, value_json


class Binding:
    """One bound task: its handle and its ``events()`` stream."""

    def __init__(self, handle: TaskHandle[Any]) -> None:
        self.handle = handle
        self.events: AsyncIterator[ChannelEvent] = handle.events()
        self.taken = False
        self.started = False


class Bindings:
    """The dashboard's bound tasks, by key."""

    def __init__(self) -> None:
        self.items: dict[str, Binding] = {}
        self.nursery: trio.Nursery | None = None  # where a binding whose client left is drained
        self.scopes: set[trio.CancelScope] = set()
        self.stopped = False

    def bind(self, handle: TaskHandle[Any]) -> str:
        """Bind ``handle``'s channel; return the URL path that streams it."""
        if not isinstance(handle, TaskHandle):
            msg = f"bind takes a TaskHandle (from run_task(..., channel=True)), got {handle!r}"
            raise TypeError(msg)
        binding = Binding(handle)  # raises TaskStateError: no channel, or bound already
        key = secrets.token_urlsafe(18)
        self.items[key] = binding
        return f"/api/bound/{key}"

    def take(self, key: str) -> Binding | None:
        """The binding under ``key`` for its one client, or None (unknown, or streamed already)."""
        binding = self.items.get(key)
        if binding is None or binding.taken:
            return None
        binding.taken = True
        return binding

    def release(self, key: str, binding: Binding) -> None:
        """After the response: a stream that never started (its client left at once) is drained."""
        if not binding.started and self.items.pop(key, None) is not None:
            self._drain_later(binding)

    def _drain_later(self, binding: Binding) -> None:
        if self.nursery is not None:
            with contextlib.suppress(RuntimeError):  # the system's nursery has closed: nothing to drain for
                self.nursery.start_soon(_drain, binding)

    def stop(self) -> None:
        """The dashboard stops: the open streams end (``event: stopped``)."""
        self.stopped = True
        for scope in list(self.scopes):
            scope.cancel()

    async def stream(self, key: str, binding: Binding) -> AsyncIterator[dict[str, Any]]:
        """``message`` per write, then ``end``; ``stopped`` if the dashboard stops first."""
        ended = False
        binding.started = True
        try:
            while True:
                event = None
                scope = trio.CancelScope()
                self.scopes.add(scope)
                if self.stopped:
                    scope.cancel()
                try:
                    with scope:
                        event = await anext(binding.events, None)
                finally:
                    self.scopes.discard(scope)
                if event is None and scope.cancelled_caught:
                    yield {"event": "stopped", "data": dumps({"reason": "the dashboard stopped"}).decode()}
                    return
                if event is None or event.finished:
                    ended = True
                    yield {"event": "end", "data": dumps(_outcome(binding.handle)).decode()}
                    return
                found, message = _read(binding.handle)
                if found:
                    yield {"event": "message", "data": dumps(value_json(message)).decode()}
        finally:
            self.items.pop(key, None)
            if not ended:
                self._drain_later(binding)


def _read(handle: TaskHandle[Any]) -> tuple[bool, object]:
    channel = handle.channel
    if channel is None:
        return False, None
    try:
        return True, channel.read_nowait()
    except (trio.WouldBlock, ChannelClosed):
        return False, None


async def _drain(binding: Binding) -> None:
    """The client left: read (and drop) the task's writes until it ends, so it never waits on the channel."""
    async for event in binding.events:
        if event.finished:
            return
        _read(binding.handle)


def _outcome(handle: TaskHandle[Any]) -> dict[str, Any]:
    rec = handle._record
    error = rec.error
    if error is None:
        return {"outcome": "succeeded", "error": None, "result": value_json(rec.result)}
    outcome = "cancelled" if isinstance(error, TaskCancelled) else "failed"
    return {"outcome": outcome, "error": shorten(f"{type(error).__name__}: {error}"), "result": None}
