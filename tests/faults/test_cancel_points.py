"""A cancellation at every await: tell, ask, spawn, stop, a group restart and the system itself.

Each scenario runs once uncancelled, then once per await of the code under
attack with a cancellation delivered there (`faultkit.each_cancel_point`),
each run in a fresh trio loop on virtual time. After each run: the system
closed without hanging (a ``trio.fail_after`` in virtual time), nothing
hung at its shutdown, every message that was sent was processed once or
dead-lettered once, a cancelled tell sent nothing, every ask ended, and
every actor whose ``on_start`` finished ran ``on_stop`` exactly once.
"""

from __future__ import annotations

import functools
import random
from collections import Counter as Tally
from typing import Any

import attrs
import trio

import troupe

import faultkit


@troupe.message
class Work:
    id: int
    seconds: float = 0.0
    crash: bool = False
    ask: Any = None  # a peer to ask (timeout=None) before answering


@attrs.define
class Book:
    """What a scenario did and what became of it."""

    sent: set[int] = attrs.Factory(set)  # a send that returned (the message is in)
    maybe: set[int] = attrs.Factory(set)  # a send that was cancelled or failed: in at most once
    processed: Tally[int] = attrs.Factory(Tally)
    dead: Tally[int] = attrs.Factory(Tally)
    started: Tally[str] = attrs.Factory(Tally)
    stopped: Tally[str] = attrs.Factory(Tally)
    cut: Tally[str] = attrs.Factory(Tally)  # instances cut off mid-message (no on_stop, by design)
    asks: dict[int, str] = attrs.Factory(dict)

    def check(self, system: troupe.ActorSystem) -> None:
        assert system.statistics().stuck_at_shutdown == (), "the shutdown ran out of time"
        assert all(n == 1 for n in self.processed.values()), "processed twice"
        assert all(n == 1 for n in self.dead.values()), "dead-lettered twice"
        assert not set(self.processed) & set(self.dead), "processed and dead-lettered"
        lost = self.sent - set(self.processed) - set(self.dead)
        assert not lost, f"sent but neither processed nor dead-lettered: {sorted(lost)}"
        stray = set(self.processed) | set(self.dead)
        stray -= self.sent | self.maybe
        assert not stray, f"processed or dead-lettered but never sent: {sorted(stray)}"
        assert "pending" not in self.asks.values(), "an ask never ended"
        for i, outcome in self.asks.items():
            if outcome == "answered":
                assert self.processed[i] == 1
        for path, n in self.started.items():
            ended = self.stopped[path] + self.cut[path]
            assert ended == n, (
                f"{path}: on_start ran {n} time(s), on_stop {self.stopped[path]}, cut off {self.cut[path]}"
            )


class Worker(troupe.Actor[Work]):
    def __init__(self, book: Book, *, start_seconds: float = 0.0, stop_seconds: float = 0.0) -> None:
        self.book = book
        self.start_seconds = start_seconds
        self.stop_seconds = stop_seconds

    async def on_start(self) -> None:
        await trio.sleep(self.start_seconds)
        self.book.started[self.ref.path] += 1

    async def on_stop(self) -> None:
        self.book.stopped[self.ref.path] += 1
        await trio.sleep(self.stop_seconds)

    async def receive(self, msg: Work) -> int:
        await trio.sleep(msg.seconds)
        if msg.ask is not None:
            await _ask(self.book, msg.ask, Work(100 + msg.id), None)
        if msg.crash:
            raise RuntimeError(f"work {msg.id} crashed")
        self.book.processed[msg.id] += 1
        return msg.id


class Group(troupe.Actor[Any]):
    """Three workers under OneForAll; answers with their refs."""

    supervisor: troupe.SupervisorStrategy = troupe.OneForAll(
        max_restarts=5, within=60.0, shutdown_timeout=1.0
    )

    def __init__(self, book: Book) -> None:
        self.book = book

    async def on_start(self) -> None:
        self.kids = [
            await self.context.spawn(functools.partial(Worker, self.book, stop_seconds=0.2), name=f"w{i}")
            for i in range(3)
        ]

    async def receive(self, msg: Any) -> list[troupe.ActorRef[Work]]:
        return self.kids


async def _collect(system: troupe.ActorSystem, book: Book, task_status: trio.TaskStatus[None]) -> None:
    async with system.dead_letters.listen() as stream:
        task_status.started()
        async for letter in stream:
            if isinstance(letter.message, Work):
                book.dead[letter.message.id] += 1
            if letter.reason is troupe.DeadLetterReason.INTERRUPTED:
                book.cut[letter.recipient] += 1


async def _run(scenario: Any, seed: str, cut: faultkit.Cut) -> None:
    """Open a system and a dead-letter collector, run ``scenario(system, book, cut, rng)``, check the book."""
    book = Book()
    with trio.fail_after(600):  # virtual time: a hang fails here
        async with trio.open_nursery() as outer:
            async with troupe.open_system() as system:
                await outer.start(_collect, system, book)
                await scenario(system, book, cut, faultkit.rng(seed))
            await trio.testing.wait_all_tasks_blocked()
            outer.cancel_scope.cancel()
    book.check(system)


async def _send(book: Book, i: int, send: Any) -> None:
    book.maybe.add(i)
    await send()
    book.maybe.discard(i)
    book.sent.add(i)


async def _ask(book: Book, ref: troupe.ActorRef[Work], msg: Work, timeout: float | None) -> None:
    book.asks[msg.id] = "pending"
    book.maybe.add(msg.id)
    try:
        await ref.ask(msg, timeout=timeout)
    except troupe.TroupeError as exc:
        book.asks[msg.id] = type(exc).__name__
    except trio.Cancelled:
        book.asks[msg.id] = "cancelled"
        raise
    else:
        book.asks[msg.id] = "answered"


async def tell_scenario(
    system: troupe.ActorSystem, book: Book, cut: faultkit.Cut, rng: random.Random
) -> None:
    ref = await system.spawn(
        functools.partial(Worker, book), mailbox=troupe.Mailbox(capacity=rng.choice([0, 1, 2]))
    )
    with cut:
        for i in range(6):  # the mailbox is full from the second on: tells wait for room
            await _send(book, i, functools.partial(ref.tell, Work(i, seconds=rng.choice([0.0, 0.1, 0.5]))))
    await trio.sleep(5)


async def ask_scenario(system: troupe.ActorSystem, book: Book, cut: faultkit.Cut, rng: random.Random) -> None:
    ref = await system.spawn(functools.partial(Worker, book), mailbox=troupe.Mailbox(capacity=2))
    with cut:
        await _ask(book, ref, Work(0), None)
        await _ask(book, ref, Work(1, seconds=1.0), rng.choice([0.5, 2.0]))  # may time out: processed later
        await _ask(book, ref, Work(2, crash=True), None)  # ActorCrashed
        await _ask(book, ref, Work(3, seconds=rng.choice([0.0, 0.2])), 5.0)
    await trio.sleep(2)


async def spawn_scenario(
    system: troupe.ActorSystem, book: Book, cut: faultkit.Cut, rng: random.Random
) -> None:
    refs = []
    with cut:
        for i in range(3):
            ref = await system.spawn(
                functools.partial(Worker, book, start_seconds=rng.choice([0.0, 0.5, 0.5])), name=f"s{i}"
            )
            refs.append(ref)
            await _send(book, i, functools.partial(ref.tell, Work(i)))
    await trio.testing.wait_all_tasks_blocked()
    names = {r.name for r in refs}
    for i in range(3):  # a spawn that was cancelled left nothing behind
        assert (system.lookup(f"/user/s{i}") is not None) == (f"s{i}" in names)


async def stop_scenario(
    system: troupe.ActorSystem, book: Book, cut: faultkit.Cut, rng: random.Random
) -> None:
    refs = [
        await system.spawn(functools.partial(Worker, book, stop_seconds=rng.choice([0.0, 0.3])), name=f"t{i}")
        for i in range(3)
    ]
    for i, ref in enumerate(refs):
        await _send(book, i, functools.partial(ref.tell, Work(i, seconds=rng.choice([0.0, 0.4]))))
        await _send(book, 10 + i, functools.partial(ref.tell, Work(10 + i)))
    asked = []
    with cut:
        for ref in refs:
            asked.append(ref)
            await ref.stop()
    await trio.sleep(5)
    assert not any(ref.alive for ref in asked), "a stop, even a cancelled one, is final"


async def group_restart_scenario(
    system: troupe.ActorSystem, book: Book, cut: faultkit.Cut, rng: random.Random
) -> None:
    group = await system.spawn(functools.partial(Group, book), name="g")
    with cut:
        kids = await group.ask("kids")
        await _send(book, 0, functools.partial(kids[1].tell, Work(0, seconds=rng.choice([0.5, 2.0]))))
        await _send(book, 4, functools.partial(kids[0].tell, Work(4, seconds=0.5)))
        await _send(book, 5, functools.partial(kids[0].tell, Work(5, crash=True)))  # the group restarts
        # the sibling's ask waits behind the crash, for the restart (a group restart must not deadlock)
        await _send(book, 6, functools.partial(kids[2].tell, Work(6, ask=kids[0])))
        await _ask(book, kids[0], Work(1, crash=True), None)
        await _ask(book, kids[2], Work(2), None)
        await _ask(book, kids[1], Work(3), 2.0)
        await trio.sleep(0.1)


async def system_cancel_scenario(system: troupe.ActorSystem, book: Book, rng: random.Random) -> None:
    """Run inside a cut around ``open_system``: a cancellation from outside at each point."""
    group = await system.spawn(functools.partial(Group, book), name="g")
    kids = await group.ask("kids")
    await _send(book, 0, functools.partial(kids[1].tell, Work(0, seconds=0.5)))
    await _ask(book, kids[0], Work(1, crash=True), None)
    await _send(book, 2, functools.partial(kids[2].tell, Work(2, seconds=rng.choice([0.5, 3.0]))))
    await _ask(book, kids[1], Work(3), None)
    await trio.sleep(5)


async def task_creation_scenario(
    system: troupe.ActorSystem, book: Book, cut: faultkit.Cut, rng: random.Random
) -> None:
    """Tasks (with channels) created under a cut: nothing is left behind by a cancelled creation."""

    async def body(ctx: troupe.TaskContext) -> None:
        await ctx.channel.write("hello")

    await troupe.run_task(body, channel=True)  # the task layer's root and its first spawns exist
    await trio.sleep(1)
    baseline = system.statistics().alive
    made = []
    with cut:
        for _ in range(3):
            made.append(await troupe.run_task(body, channel=rng.choice([True, 4])))  # noqa: PERF401 - kept up to the cut
    await trio.sleep(1)
    assert all(t.finished for t in made)
    assert system.statistics().alive == baseline, "a cancelled task creation left an actor behind"


SCENARIOS = {
    "tell": tell_scenario,
    "ask": ask_scenario,
    "spawn": spawn_scenario,
    "stop": stop_scenario,
    "group restart": group_restart_scenario,
    "task creation": task_creation_scenario,
}


VARIANTS = faultkit.budget(3, 60)
"""Each scenario runs with this many random choices of durations and capacities."""


def test_a_cancellation_at_every_await_loses_nothing() -> None:
    runs: Tally[str] = Tally()
    for name, scenario in SCENARIOS.items():
        for variant in range(VARIANTS):
            runs[name] += faultkit.each_cancel_point(functools.partial(_run, scenario, f"{name}:{variant}"))
    faultkit.report("cancel points", variants=VARIANTS, **dict(runs))


def test_a_cancellation_of_the_whole_system_at_every_await_loses_nothing() -> None:
    async def scenario(seed: str, cut: faultkit.Cut) -> None:
        book = Book()
        with trio.fail_after(600):
            async with trio.open_nursery() as outer:
                with cut:
                    async with troupe.open_system(shutdown_timeout=10.0) as system:
                        await outer.start(_collect, system, book)
                        await system_cancel_scenario(system, book, faultkit.rng(seed))
                await trio.testing.wait_all_tasks_blocked()
                outer.cancel_scope.cancel()
        book.check(system)

    runs = sum(
        faultkit.each_cancel_point(functools.partial(scenario, f"system:{v}")) for v in range(VARIANTS)
    )
    faultkit.report("cancel points, system cancelled from outside", variants=VARIANTS, runs=runs)
