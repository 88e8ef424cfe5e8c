"""troupe's showcase: the five task systems in one topology, its jobs kept on disk.

Run it with ``make demo`` (that is ``troupe run examples/showcase.py --jobs
.troupe/jobs.sqlite``), or ``python examples/showcase.py``. Run it twice:
the second run starts by listing the jobs the first one left in the store;
``troupe jobs list --db .troupe/jobs.sqlite`` lists them too.

A nightly report, built by every system troupe re-creates:

1. HPC-GAP tasks and a milestone: four shards are fetched as tasks, each
   contributing to a milestone; a summary task scheduled on the milestone
   runs once all four are in. A CPU-bound checksum is split over two
   ``process`` tasks.
2. Kore: a crunch task streams its progress to its owner over its channel
   (and into its job record, with ``report_progress``).
3. Grassroots: workers increment a counter whose limit signals a consumer
   actor once; command tasks run real programs as jobs (one fails on purpose).
4. Hemi: the publishing steps are a declarative task list: loaded, executed,
   every task's final state shown.
5. GoAsync: a task manager serves the report (a server and a metrics timer)
   for a moment, then stops cleanly: cleanups in reverse order.

Every task above is a job: ``pending``/``running``/outcome, durable in SQLite.
"""

from __future__ import annotations

import sys
import time

import trio

import troupe

JOBS = ".troupe/jobs.sqlite"
SHARDS = ("north", "south", "east", "west")


async def previous_runs(jobs: troupe.Jobs) -> int:
    earlier = await jobs.list(limit=200)
    print(f"0. the job store holds {len(earlier)} jobs from earlier runs")
    for record in earlier[:5]:
        took = (
            ""
            if record.started is None or record.finished is None
            else f" in {record.finished - record.started:.2f} s"
        )
        print(f"   {record.id[:8]}  {record.status.value:<11} {record.name}{took}")
    if len(earlier) > 5:
        print(f"   ... and {len(earlier) - 5} more (troupe jobs list --db {JOBS})")
    return len(earlier)


# -- 1. HPC-GAP: tasks, a milestone, process tasks ---------------------------


async def fetch(shard: str, fetched: troupe.Milestone) -> int:
    await trio.sleep(0.1 + 0.05 * SHARDS.index(shard))  # the network
    rows = 1000 + 250 * SHARDS.index(shard)
    await fetched.contribute(shard)
    print(f"   fetched {shard}: {rows} rows")
    return rows


def summarize(parts: list[int]) -> str:
    return f"{sum(parts)} rows from {len(parts)} shards"


def checksum(start: int, stop: int) -> int:
    total = 0
    for i in range(start, stop):
        total = (total * 31 + i * i) % 1_000_000_007
    return total


async def gap_tasks() -> str:
    print("1. HPC-GAP: shards fetched as tasks; a summary scheduled on a milestone")
    fetched = await troupe.new_milestone(list(SHARDS))
    shards = [await troupe.run_task(fetch, shard, fetched, job=True) for shard in SHARDS]
    parts: list[int] = []

    async def collect() -> str:
        parts.extend([await t.result() for t in shards])
        return summarize(parts)

    summary = await troupe.schedule_task(fetched, collect, job=True)
    await troupe.wait_all(summary)
    line = await summary.result()
    print(f"   milestone achieved, summary: {line}")
    halves = [
        await troupe.run_task(checksum, a, b, executor="process", job=True)
        for a, b in ((0, 150_000), (150_000, 300_000))
    ]
    sums = [await h.result() for h in halves]
    print(f"   checksum over 2 worker processes: {sums[0] ^ sums[1]:#x}")
    return line


# -- 2. Kore: a task streaming its progress over its channel -----------------


async def crunch(ctx: troupe.TaskContext, steps: int) -> str:
    for step in range(1, steps + 1):
        await trio.sleep(0.08)
        troupe.report_progress(step / steps, f"step {step} of {steps}")
        await ctx.channel.write(f"{100 * step // steps}%")
    return "crunched"


async def kore_channel() -> str:
    print("2. Kore: a crunch task streams its progress to its owner")
    t = await troupe.run_task(crunch, 5, channel=True, job=True)
    assert t.channel is not None
    seen = []
    async for event in t.events():
        if event.finished:
            break
        seen.append(str(t.channel.read_nowait()))
    print(f"   progress read from the channel: {' '.join(seen)}")
    return await t.result()


# -- 3. Grassroots: a counter, and command tasks -----------------------------


class Publisher(troupe.Actor[troupe.LimitReached]):
    """Told once, when the counter reaches its limit."""

    def __init__(self, done: trio.Event) -> None:
        self.done = done

    async def receive(self, msg: troupe.LimitReached) -> None:
        print(f"   publisher: signalled once, when {msg.count} renderers were done")
        self.done.set()


async def render(page: int, counter: troupe.TaskCounter) -> str:
    await trio.sleep(0.03 * page)
    await counter.increment()
    return f"page-{page}.html"


async def grassroots(system: troupe.ActorSystem) -> list[str]:
    print("3. Grassroots: renderers count up to a limit; commands run as jobs")
    done = trio.Event()
    publisher = await system.spawn(lambda: Publisher(done), name="publisher")
    counter = await troupe.new_counter(6)
    await counter.subscribe(publisher)
    pages = [await troupe.run_task(render, page, counter, job=True) for page in range(1, 7)]
    await done.wait()
    await troupe.wait_all(pages)
    outcomes = []
    jobs = system.jobs
    assert jobs is not None
    for argv in (
        [sys.executable, "-c", "import platform; print('python', platform.python_version())"],
        [sys.executable, "-c", "import sys; sys.exit('disk quota exceeded (on purpose)')"],
    ):
        command = await troupe.run_command(argv, job=True)
        if await command.error() is None:
            outcome = f"succeeded: {(await command.result()).stdout.decode().strip()}"
        else:
            record = await jobs.get(command.job_id or "")
            kept = "" if record is None or record.error is None else record.error.splitlines()[-1]
            outcome = f"failed, and its job record keeps why: {kept.strip()}"
        outcomes.append(outcome)
        print(f"   command {command.name}: {outcome}")
    return outcomes


# -- 4. Hemi: the publishing steps as a task list ----------------------------

PUBLISH = """
<tasks>
  <task id="publish" handler-type="function" handler="announce">
    <task rid="upload" auto-execute="1"/>
    <task rid="invalidate_cache" auto-execute="1"/>
  </task>
  <task id="upload" action-type="function" action="upload"/>
  <task id="invalidate_cache" action-type="function" action="invalidate">
    <depends rid="upload"/>
  </task>
</tasks>
"""


def upload(task_id: str, service: troupe.TaskService) -> bool:  # noqa: ARG001 - Hemi's signature
    print("   upload: report uploaded")
    return True


def invalidate(task_id: str, service: troupe.TaskService) -> bool:  # noqa: ARG001
    print("   invalidate_cache: caches invalidated")
    return True


def announce(task_id: str, service: troupe.TaskService) -> bool:  # noqa: ARG001
    print("   publish: announced")
    return True


async def hemi() -> dict[str, str]:
    print("4. Hemi: the publishing steps as a declarative task list")
    service = await troupe.new_task_service(
        functions={"upload": upload, "invalidate": invalidate, "announce": announce}
    )
    ids = await service.load(PUBLISH, format="xml")
    await service.execute("publish")
    states = {task_id: (await service.state(task_id)).name for task_id in ids}
    print("   final states: " + ", ".join(f"{k} {v}" for k, v in states.items()))
    return states


# -- 5. GoAsync: serve the report for a moment -------------------------------


class ReportServer:
    def __init__(self) -> None:
        self.served = 0

    async def initialize(self) -> None:
        print("   server: listening")

    async def execute(self) -> None:
        while True:
            await trio.sleep(0.05)
            self.served += 1

    async def cleanup(self) -> None:
        print(f"   server: stopped after {self.served} requests")


class Metrics:
    def __init__(self) -> None:
        self.flushes = 0

    async def execute(self) -> None:
        self.flushes += 1

    async def cleanup(self) -> None:
        print(f"   metrics: flushed {self.flushes} times")


async def goasync() -> None:
    print("5. GoAsync: a task manager serves the report, then stops cleanly")
    async with troupe.open_task_manager(cleanup_timeout=5) as manager:
        manager.add("server", ReportServer())
        manager.add("metrics", troupe.RepeatTimer(0.1, Metrics()))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(manager.run)
            await trio.sleep(0.5)
            manager.stop()


async def main(system: troupe.ActorSystem) -> dict[str, object]:
    jobs = system.jobs
    if jobs is None:
        msg = (
            "the showcase keeps its jobs: run it with "
            f"`troupe run examples/showcase.py --jobs {JOBS}` (make demo)"
        )
        raise troupe.JobStoreError(msg)
    started = time.time()
    earlier = await previous_runs(jobs)
    summary = await gap_tasks()
    crunched = await kore_channel()
    commands = await grassroots(system)
    states = await hemi()
    await goasync()
    mine = [r for r in await jobs.list() if r.created >= started]
    by_status: dict[str, int] = {}
    for record in mine:
        by_status[record.status.value] = by_status.get(record.status.value, 0) + 1
    print(f"this run's {len(mine)} jobs: " + ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())))
    print(f"they are in {jobs.store.location}: troupe jobs list --db {jobs.store.location}")
    return {
        "earlier": earlier,
        "summary": summary,
        "crunched": crunched,
        "commands": commands,
        "states": states,
        "jobs": by_status,
    }


if __name__ == "__main__":

    async def _standalone() -> None:
        async with troupe.open_system(jobs=JOBS) as system:
            await main(system)

    trio.run(_standalone)
