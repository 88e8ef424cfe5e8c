from __future__ import annotations

import functools
from typing import Any

import pytest
import trio
import trio.testing

import troupe

from kit import Counter, GetCount, Increment


async def test_duplicate_sibling_name_is_name_taken(system: troupe.ActorSystem) -> None:
    await system.spawn(Counter, name="c")
    with pytest.raises(troupe.NameTaken, match="/user/c") as info:
        await system.spawn(Counter, name="c")
    assert isinstance(info.value, ValueError)


async def test_a_name_is_free_again_after_termination(system: troupe.ActorSystem) -> None:
    first = await system.spawn(Counter, name="c")
    await first.stop()
    second = await system.spawn(Counter, name="c")
    assert second != first
    assert system.lookup("/user/c") == second


async def test_unnamed_actors_are_numbered_per_parent_and_class(system: troupe.ActorSystem) -> None:
    a = await system.spawn(Counter)
    b = await system.spawn(functools.partial(Counter, start=3))
    await system.spawn(Counter, name="Counter-3")
    c = await system.spawn(Counter)
    assert [a.name, b.name, c.name] == ["Counter-1", "Counter-2", "Counter-4"]
    assert await b.ask(GetCount()) == 3


@pytest.mark.parametrize("name", ["", "a/b", 3])
async def test_bad_names_are_refused(system: troupe.ActorSystem, name: Any) -> None:
    with pytest.raises(ValueError, match="name"):
        await system.spawn(Counter, name=name)


async def test_a_factory_returning_something_else_is_a_type_error(system: troupe.ActorSystem) -> None:
    with pytest.raises(TypeError, match="returned int"):
        await system.spawn(lambda: 42)  # type: ignore[arg-type, return-value]
    with pytest.raises(TypeError, match="zero-argument callable"):
        await system.spawn(Counter())  # type: ignore[arg-type]
    assert system.statistics().alive == 0


async def test_bad_mailbox_or_restart_arguments(system: troupe.ActorSystem) -> None:
    with pytest.raises(TypeError, match="Mailbox"):
        await system.spawn(Counter, mailbox=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Restart"):
        await system.spawn(Counter, restart="always")  # type: ignore[arg-type]


class FailsToStart(troupe.Actor[Any]):
    started_children: list[troupe.ActorRef[Any]] = []  # noqa: RUF012 - a test's shared record

    async def on_start(self) -> None:
        FailsToStart.started_children.append(await self.context.spawn(Counter, name="kid"))
        self.context.timers.start_periodic("t", 1, "tick")
        raise OSError("no database")

    async def on_stop(self) -> None:
        raise AssertionError("on_stop must not run when on_start failed")

    async def receive(self, msg: Any) -> None:
        return None


async def test_on_start_raising_is_spawn_error_with_nothing_left_running(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    async with system.events.listen("troupe.stopped") as stopped:
        with pytest.raises(troupe.SpawnError, match="no database") as info:
            await system.spawn(FailsToStart, name="db")
        assert stopped.receive_nowait().data == "/user/db/kid"
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.path == "/user/db"
    assert system.lookup("/user/db") is None
    assert not FailsToStart.started_children[0].alive
    await trio.sleep(5)  # the timer is gone too
    assert system.statistics().alive == 0
    assert system.statistics().restarts == 0
    await system.spawn(Counter, name="db")  # the name is free


async def test_spawn_returns_after_on_start(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    class Slow(troupe.Actor[Any]):
        ready = False

        async def on_start(self) -> None:
            await trio.sleep(3)
            self.ready = True

        async def receive(self, msg: Any) -> bool:
            return self.ready

    ref = await system.spawn(Slow)
    assert trio.current_time() == pytest.approx(3)
    assert await ref.ask("ready?") is True


async def test_children_paths_and_lookup(system: troupe.ActorSystem) -> None:
    class Parent(troupe.Actor[Any]):
        async def on_start(self) -> None:
            await self.context.spawn(Counter, name="kid")

        async def receive(self, msg: Any) -> list[str]:
            return [c.path for c in self.context.children]

    parent = await system.spawn(Parent, name="jobs")
    assert await parent.ask("kids") == ["/user/jobs/kid"]
    kid = system.lookup("/user/jobs/kid")
    assert kid is not None
    await kid.tell(Increment())
    assert parent.statistics().children == 1


async def test_an_actor_without_receive_is_refused_at_spawn(system: troupe.ActorSystem) -> None:
    class Mute(troupe.Actor[Any]):
        pass

    with pytest.raises(TypeError, match="does not implement receive"):
        await system.spawn(Mute)


async def test_issue_17_9_a_cancelled_spawn_leaves_nothing_running(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log: list[str] = []

    class Slow(Counter):
        async def on_start(self) -> None:
            log.append("start")
            await trio.sleep(10)
            log.append("started")

        async def on_stop(self) -> None:
            log.append("stop")

    with trio.move_on_after(1) as scope:
        await system.spawn(Slow, name="slow")
    assert scope.cancelled_caught
    assert system.lookup("/user/slow") is None
    assert log == ["start"]  # on_start was cancelled; on_stop does not run for what never started
    assert system.statistics().alive == 0
    await system.spawn(Slow, name="slow")  # the name is free again
    assert log == ["start", "start", "started"]


async def test_issue_17_9_a_spawn_cancelled_after_on_start_finished_stops_the_actor(
    system: troupe.ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log: list[str] = []

    class Quick(Counter):
        async def on_start(self) -> None:
            log.append("start")
            with trio.CancelScope(shield=True):
                await trio.sleep(10)  # the spawner's cancel cannot stop this on_start
            log.append("started")

        async def on_stop(self) -> None:
            log.append("stop")

    with trio.move_on_after(1) as scope:
        await system.spawn(Quick, name="quick")
    assert scope.cancelled_caught
    assert trio.current_time() == pytest.approx(10)  # the spawn waited for the instance to end
    assert system.lookup("/user/quick") is None
    assert log == ["start", "started", "stop"]
