"""``TestProbe``: an actor that records what it receives, for assertions."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, TypeVar, final, overload

import trio

from .._util import NoPublicConstructor
from ..actors import Actor, ActorRef, ActorSystem, current_system

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")


class _ProbeActor(Actor[Any]):
    def __init__(self, sink: trio.MemorySendChannel[object]) -> None:
        self._sink = sink

    async def receive(self, msg: object) -> None:
        self._sink.send_nowait(msg)


@final
class TestProbe(metaclass=NoPublicConstructor):
    """An actor whose inbox your test reads (the ``probe`` fixture).

    Hand ``probe.ref`` to the actors under test, then assert on what
    arrives. Works in virtual time under pytest-trio's ``autojump_clock``.

    Example:
        ```python
        async def test_worker_reports(system, probe):
            worker = await system.spawn(lambda: Worker(report_to=probe.ref))
            await worker.tell(Job(3))
            done = await probe.expect(Done)
            assert done.job == 3
            await probe.expect_no_message(0.1)
        ```
    """

    __test__ = False  # not a pytest test class

    def __init__(self, ref: ActorRef[Any], inbox: trio.MemoryReceiveChannel[object]) -> None:
        self._ref = ref
        self._inbox = inbox

    @classmethod
    async def create(cls, system: ActorSystem | None = None, *, name: str | None = None) -> TestProbe:
        """Spawn a probe in ``system`` (default: the current one)."""
        system = system or current_system()
        send, receive = trio.open_memory_channel[object](math.inf)
        ref = await system.spawn(lambda: _ProbeActor(send), name=name)
        probe: TestProbe = cls._create(ref, receive)
        return probe

    @property
    def ref(self) -> ActorRef[Any]:
        """The probe's ref: it accepts any message."""
        return self._ref

    @overload
    async def expect(self, expected: type[T], *, timeout: float = 1.0) -> T: ...
    @overload
    async def expect(self, expected: object, *, timeout: float = 1.0) -> Any: ...

    async def expect(self, expected: object, *, timeout: float = 1.0) -> Any:
        """Wait for the next message and check it.

        Args:
            expected: a class (the message must be an instance) or a value
                (the message must be equal to it), or a one-argument
                predicate returning bool.
            timeout: seconds to wait (virtual under ``autojump_clock``).

        Returns:
            The message.

        Raises:
            AssertionError: nothing arrived in time, or it did not match.
        """
        with trio.move_on_after(timeout):
            msg = await self._inbox.receive()
            if isinstance(expected, type):
                ok = isinstance(msg, expected)
            elif callable(expected) and not hasattr(type(expected), "__attrs_attrs__"):
                check: Callable[[object], object] = expected
                ok = bool(check(msg))
            else:
                ok = msg == expected
            if not ok:
                raise AssertionError(f"{self._ref.path} expected {_show(expected)}, got {msg!r}")
            return msg
        raise AssertionError(f"{self._ref.path} expected {_show(expected)} within {timeout} s, got nothing")

    async def expect_no_message(self, duration: float = 0.1) -> None:
        """Assert that nothing arrives for ``duration`` seconds.

        Raises:
            AssertionError: a message arrived.
        """
        with trio.move_on_after(duration):
            msg = await self._inbox.receive()
            raise AssertionError(f"{self._ref.path} expected no message for {duration} s, got {msg!r}")

    def received(self) -> list[object]:
        """Take every message that has arrived and not been expected yet."""
        out: list[object] = []
        while True:
            try:
                out.append(self._inbox.receive_nowait())
            except trio.WouldBlock:
                return out


def _show(expected: object) -> str:
    if isinstance(expected, type):
        return f"a {expected.__qualname__}"
    return repr(expected)
