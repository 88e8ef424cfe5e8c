from __future__ import annotations

import math
from typing import Any

import pytest
import trio
import trio.testing

import troupe

from kit import Boom, Counter, GetCount, Increment


class Watcher(troupe.Actor[troupe.Terminated | str]):
    def __init__(self, probe: troupe.ActorRef[Any]) -> None:
        self.probe = probe

    async def receive(self, msg: troupe.Terminated | str) -> None:
        self.probe.tell_nowait(msg)


async def test_watch_delivers_terminated_once_at_final_termination(
    system: troupe.ActorSystem, probe: troupe.TestProbe
) -> None:
    watcher = await system.spawn(lambda: Watcher(probe.ref))
    target = await system.spawn(Counter, name="target")
    watcher._cell.get_context().watch(target)
    with pytest.raises(troupe.ActorCrashed):
        await target.ask(Boom())  # a restart: no Terminated
    await probe.expect_no_message(0.1)
    await target.stop()
    msg = await probe.expect(troupe.Terminated)
    assert msg.ref == target
    assert msg.reason is None
    await probe.expect_no_message(0.1)


async def test_watching_a_dead_actor_delivers_at_once_with_the_failure(
    system: troupe.ActorSystem, probe: troupe.TestProbe
) -> None:
    watcher = await system.spawn(lambda: Watcher(probe.ref))
    target = await system.spawn(Counter, restart=troupe.Restart.TEMPORARY)
    with pytest.raises(troupe.ActorCrashed):
        await target.ask(Boom("gone"))
    await trio.testing.wait_all_tasks_blocked()
    watcher._cell.get_context().watch(target)
    msg = await probe.expect(troupe.Terminated)
    assert isinstance(msg.reason, ValueError)


async def test_unwatch(system: troupe.ActorSystem, probe: troupe.TestProbe) -> None:
    watcher = await system.spawn(lambda: Watcher(probe.ref))
    target = await system.spawn(Counter)
    ctx = watcher._cell.get_context()
    ctx.watch(target)
    ctx.unwatch(target)
    await target.stop()
    await probe.expect_no_message(0.1)


async def test_an_actor_that_does_not_accept_terminated_cannot_watch(system: troupe.ActorSystem) -> None:
    counter = await system.spawn(Counter)
    other = await system.spawn(Counter)
    with pytest.raises(troupe.MessageTypeError, match="Terminated"):
        counter._cell.get_context().watch(other)
    watcher = await system.spawn(lambda: Watcher(other))
    with pytest.raises(ValueError, match="itself"):
        watcher._cell.get_context().watch(watcher)


class Jobs(troupe.Actor[str]):
    def __init__(self, probe: troupe.ActorRef[Any]) -> None:
        self.probe = probe

    async def on_start(self) -> None:
        self.context.start_soon(self.background)

    async def background(self) -> None:
        try:
            await trio.sleep_forever()
        finally:
            self.probe.tell_nowait("job cancelled")

    async def fail_later(self) -> None:
        await trio.sleep(1)
        raise LookupError("job failed")

    async def receive(self, msg: str) -> str | None:
        if msg == "fail":
            self.context.start_soon(self.fail_later)
        if msg == "who":
            return repr(troupe.current_actor())
        return None


async def test_start_soon_jobs_are_cancelled_at_stop(
    system: troupe.ActorSystem, probe: troupe.TestProbe
) -> None:
    ref = await system.spawn(lambda: Jobs(probe.ref))
    await ref.stop()
    await probe.expect("job cancelled")


async def test_a_failing_job_fails_its_actor(
    system: troupe.ActorSystem, probe: troupe.TestProbe, autojump_clock: trio.testing.MockClock
) -> None:
    ref = await system.spawn(lambda: Jobs(probe.ref), name="jobs")
    async with system.events.listen("troupe.restarted") as restarted:
        await ref.tell("fail")
        await probe.expect("job cancelled", timeout=5)  # the old instance's other job
        assert (await restarted.receive()).data == "/user/jobs"
    assert system.statistics().failures == 1


async def test_current_actor_and_system(system: troupe.ActorSystem, probe: troupe.TestProbe) -> None:
    ref = await system.spawn(lambda: Jobs(probe.ref), name="me")
    assert await ref.ask("who") == "<ActorRef /user/me>"
    assert troupe.current_actor() is None
    assert troupe.current_system() is system


def test_current_system_outside_a_system() -> None:
    with pytest.raises(RuntimeError, match="open_system"):
        troupe.current_system()


class Ticker(troupe.Actor[Increment | GetCount | str]):
    def __init__(self) -> None:
        self.count = 0

    async def on_start(self) -> None:
        self.context.timers.start_periodic("tick", 2, Increment())
        self.context.timers.start_single("once", 5, Increment(100))

    async def receive(self, msg: Increment | GetCount | str) -> object:
        match msg:
            case Increment(by=n):
                self.count += n
            case GetCount():
                return self.count
            case "cancel":
                self.context.timers.cancel("tick")
                return self.context.timers.active()
            case "bad":
                try:
                    self.context.timers.start_single("x", 1, 3.5)  # type: ignore[arg-type]
                except troupe.MessageTypeError as exc:
                    return str(exc)
        return None


async def test_timers_run_in_virtual_time(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    ref = await system.spawn(Ticker)
    await trio.sleep(6.5)
    assert await ref.ask(GetCount()) == 103  # ticks at 2, 4, 6 and the single one at 5
    assert await ref.ask("cancel") == []
    await trio.sleep(10)
    assert await ref.ask(GetCount()) == 103
    assert "not float" in await ref.ask("bad")


async def test_a_restart_cancels_the_old_instances_timers(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    class Fragile(troupe.Actor[Increment | GetCount | Boom]):
        count = 0

        async def on_start(self) -> None:
            self.context.timers.start_periodic("tick", 1, Increment())

        async def receive(self, msg: Increment | GetCount | Boom) -> int | None:
            match msg:
                case Increment():
                    self.count += 1
                case GetCount():
                    return self.count
                case Boom():
                    raise ValueError
            return None

    ref = await system.spawn(Fragile)
    await trio.sleep(2.5)
    with pytest.raises(troupe.ActorCrashed):
        await ref.ask(Boom())
    await trio.sleep(3.5)
    assert await ref.ask(GetCount()) == 3  # one timer, not two


class Later(troupe.Actor[GetCount | Increment]):
    def __init__(self) -> None:
        self.pending: list[troupe.Reply[Any]] = []

    async def receive(self, msg: GetCount | Increment) -> object:
        if isinstance(msg, GetCount):
            self.pending.append(self.context.defer_reply())
            return "ignored"
        for reply in self.pending:
            reply.send(msg.by)
            reply.send("second answer is ignored")
        self.pending.clear()
        detached = self.context.defer_reply()  # a tell: its answers go nowhere
        detached.send(1)
        return None


async def test_deferred_replies(system: troupe.ActorSystem) -> None:
    ref = await system.spawn(Later)
    results: list[object] = []

    async def ask() -> None:
        results.append(await ref.ask(GetCount()))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask)
        nursery.start_soon(ask)
        await trio.testing.wait_all_tasks_blocked()
        await ref.tell(Increment(7))
    assert results == [7, 7]


async def test_reply_fail_raises_the_exception_itself_without_supervision(system: troupe.ActorSystem) -> None:
    class Refuser(troupe.Actor[GetCount]):
        async def receive(self, msg: GetCount) -> None:
            self.context.defer_reply().fail(PermissionError("no"))

    ref = await system.spawn(Refuser)
    with pytest.raises(PermissionError):
        await ref.ask(GetCount())
    assert system.statistics().failures == 0


async def test_defer_reply_outside_receive_is_an_error(system: troupe.ActorSystem) -> None:
    ref = await system.spawn(Counter)
    with pytest.raises(RuntimeError, match="receive"):
        ref._cell.get_context().defer_reply()


async def test_context_parent_and_stop(system: troupe.ActorSystem) -> None:
    class Child(troupe.Actor[str]):
        async def receive(self, msg: str) -> str | None:
            parent = self.context.parent
            return parent.path if parent else None

    class Parent(troupe.Actor[str]):
        async def on_start(self) -> None:
            await self.context.spawn(Child, name="kid")

        async def receive(self, msg: str) -> object:
            return self.context.parent

    parent = await system.spawn(Parent, name="p")
    kid = system.lookup("/user/p/kid")
    assert kid is not None
    assert await kid.ask("parent?") == "/user/p"
    assert await parent.ask("parent?") is None
    counter = await system.spawn(Counter, restart=troupe.Restart.TRANSIENT)
    counter._cell.get_context().stop()
    await counter.join()
    assert not counter.alive
    assert await kid.ask("still there") == "/user/p"
    _ = Increment


@pytest.mark.parametrize(
    ("kind", "value"),
    [("single", math.nan), ("single", -1.0), ("periodic", math.nan), ("periodic", 0.0), ("periodic", -2.0)],
)
async def test_issue_17_10_bad_timer_times_are_value_errors_at_the_call(
    system: troupe.ActorSystem, kind: str, value: float
) -> None:
    errors: list[BaseException] = []

    class Timed(Counter):
        async def on_start(self) -> None:
            try:
                if kind == "single":
                    self.context.timers.start_single("t", value, Increment())
                else:
                    self.context.timers.start_periodic("t", value, Increment())
            except ValueError as exc:
                errors.append(exc)

    ref = await system.spawn(Timed)
    assert len(errors) == 1
    assert "timer 't' of /user/Timed-1" in str(errors[0])
    assert await ref.ask(GetCount()) == 0  # nothing started, the system lives on
