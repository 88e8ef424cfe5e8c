from __future__ import annotations

import contextlib
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
    assert (seen[0].topic, seen[0].data) == ("troupe.failed", "/user/evented")  # the cause first
    assert seen[1].topic == "troupe.dead_letter"
    assert seen[1].data.message == Boom()
    assert [(e.topic, e.data) for e in seen[2:]] == [
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


@troupe.message
class AskPeer:
    pass


class Asker(troupe.Actor[AskPeer]):
    """Asks its peer with no timeout: waits as long as the peer does."""

    def __init__(self, peer: Callable[[], troupe.ActorRef[CounterMsg]], log: list[str]) -> None:
        self.peer = peer
        self.log = log

    async def receive(self, msg: AskPeer) -> None:
        self.log.append("asking")
        await self.peer().ask(GetCount(), timeout=None)
        self.log.append("answered")

    async def on_stop(self) -> None:
        self.log.append("on_stop")


@pytest.mark.parametrize("strategy", [troupe.OneForAll, troupe.RestForOne])
async def test_issue_17_4_a_group_restart_cuts_off_a_sibling_waiting_for_the_failed_child(
    autojump_clock: trio.testing.MockClock, strategy: Callable[..., troupe.SupervisorStrategy]
) -> None:
    log: list[str] = []
    refs: dict[str, troupe.ActorRef[Any]] = {}

    class Group(troupe.Actor[Any]):
        supervisor: troupe.SupervisorStrategy = strategy(shutdown_timeout=2.0)

        async def on_start(self) -> None:
            refs["child"] = await self.context.spawn(Counter, name="child")
            refs["asker"] = await self.context.spawn(lambda: Asker(lambda: refs["child"], log), name="asker")

        async def receive(self, msg: Any) -> None:
            return None

    letters: list[troupe.DeadLetter] = []
    async with troupe.open_system() as system:
        await system.spawn(Group, name="group")
        async with system.dead_letters.listen() as stream, system.events.listen("troupe.started") as started:
            await refs["child"].tell(Sleep(1))  # busy for 1 s, then fails: the group restarts
            await refs["child"].tell(Boom())
            await refs["asker"].tell(AskPeer())  # its ask waits behind the Boom, for the restart
            with trio.fail_after(10):
                assert (await started.receive()).data == "/user/group/child"
                assert (await started.receive()).data == "/user/group/asker"
            letters = [stream.receive_nowait() for _ in range(stream.statistics().current_buffer_used)]
        # the restart took the sibling's bound (2 s after the failure), no more
        assert trio.current_time() == pytest.approx(3.0)
        assert await refs["child"].ask(GetCount()) == 0  # restarted, answering
        assert log == ["asking"]  # cut off: no answer, and no on_stop
    reasons = {(type(d.message).__name__, d.reason.name) for d in letters}
    assert ("AskPeer", "INTERRUPTED") in reasons
    assert ("Boom", "FAILED") in reasons
    assert system.statistics().stuck_at_shutdown == ()


async def test_issue_17_4_siblings_that_stop_in_time_are_not_cut_off(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[tuple[str, str]] = []
    refs: dict[str, troupe.ActorRef[Any]] = {}

    class Group(troupe.Actor[Any]):
        supervisor: troupe.SupervisorStrategy = troupe.OneForAll(shutdown_timeout=5.0)

        async def on_start(self) -> None:
            refs["a"] = await self.context.spawn(lambda: Reporter(probe.ref, "a"), name="a")
            refs["b"] = await self.context.spawn(lambda: Reporter(probe.ref, "b"), name="b")

        async def receive(self, msg: Any) -> None:
            return None

    async with troupe.open_system() as system:
        probe = await troupe.TestProbe.create(system)
        await system.spawn(Group, name="group")
        async with system.events.listen("troupe.started") as started:
            await refs["b"].tell(Sleep(3))  # finishes within the bound
            await refs["a"].tell(Boom())
            with trio.fail_after(10):
                await started.receive()
                await started.receive()
        await trio.testing.wait_all_tasks_blocked()
        log = notes(probe)
    assert log[-4:] == [("a", "stop"), ("b", "stop"), ("a", "start"), ("b", "start")] or log[-4:] == [
        ("b", "stop"),
        ("a", "stop"),
        ("a", "start"),
        ("b", "start"),
    ]
    assert trio.current_time() == pytest.approx(3.0)


async def test_issue_17_8_backoffs_are_per_child_and_concurrent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    restarted: dict[str, float] = {}

    class Kid(Counter):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

        async def on_start(self) -> None:
            restarted.setdefault(self.name, -1.0)
            if restarted[self.name] == -1.0:
                restarted[self.name] = 0.0
            else:
                restarted[self.name] = trio.current_time()

    class Parent(troupe.Actor[Any]):
        supervisor: troupe.SupervisorStrategy = troupe.OneForOne(
            max_restarts=10, within=1000, backoff=troupe.Backoff(1, 60)
        )

        async def on_start(self) -> None:
            self.a = await self.context.spawn(lambda: Kid("a"), name="a")
            self.b = await self.context.spawn(lambda: Kid("b"), name="b")

        async def receive(self, msg: Any) -> Any:
            return self.a if msg == "a" else self.b

    async with troupe.open_system() as system:
        parent = await system.spawn(Parent, name="p")
        a = await parent.ask("a")
        b = await parent.ask("b")
        for _ in range(5):  # a's backoff grows to 16 s
            await a.tell(Boom())
            await trio.sleep(40)  # past its backoff (at most 16 s so far)
        start = trio.current_time()
        await a.tell(Boom())  # a now waits 32 s before its restart
        await trio.sleep(0.1)
        await b.tell(Boom())  # b's first restart: 1 s, not after a's 32 s
        await trio.sleep(5)
        assert restarted["b"] == pytest.approx(start + 1.1)
        assert await b.ask(GetCount()) == 0
        await trio.sleep(40)
        assert restarted["a"] == pytest.approx(start + 32)


async def test_issue_17_11_a_supervisor_that_is_not_a_strategy_is_refused_at_spawn(
    system: troupe.ActorSystem,
) -> None:
    class Bad(Counter):
        supervisor = None  # type: ignore[assignment]

    with pytest.raises(
        TypeError, match=r"Bad\.supervisor \(/user/<unnamed>\) is None, not a supervisor strategy"
    ):
        await system.spawn(Bad)
    assert system.lookup("/user/Bad-1") is None


async def test_issue_17_11_a_supervisor_set_to_garbage_later_fails_the_parent_cleanly() -> None:
    class Parent(troupe.Actor[Any]):
        async def on_start(self) -> None:
            self.child = await self.context.spawn(Counter, name="child")
            self.supervisor = "nope"  # type: ignore[assignment]

        async def receive(self, msg: Any) -> Any:
            return self.child

    with pytest.raises(troupe.ActorFailed) as failed:
        async with troupe.open_system(supervisor=troupe.OneForOne(max_restarts=0)) as system:
            parent = await system.spawn(Parent, name="p")
            child = await parent.ask("child")
            await child.tell(Boom())
            await trio.sleep_forever()
    assert isinstance(failed.value.__cause__, TypeError)
    assert "not a supervisor strategy" in str(failed.value.__cause__)


async def test_issue_17_review_cells_left_down_at_a_timed_out_shutdown_are_finalized(
    autojump_clock: trio.testing.MockClock,
) -> None:
    supervisor = troupe.OneForOne(backoff=troupe.Backoff(60, 60))
    async with troupe.open_system(supervisor=supervisor, shutdown_timeout=1) as system:
        y = await system.spawn(Counter, name="y")
        x = await system.spawn(Counter, name="x")
        y.tell_nowait(Boom())  # y is down, waiting out a 60 s backoff
        await x.tell(Sleep(1000))  # x is stuck: the shutdown reaches it first and times out
        await trio.sleep(0.1)
    assert not y.alive
    assert system.lookup("/user/y") is None
    before = system.dead_letters.count
    await y.tell(Increment())
    assert system.dead_letters.count == before + 1
    with trio.fail_after(5), pytest.raises(troupe.ActorStopped):
        await y.ask(GetCount(), timeout=1)


@troupe.message
class AskOf:
    target: Any


class Forwarder(troupe.Actor[AskOf]):
    """A default (OneForOne) actor whose child asks whom it is told to, with no timeout."""

    async def on_start(self) -> None:
        self.kid = await self.context.spawn(Asking, name="kid")

    async def receive(self, msg: AskOf) -> None:
        await self.kid.tell(msg)


class Asking(troupe.Actor[AskOf]):
    async def receive(self, msg: AskOf) -> None:
        with contextlib.suppress(troupe.ActorStopped):
            await msg.target.ask(GetCount(), timeout=None)


async def test_issue_17_review_a_group_restart_is_bounded_when_a_siblings_child_asks_the_failed_child(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Group(troupe.Actor[Any]):
        supervisor: troupe.SupervisorStrategy = troupe.OneForAll(shutdown_timeout=1)

        async def on_start(self) -> None:
            self.a = await self.context.spawn(Counter, name="a")
            self.b = await self.context.spawn(Forwarder, name="b")

        async def receive(self, msg: Any) -> Any:
            return (self.a, self.b)

    async with troupe.open_system(shutdown_timeout=3) as system:
        group = await system.spawn(Group, name="group")
        a, b = await group.ask("refs")
        a.tell_nowait(Sleep(1))
        a.tell_nowait(Boom())  # a fails after 1 s
        await b.tell(AskOf(a))  # b's child asks a: queued behind the Boom, for the restart
        with trio.fail_after(5):
            async with system.events.listen("troupe.restarted") as restarted:
                await restarted.receive()
                await restarted.receive()
        assert await a.ask(GetCount()) == 0
    assert system.statistics().stuck_at_shutdown == ()


class _Pair(troupe.Actor[Any]):
    """Two counters under OneForAll with a backoff; answers with their refs."""

    def __init__(self, backoff: troupe.Backoff) -> None:
        self.supervisor = troupe.OneForAll(backoff=backoff)

    async def on_start(self) -> None:
        self.a = await self.context.spawn(Counter, name="a")
        self.b = await self.context.spawn(Counter, name="b")

    async def receive(self, msg: Any) -> Any:
        return (self.a, self.b)


async def test_issue_17_review_stopping_the_failed_child_during_its_backoff_still_restarts_its_group(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with troupe.open_system() as system:
        pair = await system.spawn(lambda: _Pair(troupe.Backoff(1, 1)), name="pair")
        a, b = await pair.ask("refs")
        a.tell_nowait(Boom())
        await trio.sleep(0.1)
        await a.stop()  # during the backoff: a is gone for good, b still restarts
        await trio.sleep(2)
        assert await b.ask(GetCount(), timeout=1) == 0
        assert not a.alive


async def test_issue_17_review_a_stop_during_a_group_restart_does_not_wait_out_the_backoff(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with troupe.open_system() as system:
        pair = await system.spawn(lambda: _Pair(troupe.Backoff(60, 60)), name="pair")
        a, b = await pair.ask("refs")
        b.tell_nowait(Sleep(2))
        await trio.sleep(0.1)  # b is in its message
        a.tell_nowait(Boom())
        await trio.sleep(0.1)  # the group restart waits for b
        start = trio.current_time()
        await b.stop()
        assert trio.current_time() - start < 2  # its message, not the 60 s backoff
        assert not b.alive


async def test_issue_17_review_actor_failed_wins_over_an_outer_cancel_during_its_shutdown(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class SlowStop(Counter):
        async def on_stop(self) -> None:
            await trio.sleep(1)

    with pytest.raises(troupe.ActorFailed), trio.move_on_after(0.5):  # not swallowed by the move_on
        async with troupe.open_system(supervisor=troupe.OneForOne(max_restarts=0)) as system:
            await system.spawn(SlowStop, name="slow")
            c = await system.spawn(Counter, name="c")
            await c.tell(Boom())
            await trio.sleep_forever()


async def test_issue_17_review_a_spawn_cut_off_by_a_group_restart_leaves_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    outcome: list[str] = []

    class Slow(Counter):
        async def on_start(self) -> None:
            await trio.sleep(10)

    class Group(troupe.Actor[Any]):
        supervisor: troupe.SupervisorStrategy = troupe.OneForAll(shutdown_timeout=1)

        async def on_start(self) -> None:
            self.a = await self.context.spawn(Counter, name="a")

        async def receive(self, msg: Any) -> Any:
            if msg == "spawn":
                try:
                    await self.context.spawn(Slow, name="slow")
                except troupe.ActorStopped:
                    outcome.append("stopped")
                return None
            return self.a

    async with troupe.open_system() as system:
        group = await system.spawn(Group, name="group")
        a = await group.ask("a")
        await group.tell("spawn")
        await trio.sleep(0.5)
        await a.tell(Boom())
        await trio.sleep(20)
        assert system.lookup("/user/group/slow") is None
    assert outcome == ["stopped"]


async def test_issue_17_review_a_long_backoff_history_does_not_overflow() -> None:
    backoff = troupe.Backoff(0.001, 0.01)
    assert backoff.delay(1100) == pytest.approx(0.01)
    assert troupe.Backoff(0, 1).delay(5000) == 0
