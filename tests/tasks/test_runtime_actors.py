"""The runtime's shared actors (a Dask session, the worker pool): one task's cancel is not another's failure.

A runtime actor starts in the task that first needs it, and a spawn
cancelled during ``on_start`` gives the start up (the actor stops). A
second task waiting on the same actor then asks a new one. CI once saw the
opposite: one task of a thousand, not cancelled, ended with ``ActorStopped``
because another task's forced cancel stopped the Dask session holder they
shared (tests/tasks/test_dask_attacks.py, about 1 run in 3 under load).
"""

from __future__ import annotations

import itertools

import trio
import trio.testing

import troupe
from troupe.tasks._root import ask_runtime_actor


@troupe.message
class Which:
    pass


def slow_first() -> type[troupe.Actor[Which]]:
    """An actor class whose first instance never finishes ``on_start``; the others start at once."""
    numbers = itertools.count(1)

    class Holder(troupe.Actor[Which]):
        def __init__(self) -> None:
            self.number = next(numbers)

        async def on_start(self) -> None:
            if self.number == 1:
                await trio.sleep_forever()  # connecting, say: given up when its spawner is cancelled

        async def receive(self, msg: Which) -> int:
            return self.number

    return Holder


async def test_a_second_asker_gets_a_new_actor_when_the_first_askers_cancel_gave_its_start_up() -> None:
    holder = slow_first()
    async with troupe.open_system() as system, trio.open_nursery() as nursery:
        first = trio.CancelScope()
        answers: list[int] = []

        async def ask(scope: trio.CancelScope) -> None:
            with scope:
                answers.append(await ask_runtime_actor(system, "holder", holder, Which()))

        nursery.start_soon(ask, first)
        await trio.testing.wait_all_tasks_blocked()  # the first instance is in on_start
        nursery.start_soon(ask, trio.CancelScope())
        await trio.testing.wait_all_tasks_blocked()  # the second asker waits on the same actor
        first.cancel()
    assert first.cancelled_caught
    assert answers == [2]  # the second asker's answer, from a new instance


async def test_the_runtime_actors_already_started_are_asked_as_they_are(
    autojump_clock: trio.abc.Clock,
) -> None:
    holder = slow_first()
    async with troupe.open_system() as system:
        with trio.move_on_after(1):  # the first instance's start, given up
            await ask_runtime_actor(system, "holder", holder, Which())
        assert await ask_runtime_actor(system, "holder", holder, Which()) == 2
        assert await ask_runtime_actor(system, "holder", holder, Which()) == 2  # the same one
