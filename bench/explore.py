"""Schedule exploration's speed: ``troupe.testing.explore`` on a 5-actor, 50-message body.

Run with ``python bench/explore.py`` (about 10 seconds here; ``--scale 0.1`` for a
quick look). The body (`body`) opens a system and runs a small fan-out:

- the body tells a dispatcher 15 jobs, then asks it to sync;
- the dispatcher tells each job to one of 3 workers, in turn;
- each worker asks a collector to add the job's square (the worker waits
  for the answer before its next message);
- the body asks each worker to sync, then the collector for its total, and
  checks it: every job counted once, the sum right, 50 messages handled
  (15 + 15 + 15 + 1 + 3 + 1) by the 5 actors.

Each contender runs the body ``--schedules`` times per round:

- random: ``explore(body, strategy="random")``, every batch of runnable
  tasks shuffled;
- pct:    ``explore(body, strategy="pct")`` (its one calibration run is
  part of the time, as for any caller);
- plain:  the same body in a plain ``trio.run`` per schedule (no
  exploration: actors yield once per 1,024 messages), what the time of one
  schedule is compared with.

The rounds interleave the contenders and use the same seeds (``--seed``,
schedule ``i`` of round ``r`` from ``seed + r``), so a round is replayable.
Printed per contender: the median of the rounds' schedules per second
(min-max), trio steps per schedule, distinct interleavings (distinct traces
of which actor took which message, per round), and the time of a schedule
over plain ``trio.run``; then the issue's target (issue 21: at least 100
schedules/s for each strategy). ``--profile STRATEGY`` runs one round under
cProfile instead and prints where the time goes. ``--json FILE`` keeps every
round.
"""

from __future__ import annotations

import cProfile
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import trio

import troupe
import troupe.testing

from peerkit.common import bench_parser, machine, run_header, write_json
from peerkit.common import versions as common_versions

JOBS = 15
"""Jobs the body sends through the dispatcher."""

WORKERS = 3
"""Workers the dispatcher fans the jobs out to."""

MESSAGES = 3 * JOBS + 1 + WORKERS + 1
"""Messages the 5 actors handle in one run of the body: jobs, forwards, adds, the syncs and the total."""

SCHEDULES = 200
"""Schedules per round and contender (before ``--scale``)."""

SEED = 21
"""The default base seed: round ``r`` explores from ``SEED + r``."""

TARGET = 100.0
"""Issue 21's target: schedules per second, each strategy."""


# -- the body ------------------------------------------------------------------------------------


@troupe.message
class Job:
    n: int


@troupe.message
class Add:
    value: int


@troupe.message
class Sync:
    pass


@troupe.message
class Total:
    pass


class Counted:
    """Messages handled, over the body's actors (one per run)."""

    def __init__(self) -> None:
        self.handled = 0


class Collector(troupe.Actor[Add | Total]):
    """Adds what the workers ask it to; answers ``Total`` with ``(adds, sum)``."""

    def __init__(self, counted: Counted) -> None:
        self.counted = counted
        self.adds = 0
        self.sum = 0

    async def receive(self, msg: Add | Total) -> tuple[int, int] | None:
        self.counted.handled += 1
        if isinstance(msg, Add):
            self.adds += 1
            self.sum += msg.value
            return None
        return self.adds, self.sum


class Worker(troupe.Actor[Job | Sync]):
    """Asks the collector to add each job's square, and waits for the answer."""

    def __init__(self, counted: Counted, collector: troupe.ActorRef[Add | Total]) -> None:
        self.counted = counted
        self.collector = collector

    async def receive(self, msg: Job | Sync) -> None:
        self.counted.handled += 1
        if isinstance(msg, Job):
            await self.collector.ask(Add(msg.n * msg.n))


class Dispatcher(troupe.Actor[Job | Sync]):
    """Tells each job to the next worker, in turn."""

    def __init__(self, counted: Counted, workers: Sequence[troupe.ActorRef[Job | Sync]]) -> None:
        self.counted = counted
        self.workers = workers
        self.next = 0

    async def receive(self, msg: Job | Sync) -> None:
        self.counted.handled += 1
        if isinstance(msg, Job):
            await self.workers[self.next].tell(msg)
            self.next = (self.next + 1) % len(self.workers)


async def body() -> None:
    """One run: 5 actors, 50 messages, the total checked."""
    counted = Counted()
    async with troupe.open_system() as system:
        collector = await system.spawn(partial(Collector, counted), name="collector")
        workers = [
            await system.spawn(partial(Worker, counted, collector), name=f"w{i}") for i in range(WORKERS)
        ]
        dispatcher = await system.spawn(partial(Dispatcher, counted, workers), name="dispatcher")
        for n in range(JOBS):
            await dispatcher.tell(Job(n))
        await dispatcher.ask(Sync())
        for worker in workers:
            await worker.ask(Sync())
        adds, total = await collector.ask(Total())
    assert adds == JOBS, f"{adds} adds for {JOBS} jobs"
    assert total == sum(n * n for n in range(JOBS)), f"sum {total}"
    assert counted.handled == MESSAGES, f"{counted.handled} messages handled, expected {MESSAGES}"


# -- the contenders ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Round:
    """One round of one contender: ``schedules`` runs of the body."""

    seconds: float
    schedules: int
    steps: int
    """trio steps over all schedules (0 for plain: nobody counts them)."""
    interleavings: int
    """Distinct traces among the round's schedules (0 for plain)."""

    @property
    def rate(self) -> float:
        """Schedules per second."""
        return self.schedules / self.seconds


def explored(strategy: str) -> Callable[[int, int], Round]:
    """A contender: ``explore(body, strategy=strategy)`` for ``schedules`` schedules from ``seed``."""

    def run(schedules: int, seed: int) -> Round:
        start = time.perf_counter()
        summary = troupe.testing.explore(body, schedules=schedules, strategy=strategy, seed=seed)
        seconds = time.perf_counter() - start
        return Round(seconds, summary.schedules, summary.steps, summary.interleavings)

    return run


def plain(schedules: int, seed: int) -> Round:  # noqa: ARG001 - a plain run has no schedule to seed
    """The body in a plain ``trio.run``, ``schedules`` times."""
    start = time.perf_counter()
    for _ in range(schedules):
        trio.run(body)
    return Round(time.perf_counter() - start, schedules, 0, 0)


CONTENDERS: Mapping[str, Callable[[int, int], Round]] = {
    "random": explored("random"),
    "pct": explored("pct"),
    "plain": plain,
}
"""Every contender; the strategies first."""

STRATEGIES = ("random", "pct")
"""The contenders the target is for."""

Table = dict[str, list[Round]]
"""Contender -> its rounds, in order."""


def measure(names: Sequence[str], schedules: int, seed: int, repeat: int) -> Table:
    """Every round, interleaved: each round runs every contender once, all from ``seed + round``."""
    table: Table = {name: [] for name in names}
    for name in names:  # warm up: imports, caches, the first trio.run
        CONTENDERS[name](2, seed)
    for r in range(repeat):
        for name in names:
            table[name].append(CONTENDERS[name](schedules, seed + r))
        print(f"  round {r + 1} of {repeat} done", file=sys.stderr)
    return table


# -- figures and printing ------------------------------------------------------------------------


def rates(results: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, list[float]]:
    """Schedules per second of every round in the JSON's ``"results"`` (contender -> rounds)."""
    return {
        who: [float(r["schedules"]) / float(r["seconds"]) for r in rounds] for who, rounds in results.items()
    }


def verdicts(found: Mapping[str, Sequence[float]]) -> list[dict[str, Any]]:
    """The target for each strategy measured: ``{"target", "value", "bound", "ok"}`` (median schedules/s)."""
    out = []
    for name in STRATEGIES:
        got = found.get(name)
        if got:
            value = statistics.median(got)
            out.append(
                {
                    "target": f"{name}: schedules per second",
                    "value": value,
                    "bound": TARGET,
                    "ok": value >= TARGET,
                }
            )
    return out


def versions() -> dict[str, str]:
    """Python's version and those of troupe and trio."""
    return common_versions("trio-troupe", "trio")


def print_table(table: Table) -> list[dict[str, Any]]:
    """Per contender: median schedules/s (min-max), steps, interleavings; then the targets."""
    found = rates({who: [asdict(r) for r in rounds] for who, rounds in table.items()})
    base = statistics.median(found["plain"]) if found.get("plain") else None
    for name, rounds in table.items():
        got = found[name]
        med = statistics.median(got)
        spread = f"[{min(got):,.0f} - {max(got):,.0f}]"
        line = f"  {name:<7} {med:>7,.0f} schedules/s {spread}  {1e3 / med:6.2f} ms each"
        if name != "plain":
            steps = statistics.median(r.steps / r.schedules for r in rounds)
            seen = statistics.median(r.interleavings for r in rounds)
            line += f"  {steps:5.0f} steps/schedule  {seen:,.0f} of {rounds[0].schedules} distinct"
            if base:
                line += f"  x{base / med:.2f} the time of a plain run"
        print(line)
    found_targets = verdicts(found)
    if found_targets:
        print(f"\ntargets (issue 21: >= {TARGET:.0f} schedules/s):")
    for v in found_targets:
        print(f"  {v['target']:<30} {v['value']:7,.0f}  {'ok' if v['ok'] else 'MISSED'}")
    return found_targets


def profile(strategy: str, schedules: int, seed: int) -> None:
    """One round of ``strategy`` under cProfile; the top functions by own and by cumulative time."""
    run = CONTENDERS[strategy]
    run(2, seed)
    prof = cProfile.Profile()
    prof.enable()
    got = run(schedules, seed)
    prof.disable()
    print(f"profiled {strategy}: {got.rate:,.0f} schedules/s under cProfile ({got.schedules} schedules)")
    stats = pstats.Stats(prof, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(40)


def main() -> int:
    """Measure, print; ``--json`` also writes every round."""
    parser = bench_parser(__doc__, list(CONTENDERS))
    parser.add_argument(
        "--schedules", type=int, default=SCHEDULES, help=f"schedules per round (default {SCHEDULES})"
    )
    parser.add_argument("--seed", type=int, default=SEED, help=f"base seed (default {SEED})")
    parser.add_argument(
        "--profile", choices=list(CONTENDERS), help="instead of measuring: one round under cProfile"
    )
    args = parser.parse_args()
    schedules = max(2, int(args.schedules * args.scale))
    if args.profile:
        profile(args.profile, schedules, args.seed)
        return 0
    names = [n for n in CONTENDERS if not args.only or n in args.only]
    print(
        f"troupe.testing.explore on a {WORKERS + 2}-actor, {MESSAGES}-message body: {schedules} schedules "
        f"per round, medians of {args.repeat} interleaved rounds; "
        + ", ".join(f"{k} {v}" for k, v in versions().items())
    )
    print(f"machine: {', '.join(machine().values())}")
    table = measure(names, schedules, args.seed, args.repeat)
    found = print_table(table)
    if args.json:
        out = {
            **run_header(args.repeat, versions()),
            "body": {"actors": WORKERS + 2, "messages": MESSAGES},
            "schedules": schedules,
            "seed": args.seed,
            "results": {who: [asdict(r) for r in rounds] for who, rounds in table.items()},
            "targets": found,
        }
        write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
