"""Turn ``bench/peers.py --json`` output into ``docs/performance.md`` and its chart.

Run by ``make bench-report`` after the measurement; by hand::

    python bench/report.py RESULTS.json [--million MILLION.json] --page docs/performance.md

Every figure on the page comes from the JSON: nothing is typed in by hand,
so the page is only ever as old as the run that made it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib as mpl

from peerkit import common

mpl.use("Agg")  # files only, no screen
import matplotlib.pyplot as plt

CHART_NAME = "performance.png"


@dataclass(frozen=True)
class Metric:
    """One measured quantity of one workload row."""

    row: str
    title: str
    unit: str
    field: str  # "rate" or "bytes_per_actor"

    @property
    def lower_is_better(self) -> bool:
        return self.field == "bytes_per_actor"


def metrics(report: dict[str, Any]) -> list[Metric]:
    found = []
    for w in report["workloads"]:
        found.append(Metric(w["key"], w["title"], w["unit"], "rate"))
        if w["kind"] == "spawn":
            found.append(Metric(w["key"], f"memory, {w['title']}", "B/actor", "bytes_per_actor"))
    return found


def values(report: dict[str, Any], metric: Metric, who: str) -> list[float]:
    cell = report["results"][metric.row][who]
    out = []
    for run in cell["runs"]:
        if metric.field == "rate":
            out.append(run["count"] / run["seconds"])
        elif run["bytes_per_actor"] is not None:
            out.append(run["bytes_per_actor"])
    return out


def lead(report: dict[str, Any], metric: Metric, who: str) -> float | None:
    """troupe's lead over ``who`` (above 1: troupe faster or lighter)."""
    return common.lead(
        values(report, metric, "troupe"), values(report, metric, who), lower_is_better=metric.lower_is_better
    )


def _num(x: float) -> str:
    return f"{x:,.0f}"


def table(report: dict[str, Any]) -> list[str]:
    names = report["contenders"]
    lines = [
        "| workload | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for m in metrics(report):
        cells = []
        for who in names:
            cell = report["results"][m.row][who]
            got = values(report, m, who)
            if cell["unsupported"] is not None or not got:
                cells.append(f"n/a: {cell['unsupported']}" if cell["unsupported"] else "n/a")
                continue
            text = f"**{_num(statistics.median(got))}**<br>{_num(min(got))} to {_num(max(got))}"
            ratio = lead(report, m, who)
            if who != "troupe" and ratio is not None:
                text += f"<br>troupe x{ratio:.2f}"
            cells.append(text)
        lines.append(f"| {m.title} ({m.unit}) | " + " | ".join(cells) + " |")
    return lines


def targets(report: dict[str, Any]) -> list[str]:
    if not report.get("targets"):
        return ["Pykka was not part of this run, so the targets were not checked."]
    lines = ["| target | troupe | absolute | over Pykka |", "|---|---:|---|---|"]
    for t in report["targets"]:  # the bounds are peers.py's TARGETS, as the run wrote them
        absolute = f"{t['bound']} {_num(t['absolute'])} {t['unit']}"
        over = f">= {t['min_over_pykka']:g}x" + (" lighter" if t["bound"] == "<=" else "")
        ratio = "n/a" if t["over_pykka"] is None else f"x{t['over_pykka']:.2f}"
        met_absolute = "met" if t["absolute_ok"] else "**missed**"
        met_ratio = "met" if t["ratio_ok"] else "**missed**"
        value = _num(t["value"])
        lines.append(
            f"| {t['target']} | {value} | {absolute}: {met_absolute} | {over}: {ratio}, {met_ratio} |"
        )
    return lines


def standings(report: dict[str, Any]) -> list[str]:
    """Per peer, where troupe leads and where it trails, read off the medians."""
    out = []
    for who in report["contenders"][1:]:
        ahead: list[str] = []
        behind: list[str] = []
        for m in metrics(report):
            ratio = lead(report, m, who)
            if ratio is not None:
                (ahead if ratio >= 1 else behind).append(f"{m.title} x{ratio:.2f}")
        said = f"- **{who}**: troupe leads on {len(ahead)} of {len(ahead) + len(behind)}"
        if behind:
            said += "; trails on " + "; ".join(behind)
        out.append(said + ".")
    return out


def chart(report: dict[str, Any], path: Path) -> None:
    """One bar per peer and metric: troupe's lead, on a log scale (1 = even)."""
    ms = metrics(report)
    peers = report["contenders"][1:]
    height = 0.8 / max(1, len(peers))
    fig, ax = plt.subplots(figsize=(9, 0.9 + 0.75 * len(ms)))
    for i, who in enumerate(peers):
        ys, xs = [], []
        for j, m in enumerate(ms):
            ratio = lead(report, m, who)
            if ratio is not None:
                ys.append(j + i * height - 0.4 + height / 2)
                xs.append(ratio)
        ax.barh(ys, xs, height=height, label=who, left=0)
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(range(len(ms)))
    ax.set_yticklabels([m.title for m in ms], fontsize=8)
    ax.xaxis.set_major_formatter(mpl.ticker.FormatStrFormatter("%g"))
    ax.invert_yaxis()
    ax.set_xlabel("troupe's lead over the peer (log scale; right of 1: troupe faster or lighter)")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"troupe vs peers, medians of {report['repeat']} runs ({report['when']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def million_section(million: dict[str, Any] | None) -> list[str]:
    lines = ["## A million idle actors", ""]
    if million is None:
        return [
            *lines,
            "Not measured in this report: run `make bench-million` (about 3 GB, a minute or two).",
        ]
    return [
        *lines,
        (
            f"`make bench-million` on {million['when']}: {million['count']:,} actors spawned at "
            f"{_num(million['spawn_rate'])}/s, {_num(million['bytes_per_actor'])} B per idle actor, "
            f"{million['answered']:,} of {million['probed']:,} probed actors answered an ask, shut down in "
            f"{million['shutdown_seconds']:.1f} s with {million['alive_after']} left alive."
        ),
    ]


def page(report: dict[str, Any], million: dict[str, Any] | None) -> str:
    machine, versions = report["machine"], report["versions"]
    lines = [
        "# Performance",
        "",
        "<!-- generated by `make bench-report` (bench/report.py); edit that, not this -->",
        "",
        "troupe measured side by side with raw trio (tasks and memory channels), asyncio (tasks,",
        "queues and an actor loop written the obvious way), Pykka (`ThreadingActor`) and Thespian",
        f"(`simpleSystemBase`), in one run. Every workload runs {report['repeat']} times; the",
        "rounds interleave the contenders, so a machine that slows",
        "down for a while slows everyone. Each cell shows the **median**, then the min to max, then",
        "troupe's lead over that peer (above 1: troupe is faster, or for memory lighter). Every run's",
        "count was checked: a contender that lost a message would have stopped the benchmark.",
        "",
        f"Measured {report['when']} on {machine['cpu']} ({machine['cores']} cores, {machine['system']}).",
        f"Versions: {', '.join(f'{k} {v}' for k, v in versions.items())}.",
        "",
        "## The workloads",
        "",
        "- **tell stream**: one-way messages into one actor, sent without waiting for each (async",
        "  senders yield once every 256); the clock stops when the actor has counted them all.",
        "- **ask round trips**: request and answer, one at a time.",
        "- **spawn**: idle actors started, each run in a fresh process; memory is that process's",
        "  peak RSS growth divided by the actors. Then a clean shutdown.",
        "- **fan-out/in**: a client sends requests round-robin over a pool of 8 workers and waits",
        "  for every answer.",
        "",
        "The code for each contender is in `bench/peerkit/on_<name>.py`; the test suite runs every",
        "workload, tiny, on every contender (`tests/bench/`), so none of it can rot.",
        "",
        "## Results",
        "",
        *table(report),
        "",
        f"![troupe's lead over each peer]({CHART_NAME})",
        "",
        *standings(report),
        "",
        "## Targets",
        "",
        *targets(report),
        "",
        "## Why the figures look like this",
        "",
        "- An ask is two trio scheduler steps at the least (the actor's, then the asker's), and on",
        "  trio a step is the expensive part; troupe's ask adds its reply slot, type check and",
        "  timeout registration on top. asyncio's event loop steps are cheaper than trio's, which",
        "  is where it gains on round trips and fan-out. Thespian's `simpleSystemBase` runs every",
        "  actor in the caller's thread as a plain method call. Under callgrind, troupe's ask",
        "  costs about 1.2x the instructions of the cheapest round trip two trio tasks can make",
        "  (one hands the other a value with `reschedule`, no queue, no reply object): most of",
        "  an ask is trio's, so an actor layer on trio cannot go much faster.",
        "- A tell stream is where an actor runtime can be faster than raw channels: troupe's",
        "  mailbox is drained without a scheduler pass per message (up to 1024 in a row), while a",
        "  raw trio consumer yields on every receive.",
        "- An idle troupe actor is a parked trio task plus its cell, lighter than a task waiting",
        "  on its own memory channel; Pykka pays an OS thread per actor (and is limited by the",
        "  machine's thread and process-id limits), Thespian's simple base no task at all.",
        "- A stopped actor or finished task leaves no reference cycle, so it is freed at once by",
        "  reference counting. Python's cyclic collector still runs, and in a burst of thousands",
        "  of live tasks it takes a quarter to a third of the time (each full collection walks",
        "  every live object): `gc.freeze()` after start-up, or a higher `gc.set_threshold`, is",
        "  an application's choice that helps such bursts.",
        "",
        *million_section(million),
        "",
        "## Reproduce",
        "",
        "```console",
        "make bench-peers     # the table, printed",
        "make bench-report    # measure again and rewrite this page and its chart",
        "make bench-million   # a million idle actors (not in CI)",
        "```",
        "",
        "The peers come from the `bench` extra (`pip install -e '.[bench]'`), never from the",
        "library itself. `python bench/peers.py --help` lists the options (`--repeat`, `--scale`,",
        "`--only`).",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("results", type=Path, help="the JSON written by bench/peers.py --json")
    parser.add_argument("--million", type=Path, help="the JSON written by bench/million.py --json, if any")
    parser.add_argument("--page", type=Path, default=Path("docs/performance.md"), help="the page to write")
    args = parser.parse_args()
    report = json.loads(args.results.read_text())
    million = json.loads(args.million.read_text()) if args.million and args.million.exists() else None
    args.page.parent.mkdir(parents=True, exist_ok=True)
    chart(report, args.page.parent / CHART_NAME)
    args.page.write_text(page(report, million))
    print(f"wrote {args.page} and {args.page.parent / CHART_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
