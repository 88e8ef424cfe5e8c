from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import pytest
import trio
import trio.testing

import troupe

from kit import Counter, Increment


@pytest.mark.parametrize(
    ("pattern", "topic", "matches"),
    [
        ("a.b", "a.b", True),
        ("a.*", "a.b", True),
        ("a.*", "a.b.c", False),
        ("a.*", "a", False),
        ("a.**", "a.b", True),
        ("a.**", "a.b.c.d", True),
        ("a.**", "a", False),
        ("*.b", "x.b", True),
        ("**", "anything.at.all", True),
        ("a.*.c", "a.x.c", True),
        ("a.*.c", "a.x.d", False),
    ],
)
async def test_wildcards(system: troupe.ActorSystem, pattern: str, topic: str, matches: bool) -> None:
    async with system.events.listen(pattern) as events:
        await system.events.publish(topic, 1)
        got = events.statistics().current_buffer_used
    assert (got == 1) is matches


@pytest.mark.parametrize("bad", ["", "a..b", "a.b*", "a.**.c"])
async def test_bad_patterns(system: troupe.ActorSystem, bad: str) -> None:
    with pytest.raises(ValueError, match=r"topic|pattern"):
        async with system.events.listen(bad):
            pass


async def test_publishing_on_a_wildcard_is_refused(system: troupe.ActorSystem) -> None:
    with pytest.raises(ValueError, match="wildcards"):
        await system.events.publish("a.*", None)


async def test_publish_never_waits_for_a_listener(system: troupe.ActorSystem) -> None:
    async with system.events.listen("orders.*") as events:
        with trio.fail_after(1):
            for i in range(1000):
                await system.events.publish("orders.created", i)
        assert [events.receive_nowait().data for _ in range(3)] == [0, 1, 2]


class Subscriber(troupe.Actor[troupe.BusEvent]):
    def __init__(self, probe: troupe.ActorRef[Any]) -> None:
        self.probe = probe

    async def receive(self, msg: troupe.BusEvent) -> None:
        self.probe.tell_nowait(msg)


async def test_subscribed_refs_receive_bus_events(
    system: troupe.ActorSystem, probe: troupe.TestProbe
) -> None:
    sub = await system.spawn(lambda: Subscriber(probe.ref))
    await system.events.subscribe("jobs.*", sub)
    await system.events.publish("jobs.done", {"id": 3})
    assert await probe.expect(troupe.BusEvent("jobs.done", {"id": 3}))
    await system.events.unsubscribe("jobs.*", sub)
    await system.events.publish("jobs.done", {"id": 4})
    await probe.expect_no_message(0.1)


async def test_subscribing_a_ref_that_cannot_take_bus_events_fails(system: troupe.ActorSystem) -> None:
    counter = await system.spawn(Counter)
    with pytest.raises(troupe.MessageTypeError, match="BusEvent"):
        await system.events.subscribe("x", counter)


async def test_a_full_subscriber_gets_dead_letters_not_a_hang(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    class Slow(troupe.Actor[troupe.BusEvent]):
        async def receive(self, msg: troupe.BusEvent) -> None:
            await trio.sleep_forever()

    slow = await system.spawn(Slow, mailbox=troupe.Mailbox(capacity=1))
    await system.events.subscribe("x", slow)
    for i in range(4):
        await system.events.publish("x", i)
    assert system.dead_letters.count >= 2


async def test_lifecycle_events(system: troupe.ActorSystem) -> None:
    async with system.events.listen("troupe.*") as events:
        ref = await system.spawn(Counter, name="life")
        await ref.stop()
        seen = [(e.topic, e.data) for e in [events.receive_nowait() for _ in range(3)]]
    assert seen == [
        ("troupe.spawned", "/user/life"),
        ("troupe.started", "/user/life"),
        ("troupe.stopped", "/user/life"),
    ]


async def test_dead_letters_are_counted_and_published(system: troupe.ActorSystem) -> None:
    ref = await system.spawn(Counter, name="gone")
    await ref.stop()
    async with system.events.listen("troupe.dead_letter") as events:
        await ref.tell(Increment())
        letter = events.receive_nowait().data
    assert letter.recipient == "/user/gone"
    assert letter.reason is troupe.DeadLetterReason.STOPPED
    assert system.dead_letters.count == 1


async def test_listeners_that_come_and_go_never_break_a_publisher(system: troupe.ActorSystem) -> None:
    # A stream closed while still registered used to raise BrokenResourceError
    # in whoever emitted next: an actor's failure, the runtime itself.
    async def publisher() -> None:
        for i in range(200):
            await system.events.publish("load.tick", i)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(publisher)
        for _ in range(100):
            async with system.events.listen("load.*") as events:
                await trio.lowlevel.checkpoint()
            del events
    async with system.events.listen("load.*") as events:
        await events.aclose()  # closed by its owner inside the block
        await system.events.publish("load.tick", -1)  # dropped for it, no error
    async with system.events.listen("load.*") as events:
        await system.events.publish("load.tick", 1)
        assert (await events.receive()).data == 1


class Sink(troupe.Actor[troupe.BusEvent]):
    async def receive(self, msg: troupe.BusEvent) -> None:
        return None


async def test_issue_17_16_publishing_on_ever_new_topics_does_not_grow_memory(
    system: troupe.ActorSystem,
) -> None:
    ref = await system.spawn(Sink)
    await system.events.subscribe("orders.**", ref)

    async def publish(start: int, count: int) -> None:
        for i in range(start, start + count):
            await system.events.publish(f"orders.{i}", None)
        await trio.testing.wait_all_tasks_blocked()

    await publish(0, 5000)  # past the cache's bound
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        await publish(5000, 20_000)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 1024 * 1024  # 20k new topics: unbounded, the cache grew about 3 MB
    assert system.dead_letters.count == 0


async def test_issue_17_17_stopped_subscribers_are_unsubscribed(system: troupe.ActorSystem) -> None:
    refs = [await system.spawn(Sink) for _ in range(50)]
    for ref in refs:
        await system.events.subscribe("app.*", ref)
    for ref in refs:
        await ref.stop()
    for i in range(20):
        await system.events.publish("app.tick", i)
    assert system.dead_letters.count == 0
    await system.events.subscribe("app.*", refs[0])  # subscribing a stopped actor does nothing
    await system.events.publish("app.tick", 20)
    assert system.dead_letters.count == 0


async def test_issue_18_a_subscription_survives_a_restart_and_ends_with_the_actor(
    system: troupe.ActorSystem,
) -> None:
    got: list[object] = []

    class Listener(troupe.Actor[troupe.BusEvent]):
        async def receive(self, msg: troupe.BusEvent) -> None:
            if msg.data == "boom":
                raise RuntimeError("boom")
            got.append(msg.data)

    ref = await system.spawn(Listener)
    await system.events.subscribe("app.*", ref)
    await system.events.publish("app.x", 1)
    await system.events.publish("app.x", "boom")  # fails: restarted, same ref
    await system.events.publish("app.x", 2)
    await trio.testing.wait_all_tasks_blocked()
    assert got == [1, 2]
    assert system.statistics().restarts == 1
    await ref.stop()
    before = system.dead_letters.count
    await system.events.publish("app.x", 3)  # nobody subscribed any more: not a dead letter
    assert system.dead_letters.count == before
