from __future__ import annotations

import math
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing

import troupe

from kit import Boom, Counter, GetCount, Increment, Sleep


async def test_tell_then_ask(system: troupe.ActorSystem) -> None:
    counter = await system.spawn(lambda: Counter(start=1), name="counter")
    await counter.tell(Increment(2))
    counter.tell_nowait(Increment(3))
    assert await counter.ask(GetCount()) == 6
    assert counter.path == "/user/counter"
    assert counter.name == "counter"
    assert counter.alive


async def test_wrong_message_type_fails_at_the_sender_and_queues_nothing(system: troupe.ActorSystem) -> None:
    counter = await system.spawn(Counter)
    bad: Any = "increment please"
    with pytest.raises(troupe.MessageTypeError, match="accepts Increment") as info:
        await counter.tell(bad)
    assert isinstance(info.value, TypeError)
    with pytest.raises(troupe.MessageTypeError):
        counter.tell_nowait(bad)
    with pytest.raises(troupe.MessageTypeError):
        await counter.ask(bad)
    assert counter.statistics().queued == 0
    assert await counter.ask(GetCount()) == 0
    assert system.dead_letters.count == 0


async def test_refs_are_equal_hashable_and_found_by_path(system: troupe.ActorSystem) -> None:
    a = await system.spawn(Counter, name="a")
    assert system.lookup("/user/a") == a
    assert hash(system.lookup("/user/a")) == hash(a)
    assert {a, system.lookup("/user/a")} == {a}
    assert system.lookup("/user/missing") is None
    assert system.lookup("/user") is None
    assert system.lookup("user/a") is None
    assert repr(a) == "<ActorRef /user/a>"


async def test_ask_timeout_is_virtual(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    counter = await system.spawn(Counter)
    await counter.tell(Sleep(100))
    start = trio.current_time()
    with pytest.raises(troupe.AskTimeout) as info:
        await counter.ask(GetCount(), timeout=2.5)
    assert isinstance(info.value, TimeoutError)
    assert trio.current_time() - start == pytest.approx(2.5)
    assert "did not answer GetCount within 2.5 s" in str(info.value)


async def test_ask_timeouts_of_different_lengths_fire_in_order(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    counter = await system.spawn(Counter)
    await counter.tell(Sleep(100))
    fired: list[float] = []

    async def ask(timeout: float) -> None:
        with pytest.raises(troupe.AskTimeout):
            await counter.ask(GetCount(), timeout=timeout)
        fired.append(timeout)

    async with trio.open_nursery() as nursery:
        for t in (5.0, 1.0, 3.0):
            nursery.start_soon(ask, t)
    assert fired == [1.0, 3.0, 5.0]


async def test_ask_without_timeout_waits(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    counter = await system.spawn(Counter)
    await counter.tell(Sleep(1000))
    assert await counter.ask(GetCount(), timeout=None) == 0
    assert trio.current_time() >= 1000


@pytest.mark.parametrize("read_cancel_status", [True, False], ids=["fast-check", "trio-public-check"])
async def test_cancelled_ask_is_still_processed_and_its_answer_ignored(
    system: troupe.ActorSystem, monkeypatch: pytest.MonkeyPatch, read_cancel_status: bool
) -> None:
    # ask() reads trio's private cancel status when it can, and falls back to
    # trio.lowlevel.checkpoint_if_cancelled(): both must behave the same.
    monkeypatch.setattr(troupe.actors._ref, "_READ_CANCEL_STATUS", read_cancel_status)
    counter = await system.spawn(Counter)
    with trio.CancelScope() as scope:
        scope.cancel()
        await counter.ask(Increment())
    # cancelled before sending: nothing was sent
    assert await counter.ask(GetCount()) == 0
    await counter.tell(Sleep(0.01))
    with trio.move_on_after(0.001):
        await counter.ask(Increment(5))
    assert await counter.ask(GetCount()) == 5


async def test_receive_raising_during_ask_gives_actor_crashed_and_restarts(
    system: troupe.ActorSystem,
) -> None:
    counter = await system.spawn(lambda: Counter(start=7))
    await counter.tell(Increment())
    with pytest.raises(troupe.ActorCrashed) as info:
        await counter.ask(Boom("kaput"))
    assert isinstance(info.value.__cause__, ValueError)
    assert str(info.value.__cause__) == "kaput"
    assert info.value.path == counter.path
    # restarted: a fresh instance from the factory, same ref
    assert await counter.ask(GetCount()) == 7
    assert counter.alive
    assert system.statistics().restarts == 1


async def test_asking_a_stopped_actor_fails_at_once(system: troupe.ActorSystem) -> None:
    counter = await system.spawn(Counter)
    await counter.stop()
    assert not counter.alive
    with trio.fail_after(1):
        with pytest.raises(troupe.ActorStopped):
            await counter.ask(GetCount(), timeout=None)
    assert system.dead_letters.count == 1


async def test_an_ask_pending_when_the_actor_stops_fails_at_once(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    counter = await system.spawn(Counter)
    await counter.tell(Sleep(10))
    result: list[BaseException] = []

    async def asker() -> None:
        try:
            await counter.ask(GetCount(), timeout=None)
        except troupe.ActorStopped as exc:
            result.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(asker)
        await trio.testing.wait_all_tasks_blocked()
        await counter.stop()
    assert len(result) == 1
    assert trio.current_time() == pytest.approx(10)


async def test_telling_a_stopped_actor_is_a_dead_letter(system: troupe.ActorSystem) -> None:
    counter = await system.spawn(Counter)
    await counter.stop()
    await counter.tell(Increment())
    counter.tell_nowait(Increment())
    assert system.dead_letters.count == 2


async def test_stop_finishes_the_current_message_then_dead_letters_the_rest(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    counter = await system.spawn(Counter)
    await counter.tell(Sleep(5))
    await counter.tell(Increment())
    await counter.tell(Increment())
    await trio.testing.wait_all_tasks_blocked()
    async with system.dead_letters.listen() as letters:
        await counter.stop()
        assert trio.current_time() == pytest.approx(5)
        got = [letters.receive_nowait(), letters.receive_nowait()]
    assert [d.message for d in got] == [Increment(), Increment()]
    assert {d.reason for d in got} == {troupe.DeadLetterReason.STOPPED}
    assert all(d.recipient == counter.path for d in got)


async def test_join_waits_without_stopping(system: troupe.ActorSystem) -> None:
    counter = await system.spawn(Counter)
    joined = trio.Event()

    async def join() -> None:
        await counter.join()
        joined.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(join)
        await trio.testing.wait_all_tasks_blocked()
        assert not joined.is_set()
        assert counter.alive
        await counter.stop()
    assert joined.is_set()
    await counter.join()  # returns at once once dead


class SelfAsker(troupe.Actor[GetCount | Increment]):
    async def receive(self, msg: GetCount | Increment) -> object:
        if isinstance(msg, GetCount):
            try:
                await self.ref.ask(Increment())
            except RuntimeError as exc:
                return str(exc)
        else:
            try:
                await self.ref.stop()
            except RuntimeError as exc:
                return str(exc)
        return None


async def test_an_actor_cannot_ask_or_await_stop_on_itself(system: troupe.ActorSystem) -> None:
    ref = await system.spawn(SelfAsker)
    assert "asked itself" in await ref.ask(GetCount())
    assert "context.stop()" in await ref.ask(Increment())


async def test_order_is_kept_per_sender(system: troupe.ActorSystem) -> None:
    seen: list[tuple[int, int]] = []

    class Log(troupe.Actor[Any]):
        async def receive(self, msg: Any) -> None:
            seen.append(msg)

    log = await system.spawn(Log, mailbox=troupe.Mailbox(capacity=3))

    async def sender(k: int) -> None:
        for i in range(50):
            if i % 3:
                await log.tell((k, i))
            else:
                while True:
                    try:
                        log.tell_nowait((k, i))
                        break
                    except troupe.MailboxFull:
                        await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        for k in range(4):
            nursery.start_soon(sender, k)
    await log.stop()
    for k in range(4):
        assert [i for (s, i) in seen if s == k] == list(range(50))


async def test_statistics(system: troupe.ActorSystem) -> None:
    counter = await system.spawn(Counter, mailbox=troupe.Mailbox(capacity=4))
    stats = counter.statistics()
    assert (stats.path, stats.alive, stats.queued, stats.capacity, stats.children) == (
        counter.path,
        True,
        0,
        4,
        0,
    )
    assert math.isfinite(stats.capacity)


@troupe.message
class Echo:
    times: int


class SelfTeller(troupe.Actor[Echo | Increment]):
    def __init__(self, errors: list[BaseException]) -> None:
        self.errors = errors
        self.count = 0

    async def receive(self, msg: Echo | Increment) -> None:
        if isinstance(msg, Echo):
            for _ in range(msg.times):
                try:
                    await self.ref.tell(Increment())
                except troupe.MailboxFull as exc:
                    self.errors.append(exc)
        else:
            self.count += 1


async def test_issue_17_6_telling_yourself_into_a_full_mailbox_does_not_hang(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    errors: list[BaseException] = []
    ref = await system.spawn(lambda: SelfTeller(errors), mailbox=troupe.Mailbox(capacity=2))
    with trio.fail_after(5):
        await ref.tell(Echo(5))
        await trio.testing.wait_all_tasks_blocked()
    assert len(errors) == 3  # two fit, three are refused (Overflow.BLOCK)
    assert "mailbox of" in str(errors[0])


async def test_issue_17_6_telling_yourself_applies_the_overflow_policy(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    errors: list[BaseException] = []
    box = troupe.Mailbox(capacity=2, overflow=troupe.Overflow.DROP_NEW)
    ref = await system.spawn(lambda: SelfTeller(errors), mailbox=box)
    with trio.fail_after(5):
        await ref.tell(Echo(5))
        await trio.testing.wait_all_tasks_blocked()
    assert errors == []
    assert system.dead_letters.count == 3


async def test_issue_17_6_a_rendezvous_actor_telling_itself_does_not_hang(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    errors: list[BaseException] = []
    ref = await system.spawn(lambda: SelfTeller(errors), mailbox=troupe.Mailbox(capacity=0))
    with trio.fail_after(5):
        await ref.tell(Echo(1))
        await trio.testing.wait_all_tasks_blocked()
    assert len(errors) == 1


@pytest.mark.parametrize("timeout", [math.nan, -1.0, -math.inf])
async def test_issue_17_10_a_bad_ask_timeout_is_a_value_error_at_the_call(
    system: troupe.ActorSystem, timeout: float
) -> None:
    ref = await system.spawn(Counter)
    with pytest.raises(ValueError, match="ask timeout is a number of seconds >= 0 or None"):
        await ref.ask(GetCount(), timeout=timeout)
    assert await ref.ask(GetCount(), timeout=math.inf) == 0  # the system lives on
