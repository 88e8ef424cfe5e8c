"""troupe.testing.explore, random and inject_failure through the public API."""

from __future__ import annotations

import contextlib
import random as stdlib_random
import threading
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import troupe
from troupe.testing import (
    ExploreError,
    ExploreSummary,
    ScheduleFailure,
    ScheduleHang,
    explore,
    inject_failure,
)

from kit import Boom, Counter, GetCount, Increment, Sleep


@troupe.message
class Ping:
    pass


@troupe.message
class Peer:
    ref: troupe.ActorRef[Any]


class Asker(troupe.Actor[Ping | Peer]):
    """Answers a Ping by asking its peer (with no timeout): two of them deadlock."""

    peer: troupe.ActorRef[Any] | None = None

    async def receive(self, msg: Ping | Peer) -> object:
        if isinstance(msg, Peer):
            self.peer = msg.ref
            return None
        assert self.peer is not None
        return await self.peer.ask(Ping(), timeout=None)


async def three_senders() -> None:
    """Three actors tell one counter: many orders, one total."""
    async with troupe.open_system() as system:
        counter = await system.spawn(Counter, name="counter")

        class Sender(troupe.Actor[Ping]):
            async def receive(self, msg: Ping) -> None:
                for _ in range(3):
                    await counter.tell(Increment())

        senders = [await system.spawn(Sender, name=f"s{i}") for i in range(3)]
        for sender in senders:
            await sender.tell(Ping())
        await trio.testing.wait_all_tasks_blocked()
        assert await counter.ask(GetCount()) == 9


def test_a_passing_body_gives_a_summary_of_distinct_interleavings() -> None:
    summary = explore(three_senders, schedules=40, seed=5)
    assert isinstance(summary, ExploreSummary)
    assert summary.schedules == 40
    assert summary.seed == 5
    assert summary.strategy == "random"
    assert 1 < summary.interleavings <= 40  # the schedules really differed
    assert summary.steps > 40
    assert "40 schedules (random, seed 5)" in str(summary)
    again = explore(three_senders, schedules=40, seed=5)
    assert again.interleavings == summary.interleavings  # the same seed, the same schedules
    assert again.steps == summary.steps


def test_pct_also_explores_and_is_deterministic() -> None:
    first = explore(three_senders, schedules=30, seed=2, strategy="pct")
    second = explore(three_senders, schedules=30, seed=2, strategy="pct")
    assert first.interleavings > 1
    assert (first.interleavings, first.steps) == (second.interleavings, second.steps)


def test_a_random_seed_is_drawn_and_reported_when_none_is_given() -> None:
    seeds = {explore(three_senders, schedules=1).seed for _ in range(3)}
    assert len(seeds) == 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"schedules": 0}, "schedules must be an int >= 1, got 0"),
        ({"schedules": True}, "schedules must be an int >= 1, got True"),
        ({"strategy": "dfs"}, "strategy must be one of 'random', 'pct', got 'dfs'"),
        ({"seed": -1}, r"seed must be None or an int >= 0 \(a ScheduleFailure's .seed\), got -1"),
        ({"seed": "7"}, "seed must be None or an int >= 0"),
        ({"max_steps": 0}, "max_steps must be an int >= 1, got 0"),
    ],
)
def test_bad_arguments_are_refused_before_anything_runs(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        explore(three_senders, **options)


def test_a_body_that_is_not_async_is_refused() -> None:
    def sync_body() -> None:
        pass

    with pytest.raises(TypeError, match="body must be an async function taking no arguments"):
        explore(sync_body)  # type: ignore[arg-type]


async def test_explore_inside_trio_is_refused_with_what_to_do() -> None:
    with pytest.raises(
        ExploreError, match=r"cannot run inside trio: call it from plain code such as a `def test_"
    ):
        explore(three_senders, schedules=1)


def test_a_failure_names_seed_strategy_error_and_trace_and_chains_the_cause() -> None:
    async def body() -> None:
        async with troupe.open_system() as system:
            counter = await system.spawn(Counter, name="counter")
            await counter.tell(Increment(by=2))
            assert await counter.ask(GetCount()) == 3, "the count"

    with pytest.raises(ScheduleFailure) as caught:
        explore(body, schedules=5, seed=9)
    failure = caught.value
    assert failure.seed == 9
    assert failure.schedule == 0
    assert failure.strategy == "random"
    assert isinstance(failure.__cause__, AssertionError)
    assert failure.error is failure.__cause__
    assert failure.trace == ("/user/counter took Increment(by=2)", "/user/counter took ask GetCount()")
    text = str(failure)
    assert "schedule 0 failed (random strategy, seed 9): AssertionError: the count" in text
    assert "explore(body, seed=9, schedules=1, strategy='random')" in text
    assert "2. /user/counter took ask GetCount()" in text
    assert isinstance(failure, troupe.TroupeError)
    assert isinstance(failure, AssertionError)


def test_a_circular_ask_without_timeout_is_a_hang_naming_both_actors_and_the_body() -> None:
    async def body() -> None:
        async with troupe.open_system() as system:
            a = await system.spawn(Asker, name="a")
            b = await system.spawn(Asker, name="b")
            await a.tell(Peer(b))
            await b.tell(Peer(a))
            await a.ask(Ping(), timeout=None)

    with pytest.raises(ScheduleHang) as caught:
        explore(body, schedules=3, seed=1)
    hang = caught.value
    assert "every task is blocked" in str(hang)
    assert "a deadlock" in str(hang)
    waiting = "\n".join(hang.waiting)
    assert "the body: waiting at" in waiting
    assert "await a.ask(Ping(), timeout=None)" in waiting
    assert "/user/a: waiting at" in waiting
    assert "/user/b: waiting at" in waiting
    assert "in receive: return await self.peer.ask(Ping(), timeout=None)" in waiting
    assert len(hang.waiting) == 3
    assert hang.__cause__ is None
    assert isinstance(hang, ScheduleFailure)


def test_waiting_on_an_event_nobody_sets_is_a_hang_not_a_real_hang() -> None:
    async def body() -> None:
        await trio.Event().wait()

    with pytest.raises(ScheduleHang, match="a deadlock") as caught:
        explore(body, schedules=1)
    (waiting,) = caught.value.waiting
    assert "the body: waiting at" in waiting


def test_a_livelock_is_a_hang_after_max_steps() -> None:
    @troupe.message
    class Ball:
        pass

    class Player(troupe.Actor[Ball | Peer]):
        peer: troupe.ActorRef[Any] | None = None

        async def receive(self, msg: Ball | Peer) -> None:
            if isinstance(msg, Peer):
                self.peer = msg.ref
            elif self.peer is not None:
                await self.peer.tell(Ball())

    async def body() -> None:
        async with troupe.open_system() as system:
            a = await system.spawn(Player, name="a")
            b = await system.spawn(Player, name="b")
            await a.tell(Peer(b))
            await b.tell(Peer(a))
            await a.tell(Ball())
            await trio.Event().wait()

    with pytest.raises(ScheduleHang, match=r"max_steps \(2,000\) scheduling steps ran") as caught:
        explore(body, schedules=2, max_steps=2000)
    assert "took Ball()" in caught.value.trace[-1]
    assert "... " in str(caught.value)  # a long trace is cut to its end in the message


def test_timers_and_timeouts_run_in_virtual_time() -> None:
    async def body() -> None:
        async with troupe.open_system() as system:
            counter = await system.spawn(Counter, name="counter")
            await trio.sleep(3600)
            with pytest.raises(troupe.AskTimeout):
                await counter.ask(Sleep(60), timeout=30)
            assert trio.current_time() == 3630

    summary = explore(body, schedules=5)
    assert summary.schedules == 5


def test_starting_a_thread_is_refused_at_the_call_and_named() -> None:
    async def body() -> None:
        await trio.to_thread.run_sync(sum, [1, 2])

    with pytest.raises(
        ExploreError, match=r"started a thread \(trio.to_thread.run_sync\) at .*test_explore.py:\d+ in body"
    ):
        explore(body, schedules=1)


def test_a_thread_the_body_swallows_is_still_refused() -> None:
    async def body() -> None:
        with contextlib.suppress(ExploreError):
            threading.Thread(target=print).start()

    with pytest.raises(ExploreError, match=r"threading.Thread.start"):
        explore(body, schedules=1)
    thread = threading.Thread(target=lambda: None)
    thread.start()  # restored afterwards
    thread.join()


def test_sync_task_bodies_and_a_job_store_run_inline(tmp_path: Path) -> None:
    def double(n: int) -> int:
        assert threading.current_thread() is threading.main_thread()
        return 2 * n

    async def body() -> None:
        async with troupe.open_system(jobs=tmp_path / "jobs.db") as system:
            task = await troupe.run_task(double, 21, job=True)
            assert await task.result() == 42
            assert system.jobs is not None

    assert explore(body, schedules=3).schedules == 3


def test_random_is_seeded_per_schedule_and_the_random_module_too() -> None:
    drawn: list[tuple[float, float]] = []

    async def body() -> None:
        drawn.append((troupe.testing.random().random(), stdlib_random.random()))

    state = stdlib_random.getstate()
    explore(body, schedules=3, seed=4)
    explore(body, schedules=3, seed=4)
    assert drawn[:3] == drawn[3:]
    assert len(set(drawn[:3])) == 3
    assert stdlib_random.getstate() == state  # the module's state is given back
    assert troupe.testing.random() is not troupe.testing.random()  # outside: fresh generators


def test_the_seed_of_schedule_n_replays_it_alone() -> None:
    seen: list[str] = []

    async def body() -> None:
        async with troupe.open_system() as system:
            counter = await system.spawn(Counter, name="counter")
            a, b = Increment(by=1), Increment(by=10)

            async def send(msg: Increment) -> None:
                await counter.tell(msg)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send, a)
                nursery.start_soon(send, b)
            count = await counter.ask(GetCount())
            seen.append(",".join(str(x) for x in (count, troupe.testing.random().randrange(1000))))
            assert troupe.testing.random().random() < 0.9  # some schedules fail

    with pytest.raises(ScheduleFailure) as caught:
        explore(body, schedules=200, seed=0)
    failed_at = caught.value.schedule
    assert failed_at > 0
    last = seen[-1]
    seen.clear()
    with pytest.raises(ScheduleFailure) as again:
        explore(body, seed=caught.value.seed, schedules=1)
    assert seen == [last]
    assert again.value.trace == caught.value.trace


async def test_inject_failure_crashes_the_next_message_and_the_supervisor_restarts(
    system: troupe.ActorSystem,
) -> None:
    counter = await system.spawn(Counter, name="counter")
    await counter.tell(Increment(by=5))
    assert await counter.ask(GetCount()) == 5
    inject_failure(counter, RuntimeError("disk full"))
    async with system.dead_letters.listen() as letters:
        with pytest.raises(troupe.ActorCrashed) as crashed:
            await counter.ask(GetCount())
        letter = await letters.receive()
    assert isinstance(crashed.value.__cause__, RuntimeError)
    assert letter.reason is troupe.DeadLetterReason.FAILED
    assert await counter.ask(GetCount()) == 0  # restarted: a fresh instance, no failure armed
    await counter.tell(Increment())
    assert await counter.ask(GetCount()) == 1


async def test_inject_failure_refuses_what_it_cannot_do(system: troupe.ActorSystem) -> None:
    counter = await system.spawn(Counter, name="counter")
    with pytest.raises(TypeError, match="needs an Exception instance"):
        inject_failure(counter, KeyboardInterrupt())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs a local ActorRef"):
        inject_failure("counter", ValueError())  # type: ignore[arg-type]
    await counter.stop()
    with pytest.raises(troupe.ActorStopped):
        inject_failure(counter, ValueError())


def test_inject_failure_under_explore_hits_the_very_next_message() -> None:
    async def body() -> None:
        async with troupe.open_system() as system:
            counter = await system.spawn(Counter, name="counter")
            for _ in range(5):
                counter.tell_nowait(Increment())
            inject_failure(counter, ValueError("injected"))
            await trio.testing.wait_all_tasks_blocked()
            # the first of the five failed; the restarted instance took the other four
            assert await counter.ask(GetCount()) == 4
            raise _ShowTrace

    with pytest.raises(ScheduleFailure) as caught:
        explore(body, schedules=1, seed=3)
    assert isinstance(caught.value.error, _ShowTrace)
    assert caught.value.trace[:2] == (
        "/user/counter took Increment(by=1)",
        "/user/counter failed on Increment(by=1): ValueError: injected",
    )
    assert caught.value.trace[2:] == ("/user/counter took Increment(by=1)",) * 4 + (
        "/user/counter took ask GetCount()",
    )


class _ShowTrace(Exception):
    pass


def test_boom_is_a_crash_in_the_trace() -> None:
    async def body() -> None:
        async with troupe.open_system() as system:
            counter = await system.spawn(Counter, name="counter")
            await counter.tell(Boom("no"))
            await trio.testing.wait_all_tasks_blocked()
            assert await counter.ask(GetCount()) == 1

    with pytest.raises(ScheduleFailure) as caught:
        explore(body, schedules=1)
    assert caught.value.trace[:2] == (
        "/user/counter took Boom(text='no')",
        "/user/counter failed on Boom(text='no'): ValueError: no",
    )
