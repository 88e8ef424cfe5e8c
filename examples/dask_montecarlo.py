"""A Monte Carlo estimate of pi, its chunks run as tasks on a Dask cluster.

Run it with ``troupe run examples/dask_montecarlo.py`` (or ``python
examples/dask_montecarlo.py``). It needs troupe's dask extra: ``pip install
'trio-troupe[dask]'``. With a job store, ``troupe run
examples/dask_montecarlo.py --jobs .troupe/jobs.sqlite``, each chunk is a job
and the live view shows how far it has got.

- ``troupe.DaskExecutor(n_workers=2)`` starts a Dask ``LocalCluster`` of two
  worker processes for the system's lifetime; it is closed when the system
  shuts down.
- The work is split into chunks: each throws random points at the unit
  square and counts those inside the quarter circle. Every chunk is one
  task, ``run_task(count_hits, ..., executor=dask)``, run on a worker.
- The estimate is 4 times the share of points that landed inside.
"""

from __future__ import annotations

import random

import trio

import troupe

CHUNKS = 8
POINTS = 100_000  # per chunk


def count_hits(seed: int, points: int) -> int:
    """How many of ``points`` random points fall inside the quarter circle (runs on a Dask worker)."""
    rng = random.Random(seed)
    hits = 0
    for i in range(1, points + 1):
        x, y = rng.random(), rng.random()
        if x * x + y * y <= 1.0:
            hits += 1
        if i % 25_000 == 0:  # a job's progress (nothing when the task is not a job)
            troupe.report_progress(i / points, f"{i:,} of {points:,} points")
    return hits


async def main(system: troupe.ActorSystem) -> float:
    dask = troupe.DaskExecutor(n_workers=2)
    as_jobs = system.jobs is not None  # troupe run --jobs FILE: each chunk is a job, its progress shown
    chunks = [
        await troupe.run_task(count_hits, seed, POINTS, executor=dask, job=as_jobs) for seed in range(CHUNKS)
    ]
    hits = sum([await chunk.result() for chunk in chunks])
    estimate = 4 * hits / (CHUNKS * POINTS)
    print(f"pi is about {estimate:.4f}, from {CHUNKS} chunks of {POINTS:,} points on 2 Dask workers")
    return estimate


if __name__ == "__main__":  # needed: Dask's worker processes import this file

    async def _standalone() -> None:
        async with troupe.open_system() as system:
            await main(system)

    trio.run(_standalone)
