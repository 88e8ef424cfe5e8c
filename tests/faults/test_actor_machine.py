"""The runtime under random operations, with an exact ledger (a hypothesis state machine).

Rules spawn workers and supervisors (all three strategies, every restart
type, small mailboxes with every overflow policy), tell, tell_nowait and ask
from sender lanes, stop, crash, watch, start timers and move virtual time.
After every step: no message processed twice or both processed and
dead-lettered, per-sender order kept at every receiver, no watcher told
twice. At the end the system is closed and every message sent is processed
once or dead-lettered once, every ask and every stop has ended, and no trio
task is left behind.

The system runs in a trio loop of its own thread, on a `MockClock` that
moves only when a rule says so (and jumps freely for the final shutdown),
so each step is deterministic; trio's scheduling is seeded by hypothesis.
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
from collections import Counter as Tally
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio
import trio.testing
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

import troupe

import faultkit

LANES = 3


@troupe.message
class Msg:
    id: int
    lane: int
    seq: int
    kind: str = "ok"  # ok, slow, crash, stop_self, tell_self, ask_peer
    seconds: float = 0.0
    peer: Any = None  # ask_peer: whom to ask (an actor spawned earlier, so asks never form a cycle)


@troupe.message
class StartTimer:
    id: int
    delay: float


@troupe.message
class Watch:
    target: Any


@troupe.message
class SpawnChild:
    uid: int
    restart: troupe.Restart
    capacity: int
    overflow: troupe.Overflow


@attrs.define
class Ledger:
    """What happened, recorded in the trio thread (read there too)."""

    sent: set[int] = attrs.Factory(set)
    timer_ids: set[int] = attrs.Factory(set)
    processed: Tally[int] = attrs.Factory(Tally)
    dead: Tally[int] = attrs.Factory(Tally)
    order: dict[tuple[int, int], list[int]] = attrs.Factory(dict)  # (receiver uid, lane) -> seqs
    terminated: Tally[tuple[int, str]] = attrs.Factory(Tally)  # (watcher uid, watched path)
    asks: dict[int, str] = attrs.Factory(dict)  # message id -> outcome
    stops_pending: int = 0
    other_dead: int = 0
    next_id: int = 10**9  # ids the actors allocate themselves (tell_self, ask_peer)

    def new_id(self) -> int:
        self.next_id += 1
        self.sent.add(self.next_id)
        return self.next_id


class Worker(troupe.Actor[Msg | StartTimer | Watch | troupe.Terminated]):
    def __init__(self, uid: int, ledger: Ledger, *, on_stop_sleeps: bool) -> None:
        self.uid = uid
        self.ledger = ledger
        self.on_stop_sleeps = on_stop_sleeps

    async def receive(self, msg: Msg | StartTimer | Watch | troupe.Terminated) -> object:
        ledger = self.ledger
        match msg:
            case Msg(kind="crash"):
                raise RuntimeError(f"crash {msg.id}")
            case Msg():
                if msg.kind == "slow":
                    await trio.sleep(msg.seconds)
                elif msg.kind == "tell_self":
                    await self._tell_self()
                elif msg.kind == "ask_peer" and msg.peer is not None:
                    await self._ask_peer(msg.peer)
                ledger.processed[msg.id] += 1
                if msg.lane >= 0:
                    ledger.order.setdefault((self.uid, msg.lane), []).append(msg.seq)
                if msg.kind == "stop_self":
                    self.context.stop()
                return msg.id
            case StartTimer(id=i, delay=delay):
                self.context.timers.start_single(i, delay, Msg(i, -1, 0))
            case Watch(target=target):
                if target != self.ref:
                    self.context.watch(target)
            case troupe.Terminated(ref=ref):
                ledger.terminated[(self.uid, ref.path)] += 1
        return None

    async def _tell_self(self) -> None:
        i = self.ledger.new_id()
        try:
            await self.ref.tell(Msg(i, -1, 0))
        except troupe.MailboxFull:
            self.ledger.sent.discard(i)  # refused: never sent

    async def _ask_peer(self, peer: troupe.ActorRef[Any]) -> None:
        i = self.ledger.new_id()
        outcome = "answered"
        try:
            await peer.ask(Msg(i, -1, 0), timeout=None)
        except troupe.TroupeError as exc:
            outcome = type(exc).__name__
        self.ledger.asks[i] = outcome

    async def on_stop(self) -> None:
        if self.on_stop_sleeps:
            await trio.sleep(0.5)


class Sup(troupe.Actor[SpawnChild | Msg]):
    def __init__(self, uid: int, ledger: Ledger, strategy: troupe.SupervisorStrategy) -> None:
        self.uid = uid
        self.ledger = ledger
        self.supervisor = strategy

    async def receive(self, msg: SpawnChild | Msg) -> object:
        match msg:
            case SpawnChild(uid=uid, restart=restart, capacity=capacity, overflow=overflow):
                factory = functools.partial(Worker, uid, self.ledger, on_stop_sleeps=uid % 3 == 0)
                return await self.context.spawn(
                    factory, restart=restart, mailbox=troupe.Mailbox(capacity=capacity, overflow=overflow)
                )
            case Msg(kind="crash"):
                raise RuntimeError(f"supervisor crash {msg.id}")
            case Msg():
                self.ledger.processed[msg.id] += 1
                if msg.lane >= 0:
                    self.ledger.order.setdefault((self.uid, msg.lane), []).append(msg.seq)
                return msg.id
        return None


KINDS = st.sampled_from(["ok", "ok", "ok", "slow", "crash", "stop_self", "tell_self", "ask_peer"])
STRATEGIES = st.sampled_from(["one", "all", "rest"])


def _strategy(name: str) -> troupe.SupervisorStrategy:
    if name == "all":
        return troupe.OneForAll(max_restarts=2, within=5.0, shutdown_timeout=1.0)
    if name == "rest":
        return troupe.RestForOne(max_restarts=2, within=5.0, shutdown_timeout=1.0)
    return troupe.OneForOne(max_restarts=2, within=5.0, backoff=troupe.Backoff(0.1, 1.0))


class Runtime:
    """One actor system in a trio loop of its own thread; `call` runs a coroutine there."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.clock = trio.testing.MockClock()
        self.ready = threading.Event()
        self.token: trio.lowlevel.TrioToken | None = None
        self.error: BaseException | None = None
        self.lanes: list[trio.MemorySendChannel[Callable[[], Awaitable[None]]]] = []
        self.lanes_done = 0
        self.cancel_close = False
        self.dead_seen = 0
        self.tasks_after_close: list[str] = []
        self.thread = threading.Thread(target=self._thread, daemon=True)
        self.thread.start()
        self.ready.wait()
        if self.error is not None:
            raise self.error

    def _thread(self) -> None:
        try:
            trio.run(self._main, clock=self.clock)
        except BaseException as exc:  # reported to the test thread
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        self.token = trio.lowlevel.current_trio_token()
        self.close = trio.Event()
        async with trio.open_nursery() as outer:
            self.outer = outer
            for _ in range(LANES):
                send, receive = trio.open_memory_channel[Callable[[], Awaitable[None]]](1000)
                self.lanes.append(send)
                outer.start_soon(self._lane, receive)
            root = troupe.OneForOne(max_restarts=1000, within=1.0)
            with trio.CancelScope() as from_outside:
                async with troupe.open_system(supervisor=root, shutdown_timeout=30.0) as system:
                    self.system = system
                    outer.start_soon(self._collect, system)
                    await trio.testing.wait_all_tasks_blocked()
                    self.ready.set()
                    await self.close.wait()
                    for lane in self.lanes:
                        lane.close()
                    self.clock.autojump_threshold = 0  # the shutdown runs in virtual time
                    if self.cancel_close:  # closed by a cancellation from outside, not by leaving
                        from_outside.cancel()
                        await trio.sleep_forever()
            await trio.testing.wait_all_tasks_blocked()
            self.tasks_after_close = sorted(_task_names())
            outer.cancel_scope.cancel()

    async def _lane(self, commands: trio.MemoryReceiveChannel[Callable[[], Awaitable[None]]]) -> None:
        async for command in commands:
            await command()
        self.lanes_done += 1

    async def _collect(self, system: troupe.ActorSystem) -> None:
        async with system.dead_letters.listen() as stream:
            async for letter in stream:
                self.dead_seen += 1
                message = letter.message
                if isinstance(message, Msg):
                    self.ledger.dead[message.id] += 1
                else:
                    self.ledger.other_dead += 1

    def call(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``fn()`` in the trio thread, then let everything that can run, run.

        If ``fn`` waits for time to pass (an actor restarting after its
        backoff, a slow message ahead in a mailbox), virtual time jumps
        until it is done; 120 virtual seconds without an end is a hang.
        """
        clock = self.clock

        async def step() -> Any:
            result: list[Any] = []

            async def run() -> None:
                result.append(await fn())

            async with trio.open_nursery() as nursery:
                nursery.start_soon(run)
                await trio.testing.wait_all_tasks_blocked()
                if not result:
                    clock.autojump_threshold = 0
                    try:
                        with trio.fail_after(120):
                            while not result:  # noqa: ASYNC110 - the rule's own task, in virtual time
                                await trio.sleep(0.01)
                    finally:
                        clock.autojump_threshold = math.inf
            await trio.testing.wait_all_tasks_blocked()
            return result[0]

        return trio.from_thread.run(step, trio_token=self.token)

    def finish(self) -> None:
        trio.from_thread.run_sync(self.close.set, trio_token=self.token)
        self.thread.join(timeout=60)
        if self.thread.is_alive():
            raise AssertionError("the system did not close (a hang in its shutdown)")
        if self.error is not None:
            raise self.error


def _task_names() -> list[str]:
    root = trio.lowlevel.current_root_task()
    assert root is not None
    stack = [root]
    names = []
    while stack:
        task = stack.pop()
        names.append(task.name)
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return names


class ActorMachine(RuleBasedStateMachine):
    workers = Bundle("workers")
    sups = Bundle("sups")

    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger()
        self.runtime = Runtime(self.ledger)
        self.ids = itertools.count(1)
        self.seqs = [itertools.count() for _ in range(LANES)]
        self.ops = 0
        self.spawned: list[troupe.ActorRef[Any]] = []  # in spawn order
        self.watched: set[tuple[troupe.ActorRef[Any], troupe.ActorRef[Any]]] = set()

    # -- actors -----------------------------------------------------------

    @initialize(target=sups, strategy=STRATEGIES)
    def first_sup(self, strategy: str) -> Any:
        return self.spawn_sup(strategy)

    @rule(target=sups, strategy=STRATEGIES)
    def spawn_sup(self, strategy: str) -> troupe.ActorRef[Any]:
        uid = next(self.ids)
        system = self.runtime.system
        factory = functools.partial(Sup, uid, self.ledger, _strategy(strategy))
        ref: troupe.ActorRef[Any] = self.runtime.call(lambda: system.spawn(factory))
        self.spawned.append(ref)
        return ref

    @rule(
        target=workers,
        sup=sups,
        restart=st.sampled_from(list(troupe.Restart)),
        capacity=st.sampled_from([0, 1, 3, 1024]),
        overflow=st.sampled_from(list(troupe.Overflow)),
    )
    def spawn_worker(
        self, sup: troupe.ActorRef[Any], restart: troupe.Restart, capacity: int, overflow: troupe.Overflow
    ) -> troupe.ActorRef[Any] | MultipleResults[Any]:
        uid = next(self.ids)

        async def spawn() -> Any:
            try:
                return await sup.ask(SpawnChild(uid, restart, capacity, overflow), timeout=None)
            except troupe.TroupeError:
                return multiple()  # the supervisor is gone: no worker

        self.ops += 1
        found: troupe.ActorRef[Any] | MultipleResults[Any] = self.runtime.call(spawn)
        if isinstance(found, troupe.ActorRef):
            self.spawned.append(found)
        return found

    # -- messages ---------------------------------------------------------

    def _msg(self, lane: int, kind: str, to: troupe.ActorRef[Any]) -> Msg:
        i = next(self.ids)
        self.ledger.sent.add(i)
        seconds = 0.3 if kind == "slow" else 0.0
        peer = None
        if kind == "ask_peer":
            # only actors spawned before the asker: asks never form a cycle (a user's deadlock)
            earlier = self.spawned[: self.spawned.index(to)] if to in self.spawned else []
            peer = earlier[i % len(earlier)] if earlier else None
        return Msg(i, lane, next(self.seqs[lane]), kind, seconds, peer)

    def _on_lane(self, lane: int, command: Callable[[], Awaitable[None]]) -> None:
        self.ops += 1
        self.runtime.call(functools.partial(self.runtime.lanes[lane].send, command))

    @rule(to=st.one_of(workers, sups), lane=st.integers(0, LANES - 1), kind=KINDS)
    def tell(self, to: troupe.ActorRef[Any], lane: int, kind: str) -> None:
        msg = self._msg(lane, kind, to)
        self._on_lane(lane, functools.partial(to.tell, msg))

    @rule(to=st.one_of(workers, sups), lane=st.integers(0, LANES - 1), kind=KINDS)
    def tell_nowait(self, to: troupe.ActorRef[Any], lane: int, kind: str) -> None:
        msg = self._msg(lane, kind, to)
        ledger = self.ledger

        async def command() -> None:
            try:
                to.tell_nowait(msg)
            except troupe.MailboxFull:
                ledger.sent.discard(msg.id)  # refused: never sent
            await trio.lowlevel.checkpoint()

        self._on_lane(lane, command)

    @rule(
        to=st.one_of(workers, sups),
        lane=st.integers(0, LANES - 1),
        kind=KINDS,
        timeout=st.sampled_from([None, 0.2, 2.0]),
    )
    def ask(self, to: troupe.ActorRef[Any], lane: int, kind: str, timeout: float | None) -> None:
        msg = self._msg(lane, kind, to)
        ledger = self.ledger
        ledger.asks[msg.id] = "pending"

        async def command() -> None:
            try:
                answer = await to.ask(msg, timeout=timeout)
            except troupe.TroupeError as exc:
                ledger.asks[msg.id] = type(exc).__name__
            else:
                assert answer == msg.id
                ledger.asks[msg.id] = "answered"

        self._on_lane(lane, command)

    @rule(to=workers, delay=st.sampled_from([0.0, 0.1, 1.0]))
    def timer(self, to: troupe.ActorRef[Any], delay: float) -> None:
        i = next(self.ids)
        self.ledger.timer_ids.add(i)
        self.runtime.call(functools.partial(to.tell, StartTimer(i, delay)))
        self.ops += 1

    @rule(watcher=workers, to=st.one_of(workers, sups))
    def watch(self, watcher: troupe.ActorRef[Any], to: troupe.ActorRef[Any]) -> None:
        # once per pair: watching an actor that is already dead again would be told again
        if (watcher, to) in self.watched:
            return
        self.watched.add((watcher, to))
        self.runtime.call(functools.partial(watcher.tell, Watch(to)))
        self.ops += 1

    @rule(to=st.one_of(workers, sups))
    def stop(self, to: troupe.ActorRef[Any]) -> None:
        ledger = self.ledger
        ledger.stops_pending += 1

        async def stop() -> None:
            await to.stop()
            ledger.stops_pending -= 1

        async def start() -> None:
            self.runtime.outer.start_soon(stop)
            await trio.lowlevel.checkpoint()

        self.runtime.call(start)
        self.ops += 1

    @rule(seconds=st.sampled_from([0.05, 0.3, 1.0, 6.0]))
    def advance(self, seconds: float) -> None:
        clock = self.runtime.clock

        async def jump() -> None:
            clock.jump(seconds)
            await trio.lowlevel.checkpoint()

        self.runtime.call(jump)

    @precondition(lambda self: not self.runtime.cancel_close)
    @rule()
    def close_by_cancel(self) -> None:
        """The system will be closed by a cancellation from outside instead of by leaving its block."""
        self.runtime.cancel_close = True

    @precondition(lambda self: self.ops > 0)
    @rule()
    def settle(self) -> None:
        self.runtime.call(trio.lowlevel.checkpoint)

    # -- invariants -------------------------------------------------------

    @invariant()
    def nothing_twice(self) -> None:
        def check() -> None:
            ledger = self.ledger
            assert all(n == 1 for n in ledger.processed.values()), "a message was processed twice"
            assert all(n == 1 for n in ledger.dead.values()), "a message was dead-lettered twice"
            both = set(ledger.processed) & set(ledger.dead)
            assert not both, f"processed and dead-lettered: {sorted(both)}"
            for key, seqs in ledger.order.items():
                assert seqs == sorted(seqs), f"order broken at receiver {key[0]} from lane {key[1]}: {seqs}"
            assert all(n == 1 for n in ledger.terminated.values()), "a watcher was told twice"

        async def run() -> None:
            check()
            await trio.lowlevel.checkpoint()

        self.runtime.call(run)

    def teardown(self) -> None:
        runtime = self.runtime
        runtime.finish()
        ledger = self.ledger
        # an ask that timed out while it waited for room in a full mailbox sent nothing
        timed_out = {i for i, outcome in ledger.asks.items() if outcome == "AskTimeout"}
        assert all(ledger.processed[i] + ledger.dead[i] <= 1 for i in timed_out)
        lost = ledger.sent - timed_out - set(ledger.processed) - set(ledger.dead)
        assert not lost, f"{len(lost)} message(s) neither processed nor dead-lettered: {sorted(lost)[:10]}"
        timers = ledger.timer_ids
        assert all(ledger.processed[i] + ledger.dead[i] <= 1 for i in timers)
        unexpected = (set(ledger.processed) | set(ledger.dead)) - ledger.sent - timers
        assert not unexpected, f"messages nobody sent: {sorted(unexpected)}"
        hung = [i for i, outcome in ledger.asks.items() if outcome == "pending"]
        assert not hung, f"asks that never ended: {hung}"
        for i, outcome in ledger.asks.items():
            if outcome == "answered":
                assert ledger.processed[i] == 1, f"ask {i} answered but not processed"
            elif outcome in {"ActorStopped", "ActorCrashed", "MailboxFull"}:
                assert ledger.processed[i] == 0, f"ask {i} failed ({outcome}) but was processed"
        assert ledger.stops_pending == 0, "a stop() never returned"
        assert runtime.lanes_done == LANES, "a sender lane hung"
        assert runtime.system.dead_letters.count == runtime.dead_seen
        stuck = runtime.system.statistics().stuck_at_shutdown
        assert not stuck, f"the shutdown timed out (a hang) with {stuck} still running"
        left = set(runtime.tasks_after_close) - _OURS
        assert not left, f"trio tasks left after the system closed: {sorted(left)}"
        _totals["examples"] += 1
        _totals["operations"] += self.ops
        _totals["messages"] += len(ledger.sent)
        _totals["processed"] += len(ledger.processed)
        _totals["dead_letters"] += len(ledger.dead)
        _totals["asks"] += len(ledger.asks)
        _totals["lost"] += len(lost)
        _totals["closed_by_cancel"] += runtime.cancel_close


_totals: Tally[str] = Tally()
_OURS = {
    "<init>",
    "<TrioToken.run_sync_soon task>",
    "test_actor_machine.Runtime._main",
    "test_actor_machine.Runtime._collect",
}


def test_runtime_machine() -> None:
    _totals.clear()
    run_state_machine_as_test(
        ActorMachine, settings=faultkit.fuzz_settings(ci=100, soak=3000, stateful_step_count=40)
    )
    faultkit.report("actor state machine", **dict(_totals))
