"""Milestones (HPC-GAP) and counters (Grassroots)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import troupe


async def test_milestone_targets_are_a_set_with_default_zero(system: troupe.ActorSystem) -> None:
    default = await troupe.new_milestone()
    assert not await default.is_achieved()
    await default.contribute(0)
    assert await default.is_achieved()

    m = await troupe.new_milestone(targets=["a", "b", "a"])
    await m.contribute("a")
    await m.contribute("a")  # twice counts once
    assert not await m.is_achieved()
    await m.contribute("b")
    assert await m.is_achieved()


async def test_an_empty_milestone_is_achieved_at_creation(system: troupe.ActorSystem) -> None:
    m = await troupe.new_milestone(targets=[])
    assert await m.is_achieved()
    with trio.fail_after(1):
        await m.wait()


async def test_unknown_targets_are_value_errors_even_after_achievement(system: troupe.ActorSystem) -> None:
    m = await troupe.new_milestone(targets=[1])
    with pytest.raises(ValueError, match="no target 2"):
        await m.contribute(2)
    await m.achieve()
    await m.achieve()  # harmless
    with pytest.raises(ValueError, match="no target 2"):
        await m.contribute(2)


async def test_milestone_signals_subscribers_and_waiters(
    system: troupe.ActorSystem, probe: troupe.TestProbe
) -> None:
    m = await troupe.new_milestone(targets=["x"])
    await m.subscribe(probe.ref)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(m.wait)
        await trio.testing.wait_all_tasks_blocked()
        await m.contribute("x")
    signal = await probe.expect(troupe.MilestoneAchieved)
    assert signal.milestone is m
    await m.subscribe(probe.ref)  # already achieved: at once
    await probe.expect(troupe.MilestoneAchieved)


async def test_counter_signals_exactly_once_and_keeps_counting(
    system: troupe.ActorSystem, probe: troupe.TestProbe
) -> None:
    c = await troupe.new_counter(3)
    other = await troupe.TestProbe.create(system, name="other")
    await c.subscribe(probe.ref)
    await c.subscribe(other.ref)  # every subscriber is signalled (the original wakes one)
    assert await c.increment() == 1
    assert await c.increment(5) == 6  # jumps past the limit
    assert await c.increment() == 7
    reached = await probe.expect(troupe.LimitReached)
    assert (reached.counter, reached.count) == (c, 6)
    await other.expect(troupe.LimitReached)
    await probe.expect_no_message(0.05)
    with trio.fail_after(1):
        await c.wait()  # a waiter after the limit returns at once
    assert await c.value() == 7


async def test_set_limit_resets_and_rearms(system: troupe.ActorSystem, probe: troupe.TestProbe) -> None:
    c = await troupe.new_counter(1)
    await c.subscribe(probe.ref)
    await c.increment()
    await probe.expect(troupe.LimitReached)
    await c.set_limit(2)
    assert await c.value() == 0
    await c.subscribe(probe.ref)
    await c.increment()
    await probe.expect_no_message(0.05)
    await c.increment()
    assert (await probe.expect(troupe.LimitReached)).count == 2


async def test_limit_zero_is_reached_at_creation_and_negative_is_refused(
    system: troupe.ActorSystem, probe: troupe.TestProbe
) -> None:
    zero = await troupe.new_counter(0)
    with trio.fail_after(1):
        await zero.wait()
    await zero.subscribe(probe.ref)
    await probe.expect(troupe.LimitReached)
    with pytest.raises(ValueError, match="limit"):
        await troupe.new_counter(-1)
    with pytest.raises(ValueError, match="limit"):
        await zero.set_limit(-5)


async def test_a_counter_gates_a_scheduled_task(system: troupe.ActorSystem) -> None:
    c = await troupe.new_counter(2)

    async def report() -> str:
        return "both done"

    t = await troupe.schedule_task(c, report)
    for _ in range(2):
        await (await troupe.run_task(c.increment)).result()
    assert await t.result() == "both done"


@settings(max_examples=40, deadline=None)
@given(
    limit=st.integers(min_value=0, max_value=12),
    steps=st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=12),
    workers=st.integers(min_value=1, max_value=4),
)
async def test_concurrent_increments_signal_exactly_once(limit: int, steps: list[int], workers: int) -> None:
    async with troupe.open_system() as system:
        probe = await troupe.TestProbe.create(system)
        c = await troupe.new_counter(limit)
        await c.subscribe(probe.ref)

        async def worker(k: int) -> None:
            for i, n in enumerate(steps):
                if i % workers == k:
                    await c.increment(n)

        async with trio.open_nursery() as nursery:
            for k in range(workers):
                nursery.start_soon(worker, k)
        await trio.testing.wait_all_tasks_blocked()
        signals = [m for m in probe.received() if isinstance(m, troupe.LimitReached)]
        total = sum(steps)
        assert len(signals) == (1 if total >= limit else 0)
        assert await c.value() == total
        if signals:
            assert signals[0].count >= limit


# -- issue 17 ---------------------------------------------------------------


async def test_issue_17_7_waits_parked_when_the_system_closes_raise_actor_stopped() -> None:
    outcomes: dict[str, BaseException | None] = {}

    async def waiting(key: str, wait: Callable[[], Awaitable[object]]) -> None:
        try:
            await wait()
        except troupe.ActorStopped as exc:
            outcomes[key] = exc
        else:
            outcomes[key] = None

    with trio.fail_after(5):
        async with trio.open_nursery() as outside, troupe.open_system():
            m = await troupe.new_milestone(targets=["a", "b"])
            c = await troupe.new_counter(3)
            await m.contribute("a")
            await c.increment()
            outside.start_soon(waiting, "milestone", m.wait)
            outside.start_soon(waiting, "counter", c.wait)
            outside.start_soon(waiting, "wait_all", lambda: troupe.wait_all(m, c))
            outside.start_soon(waiting, "wait_any", lambda: troupe.wait_any(m, c))
            await trio.testing.wait_all_tasks_blocked()
            assert outcomes == {}
    assert set(outcomes) == {"milestone", "counter", "wait_all", "wait_any"}
    for key, error in outcomes.items():
        assert isinstance(error, troupe.ActorStopped), key
        assert "shut down" in str(error)


async def test_issue_17_7_waits_after_the_system_closed_raise_at_once_unless_they_hold() -> None:
    async with troupe.open_system():
        m = await troupe.new_milestone()
        c = await troupe.new_counter(2)
        done = await troupe.new_milestone(targets=[])
        reached = await troupe.new_counter(0)
    with trio.fail_after(1):
        for wait in (m.wait, c.wait, lambda: troupe.wait_all(m), lambda: troupe.wait_any(c)):
            with pytest.raises(troupe.ActorStopped, match="can no longer"):
                await wait()
        with pytest.raises(troupe.ActorStopped):
            await m.contribute(0)  # as before
        with pytest.raises(troupe.ActorStopped):
            await c.increment()
        await done.wait()  # achieved before the close: still true
        await reached.wait()
        assert await troupe.wait_any(m, done) == 1  # one of them holds


async def test_issue_17_7_a_wait_that_holds_when_the_system_closes_returns(
    autojump_clock: trio.testing.MockClock,
) -> None:
    returned: list[str] = []
    async with trio.open_nursery() as outside, troupe.open_system():
        m = await troupe.new_milestone()

        async def wait_then_note() -> None:
            await m.wait()
            returned.append("returned")

        outside.start_soon(wait_then_note)
        await trio.testing.wait_all_tasks_blocked()
        await m.achieve()
    assert returned == ["returned"]
