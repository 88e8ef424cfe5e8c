"""The examples of HPC-GAP's Tasks document, in troupe.

Run it with ``troupe run examples/gap_tasks.py`` (or ``python examples/gap_tasks.py``).
Each section prints what GAP's document shows.
"""

from __future__ import annotations

import math

import trio

import troupe


def product(lo: int, hi: int) -> int:
    """lo * (lo+1) * ... * (hi-1): pure Python, CPU-bound (runs in a worker process)."""
    result = 1
    for i in range(lo, hi):
        result *= i
    return result


async def count_until_cancelled() -> int:
    """Loops until cancelled; then the task's result is 314 (GAP's OnTaskCancellationReturn)."""
    while True:
        troupe.on_cancellation_return(314)
        await trio.sleep(0.001)


async def main(system: troupe.ActorSystem) -> dict[str, object]:  # noqa: ARG001 - tasks find the system themselves
    results: dict[str, object] = {}

    # GAP: RunTask on SortedList, then TaskResult
    t = await troupe.run_task(sorted, [3, 1, 2])
    results["sorted"] = await t.result()
    print("sorted list:", results["sorted"])

    # Factorial of 10000 split across two process tasks
    low = await troupe.run_task(product, 1, 5001, executor="process")
    high = await troupe.run_task(product, 5001, 10001, executor="process")
    await troupe.wait_all(low, high)
    results["factorial"] = await low.result() * await high.result() == math.factorial(10000)
    print("factorial(10000) from two worker processes matches math.factorial:", results["factorial"])

    # DelayTask: nothing runs until one WaitTask starts both
    a = await troupe.delay_task(lambda: 3 * 3)
    b = await troupe.delay_task(lambda: 4 * 4)
    print("delayed tasks started before waiting?", a.started, b.started)
    await troupe.wait_all(a, b)
    print("after wait_all:", await a.result(), await b.result())

    # ScheduleTask([t1, t2], ...) gives 3*3 + 4*4 = 25
    async def add() -> int:
        return await a.result() + await b.result()

    total = await troupe.schedule_task([a, b], add)
    results["scheduled"] = await total.result()
    print("scheduled on both: 3*3 + 4*4 =", results["scheduled"])

    # WaitAnyTask: the lowest index among the finished tasks
    async def after(seconds: float) -> float:
        await trio.sleep(seconds)
        return seconds

    slow = await troupe.run_task(after, 1.0)
    fast = await troupe.run_task(after, 0.01)
    results["wait_any"] = await troupe.wait_any(slow, fast)
    print("wait_any(slow, fast) ->", results["wait_any"])
    await slow.cancel(force=True)

    # GAP: CancelTask, and OnTaskCancellationReturn with 314
    looping = await troupe.run_task(count_until_cancelled)
    await trio.sleep(0.01)
    await looping.cancel()
    results["cancelled"] = await looping.result()
    print("cancelled loop returned", results["cancelled"], "and succeeded() is", await looping.succeeded())

    # Milestones: a task scheduled on a milestone runs once every target is contributed
    milestone = await troupe.new_milestone(targets=["left", "right"])
    joined = await troupe.schedule_task(milestone, lambda: "both halves are in")
    await milestone.contribute("left")
    print("after one contribution, started?", joined.started)
    await milestone.contribute("right")
    results["milestone"] = await joined.result()
    print("milestone:", results["milestone"])
    return results


if __name__ == "__main__":  # needed by process tasks: worker processes import this file

    async def _standalone() -> None:
        async with troupe.open_system() as system:
            await main(system)

    trio.run(_standalone)
