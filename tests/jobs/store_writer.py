"""A child process for the store tests: writes job transitions and prints each acknowledged one.

Usage: python store_writer.py DB COUNT   (COUNT 0: until killed)
Lines: ``pending ID`` once submit_job returned, ``running ID`` from the
body (running is durable before it starts), ``done ID`` once result()
returned (the outcome is durable before it does).
"""

from __future__ import annotations

import sys

import trio
import trio.lowlevel

import troupe


async def work(i: int) -> int:
    task = troupe.current_task()
    assert task is not None
    print("running", task.job_id, flush=True)
    await trio.lowlevel.checkpoint()
    return i


async def worker(start: int, count: int) -> None:
    i = start
    while count == 0 or i < start + count:
        t = await troupe.submit_job(work, i, name=f"job {i}")
        print("pending", t.job_id, flush=True)
        assert await t.result() == i
        print("done", t.job_id, flush=True)
        i += 1


async def main(db: str, count: int) -> None:
    async with troupe.open_system(jobs=db) as system, trio.open_nursery() as nursery:
        for w in range(4):
            nursery.start_soon(worker, w * 1_000_000, count)
    assert system.statistics().failures == 0


if __name__ == "__main__":
    trio.run(main, sys.argv[1], int(sys.argv[2]))
