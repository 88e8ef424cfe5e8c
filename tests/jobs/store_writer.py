"""A child process for the store tests: writes job transitions and prints each acknowledged one.

Usage: python store_writer.py DB COUNT [--mixed]   (COUNT 0: until killed)

Four workers submit jobs one after another, so their transitions share
commits. Lines, each printed once the transition is acknowledged:
``pending ID I`` once submit_job (or delay_task) returned, ``running ID I``
from the body (running is durable before it starts), ``done ID I STATUS``
once the outcome came back (it is durable before it does). ``I`` is the
job's index: `expected` gives what its record must hold.

``--mixed``: names, progress messages, results and errors hold text that
is not UTF-8 (``os.fsdecode`` of a byte that is not); every third job
fails, every fourth is delayed (``pending`` before it runs).
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Any

import trio
import trio.lowlevel

import troupe

BAD = os.fsdecode(b"\xff.csv")  # a lone surrogate, as os.fsdecode gives for a non-UTF-8 file name


def expected(i: int, *, mixed: bool) -> dict[str, Any]:
    """What job ``i``'s record holds once it finished as it should (name: None if it is the task's)."""
    if not mixed:
        return {"name": f"job {i}", "status": "succeeded", "result": i, "error": None, "progress_message": ""}
    text = f"{BAD} {i}"
    fails = i % 3 == 0
    return {
        "name": None if i % 4 == 0 else f"job {text}",
        "status": "failed" if fails else "succeeded",
        "result": None if fails else {"i": i, "text": text},
        "error": f"ValueError: {text}" if fails else None,
        "progress_message": f"half of {text}",
    }


async def work(i: int, mixed: bool) -> object:
    task = troupe.current_task()
    assert task is not None
    print("running", task.job_id, i, flush=True)
    if not mixed:
        await trio.lowlevel.checkpoint()
        return i
    troupe.report_progress(0.5, f"half of {BAD} {i}")
    await trio.lowlevel.checkpoint()
    if i % 3 == 0:
        raise ValueError(f"{BAD} {i}")
    return {"i": i, "text": f"{BAD} {i}"}


async def worker(start: int, count: int, *, mixed: bool) -> None:
    i = start
    while count == 0 or i < start + count:
        want = expected(i, mixed=mixed)
        if mixed and want["name"] is None:
            t = await troupe.delay_task(work, i, mixed, job=True)
            print("pending", t.job_id, i, flush=True)
            await t.execute()
        else:
            t = await troupe.submit_job(work, i, mixed, name=want["name"])
            print("pending", t.job_id, i, flush=True)
        error = await t.error()
        status = "succeeded" if error is None else "failed"
        assert status == want["status"], error
        print("done", t.job_id, i, status, flush=True)
        i += 1


async def main(db: str, count: int, *, mixed: bool) -> None:
    async with troupe.open_system(jobs=db) as system, trio.open_nursery() as nursery:
        for w in range(4):
            nursery.start_soon(functools.partial(worker, w * 1_000_000, count, mixed=mixed))
    assert system.statistics().failures == 0


if __name__ == "__main__":
    trio.run(functools.partial(main, sys.argv[1], int(sys.argv[2]), mixed="--mixed" in sys.argv[3:]))
