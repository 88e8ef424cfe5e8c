"""Task bodies on Dask: troupe's ``DaskExecutor`` against raw ``distributed``, on one shared cluster.

Run with ``python bench/dask_bench.py`` (a few minutes; ``--scale 0.1`` for a
quick look). One ``LocalCluster`` (2 worker processes of 1 thread each, no
dashboard) serves the whole run: raw ``distributed`` talks to it through a
``Client`` of its own, troupe through ``DaskExecutor(cluster.scheduler_address)``
(a client of the executor's own, in one actor system opened for the run), so
both pay for the same scheduler and workers. Workloads:

- cpu:     ``--cost`` multiply-adds per task (about 5 ms of one core here),
           2,000 of them: serially in this process (a plain loop), with raw
           ``client.map`` + ``client.gather``, and through troupe
           (``run_task(burn, i, executor=dask)`` for each, then each result);
- tiny:    10,000 tasks that add 1 to a number: raw ``client.map`` +
           ``client.gather``, and troupe's ``run_task`` for each, then each result;
- latency: one tiny task at a time, the next submitted when the last
           result is in: raw ``client.submit(f, i).result()``, and troupe's
           ``await (await run_task(f, i, executor=dask)).result()``.

The module is not called ``dask.py``: bench/ is on ``sys.path`` (the script's
own folder, and pytest's ``pythonpath``), and a ``dask.py`` there would be
imported instead of Dask itself.

Raw submissions are ``pure=False`` (fresh keys, as troupe's are): no run can
be handed a result an earlier round left on the cluster. Each side runs a
few tasks before the clock starts (workers warm, clients connected). The
rounds interleave the contenders, so a machine that slows down for a while
slows everyone. Printed: medians, min-max, each row's rate over raw
``distributed``'s (and the serial loop's, for cpu), then the issue's
targets. Every run's results are checked, value by value: a lost or wrong
result stops the benchmark. ``--json FILE`` keeps every run.
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import pstats
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import trio
from cluster import busy_seconds, loadavg

import troupe

from peerkit.common import bench_parser, machine, run_header, write_json
from peerkit.common import versions as common_versions

COST = 60_000
"""The cpu workload's work per task, in multiply-adds (about 5 ms of one core here)."""

WARM_UP = 20
"""Tasks each side runs before the clock starts, on each workload."""


def burn(i: int, cost: int) -> tuple[int, int]:
    """A CPU-bound task body: ``cost`` multiply-adds of pure Python; returns ``(i, the sum's value)``."""
    acc = 0
    for k in range(cost):
        acc = (acc * 31 + k) & 0xFFFFFF
    return i, acc


def tiny(i: int) -> int:
    """A task body that does next to nothing."""
    return i + 1


@dataclass(frozen=True)
class Workload:
    """One row of the table: a workload at one size."""

    key: str
    """Row id, also the JSON key."""
    size: int
    """Tasks per run."""
    title: str
    unit: str = "tasks/s"


def workloads(scale: float, cost: int) -> list[Workload]:
    """The table's rows; ``scale`` shrinks the sizes (for a quick run and the tests)."""

    def n(base: int) -> int:
        return max(4, int(base * scale))

    return [
        Workload("cpu", n(2_000), f"CPU-bound tasks on 2 workers ({n(2_000):,} of {cost:,} ops)"),
        Workload("tiny", n(10_000), f"tiny tasks, all submitted then gathered ({n(10_000):,})"),
        Workload("latency", n(500), f"tiny tasks one at a time, each awaited ({n(500):,})"),
    ]


@dataclass(frozen=True)
class Run:
    """One timed run of one workload on one contender."""

    seconds: float
    count: int
    """Results received and checked."""
    cpu_seconds: float = 0.0
    """CPU time of this process (every thread: trio's, the clients' loops, the cluster's scheduler)."""

    @property
    def rate(self) -> float:
        """Tasks per second."""
        return self.count / self.seconds


@dataclass(frozen=True)
class Bench:
    """What every measurement needs: the raw client, troupe's executor, and the run's settings."""

    client: Any
    """Raw distributed's ``Client`` to the shared cluster."""
    dask: troupe.DaskExecutor
    """troupe's executor, on the same cluster."""
    burn: Callable[[int, int], tuple[int, int]]
    """[`burn`][dask_bench.burn] and [`tiny`][dask_bench.tiny], from the module ``dask_bench``: both sides
    send them by reference, as an application's functions (those of a script's ``__main__`` travel
    by value, their code pickled every time)."""
    tiny: Callable[[int], int]
    cost: int
    expected_burn: int
    """What ``burn`` sums to at ``cost`` (computed once here): every cpu result must carry it."""


Measure = Callable[[Bench, Workload], Awaitable[list[Any]]]
"""One run's timed part: it returns the run's results, in order (the caller times it and checks them)."""


# -- the contenders' runs ------------------------------------------------------------------------


async def serial_cpu(bench: Bench, work: Workload) -> list[Any]:
    """The cpu tasks in a plain loop, in this process (trio's thread, nothing else running)."""
    return [burn(i, bench.cost) for i in range(work.size)]


def _raw_map(bench: Bench, fn: Callable[..., Any], *iterables: Sequence[Any]) -> list[Any]:
    futures = bench.client.map(fn, *iterables, pure=False)
    got: list[Any] = bench.client.gather(futures)
    return got


async def raw_cpu(bench: Bench, work: Workload) -> list[Any]:
    """``client.map`` + ``client.gather`` (in a thread: a regular Client's calls block)."""
    return await trio.to_thread.run_sync(
        _raw_map, bench, bench.burn, range(work.size), [bench.cost] * work.size
    )


async def raw_tiny(bench: Bench, work: Workload) -> list[Any]:
    """``client.map`` + ``client.gather`` of the tiny tasks."""
    return await trio.to_thread.run_sync(_raw_map, bench, bench.tiny, range(work.size))


def _raw_one_at_a_time(bench: Bench, n: int) -> list[Any]:
    return [bench.client.submit(bench.tiny, i, pure=False).result() for i in range(n)]


async def raw_latency(bench: Bench, work: Workload) -> list[Any]:
    """``client.submit(tiny, i).result()``, one after the other (the loop in one thread)."""
    return await trio.to_thread.run_sync(_raw_one_at_a_time, bench, work.size)


async def troupe_all(bench: Bench, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]]) -> list[Any]:
    """``run_task(fn, *a, executor=dask)`` for each, then each one's result, in order."""
    tasks = [await troupe.run_task(fn, *a, executor=bench.dask) for a in args]
    return [await t.result() for t in tasks]


async def troupe_cpu(bench: Bench, work: Workload) -> list[Any]:
    """The cpu tasks through troupe: a task per body, then the results."""
    return await troupe_all(bench, bench.burn, [(i, bench.cost) for i in range(work.size)])


async def troupe_tiny(bench: Bench, work: Workload) -> list[Any]:
    """The tiny tasks through troupe: a task per body, then the results."""
    return await troupe_all(bench, bench.tiny, [(i,) for i in range(work.size)])


async def troupe_latency(bench: Bench, work: Workload) -> list[Any]:
    """One troupe task at a time, its result awaited before the next is made."""
    return [
        await (await troupe.run_task(bench.tiny, i, executor=bench.dask)).result() for i in range(work.size)
    ]


@dataclass(frozen=True)
class Contender:
    """One column of the comparison: a name, and its run per workload key (absent: not run)."""

    name: str
    title: str
    runs: Mapping[str, Measure]


CONTENDERS: tuple[Contender, ...] = (
    Contender(
        "troupe",
        "troupe: run_task(fn, *args, executor=DaskExecutor(address)) for each task, then each result",
        {"cpu": troupe_cpu, "tiny": troupe_tiny, "latency": troupe_latency},
    ),
    Contender(
        "distributed",
        "raw distributed: client.map + client.gather; one at a time, client.submit(fn, x).result()",
        {"cpu": raw_cpu, "tiny": raw_tiny, "latency": raw_latency},
    ),
    Contender("serial", "the cpu tasks in a plain Python loop in one process, no Dask", {"cpu": serial_cpu}),
)
"""Every contender, troupe first."""

BASELINE = "distributed"
"""The contender every row's rate is compared with."""


def expected(bench: Bench, work: Workload) -> list[Any]:
    """What a run of ``work`` must return, in order."""
    if work.key == "cpu":
        return [(i, bench.expected_burn) for i in range(work.size)]
    return [i + 1 for i in range(work.size)]


def check(name: str, work: Workload, got: list[Any], want: list[Any]) -> None:
    """A run that lost a result, or got a wrong one, is an error, not a figure."""
    if len(got) != len(want):
        msg = f"{name} {work.key}: {len(got):,} results for {len(want):,} tasks; a result was lost"
        raise RuntimeError(msg)
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        if a != b:
            msg = f"{name} {work.key}: result {i:,} is {a!r}, expected {b!r}"
            raise RuntimeError(msg)


Table = dict[str, dict[str, list[Run]]]
"""Workload key -> contender name -> its runs, in the order of the rounds."""


async def timed(name: str, run_one: Measure, bench: Bench, work: Workload) -> Run:
    """One run of ``work`` on a contender, timed and checked."""
    start, cpu = time.perf_counter(), time.process_time()
    got = await run_one(bench, work)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    check(name, work, got, expected(bench, work))
    return Run(seconds, len(got), cpu)


async def warm_up(contenders: Sequence[Contender], rows: Sequence[Workload], bench: Bench) -> None:
    """Each contender runs each workload small once, untimed (checked all the same)."""
    for work in rows:
        small = Workload(work.key, min(work.size, WARM_UP), work.title, work.unit)
        for contender in contenders:
            run_one = contender.runs.get(work.key)
            if run_one is not None and contender.name != "serial":
                await timed(contender.name, run_one, bench, small)


async def measure(
    contenders: Sequence[Contender], rows: Sequence[Workload], bench: Bench, repeat: int
) -> Table:
    """Every run, interleaved: each round runs every workload on every contender once."""
    table: Table = {w.key: {c.name: [] for c in contenders if w.key in c.runs} for w in rows}
    for round_ in range(repeat):
        for work in rows:
            for contender in contenders:
                run_one = contender.runs.get(work.key)
                if run_one is not None:
                    table[work.key][contender.name].append(await timed(contender.name, run_one, bench, work))
        load = " ".join(f"{x:.2f}" for x in loadavg())
        print(f"  round {round_ + 1} of {repeat} done (load average {load})", file=sys.stderr)
    return table


# -- figures: one code for the printout and bench/report.py ---------------------------------------

Rates = dict[str, dict[str, list[float]]]
"""Workload key -> contender name -> each run's rate (tasks per second), in the order of the rounds."""


def rates(results: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]]) -> Rates:
    """The rates of every run in the JSON's ``"results"`` (workload key -> contender -> runs)."""
    return {
        key: {who: [int(r["count"]) / float(r["seconds"]) for r in runs] for who, runs in cells.items()}
        for key, cells in results.items()
    }


def rates_of(table: Table) -> Rates:
    """A measured table's rates, as [`rates()`][dask_bench.rates] reads them back from the JSON."""
    return {key: {who: [r.rate for r in runs] for who, runs in cells.items()} for key, cells in table.items()}


def ratio(table: Rates, ours: tuple[str, str], theirs: tuple[str, str]) -> float | None:
    """The median rate of ``ours`` over the median rate of ``theirs``, each a (workload, contender).

    None if either was not measured (or a median is zero).
    """
    a, b = table.get(ours[0], {}).get(ours[1]), table.get(theirs[0], {}).get(theirs[1])
    if not a or not b:
        return None
    bottom = statistics.median(b)
    return statistics.median(a) / bottom if bottom else None


@dataclass(frozen=True)
class Target:
    """One of the issue's targets: a ratio of two medians, with its bound.

    ``per="rate"``: troupe's median rate over the other's, at least ``bound``;
    ``per="time"``: troupe's median time per task over the other's (the
    other's rate over troupe's), at most ``bound``.
    """

    what: str
    ours: tuple[str, str]
    """(workload, contender): troupe's side."""
    theirs: tuple[str, str]
    """(workload, contender): the side it is compared with."""
    bound: float
    per: str = "rate"

    @property
    def sign(self) -> str:
        """How the value must stand to the bound: ``>=`` or ``<=``."""
        return ">=" if self.per == "rate" else "<="

    def value(self, table: Rates) -> float | None:
        """The ratio the bound is on (None: a side was not measured)."""
        if self.per == "rate":
            return ratio(table, self.ours, self.theirs)
        return ratio(table, self.theirs, self.ours)


TARGETS = (
    Target("2,000 CPU-bound tasks on 2 workers over serial", ("cpu", "troupe"), ("cpu", "serial"), 1.7),
    Target("tiny tasks over raw client.map + gather", ("tiny", "troupe"), ("tiny", "distributed"), 0.8),
    Target(
        "time per task, one at a time, over raw submit + result",
        ("latency", "troupe"),
        ("latency", "distributed"),
        1.3,
        per="time",
    ),
)


def verdicts(table: Rates) -> list[dict[str, Any]]:
    """Each target both sides of which were measured: ``{"target", "sign", "bound", "value", "ok"}``."""
    found: list[dict[str, Any]] = []
    for t in TARGETS:
        value = t.value(table)
        if value is None:
            continue
        ok = value >= t.bound if t.per == "rate" else value <= t.bound
        found.append({"target": t.what, "sign": t.sign, "bound": t.bound, "value": value, "ok": ok})
    return found


# -- printing -------------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    """Python's version and those of troupe, trio, Dask and distributed."""
    return common_versions("trio-troupe", "trio", "dask", "distributed")


def _fmt(x: float) -> str:
    return f"{x:,.0f}"


def print_table(rows: Sequence[Workload], table: Table) -> None:
    """Per workload and contender: the median rate, min-max, time and CPU per task, and the ratios."""
    found = rates_of(table)
    for work in rows:
        cells = found[work.key]
        if not cells:
            continue
        print(f"\n{work.title}")
        for name, got in cells.items():
            said = []
            over = ratio(found, (work.key, name), (work.key, BASELINE))
            if name != BASELINE and over is not None:
                said.append(f"x{over:5.2f} of {BASELINE}")
            serial = ratio(found, (work.key, name), (work.key, "serial"))
            if name != "serial" and serial is not None:
                said.append(f"x{serial:5.2f} of serial")
            per_task = 1e3 / statistics.median(got)
            cpu = 1e3 * statistics.median(r.cpu_seconds / r.count for r in table[work.key][name])
            print(
                f"  {name:<12} {_fmt(statistics.median(got)):>7} {work.unit:<8} "
                f"[{_fmt(min(got))} - {_fmt(max(got))}]  {per_task:6.2f} ms/task, "
                f"this process's CPU {cpu:5.2f} ms/task  {'   '.join(said)}"
            )


def print_targets(table: Table) -> list[dict[str, Any]]:
    """The issue's targets that both sides were measured for."""
    found = verdicts(rates_of(table))
    if found:
        print("\ntargets (issue 20):")
    for v in found:
        verdict = "ok" if v["ok"] else "MISSED"
        print(f"  {v['target']:<55} x{v['value']:5.2f}  ({v['sign']} {v['bound']}: {verdict})")
    return found


def to_json(
    contenders: Sequence[Contender], rows: Sequence[Workload], table: Table, repeat: int, bench: Bench
) -> dict[str, Any]:
    """Every run, and what it ran on, as ``--json`` writes it (and bench/report.py reads it)."""
    return {
        **run_header(repeat, versions()),
        "cluster": {"workers": 2, "threads_per_worker": 1, "processes": True},
        "cost": bench.cost,
        "contenders": {c.name: c.title for c in contenders},
        "workloads": [asdict(w) for w in rows],
        "results": {w.key: {n: [asdict(r) for r in runs] for n, runs in table[w.key].items()} for w in rows},
    }


# -- the run --------------------------------------------------------------------------------------


def open_cluster() -> Any:
    """The run's cluster: 2 worker processes of 1 thread each, no dashboard (its HTTP on any free port)."""
    from distributed import LocalCluster  # noqa: PLC0415 - report.py imports this module without Dask

    return LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        scheduler_kwargs={"dashboard": False, "dashboard_address": ":0"},
        silence_logs=logging.CRITICAL,
    )


async def run(args: argparse.Namespace, client: Any, address: str) -> tuple[Table, Bench]:
    """On trio: troupe's system and executor on the cluster at ``address``, the warm-up, then every run."""
    contenders = [c for c in CONTENDERS if not args.only or c.name in args.only]
    rows = [w for w in workloads(args.scale, args.cost) if not args.kinds or w.key in args.kinds]
    async with troupe.open_system():
        import dask_bench as bodies  # noqa: PLC0415 - by reference, even when this file runs as __main__

        dask = troupe.DaskExecutor(address)
        bench = Bench(client, dask, bodies.burn, bodies.tiny, args.cost, bodies.burn(0, args.cost)[1])
        await warm_up(contenders, rows, bench)
        if args.profile:
            work = next(w for w in rows if w.key == args.profile)
            profile = cProfile.Profile()
            profile.enable()
            got = await timed("troupe", CONTENDERS[0].runs[work.key], bench, work)
            profile.disable()
            print(f"profiled troupe {work.key}: {got.rate:,.0f} {work.unit}")
            stats = pstats.Stats(profile, stream=sys.stdout)
            stats.sort_stats("tottime").print_stats(30)
            stats.sort_stats("cumulative").print_stats(40)
            return {}, bench
        table = await measure(contenders, rows, bench, args.repeat)
    return table, bench


def main() -> int:
    """Start the cluster, measure, print; ``--json`` also writes every run."""
    parser = bench_parser(__doc__, [c.name for c in CONTENDERS], ["cpu", "tiny", "latency"])
    parser.add_argument(
        "--cost", type=int, default=COST, help=f"cpu work per task, in ops (default {COST:,})"
    )
    parser.add_argument(
        "--profile",
        choices=["cpu", "tiny", "latency"],
        help="instead of measuring: one troupe run of this workload under cProfile (trio's thread), "
        "its top functions printed",
    )
    args = parser.parse_args()

    from distributed import Client  # noqa: PLC0415 - report.py imports this module without Dask

    load_before = loadavg()
    busy_before, ours_before, wall_before = *busy_seconds(), time.monotonic()
    print(
        f"troupe's DaskExecutor vs raw distributed on one LocalCluster, medians of {args.repeat} "
        "interleaved runs; " + ", ".join(f"{k} {v}" for k, v in versions().items())
    )
    print(
        f"machine: {', '.join(machine().values())}; "
        f"load average before: {' '.join(f'{x:.2f}' for x in load_before)}"
    )
    rows = [w for w in workloads(args.scale, args.cost) if not args.kinds or w.key in args.kinds]
    with open_cluster() as cluster, Client(cluster, set_as_default=False) as client:  # type: ignore[no-untyped-call]
        print(f"cluster: {cluster.scheduler_address}, 2 worker processes of 1 thread")
        table, bench = trio.run(run, args, client, cluster.scheduler_address)
    if args.profile:
        return 0
    load_after = loadavg()
    busy_after, ours_after = busy_seconds()  # the cluster is closed: its processes' CPU is counted
    wall = time.monotonic() - wall_before
    ours = ours_after - ours_before
    others = max(0.0, busy_after - busy_before - ours)
    cores = os.cpu_count() or 1
    serial = table.get("cpu", {}).get("serial")
    if serial:
        per_task = statistics.median(r.seconds / r.count for r in serial)
        print(f"\nthe cpu task's body, serially: {per_task * 1e3:.2f} ms")
    print_table(rows, table)
    found = print_targets(table)
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in load_after)}")
    print(
        f"other work on the machine during the run: {others:,.0f} CPU s of {cores * wall:,.0f} "
        f"({others / (cores * wall):.0%}); the benchmark's processes: {ours:,.0f} CPU s"
    )
    if args.json:
        contenders = [c for c in CONTENDERS if not args.only or c.name in args.only]
        out = to_json(contenders, rows, table, args.repeat, bench)
        out["load_average"] = {"before": load_before, "after": load_after}
        out["cpu_seconds"] = {"wall": wall, "cores": cores, "others": others, "ours": ours}
        out["targets"] = found
        write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
