from __future__ import annotations

import functools
import logging
from typing import Any

import pytest
import trio
import trio.testing

import troupe

from kit import Counter, GetCount, Increment, Note, Reporter


class Tree(troupe.Actor[Any]):
    """Logs start/stop; spawns the named children in on_start."""

    def __init__(self, log: list[tuple[str, str]], tag: str, kids: dict[str, Any]) -> None:
        self.log = log
        self.tag = tag
        self.kids = kids

    async def on_start(self) -> None:
        for name, sub in self.kids.items():
            await self.context.spawn(functools.partial(Tree, self.log, name, sub), name=name)
        self.log.append((self.tag, "start"))

    async def on_stop(self) -> None:
        self.log.append((self.tag, "stop"))

    async def receive(self, msg: Any) -> None:
        return None


async def test_shutdown_is_depth_first_in_reverse_spawn_order() -> None:
    log: list[tuple[str, str]] = []
    async with troupe.open_system() as system:
        await system.spawn(lambda: Tree(log, "a", {"a1": {}, "a2": {"a2x": {}}}), name="a")
        await system.spawn(lambda: Tree(log, "b", {"b1": {}}), name="b")
        assert log == [
            ("a1", "start"),
            ("a2x", "start"),
            ("a2", "start"),
            ("a", "start"),
            ("b1", "start"),
            ("b", "start"),
        ]
        log.clear()
    assert log == [
        ("b1", "stop"),
        ("b", "stop"),
        ("a2x", "stop"),
        ("a2", "stop"),
        ("a1", "stop"),
        ("a", "stop"),
    ]


class Hang(troupe.Actor[Any]):
    async def on_stop(self) -> None:
        await trio.sleep_forever()

    async def receive(self, msg: Any) -> None:
        return None


async def test_a_hanging_on_stop_is_cancelled_after_shutdown_timeout(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    stopped: list[str] = []

    class Polite(troupe.Actor[Any]):
        async def on_stop(self) -> None:
            stopped.append(self.ref.name)

        async def receive(self, msg: Any) -> None:
            return None

    caplog.set_level(logging.WARNING, logger="troupe")
    async with troupe.open_system(shutdown_timeout=7) as system:
        await system.spawn(Hang, name="stuck")
        await system.spawn(Polite, name="polite")
        start = trio.current_time()
    assert trio.current_time() - start == pytest.approx(7)
    assert stopped == ["polite"]  # stopped first (reverse order), not held up
    assert system.statistics().stuck_at_shutdown == ("/user/stuck",)
    assert "shutdown_timeout (7 s) ran out" in caplog.text
    assert "/user/stuck" in caplog.text


async def test_telling_after_the_system_closed_is_a_dead_letter_not_a_hang() -> None:
    async with troupe.open_system() as system:
        ref = await system.spawn(Counter)
    with trio.fail_after(1):
        await ref.tell(Increment())
        ref.tell_nowait(Increment())
    assert system.dead_letters.count == 2
    assert not ref.alive


async def test_spawning_while_shutting_down_is_refused() -> None:
    errors: list[BaseException] = []

    class Late(troupe.Actor[Any]):
        async def on_stop(self) -> None:
            try:
                await self.context.system.spawn(Counter)
            except troupe.ActorStopped as exc:
                errors.append(exc)

        async def receive(self, msg: Any) -> None:
            return None

    async with troupe.open_system() as system:
        await system.spawn(Late)
    assert len(errors) == 1
    assert "shutting down" in str(errors[0])


async def test_on_stop_raising_is_published_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    class Bad(troupe.Actor[Any]):
        async def on_stop(self) -> None:
            raise RuntimeError("cleanup failed")

        async def receive(self, msg: Any) -> None:
            return None

    async with troupe.open_system() as system:
        ref = await system.spawn(Bad, name="bad")
        async with system.events.listen("troupe.failed") as events:
            await ref.stop()
            assert events.receive_nowait().data == "/user/bad"
    assert "cleanup failed" in caplog.text


async def test_nothing_outlives_the_system(autojump_clock: trio.testing.MockClock) -> None:
    async with troupe.open_system() as system:
        ref = await system.spawn(Counter)
        ref._cell.get_context().start_soon(trio.sleep_forever)
        ref._cell.get_context().timers.start_periodic("tick", 1, Increment())
        await trio.sleep(3.5)
        assert await ref.ask(GetCount()) == 3
    # the system nursery is closed: every task in it has finished
    assert system._nursery.child_tasks == frozenset()


async def test_stop_of_a_parent_stops_its_subtree_first(system: troupe.ActorSystem) -> None:
    log: list[tuple[str, str]] = []
    parent = await system.spawn(lambda: Tree(log, "p", {"c1": {}, "c2": {}}), name="p")
    log.clear()
    await parent.stop()
    assert log == [
        ("c2", "stop"),
        ("c1", "stop"),
        ("p", "stop"),
    ]
    assert system.lookup("/user/p/c1") is None


async def test_reporter_stops_on_shutdown(probe: troupe.TestProbe) -> None:
    system = troupe.current_system()
    await system.spawn(lambda: Reporter(probe.ref, "r"))
    await probe.expect(Note("r", "start"))


@troupe.message
class Job:
    n: int
    seconds: float = 0.0


class Worker(troupe.Actor[Job]):
    """Takes ``seconds`` per job; notes what it did and whether on_stop ran."""

    def __init__(self, done: list[object]) -> None:
        self.done = done

    async def receive(self, msg: Job) -> int:
        await trio.sleep(msg.seconds)
        self.done.append(msg.n)
        return msg.n

    async def on_stop(self) -> None:
        self.done.append("on_stop")


async def test_issue_17_2_an_outer_cancel_runs_the_graceful_shutdown(
    autojump_clock: trio.testing.MockClock,
) -> None:
    done: list[object] = []
    with trio.move_on_after(2) as outer:
        async with troupe.open_system() as system:
            w = await system.spawn(lambda: Worker(done), name="w")
            await w.tell(Job(1, 5.0))
            await w.tell(Job(2))
            await trio.sleep_forever()
    assert outer.cancelled_caught
    # the message being handled was finished, on_stop ran, the queued one is a dead letter
    assert done == [1, "on_stop"]
    assert system.dead_letters.count == 1
    assert trio.current_time() == pytest.approx(5.0)


async def test_issue_17_2_a_message_cut_off_by_the_shutdown_timeout_is_a_dead_letter(
    autojump_clock: trio.testing.MockClock,
) -> None:
    done: list[object] = []
    async with troupe.open_system(shutdown_timeout=1.0) as system:
        w = await system.spawn(lambda: Worker(done), name="w")
        await w.tell(Job(1, 5.0))
        await w.tell(Job(2))
        await trio.testing.wait_all_tasks_blocked()
    assert done == []
    assert system.dead_letters.count == 2
    assert system.statistics().stuck_at_shutdown == ("/user/w",)


async def test_issue_17_2_the_cut_off_message_has_its_own_reason(
    autojump_clock: trio.testing.MockClock,
) -> None:
    done: list[object] = []
    letters: list[troupe.DeadLetter] = []

    async def collect(system: troupe.ActorSystem, ready: trio.Event) -> None:
        async with system.dead_letters.listen() as stream:
            ready.set()
            async for letter in stream:
                letters.append(letter)  # noqa: PERF401 - kept as they come: the stream is cancelled, not ended

    async with trio.open_nursery() as nursery:  # the listener outlives the system's body
        with trio.move_on_after(2):
            async with troupe.open_system(shutdown_timeout=1.0) as system:
                ready = trio.Event()
                nursery.start_soon(collect, system, ready)
                await ready.wait()
                w = await system.spawn(lambda: Worker(done), name="w")
                await w.tell(Job(1, 5.0))
                await w.tell(Job(2))
                await trio.sleep_forever()
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert done == []
    reasons = sorted((letter.message.n, letter.reason.name) for letter in letters)
    assert reasons == [(1, "INTERRUPTED"), (2, "STOPPED")]


async def test_issue_17_5_an_ask_from_outside_a_cancelled_system_ends(
    autojump_clock: trio.testing.MockClock,
) -> None:
    done: list[object] = []
    outcome: list[object] = []
    refs: list[troupe.ActorRef[Job]] = []
    opened = trio.Event()

    async def other_system(cancel: trio.CancelScope) -> None:
        with cancel:
            async with troupe.open_system(shutdown_timeout=1.0) as system:
                refs.append(await system.spawn(lambda: Worker(done), name="w"))
                opened.set()
                await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        cancel = trio.CancelScope()
        nursery.start_soon(other_system, cancel)
        await opened.wait()

        async def ask() -> None:
            try:
                outcome.append(await refs[0].ask(Job(1, 60.0), timeout=None))
            except troupe.TroupeError as exc:
                outcome.append(type(exc))

        nursery.start_soon(ask)
        await trio.sleep(1)
        cancel.cancel()
        with trio.fail_after(30):
            await trio.testing.wait_all_tasks_blocked()
    assert outcome == [troupe.ActorStopped]


async def test_issue_17_5_a_pending_ask_ends_when_its_targets_system_closes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    refs: list[troupe.ActorRef[Job]] = []
    opened = trio.Event()

    class Deaf(troupe.Actor[Job]):
        async def receive(self, msg: Job) -> None:
            self.context.defer_reply()  # never answers

    async def other_system() -> None:
        async with troupe.open_system() as system:
            refs.append(await system.spawn(Deaf, name="deaf"))
            opened.set()
            await trio.sleep(1)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other_system)
        await opened.wait()
        with trio.fail_after(2), pytest.raises(troupe.ActorStopped):
            await refs[0].ask(Job(1), timeout=3)


@troupe.message
class AskUp:
    pass


class Child(troupe.Actor[AskUp]):
    """Asks its parent, with no timeout, and notes how that ended."""

    def __init__(self, outcome: list[str]) -> None:
        self.outcome = outcome

    async def receive(self, msg: AskUp) -> None:
        parent = self.context.parent
        assert parent is not None
        try:
            await parent.ask("hello", timeout=None)
        except troupe.ActorStopped:
            self.outcome.append("ActorStopped")
        else:
            self.outcome.append("answered")


class Parent(troupe.Actor[str]):
    def __init__(self, outcome: list[str]) -> None:
        self.outcome = outcome

    async def on_start(self) -> None:
        self.child = await self.context.spawn(lambda: Child(self.outcome), name="child")

    async def receive(self, msg: str) -> object:
        if msg == "busy":
            await self.child.tell(AskUp())  # its ask waits behind this message
            await trio.sleep(1)
            return None
        if msg == "boom":
            await self.child.tell(AskUp())
            await trio.sleep(1)
            raise RuntimeError("boom")
        return "hi"


async def test_a_child_asking_its_stopping_parent_does_not_deadlock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    outcome: list[str] = []
    async with troupe.open_system() as system:
        parent = await system.spawn(lambda: Parent(outcome), name="parent")
        await parent.tell("busy")
        await trio.sleep(0.5)
        with trio.fail_after(5):
            await parent.stop()  # finishes "busy", then stops the child, which waits for it
    assert outcome == ["ActorStopped"]
    assert system.statistics().stuck_at_shutdown == ()


async def test_a_child_asking_its_failing_parent_does_not_deadlock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    outcome: list[str] = []
    async with troupe.open_system() as system:
        parent = await system.spawn(lambda: Parent(outcome), name="parent")
        with trio.fail_after(5):
            with pytest.raises(troupe.ActorCrashed):
                await parent.ask("boom")
            await trio.sleep(1)
            assert await parent.ask("again") == "hi"  # restarted, with a new child
    assert outcome == ["ActorStopped"]
    assert system.statistics().stuck_at_shutdown == ()
