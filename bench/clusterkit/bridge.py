"""nats-py driven from trio: the official asyncio client on an event loop in a thread of its own.

The issue's first way to give troupe NATS ("nats-py through a bridge"),
built as well as an hour allows, so the benchmark can say what a bridge
costs against raw nats-py. Every hand-off between the two threads is
batched:

- trio -> asyncio: [`publish_nowait()`][clusterkit.bridge.Bridge.publish_nowait]
  appends to a deque and wakes the asyncio side only if it is not already
  due to run (one ``loop.call_soon_threadsafe`` per batch); a pump task
  there publishes everything queued, then nats-py's flusher writes it in
  one go.
- asyncio -> trio: a subscription's nats-py callback appends to another
  deque and wakes trio only if a delivery is not already due (one
  ``TrioToken.run_sync_soon`` per batch); the delivery runs every queued
  handler, synchronously, in trio's thread.
- requests use one wildcard inbox subscription, made at connection; a
  reply reschedules the waiting trio task directly (no asyncio future, no
  task per request).

The "due" flags are plain attributes shared by the two threads. Under the
GIL that is enough: each side clears its flag before draining, so a
producer that saw the flag set appended before the drain began.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import nats
import outcome
import trio
from nats.aio.client import Client
from nats.aio.msg import Msg

T = TypeVar("T")

Handler = Callable[[str, str, bytes], None]
"""A subscription's handler, called in trio's thread with (subject, reply, data); it must not block."""

_NO_RESPONDERS = "503"


class BridgeError(RuntimeError):
    """The bridge could not do what was asked; the message says what and why."""


@dataclass(frozen=True)
class _Flush:
    """An outbox entry: flush nats-py once everything queued before it is published, then set ``done``."""

    done: trio.Event


class Bridge:
    """A nats-py connection on an asyncio loop in its own thread, used from trio.

    Open one with [`Bridge.open()`][clusterkit.bridge.Bridge.open]; every
    method is called from the trio thread that opened it.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, token: trio.lowlevel.TrioToken) -> None:
        self._loop = loop
        self._token = token
        self._nc: Client | None = None
        self._outbox: deque[tuple[str, bytes, str] | _Flush] = deque()
        self._pump_due = False
        self._wake: asyncio.Event | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._inbox: deque[tuple[Handler, str, str, bytes]] = deque()
        self._delivery_due = False
        self._reply_prefix = ""
        self._waiters: dict[str, trio.lowlevel.Task] = {}
        self._next_token = 0
        self._failures: list[BaseException] = []

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str) -> AsyncIterator[Bridge]:
        """Connect to the NATS server at ``url``; leaving the block closes the connection and the thread."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="nats-asyncio", daemon=True)
        thread.start()
        bridge = cls(loop, trio.lowlevel.current_trio_token())
        try:
            await bridge._call(bridge._start(url))
            yield bridge
            bridge.check()
        finally:
            with trio.CancelScope(shield=True):
                await bridge._call(bridge._stop())
                loop.call_soon_threadsafe(loop.stop)
                await trio.to_thread.run_sync(thread.join)
                loop.close()

    # -- trio's side --------------------------------------------------------------------------

    def publish_nowait(self, subject: str, payload: bytes, reply: str = "") -> None:
        """Queue a message for publication; it goes out in the next batch, in order."""
        self._outbox.append((subject, payload, reply))
        if not self._pump_due:
            self._pump_due = True
            self._loop.call_soon_threadsafe(self._wake_pump)

    async def flush(self) -> None:
        """Wait until everything queued so far is published and the server has it (a PING/PONG)."""
        done = trio.Event()
        self._outbox.append(_Flush(done))
        if not self._pump_due:
            self._pump_due = True
            self._loop.call_soon_threadsafe(self._wake_pump)
        await done.wait()
        self.check()

    async def subscribe(self, subject: str, handler: Handler, queue: str = "") -> None:
        """Call ``handler`` in trio for every message on ``subject``; the server knows of it on return.

        Args:
            subject: a NATS subject, wildcards allowed.
            handler: called with (subject, reply, data) for each message, in
                arrival order, in trio's thread; it must not block or raise.
            queue: a queue group: each message goes to one of its members.
        """
        await self._call(self._subscribe(subject, handler, queue))

    async def request(self, subject: str, payload: bytes, timeout: float) -> bytes:
        """Publish ``payload`` to ``subject`` and wait for the first reply's data.

        Raises:
            BridgeError: no answer within ``timeout`` seconds, or no responder
                on ``subject``.
        """
        self._next_token += 1
        token = str(self._next_token)
        self._waiters[token] = trio.lowlevel.current_task()
        self.publish_nowait(subject, payload, f"{self._reply_prefix}.{token}")

        def abort(_: Any) -> trio.lowlevel.Abort:
            self._waiters.pop(token, None)
            return trio.lowlevel.Abort.SUCCEEDED

        try:
            with trio.fail_after(timeout):
                data: bytes = await trio.lowlevel.wait_task_rescheduled(abort)
        except trio.TooSlowError:
            msg = f"no answer on {subject!r} within {timeout} s; is its responder still running?"
            raise BridgeError(msg) from None
        return data

    def check(self) -> None:
        """Raise what went wrong on either side since the last check, if anything did."""
        if self._failures:
            first, *_ = self._failures
            self._failures.clear()
            msg = f"the NATS bridge failed: {first!r}"
            raise BridgeError(msg) from first

    async def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the asyncio loop and wait for its result in trio."""
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        done = trio.Event()
        future.add_done_callback(lambda _: self._token.run_sync_soon(done.set))
        try:
            await done.wait()
        except trio.Cancelled:
            future.cancel()
            raise
        return future.result()

    def _deliver(self) -> None:
        """In trio (run_sync_soon): run the handler of everything that arrived."""
        self._delivery_due = False
        inbox = self._inbox
        while inbox:
            handler, subject, reply, data = inbox.popleft()
            try:
                handler(subject, reply, data)
            except Exception as exc:  # noqa: BLE001 - kept for check(); a raise here would end trio's run
                self._failures.append(exc)

    def _on_reply(self, subject: str, _reply: str, data: bytes) -> None:
        task = self._waiters.pop(subject[len(self._reply_prefix) + 1 :], None)
        if task is not None:  # else the asker gave up
            trio.lowlevel.reschedule(task, outcome.Value(data))

    def _on_no_responder(self, subject: str, _reply: str, _data: bytes) -> None:
        task = self._waiters.pop(subject[len(self._reply_prefix) + 1 :], None)
        if task is not None:
            error = BridgeError("no responder on the subject asked: start one before asking")
            trio.lowlevel.reschedule(task, outcome.Error(error))

    # -- asyncio's side -----------------------------------------------------------------------

    async def _start(self, url: str) -> None:
        self._nc = await nats.connect(url)
        self._wake = asyncio.Event()
        self._pump_task = asyncio.get_running_loop().create_task(self._pump())
        self._reply_prefix = self._nc.new_inbox()
        await self._nc.subscribe(f"{self._reply_prefix}.*", cb=self._forwarder(self._on_reply, replies=True))
        await self._nc.flush()

    async def _stop(self) -> None:
        if self._pump_task is not None:
            self._pump_task.cancel()
        if self._nc is not None:
            await self._nc.close()

    async def _subscribe(self, subject: str, handler: Handler, queue: str) -> None:
        assert self._nc is not None
        await self._nc.subscribe(subject, queue=queue, cb=self._forwarder(handler))
        await self._nc.flush()

    def _wake_pump(self) -> None:
        assert self._wake is not None
        self._wake.set()

    async def _pump(self) -> None:
        """Publish what trio queued, a batch per wake-up."""
        assert self._nc is not None
        assert self._wake is not None
        nc, outbox, wake = self._nc, self._outbox, self._wake
        while True:
            await wake.wait()
            wake.clear()
            self._pump_due = False  # before draining: see the module's docstring
            while outbox:
                entry = outbox.popleft()
                try:
                    if isinstance(entry, _Flush):
                        await nc.flush()
                        self._token.run_sync_soon(entry.done.set)
                    else:
                        await nc.publish(*entry)
                except Exception as exc:  # noqa: BLE001 - reported to trio by check()
                    self._failures.append(exc)
                    if isinstance(entry, _Flush):
                        self._token.run_sync_soon(entry.done.set)

    def _forwarder(
        self, handler: Handler, *, replies: bool = False
    ) -> Callable[[Msg], Coroutine[Any, Any, None]]:
        """A nats-py callback that hands each message to ``handler`` in trio, batched."""
        inbox = self._inbox

        async def forward(msg: Msg) -> None:
            if replies and msg.headers and msg.headers.get("Status") == _NO_RESPONDERS:
                inbox.append((self._on_no_responder, msg.subject, msg.reply, msg.data))
            else:
                inbox.append((handler, msg.subject, msg.reply, msg.data))
            if not self._delivery_due:
                self._delivery_due = True
                self._token.run_sync_soon(self._deliver)

        return forward
