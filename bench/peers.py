"""troupe against raw trio, asyncio, Pykka and Thespian: the same workloads in one run.

Run with ``make bench-peers`` (or ``python bench/peers.py``). The peers come
from the ``bench`` extra (``pip install -e '.[bench]'``), never from the
library. Workloads (see ``bench/peerkit/`` for each contender's code):

- tell:   one-way messages into one actor, sent without waiting for each;
- ask:    request/response round trips, one after the other;
- spawn:  idle actors started, then shut down (each run in a fresh process,
          so memory per actor is the peak RSS growth of that process alone);
- fanout: a client sends requests round-robin over a pool of 8 workers and
          waits for every answer.

Every workload is repeated; the rounds interleave the contenders, so a
machine that slows down for a minute slows everyone. Printed: medians,
min-max, and "troupe x": troupe's rate over the peer's (for memory, the
peer's bytes over troupe's), so above 1 means troupe leads. ``--json FILE``
keeps every run for ``make bench-report``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from peerkit import CONTENDERS, contender
from peerkit.common import Run, Unsupported, bench_parser, lead, machine, run_header, write_json
from peerkit.common import versions as common_versions

WORKERS = 8


@dataclass(frozen=True)
class Workload:
    """One row of the table: a workload at one size."""

    key: str
    """Row id, also the JSON key."""
    kind: str
    """The peerkit function: tell, ask, spawn or fanout."""
    size: int
    title: str
    unit: str


def workloads(scale: float) -> list[Workload]:
    """The table's rows; ``scale`` shrinks the sizes (for --quick and the tests)."""

    def n(base: int) -> int:
        return max(8, int(base * scale))

    return [
        Workload("tell", "tell", n(200_000), f"tell stream into one actor ({n(200_000):,} msgs)", "msg/s"),
        Workload("ask", "ask", n(20_000), f"ask round trips ({n(20_000):,}, one at a time)", "trips/s"),
        Workload("spawn-10k", "spawn", n(10_000), f"spawn {n(10_000):,} idle actors", "actors/s"),
        Workload("spawn-100k", "spawn", n(100_000), f"spawn {n(100_000):,} idle actors", "actors/s"),
        Workload(
            "fanout", "fanout", n(10_000), f"fan-out/in of {n(10_000):,} requests over {WORKERS}", "req/s"
        ),
    ]


@dataclass
class Cell:
    """Every run of one workload on one contender."""

    runs: list[Run] = field(default_factory=list)
    unsupported: str | None = None

    def rates(self) -> list[float]:
        return [r.rate for r in self.runs]

    def memory(self) -> list[float]:
        return [r.bytes_per_actor for r in self.runs if r.bytes_per_actor is not None]


def run_once(name: str, work: Workload) -> Run:
    """One run; spawn runs go to a fresh process so memory is theirs alone."""
    if work.kind == "spawn":
        out = subprocess.run(
            [sys.executable, __file__, "--child", name, str(work.size)],
            check=False,
            capture_output=True,
            text=True,
        )
        if out.returncode == 3:  # the contender cannot do this here
            raise Unsupported(out.stdout.strip())
        if out.returncode != 0:
            msg = f"{name} spawn {work.size} failed:\n{out.stderr}"
            raise RuntimeError(msg)
        return Run(**json.loads(out.stdout))
    module = contender(name)
    result: Run
    if work.kind == "fanout":
        result = module.fanout(work.size, WORKERS)
    else:
        result = getattr(module, work.kind)(work.size)
    return result


def check(name: str, work: Workload, run: Run) -> None:
    """A run that lost (or invented) a message is an error, not a figure."""
    if run.count != work.size:
        msg = f"{name} {work.key}: the actors counted {run.count:,}, expected {work.size:,}"
        raise RuntimeError(msg)


def measure(
    names: list[str], rows: list[Workload], repeat: int, *, quiet: bool = False
) -> dict[str, dict[str, Cell]]:
    table: dict[str, dict[str, Cell]] = {w.key: {n: Cell() for n in names} for w in rows}
    for round_ in range(repeat):
        for work in rows:
            for name in names:
                cell = table[work.key][name]
                if cell.unsupported is not None:
                    continue
                try:
                    run = run_once(name, work)
                except Unsupported as exc:
                    cell.unsupported = str(exc)
                    continue
                check(name, work, run)
                cell.runs.append(run)
        if not quiet:
            print(f"  round {round_ + 1} of {repeat} done", file=sys.stderr)
    return table


def versions() -> dict[str, str]:
    return common_versions("trio-troupe", "trio", "pykka", "thespian")


# -- printing -------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return f"{x:,.0f}"


def print_table(names: list[str], rows: list[Workload], table: dict[str, dict[str, Cell]]) -> None:
    for work in rows:
        print(f"\n{work.title}")
        metrics = [("rate", work.unit, False)]
        if work.kind == "spawn":
            metrics.append(("memory", "B/actor", True))
        for metric, unit, lower in metrics:
            ours = getattr(table[work.key]["troupe"], metric + "s" if metric == "rate" else metric)()
            for name in names:
                cell = table[work.key][name]
                if cell.unsupported is not None:
                    print(f"  {name:<9} {'n/a':>12} {unit:<8} {cell.unsupported}")
                    continue
                values = cell.rates() if metric == "rate" else cell.memory()
                ratio = lead(ours, values, lower_is_better=lower)
                said = "" if name == "troupe" or ratio is None else f"troupe x{ratio:6.2f}"
                print(
                    f"  {name:<9} {_fmt(statistics.median(values)):>12} {unit:<8} "
                    f"[{_fmt(min(values))} - {_fmt(max(values))}]  {said}"
                )


@dataclass(frozen=True)
class Target:
    what: str
    row: str
    metric: str  # "rate" or "memory"
    absolute: float  # rate at least / bytes at most
    unit: str
    over_pykka: float  # lead over Pykka at least


TARGETS = (
    Target("ask round trips", "ask", "rate", 100_000, "trips/s", 9.0),
    Target("tell stream", "tell", "rate", 1_000_000, "msg/s", 4.0),
    Target("memory per idle actor", "spawn-10k", "memory", 3_000, "B", 5.0),
)


def print_targets(table: dict[str, dict[str, Cell]]) -> list[dict[str, Any]]:
    print("\ntargets (issue 7):")
    verdicts = []
    for t in TARGETS:
        ours_cell, pykka_cell = table[t.row]["troupe"], table[t.row].get("pykka")
        lower = t.metric == "memory"
        ours = ours_cell.memory() if lower else ours_cell.rates()
        theirs = (pykka_cell.memory() if lower else pykka_cell.rates()) if pykka_cell else []
        mine = statistics.median(ours)
        absolute_ok = mine <= t.absolute if lower else mine >= t.absolute
        ratio = lead(ours, theirs, lower_is_better=lower)
        ratio_ok = ratio is not None and ratio >= t.over_pykka
        bound = "<=" if lower else ">="
        said_absolute = "ok" if absolute_ok else "MISSED"
        said_ratio = "ok" if ratio_ok else "MISSED"
        print(
            f"  {t.what:<22} {_fmt(mine):>10} ({bound} {_fmt(t.absolute)}: {said_absolute})"
            f"   troupe x{ratio or 0:5.2f} Pykka (>= {t.over_pykka}: {said_ratio})"
        )
        verdicts.append(
            {
                "target": t.what,
                "bound": bound,
                "absolute": t.absolute,
                "unit": t.unit,
                "min_over_pykka": t.over_pykka,
                "value": mine,
                "absolute_ok": absolute_ok,
                "over_pykka": ratio,
                "ratio_ok": ratio_ok,
            }
        )
    return verdicts


def to_json(
    names: list[str], rows: list[Workload], table: dict[str, dict[str, Cell]], repeat: int
) -> dict[str, Any]:
    return {
        **run_header(repeat, versions()),
        "contenders": names,
        "workloads": [asdict(w) for w in rows],
        "results": {
            w.key: {
                n: {
                    "runs": [asdict(r) for r in table[w.key][n].runs],
                    "unsupported": table[w.key][n].unsupported,
                }
                for n in names
            }
            for w in rows
        },
    }


def main() -> int:
    parser = bench_parser(__doc__, list(CONTENDERS), only="contenders to run (troupe always)")
    parser.add_argument("--child", nargs=2, metavar=("CONTENDER", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        name, size = args.child[0], int(args.child[1])
        try:
            run = contender(name).spawn(size)
        except Unsupported as exc:
            print(exc)
            return 3
        print(json.dumps(asdict(run)))
        return 0

    names = ["troupe", *[c for c in CONTENDERS if c != "troupe" and (not args.only or c in args.only)]]
    rows = workloads(args.scale)
    info = versions()
    print(
        "troupe vs peers, medians of "
        f"{args.repeat} interleaved runs; " + ", ".join(f"{k} {v}" for k, v in info.items())
    )
    print(f"machine: {', '.join(machine().values())}")
    table = measure(names, rows, args.repeat)
    print_table(names, rows, table)
    verdicts = print_targets(table) if "pykka" in names else []
    if args.json:
        report = to_json(names, rows, table, args.repeat)
        report["targets"] = verdicts
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
