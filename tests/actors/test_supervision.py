from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing

import troupe

from kit import Boom, Counter, CounterMsg, GetCount, Increment, Note, Reporter, Sleep, notes


class Parent(troupe.Actor[Any]):
    """Spawns the given children in on_start, under the given strategy."""

    def __init__(
        self,
        strategy: troupe.SupervisorStrategy,
        children: list[tuple[str, Callable[[], troupe.Actor[Any]], troupe.Restart]],
        probe: troupe.ActorRef[Any] | None = None,
    ) -> None:
        self.supervisor = strategy
        self.children_spec = children
        self.probe = probe

    async def on_start(self) -> None:
        for name, factory, restart in self.children_spec:
            await self.context.spawn(factory, name=name, restart=restart)
        if self.probe is not None:
            self.probe.tell_nowait(Note(self.ref.name, "start"))

    async def receive(self, msg: Any) -> Any:
        return [c.name for c in self.context.children]


def reporters(
    probe: troupe.TestProbe, *names: str, restart: troupe.Restart = troupe.Restart.PERMANENT
) -> list[Any]:
    return [(n, (lambda n=n: Reporter(probe.ref, n)), restart) for n in names]


async def child(
    system: troupe.ActorSystem, parent: troupe.ActorRef[Any], name: str
) -> troupe.ActorRef[CounterMsg]:
    ref = system.lookup(f"{parent.path}/{name}")
    assert ref is not None
    return ref


async def test_one_for_one_restarts_only_the_failed_child(
    system: troupe.ActorSystem, probe: troupe.TestProbe
) -> None:
    parent = await system.spawn(lambda: Parent(troupe.OneForOne(), reporters(probe, "a", "b", "c")), name="p")
    a, b = await child(system, parent, "a"), await child(system, parent, "b")
    await a.tell(Increment(5))
    probe.received()
    with pytest.raises(troupe.ActorCrashed):
        await b.ask(Boom())
    await probe.expect(Note("b", "stop"))
    await probe.expect(Note("b", "start"))
    await probe.expect_no_message()
    assert await a.ask(GetCount()) == 5  # untouched


async def test_one_for_all_stops_in_reverse_and_restarts_in_order(
    system: troupe.ActorSystem, probe: troupe.TestProbe
) -> None:
    parent = await system.spawn(lambda: Parent(troupe.OneForAll(), reporters(probe, "a", "b", "c")), name="p")
    a, b = await child(system, parent, "a"), await child(system, parent, "b")
    await a.tell(Increment(5))
    probe.received()
    with pytest.raises(troupe.ActorCrashed):
        await b.ask(Boom())
    for who, what in [
        ("b", "stop"),
        ("c", "stop"),
        ("a", "stop"),
        ("a", "start"),
        ("b", "start"),
        ("c", "start"),
    ]:
        await probe.expect(Note(who, what))
    assert await a.ask(GetCount()) == 0  # a fresh instance
    assert await parent.ask("children?") == ["a", "b", "c"]


async def test_rest_for_one_restarts_the_failed_child_and_later_siblings(
    system: troupe.ActorSystem, probe: troupe.TestProbe
) -> None:
    parent = await system.spawn(
        lambda: Parent(troupe.RestForOne(), reporters(probe, "a", "b", "c")), name="p"
    )
    a, b = await child(system, parent, "a"), await child(system, parent, "b")
    await a.tell(Increment(5))
    probe.received()
    with pytest.raises(troupe.ActorCrashed):
        await b.ask(Boom())
    for who, what in [("b", "stop"), ("c", "stop"), ("b", "start"), ("c", "start")]:
        await probe.expect(Note(who, what))
    await probe.expect_no_message()
    assert await a.ask(GetCount()) == 5


async def test_one_for_all_drops_temporary_siblings(
    system: troupe.ActorSystem, probe: troupe.TestProbe
) -> None:
    kids = reporters(probe, "a") + reporters(probe, "t", restart=troupe.Restart.TEMPORARY)
    parent = await system.spawn(lambda: Parent(troupe.OneForAll(), kids), name="p")
    a = await child(system, parent, "a")
    with pytest.raises(troupe.ActorCrashed):
        await a.ask(Boom())
    await a.ask(GetCount())
    assert await parent.ask("children?") == ["a"]


class Quitter(troupe.Actor[Increment | GetCount | Boom]):
    """Stops itself normally on Increment; Boom fails it."""

    async def receive(self, msg: Increment | GetCount | Boom) -> int | None:
        match msg:
            case Increment():
                self.context.stop()
            case Boom():
                raise ValueError("boom")
        return 0


@pytest.mark.parametrize(
    ("restart", "after_failure", "after_normal_exit"),
    [
        (troupe.Restart.PERMANENT, True, True),
        (troupe.Restart.TRANSIENT, True, False),
        (troupe.Restart.TEMPORARY, False, False),
    ],
)
async def test_restart_types(
    system: troupe.ActorSystem, restart: troupe.Restart, after_failure: bool, after_normal_exit: bool
) -> None:
    failing = await system.spawn(Quitter, restart=restart)
    with pytest.raises(troupe.ActorCrashed):
        await failing.ask(Boom())
    await trio.testing.wait_all_tasks_blocked()
    assert failing.alive is after_failure

    quitting = await system.spawn(Quitter, restart=restart)
    await quitting.tell(Increment())
    await trio.testing.wait_all_tasks_blocked()
    assert quitting.alive is after_normal_exit


async def test_a_stop_from_outside_is_final_for_permanent_actors(system: troupe.ActorSystem) -> None:
    ref = await system.spawn(Counter, restart=troupe.Restart.PERMANENT)
    await ref.stop()
    await trio.testing.wait_all_tasks_blocked()
    assert not ref.alive
    assert system.statistics().restarts == 0


async def test_restart_keeps_ref_name_and_queued_messages_and_dead_letters_the_failing_one(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    ref = await system.spawn(lambda: Counter(start=10), name="keep")
    await ref.tell(Sleep(1))
    await ref.tell(Boom("first"))
    await ref.tell(Increment(1))
    await ref.tell(Increment(2))
    async with system.dead_letters.listen() as letters:
        assert await ref.ask(GetCount()) == 13  # 10 from the factory, + 1 + 2 queued before the crash
        letter = letters.receive_nowait()
    assert letter.message == Boom("first")
    assert letter.reason is troupe.DeadLetterReason.FAILED
    assert system.lookup("/user/keep") == ref


async def test_restart_limit_within_the_window_escalates_to_actor_failed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with pytest.raises(troupe.ActorFailed) as info:
        async with troupe.open_system(supervisor=troupe.OneForOne(max_restarts=2, within=10)) as system:
            ref = await system.spawn(Counter, name="fragile")
            for _ in range(3):
                with pytest.raises(troupe.ActorCrashed):
                    await ref.ask(Boom("again"))
                await trio.sleep(1)
            await trio.sleep_forever()  # cancelled by the failure
    assert info.value.path == "/user/fragile"
    assert isinstance(info.value.__cause__, ValueError)
    assert str(info.value.__cause__) == "again"
    assert "more often than its supervisor allows" in str(info.value)


async def test_failures_spread_out_beyond_the_window_do_not_escalate(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    ref = await system.spawn(Counter)  # default: 3 restarts in 5 s
    for _ in range(10):
        with pytest.raises(troupe.ActorCrashed):
            await ref.ask(Boom())
        await trio.sleep(2)
    assert ref.alive
    assert system.statistics().restarts == 10


async def test_max_restarts_zero_escalates_on_the_first_failure(
    system: troupe.ActorSystem, probe: troupe.TestProbe
) -> None:
    outer = await system.spawn(
        lambda: Parent(
            troupe.OneForOne(),
            [
                (
                    "inner",
                    lambda: Parent(troupe.OneForOne(max_restarts=0), reporters(probe, "leaf")),
                    troupe.Restart.PERMANENT,
                )
            ],
            probe.ref,
        ),
        name="outer",
    )
    await probe.expect(Note("leaf", "start"))
    await probe.expect(Note("outer", "start"))
    leaf = system.lookup("/user/outer/inner/leaf")
    assert leaf is not None
    probe.received()
    with pytest.raises(troupe.ActorCrashed):
        await leaf.ask(Boom())
    await trio.testing.wait_all_tasks_blocked()
    # leaf's failure escalated: inner failed and was restarted by outer, with a new leaf
    assert notes(probe) == [("leaf", "stop"), ("leaf", "start")]
    assert system.lookup("/user/outer/inner/leaf") is not None
    assert outer.alive


async def test_escalation_reaches_the_root_with_the_original_exception(
    autojump_clock: trio.testing.MockClock,
) -> None:
    body_done = False
    with pytest.raises(troupe.ActorFailed) as info:
        async with troupe.open_system(supervisor=troupe.OneForOne(max_restarts=0)) as system:
            await system.spawn(
                lambda: Parent(
                    troupe.OneForOne(max_restarts=0), [("leaf", Counter, troupe.Restart.PERMANENT)]
                ),
                name="top",
            )
            leaf = system.lookup("/user/top/leaf")
            assert leaf is not None
            with pytest.raises(troupe.ActorCrashed):
                await leaf.ask(Boom("deep"))
            await trio.sleep_forever()
            body_done = True
    assert not body_done
    assert info.value.path == "/user/top"
    assert str(info.value.__cause__) == "deep"
    assert not isinstance(info.value, BaseExceptionGroup)


async def test_an_exception_from_the_body_wins_over_actor_failed() -> None:
    with pytest.raises(KeyError):
        async with troupe.open_system(supervisor=troupe.OneForOne(max_restarts=0)) as system:
            ref = await system.spawn(Counter)
            with pytest.raises(troupe.ActorCrashed):
                await ref.ask(Boom())
            raise KeyError("mine")


async def test_open_system_never_raises_a_group() -> None:
    with pytest.raises(ZeroDivisionError):
        async with troupe.open_system():
            1 / 0  # noqa: B018


async def test_backoff_delays_restarts_exponentially(
    system: troupe.ActorSystem, probe: troupe.TestProbe, autojump_clock: trio.testing.MockClock
) -> None:
    strategy = troupe.OneForOne(max_restarts=5, within=100, backoff=troupe.Backoff(initial=1, maximum=3))
    parent = await system.spawn(lambda: Parent(strategy, reporters(probe, "w")), name="p")
    w = await child(system, parent, "w")
    await probe.expect(Note("w", "start"))
    delays = []
    for _ in range(4):
        failed_at = trio.current_time()
        await w.tell(Boom())
        await w.tell(Increment())  # queues during the backoff
        await probe.expect(Note("w", "stop"))
        await probe.expect(Note("w", "start"), timeout=10)
        delays.append(trio.current_time() - failed_at)
    assert delays == pytest.approx([1, 2, 3, 3])
    assert await w.ask(GetCount()) == 1  # the Increment queued during the last backoff


async def test_a_factory_failing_at_restart_counts_as_a_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    made = 0

    def factory() -> Counter:
        nonlocal made
        made += 1
        if made > 1:
            raise RuntimeError("cannot build")
        return Counter()

    with pytest.raises(troupe.ActorFailed) as info:
        async with troupe.open_system() as system:
            ref = await system.spawn(factory, name="f")
            with pytest.raises(troupe.ActorCrashed):
                await ref.ask(Boom())
            await trio.sleep_forever()
    assert str(info.value.__cause__) == "cannot build"
    assert made == 4  # the first, then 3 failed restarts


class Deferrer(troupe.Actor[GetCount | Boom | Increment]):
    async def receive(self, msg: GetCount | Boom | Increment) -> None:
        match msg:
            case GetCount():
                self.context.defer_reply()
            case Boom():
                raise ValueError("boom")
            case Increment():
                self.context.stop()


async def test_unanswered_deferred_replies_fail_at_restart_and_at_stop(system: troupe.ActorSystem) -> None:
    ref = await system.spawn(Deferrer, restart=troupe.Restart.TRANSIENT)
    outcomes: list[type[BaseException]] = []

    async def ask() -> None:
        try:
            await ref.ask(GetCount(), timeout=None)
        except troupe.TroupeError as exc:
            outcomes.append(type(exc))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask)
        await trio.testing.wait_all_tasks_blocked()
        await ref.tell(Boom())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask)
        await trio.testing.wait_all_tasks_blocked()
        await ref.tell(Increment())
    assert outcomes == [troupe.ActorCrashed, troupe.ActorStopped]


async def test_failure_and_restart_events_are_published(system: troupe.ActorSystem) -> None:
    ref = await system.spawn(Counter, name="evented")
    async with system.events.listen("troupe.*") as events:
        with pytest.raises(troupe.ActorCrashed):
            await ref.ask(Boom())
        await ref.ask(GetCount())
        seen = [events.receive_nowait() for _ in range(4)]
    assert seen[0].topic == "troupe.dead_letter"
    assert seen[0].data.message == Boom()
    assert [(e.topic, e.data) for e in seen[1:]] == [
        ("troupe.failed", "/user/evented"),
        ("troupe.restarted", "/user/evented"),
        ("troupe.started", "/user/evented"),
    ]


async def test_keyboard_interrupt_from_an_actor_comes_out_unwrapped() -> None:
    class Interrupter(troupe.Actor[Increment]):
        async def receive(self, msg: Increment) -> None:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        async with troupe.open_system() as system:
            ref = await system.spawn(Interrupter)
            await ref.tell(Increment())
            await trio.sleep_forever()
