"""The task layer under attack (issue 17): cancels at every await, random schedules, shutdowns.

Each test reports what it ran (``faultkit.report``); CI runs a small fixed
budget, ``make soak`` a large random one.
"""

from __future__ import annotations

import collections
import itertools
import signal
import tempfile
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import troupe

import faultkit
from kit import session_members


def test_issue_17_7_every_wait_ends_whatever_await_the_body_is_cut_at() -> None:
    """Waiters outside the system on milestones, counters and tasks: cut the body anywhere, then close."""
    seen = collections.Counter[str]()

    async def scenario(cut: faultkit.Cut) -> None:
        ended: list[str] = []
        started = 0

        async def waiting(wait: Callable[[], Awaitable[object]]) -> None:
            try:
                await wait()
            except troupe.ActorStopped:
                ended.append("stopped")
            else:
                ended.append("returned")

        with trio.fail_after(600):
            async with trio.open_nursery() as outside, troupe.open_system():
                m = await troupe.new_milestone(targets=[1, 2])
                c = await troupe.new_counter(2)
                with cut:
                    for wait in (m.wait, c.wait, lambda: troupe.wait_any(m, c)):
                        outside.start_soon(waiting, wait)
                        started += 1
                    t = await troupe.schedule_task(troupe.any_of(m, c), trio.sleep, 5)
                    outside.start_soon(waiting, lambda: troupe.wait_all(m, t))
                    started += 1
                    await m.contribute(1)
                    await c.increment()
                    await m.contribute(2)
                    await c.increment()
                    await t.result()
                await trio.testing.wait_all_tasks_blocked()
        assert len(ended) == started  # every waiter ended: none hangs after the close
        seen["waiters"] += started
        seen["stopped"] += ended.count("stopped")
        seen["returned"] += ended.count("returned")

    runs = faultkit.each_cancel_point(scenario)
    faultkit.report("issue 17.7 waits at every cut", cut_points=runs, **seen, hung=0)


def test_issue_17_15_18_every_task_has_a_known_outcome_whatever_await_the_body_is_cut_at() -> None:
    """Bodies that exit, fail, run for ever or wait; cut anywhere; the system closes and never raises."""
    seen = collections.Counter[str]()

    async def exits() -> None:
        await trio.lowlevel.checkpoint()
        raise SystemExit(9)

    async def scenario(cut: faultkit.Cut) -> None:
        tasks: list[troupe.TaskHandle[Any]] = []
        forced: set[str] = set()
        with trio.fail_after(600):
            async with troupe.open_system() as system:
                gate = await troupe.new_milestone()
                with cut:
                    tasks.append(await troupe.run_task(exits))
                    tasks.append(await troupe.run_task(trio.sleep_forever))
                    tasks.append(await troupe.schedule_task(gate, trio.sleep, 1))
                    tasks.append(await troupe.delay_task(exits))
                    tasks.append(await troupe.immediate_task(exits))
                    await tasks[1].cancel(force=True)
                    forced.add(tasks[1].name)
                    await troupe.wait_all(tasks[0], tasks[3])
                    await gate.achieve()
                    await tasks[2].result()
                failures = system.statistics().failures
        assert failures == 0  # no task body crashed an actor
        for t in tasks:
            assert t.finished, t
            error = await t.error()
            if isinstance(error, troupe.TaskCancelled):
                assert error.forced
                assert error.shutdown == (t.name not in forced), (t, error)
                seen["cancelled by shutdown" if error.shutdown else "cancelled by force"] += 1
            elif isinstance(error, SystemExit):
                seen["failed with SystemExit"] += 1
            else:
                assert error is None, error
                seen["succeeded"] += 1
        seen["tasks"] += len(tasks)

    runs = faultkit.each_cancel_point(scenario)
    faultkit.report("issue 17.15/18 outcomes at every cut", cut_points=runs, **seen, unknown=0)


def test_issue_17_20_random_forced_cancels_never_leave_a_slot_held() -> None:
    """Stuck thread tasks, forced cancels, releases and new tasks in a random order on a small pool."""
    seen = collections.Counter[str]()

    @faultkit.fuzz_settings(ci=25, soak=1_000)
    @given(
        workers=st.integers(min_value=1, max_value=3),
        ops=st.lists(st.sampled_from(["block", "cancel", "release", "quick"]), min_size=1, max_size=14),
    )
    def run(workers: int, ops: list[str]) -> None:
        trio.run(_slots_scenario, workers, ops, seen)

    run()
    faultkit.report("issue 17.20 thread slots", **seen, slots_left_held=0)


async def _slots_scenario(workers: int, ops: list[str], seen: collections.Counter[str]) -> None:
    threads = troupe.ThreadExecutor(max_workers=workers)
    blocked: list[tuple[troupe.TaskHandle[Any], threading.Event]] = []
    quick: list[troupe.TaskHandle[Any]] = []
    releases: list[threading.Event] = []
    try:
        with trio.fail_after(20):
            async with troupe.open_system():
                for op in ops:
                    if op == "block":
                        release = threading.Event()
                        releases.append(release)
                        blocked.append((await troupe.run_task(release.wait, 20, executor=threads), release))
                    elif op == "cancel" and blocked:
                        t, _ = blocked.pop(0)
                        await t.cancel(force=True)
                        assert isinstance(await t.error(), troupe.TaskCancelled)
                        seen["abandoned"] += 1
                    elif op == "release" and blocked:
                        # all of them: which ones hold the slots is up to trio's scheduling, and a
                        # task still waiting for a slot cannot end before one holding it does
                        for _, release in blocked:
                            release.set()
                        for t, _ in blocked:
                            assert await t.result() is True
                        blocked.clear()
                    elif op == "quick":
                        quick.append(await troupe.run_task(sum, [1, 2], executor=threads))
                    seen["operations"] += 1
                for t, _ in blocked:  # what is still stuck is cancelled: every slot must come back
                    await t.cancel(force=True)
                    await t.error()
                for t in quick:  # they got slots although stuck threads were abandoned
                    assert await t.result() == 3
                assert threads.limiter.borrowed_tokens == 0
                done = await troupe.run_task(sum, [2, 2], executor=threads)  # the pool still works
                assert await done.result() == 4
                seen["examples"] += 1
    finally:
        for release in releases:
            release.set()


_TRAPS = {
    "dies": "",
    "traps and exits": "trap 'exit 0' TERM; ",
    "ignores": "trap '' TERM; ",
}


def test_issue_17_21_cancels_at_random_moments_end_every_command_and_its_group() -> None:
    """Cooperative and forced cancels of commands that die, trap or ignore SIGTERM, at three moments.

    Every combination once in CI; under ``--soak`` many rounds of them in a random order.
    """
    seen = collections.Counter[str]()
    cases = list(itertools.product(sorted(_TRAPS), ["at once", "after 1 ms", "once ready"], [False, True]))
    rng = faultkit.rng("issue 17.21 command cancels")
    for _ in range(faultkit.budget(ci=1, soak=20)):
        rng.shuffle(cases)
        for kind, moment, then_force in cases:
            with tempfile.TemporaryDirectory() as tmp:
                trio.run(_command_scenario, kind, moment, then_force, Path(tmp) / "pid", seen)
    faultkit.report("issue 17.21 command cancels", **seen, leftover_processes=0)


def _pid(pid_file: Path) -> int | None:
    text = pid_file.read_text().strip() if pid_file.exists() else ""
    return int(text) if text else None


async def _command_scenario(
    kind: str, moment: str, then_force: bool, pid_file: Path, seen: collections.Counter[str]
) -> None:
    script = f"{_TRAPS[kind]}echo $$ > {pid_file}; sleep 30 & wait"
    async with troupe.open_system():
        t = await troupe.run_command(["sh", "-c", script], check=False)
        if moment == "after 1 ms":
            await trio.sleep(0.001)
        elif moment == "once ready":  # its trap is set: what it does with SIGTERM is its own choice
            with trio.fail_after(10):
                while _pid(pid_file) is None:  # noqa: ASYNC110 - the OS gives no event for it
                    await trio.sleep(0.001)
        await t.cancel()
        if kind == "ignores" or then_force:
            with trio.move_on_after(0.2):
                await t.error()
            if kind == "ignores" and moment == "once ready":
                assert not t.finished  # it ignored the SIGTERM: it runs on
            await t.cancel(force=True)
        with trio.fail_after(20):
            error = await t.error()
        assert isinstance(error, troupe.TaskCancelled), error
        seen[f"{kind}, {moment}: {'forced' if error.forced else 'cooperative'}"] += 1
        if not error.forced:
            try:
                result = await t.result()
            except troupe.TaskCancelled:  # cancelled before the command started: it never ran
                assert moment != "once ready"
                result = None
            if result is not None:
                expected = 0 if kind == "traps and exits" else -signal.SIGTERM
                if moment == "once ready":
                    assert result.returncode == expected, result
                else:  # killed before its trap was set, it dies of SIGTERM
                    assert result.returncode in {expected, -signal.SIGTERM}, result
        sid = _pid(pid_file)
        if sid is not None:  # it ran: nothing of its process group is left
            with trio.fail_after(10):
                while session_members(sid):  # noqa: ASYNC110 - the OS gives no event for it
                    await trio.sleep(0.01)
        seen["commands"] += 1
