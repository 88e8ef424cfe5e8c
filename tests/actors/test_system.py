"""``ActorSystem``: finding actors by class, and reaching them from plain threads."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import trio
import trio.testing

import troupe

from kit import Boom, Counter, GetCount, Increment


class Worker(Counter):
    pass


class SpecialWorker(Worker):
    pass


class Team(troupe.Actor[Any]):
    async def on_start(self) -> None:
        await self.context.spawn(Worker, name="w1")
        await self.context.spawn(SpecialWorker, name="w2")

    async def receive(self, msg: Any) -> None:
        return None


async def test_issue_18_actors_of_a_class_lists_the_live_ones_in_tree_order(
    system: troupe.ActorSystem,
) -> None:
    team = await system.spawn(Team, name="team")
    solo = await system.spawn(Worker, name="solo")
    counter = await system.spawn(Counter, name="counter")
    assert [r.path for r in system.actors()] == [
        "/user/team",
        "/user/team/w1",
        "/user/team/w2",
        "/user/solo",
        "/user/counter",
    ]
    assert [r.path for r in system.actors(of=Worker)] == ["/user/team/w1", "/user/team/w2", "/user/solo"]
    assert system.actors(of=SpecialWorker) == [system.lookup("/user/team/w2")]
    await solo.stop()
    assert [r.path for r in system.actors(of=Worker)] == ["/user/team/w1", "/user/team/w2"]
    await team.stop()
    assert system.actors(of=Worker) == []
    assert system.actors() == [counter]


async def test_issue_18_an_actor_restarting_is_still_listed(system: troupe.ActorSystem) -> None:
    supervisor = troupe.OneForOne(backoff=troupe.Backoff(60, 60))

    class Pool(troupe.Actor[Any]):
        async def on_start(self) -> None:
            self.worker = await self.context.spawn(Worker, name="w")

        async def receive(self, msg: Any) -> Any:
            return self.worker

    Pool.supervisor = supervisor
    pool = await system.spawn(Pool, name="pool")
    worker = await pool.ask("worker")
    await worker.tell(Boom())  # down for a minute, waiting out its backoff
    await trio.testing.wait_all_tasks_blocked()
    assert system.actors(of=Worker) == [worker]


async def test_issue_18_from_thread_tells_and_asks_from_a_real_thread(system: troupe.ActorSystem) -> None:
    counter = await system.spawn(Counter, name="counter")
    seen: list[object] = []

    def in_a_thread() -> None:
        assert threading.current_thread() is not threading.main_thread()
        system.from_thread.tell(counter, Increment(2))
        system.from_thread.tell_nowait(counter, Increment(3))
        seen.append(system.from_thread.ask(counter, GetCount()))
        with pytest.raises(troupe.MessageTypeError):
            system.from_thread.tell(counter, "not a counter message")  # type: ignore[misc]

    await trio.to_thread.run_sync(in_a_thread)
    assert seen == [5]


async def test_issue_18_from_thread_refuses_the_systems_own_thread(system: troupe.ActorSystem) -> None:
    counter = await system.spawn(Counter, name="counter")
    with pytest.raises(RuntimeError, match="for threads other than the system 'test''s own"):
        system.from_thread.tell(counter, Increment())
    assert await counter.ask(GetCount()) == 0  # nothing was sent


def test_issue_18_from_thread_after_the_trio_run_ended_is_actor_stopped() -> None:
    kept: dict[str, Any] = {}

    async def main() -> None:
        async with troupe.open_system(name="gone") as system:
            kept["ref"] = await system.spawn(Counter, name="counter")
            kept["portal"] = system.from_thread

    trio.run(main)
    with pytest.raises(troupe.ActorStopped, match="its trio run has ended"):
        kept["portal"].ask(kept["ref"], GetCount())
