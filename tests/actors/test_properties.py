"""Random traffic: every message is processed or dead-lettered, once."""

from __future__ import annotations

import contextlib

import trio
import trio.lowlevel
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import troupe


@troupe.message
class Op:
    sender: int
    seq: int
    crash: bool = False


class Tracker(troupe.Actor[Op]):
    def __init__(self, processed: list[Op]) -> None:
        self.processed = processed

    async def receive(self, msg: Op) -> int:
        if msg.seq % 3 == 0:
            await trio.lowlevel.checkpoint()  # sometimes yield mid-message
        if msg.crash:
            raise RuntimeError(f"crash on {msg}")
        self.processed.append(msg)
        return msg.seq


KINDS = st.sampled_from(["tell", "tell_nowait", "ask", "crash", "yield", "stop"])
PLANS = st.lists(st.lists(KINDS, max_size=25), min_size=1, max_size=3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plans=PLANS,
    capacity=st.integers(min_value=0, max_value=3),
    overflow=st.sampled_from([troupe.Overflow.DROP_NEW, troupe.Overflow.DROP_OLD]),
)
async def test_every_message_is_processed_or_dead_lettered_exactly_once(
    plans: list[list[str]], capacity: int, overflow: troupe.Overflow
) -> None:
    processed: list[Op] = []
    sent: list[Op] = []
    letters: list[troupe.DeadLetter] = []
    lenient = troupe.OneForOne(max_restarts=10_000, within=1)
    async with troupe.open_system(supervisor=lenient) as system:
        ref = await system.spawn(lambda: Tracker(processed), mailbox=troupe.Mailbox(capacity, overflow))
        async with system.dead_letters.listen() as stream:

            async def sender(k: int, plan: list[str]) -> None:
                for seq, kind in enumerate(plan):
                    msg = Op(k, seq, crash=(kind == "crash"))
                    if kind == "stop":
                        await ref.stop()
                        continue
                    if kind == "yield":
                        await trio.lowlevel.checkpoint()
                        continue
                    sent.append(msg)
                    if kind == "tell_nowait":
                        ref.tell_nowait(msg)
                    elif kind == "ask":
                        with contextlib.suppress(troupe.ActorStopped, troupe.MailboxFull):
                            assert await ref.ask(msg, timeout=None) == seq
                    else:
                        await ref.tell(msg)

            async with trio.open_nursery() as nursery:
                for k, plan in enumerate(plans):
                    nursery.start_soon(sender, k, plan)
            await ref.stop()
            while True:
                try:
                    letters.append(stream.receive_nowait())
                except trio.WouldBlock:
                    break
        nursery_of_system = system._nursery
    dead = [d.message for d in letters]
    assert sorted(map(repr, processed + dead)) == sorted(map(repr, sent))
    assert system.dead_letters.count == len(dead)
    assert all(not m.crash for m in processed)
    crashes = [d for d in letters if isinstance(d.message, Op) and d.message.crash]
    assert all(
        d.reason
        in {troupe.DeadLetterReason.FAILED, troupe.DeadLetterReason.STOPPED, troupe.DeadLetterReason.DROPPED}
        for d in crashes
    )
    for k in range(len(plans)):
        seqs = [m.seq for m in processed if m.sender == k]
        assert seqs == sorted(seqs)
    assert nursery_of_system.child_tasks == frozenset()


@troupe.message
class Grow:
    """Spawn a child (its ref comes back), or fail now."""

    fail: bool = False


class Node(troupe.Actor[Grow]):
    async def receive(self, msg: Grow) -> troupe.ActorRef[Grow]:
        if msg.fail:
            raise RuntimeError("a planned failure")
        return await self.context.spawn(Node)


TREE_OPS = st.lists(
    st.tuples(st.sampled_from(["spawn", "child", "stop", "fail"]), st.integers(min_value=0, max_value=50)),
    max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=TREE_OPS, restart=st.sampled_from(list(troupe.Restart)))
async def test_alive_counts_exactly_the_live_actors(
    ops: list[tuple[str, int]], restart: troupe.Restart
) -> None:
    """``statistics().alive`` (a counter: the dashboard reads it often) equals the actors alive, always."""
    async with troupe.open_system() as system:
        base = system.statistics().alive  # the system's own actors
        refs: list[troupe.ActorRef[Grow]] = []
        for op, pick in ops:
            live = [r for r in refs if r.alive]
            if op == "spawn" or not live:
                refs.append(await system.spawn(Node, restart=restart))
            elif op == "child":
                with contextlib.suppress(troupe.TroupeError):
                    refs.append(await live[pick % len(live)].ask(Grow()))
            elif op == "stop":
                await live[pick % len(live)].stop()
            else:
                with contextlib.suppress(troupe.TroupeError):
                    await live[pick % len(live)].ask(Grow(fail=True))
            await trio.testing.wait_all_tasks_blocked()
            stats = system.statistics()
            assert stats.alive == base + sum(r.alive for r in refs)
            assert stats.actors_started == base + len(refs)
