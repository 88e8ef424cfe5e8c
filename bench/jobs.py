"""Jobs: durable transitions per second, and what tracking a task as a job costs.

Run with ``make bench`` (or ``python bench/jobs.py``); medians of several runs,
the compared runs alternating within each repeat.

- transitions: C concurrent clients each take jobs through pending -> running
  -> succeeded on ``system.jobs`` (three awaited transitions per job; each is
  answered only once its commit is done), for ``synchronous=full`` (the
  default: survives power loss) and ``normal`` (survives any process crash).
  One client alone shows the unbatched cost: one commit per transition.
- tracked vs untracked: N trivial async tasks started with ``run_task`` and
  awaited, with ``job=True`` and without.

Targets (issue 6): >= 5k durable transitions/s; a job-tracked task costs
<= 2x an untracked one.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from pathlib import Path
from typing import Literal

import trio

import troupe


async def _noop() -> None:
    pass


async def _finished(observer: troupe.Jobs, job_id: str) -> None:
    """The outcome, awaited until durable (the task layer is called back instead)."""
    durable = trio.Event()
    observer.job_finished(job_id, "succeeded", None, None, lambda _: durable.set())
    await durable.wait()


async def transitions(path: Path, sync: Literal["full", "normal"], clients: int, jobs: int) -> float:
    """Durable transitions per second."""
    store = troupe.SQLiteJobStore(path, synchronous=sync)
    async with troupe.open_system(jobs=store) as system:
        observer = system.jobs
        assert observer is not None

        async def client(count: int) -> None:
            for _ in range(count):
                job_id = await observer.job_pending("bench", _noop)
                await observer.job_running(job_id)
                await _finished(observer, job_id)

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(clients):
                nursery.start_soon(client, jobs // clients)
        elapsed = time.perf_counter() - start
    return 3 * (jobs // clients) * clients / elapsed


async def tasks(path: Path | None, n: int, *, concurrent: bool) -> float:
    """Seconds for n trivial tasks started and awaited (as jobs if path).

    Concurrent: n submitters at once (a server taking requests), so that
    transitions that happen together share a commit. Sequential: one
    submitter, each run_task returning only once its pending record is
    durable (one commit per task before the next can start).
    """
    store = None if path is None else troupe.SQLiteJobStore(path)
    job = path is not None
    async with troupe.open_system(jobs=store):

        async def one() -> None:
            t = await troupe.run_task(_noop, job=job)
            await t.result()

        start = time.perf_counter()
        if concurrent:
            async with trio.open_nursery() as nursery:
                for _ in range(n):
                    nursery.start_soon(one)
        else:
            handles = [await troupe.run_task(_noop, job=job) for _ in range(n)]
            for t in handles:
                await t.result()
        return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--tasks", type=int, default=5000)
    args = parser.parse_args()
    r = args.repeat
    print(f"troupe {troupe.__version__}, trio {trio.__version__}, SQLite; median of {r} runs\n")
    met = 0
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.sqlite"
        for sync in ("full", "normal"):
            for clients in (64, 1):
                count = args.jobs if clients > 1 else args.jobs // 10
                rates = [trio.run(transitions, db, sync, clients, count) for _ in range(r)]
                rate = statistics.median(rates)
                line = (
                    f"transitions, synchronous={sync:<6}, {clients:>2} client(s): {rate:>8,.0f}/s "
                    f"(min {min(rates):,.0f}, max {max(rates):,.0f})"
                )
                if clients > 1 and sync == "full":
                    ok = rate >= 5000
                    met += ok
                    line += f"  target >= 5k/s {'ok' if ok else 'MISSED'}"
                print(line)
        print()
        for concurrent in (True, False):
            n = args.tasks if concurrent else args.tasks // 10
            rounds = [
                (
                    trio.run(functools.partial(tasks, None, n, concurrent=concurrent)),
                    trio.run(functools.partial(tasks, db, n, concurrent=concurrent)),
                )
                for _ in range(r)
            ]
            plain = statistics.median(a for a, _ in rounds)
            tracked = statistics.median(b for _, b in rounds)
            ratio = statistics.median(b / a for a, b in rounds)
            shape = "submitted concurrently" if concurrent else "submitted one after another"
            print(f"{n:,} tasks {shape}:")
            print(f"  untracked: {plain:.3f} s ({plain / n * 1e6:.1f} us/task)")
            line = f"  as jobs:   {tracked:.3f} s ({tracked / n * 1e6:.1f} us/task): {ratio:.2f}x"
            if concurrent:
                ok = ratio <= 2.0
                met += ok
                line += f"  target <= 2x {'ok' if ok else 'MISSED'}"
            print(line)
    print(f"\n{met} of 2 targets met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
