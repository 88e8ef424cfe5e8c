from __future__ import annotations

import pytest
import trio
import trio.testing

import troupe

from kit import Counter, CounterMsg, GetCount, Increment, Sleep


async def test_mailbox_setting_is_immutable_and_validated() -> None:
    box = troupe.Mailbox(capacity=2, overflow=troupe.Overflow.DROP_OLD)
    assert box == troupe.Mailbox(2, troupe.Overflow.DROP_OLD)
    with pytest.raises(ValueError, match="capacity"):
        troupe.Mailbox(capacity=-1)
    with pytest.raises(TypeError):
        troupe.Mailbox(overflow="drop")  # type: ignore[arg-type]


async def test_one_mailbox_object_serves_many_spawns(system: troupe.ActorSystem) -> None:
    box = troupe.Mailbox(capacity=1)
    a = await system.spawn(Counter, mailbox=box)
    b = await system.spawn(Counter, mailbox=box)
    assert a.statistics().capacity == b.statistics().capacity == 1


async def busy(system: troupe.ActorSystem, box: troupe.Mailbox) -> troupe.ActorRef[CounterMsg]:
    ref = await system.spawn(Counter, mailbox=box)
    await ref.tell(Sleep(10))
    await trio.testing.wait_all_tasks_blocked()  # it is now handling Sleep
    return ref


async def test_await_tell_waits_for_room(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    ref = await busy(system, troupe.Mailbox(capacity=2))
    await ref.tell(Increment())
    await ref.tell(Increment())
    assert ref.statistics().queued == 2
    await ref.tell(Increment())  # waits until the Sleep is done
    assert trio.current_time() == pytest.approx(10)
    assert await ref.ask(GetCount(), timeout=None) == 3


async def test_block_policy_raises_mailbox_full(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    ref = await busy(system, troupe.Mailbox(capacity=1))
    ref.tell_nowait(Increment())
    with pytest.raises(troupe.MailboxFull, match="is full") as info:
        ref.tell_nowait(Increment(5))
    assert info.value.capacity == 1
    assert await ref.ask(GetCount(), timeout=None) == 1
    assert system.dead_letters.count == 0


async def test_drop_new_dead_letters_the_new_message(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    ref = await busy(system, troupe.Mailbox(capacity=1, overflow=troupe.Overflow.DROP_NEW))
    async with system.dead_letters.listen() as letters:
        ref.tell_nowait(Increment(1))
        ref.tell_nowait(Increment(2))
        letter = letters.receive_nowait()
    assert letter.message == Increment(2)
    assert letter.reason is troupe.DeadLetterReason.DROPPED
    assert await ref.ask(GetCount(), timeout=None) == 1


async def test_drop_old_dead_letters_the_oldest_and_fails_a_dropped_ask(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    ref = await busy(system, troupe.Mailbox(capacity=1, overflow=troupe.Overflow.DROP_OLD))
    failures: list[BaseException] = []

    async def asker() -> None:
        try:
            await ref.ask(GetCount(), timeout=None)
        except troupe.MailboxFull as exc:
            failures.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(asker)
        await trio.testing.wait_all_tasks_blocked()
        async with system.dead_letters.listen() as letters:
            ref.tell_nowait(Increment(4))  # drops the queued ask
            assert letters.receive_nowait().message == GetCount()
            ref.tell_nowait(Increment(5))  # drops Increment(4)
            assert letters.receive_nowait().message == Increment(4)
    assert len(failures) == 1
    assert await ref.ask(GetCount(), timeout=None) == 5


async def test_capacity_zero_is_a_rendezvous(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    ref = await busy(system, troupe.Mailbox(capacity=0))
    with pytest.raises(troupe.MailboxFull):
        ref.tell_nowait(Increment())  # busy: nobody is waiting to take it
    await ref.tell(Increment())  # returns once the actor took it, after the Sleep
    assert trio.current_time() == pytest.approx(10)
    assert await ref.ask(GetCount(), timeout=None) == 1


async def test_issue_17_12_tell_nowait_hands_over_to_an_idle_rendezvous_actor(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    ref = await system.spawn(Counter, mailbox=troupe.Mailbox(capacity=0))
    await trio.testing.wait_all_tasks_blocked()
    ref.tell_nowait(Increment(2))  # the actor waits for a message: it takes this one (as trio's channel)
    with pytest.raises(troupe.MailboxFull):
        ref.tell_nowait(Increment(3))  # it has not taken the first yet: no room for a second
    await ref.tell(Sleep(5))
    with pytest.raises(troupe.MailboxFull):
        ref.tell_nowait(Increment(3))  # busy: nobody waits
    assert await ref.ask(GetCount(), timeout=None) == 2
    assert system.dead_letters.count == 0


async def test_issue_17_12_a_rendezvous_actor_subscribed_to_the_bus_gets_events(
    system: troupe.ActorSystem,
) -> None:
    got: list[troupe.BusEvent] = []

    class Listener(troupe.Actor[troupe.BusEvent]):
        async def receive(self, msg: troupe.BusEvent) -> None:
            got.append(msg)

    ref = await system.spawn(Listener, mailbox=troupe.Mailbox(capacity=0))
    await system.events.subscribe("app.*", ref)
    for i in range(3):
        await trio.testing.wait_all_tasks_blocked()
        await system.events.publish("app.tick", i)
    await trio.testing.wait_all_tasks_blocked()
    assert [ev.data for ev in got] == [0, 1, 2]


async def test_ask_waits_for_room_within_its_timeout(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    ref = await busy(system, troupe.Mailbox(capacity=1))
    await ref.tell(Increment())
    with pytest.raises(troupe.AskTimeout):
        await ref.ask(GetCount(), timeout=3)
    assert trio.current_time() == pytest.approx(3)
    assert ref.statistics().blocked_senders == 0
    assert await ref.ask(GetCount(), timeout=None) == 1


async def test_a_cancelled_blocked_tell_sends_nothing(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    ref = await busy(system, troupe.Mailbox(capacity=1))
    await ref.tell(Increment())
    with trio.move_on_after(1):
        await ref.tell(Increment(100))
    assert ref.statistics().blocked_senders == 0
    assert await ref.ask(GetCount(), timeout=None) == 1


async def test_blocked_senders_are_dead_lettered_when_the_actor_stops(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    ref = await busy(system, troupe.Mailbox(capacity=0))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ref.tell, Increment())
        await trio.testing.wait_all_tasks_blocked()
        assert ref.statistics().blocked_senders == 1
        async with system.dead_letters.listen() as letters:
            await ref.stop()
            assert letters.receive_nowait().message == Increment()


async def test_system_messages_ignore_capacity(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    got: list[object] = []

    class Watcher(troupe.Actor[troupe.Terminated | Sleep]):
        async def receive(self, msg: troupe.Terminated | Sleep) -> None:
            if isinstance(msg, Sleep):
                await trio.sleep(msg.seconds)
            got.append(msg)

    watcher = await system.spawn(Watcher, mailbox=troupe.Mailbox(capacity=1))
    target = await system.spawn(Counter)
    watcher._cell.get_context().watch(target)
    await watcher.tell(Sleep(5))
    await trio.testing.wait_all_tasks_blocked()
    await watcher.tell(Sleep(0))
    await target.stop()  # Terminated goes in although the mailbox is full
    assert watcher.statistics().queued == 2
    await trio.sleep(6)
    assert isinstance(got[-1], troupe.Terminated)
