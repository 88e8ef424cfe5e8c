"""Turn ``bench/peers.py --json`` output into ``docs/performance.md`` and its chart.

Run by ``make bench-report`` after the measurement; by hand::

    python bench/report.py RESULTS.json [--million MILLION.json] [--cluster CLUSTER.json] \
        [--dask DASK.json] [--explore EXPLORE.json] [--dashboard DASHBOARD.json] --page docs/performance.md

Every figure on the page comes from the JSON: nothing is typed in by hand,
so the page is only ever as old as the run that made it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal, Protocol

import cluster as cluster_bench
import dashboard as dashboard_bench
import dask_bench
import explore as explore_bench
import matplotlib as mpl

from clusterkit import results as cluster_results
from peerkit import common

mpl.use("Agg")  # files only, no screen
import matplotlib.pyplot as plt

CHART_NAME = "performance.png"
CLUSTER_CHART_NAME = "performance-cluster.png"
LOG_SPREAD = 20.0
"""The cluster chart goes to a log scale when its largest rate is more than this many times its smallest."""


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


def _spread(got: Sequence[float]) -> str:
    """A cell's figures: the **median**, then the min to max."""
    return f"**{_num(statistics.median(got))}**<br>{_num(min(got))} to {_num(max(got))}"


def _verdict(ok: bool) -> str:
    return "ok" if ok else "**MISSED**"


def _measured_on(measured: Mapping[str, Any]) -> list[str]:
    """When, on what machine and with which versions a run was made: two lines of its section."""
    machine = measured["machine"]
    return [
        f"Measured {measured['when']} on {machine['cpu']} ({machine['cores']} cores, {machine['system']}).",
        f"Versions: {', '.join(f'{k} {v}' for k, v in measured['versions'].items())}.",
    ]


def _columns(names: Sequence[str]) -> list[str]:
    """A table's header: the workload, then a right-aligned column per name."""
    return ["| workload | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]


def table(report: dict[str, Any]) -> list[str]:
    names = report["contenders"]
    lines = _columns(names)
    for m in metrics(report):
        cells = []
        for who in names:
            cell = report["results"][m.row][who]
            got = values(report, m, who)
            if cell["unsupported"] is not None or not got:
                cells.append(f"n/a: {cell['unsupported']}" if cell["unsupported"] else "n/a")
                continue
            text = _spread(got)
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


def bars(
    path: Path,
    labels: list[str],
    series: dict[str, list[float | None]],
    *,
    xlabel: str,
    title: str,
    log: bool,
    formatter: mpl.ticker.Formatter,
    even: float | None = None,
    legend: Literal["lower right", "best"] = "lower right",
    annotate: bool = False,
) -> None:
    """Horizontal bars, one group per label and one bar per series in it (None: no bar); saved to ``path``.

    ``even`` draws a vertical line there (1 for ratios); ``annotate`` writes
    each bar's value at its end, through ``formatter``.
    """
    height = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(9, 0.9 + 0.75 * len(labels)))
    for i, (name, got) in enumerate(series.items()):
        ys, xs = [], []
        for j, x in enumerate(got):
            if x is not None:
                ys.append(j + i * height - 0.4 + height / 2)
                xs.append(x)
        drawn = ax.barh(ys, xs, height=height, label=name, left=0)
        if annotate:
            ax.bar_label(drawn, labels=[formatter(x) for x in xs], padding=2, fontsize=6)
    if annotate:
        ax.margins(x=0.08)  # room for the longest bar's value
    if log:
        ax.set_xscale("log")
    if even is not None:
        ax.axvline(even, color="black", linewidth=1)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.xaxis.set_major_formatter(formatter)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.legend(loc=legend, fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def chart(report: dict[str, Any], path: Path) -> None:
    """One bar per peer and metric: troupe's lead, on a log scale (1 = even)."""
    ms = metrics(report)
    bars(
        path,
        [m.title for m in ms],
        {who: [lead(report, m, who) for m in ms] for who in report["contenders"][1:]},
        xlabel="troupe's lead over the peer (log scale; right of 1: troupe faster or lighter)",
        title=f"troupe vs peers, medians of {report['repeat']} runs ({report['when']})",
        log=True,
        formatter=mpl.ticker.FormatStrFormatter("%g"),
        even=1.0,
    )


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


# -- across processes: bench/cluster.py --json ---------------------------------------------------


def _rounds(n: int, kind: str = "") -> str:
    return f"{n} {kind}round{'' if n == 1 else 's'}"


def _cluster_work_said(measured: dict[str, Any], work: dict[str, Any]) -> str:
    """What one of the cluster benchmark's workloads does, in a line (its title is the JSON's)."""
    if work["kind"] == "tell":
        how = (
            f"a publisher process sends {measured['payload_bytes']}-byte messages without waiting for each "
            "to an actor (or subscriber) in another process; the clock runs from the first publish "
            "until the receiver has counted the last"
        )
    elif work["kind"] == "ask":
        how = "request and answer between two processes, the next request sent when the answer is in"
    else:
        pool = measured["pool"]
        how = (
            f"a client process keeps {pool['window']} items unanswered, spread over {work['workers']} "
            f"worker process{'es' if work['workers'] > 1 else ''} under one name (a NATS queue group); "
            f"each item is {pool['cost']:,} multiply-adds of pure Python"
        )
    return f"- **{work['key']}**: {work['title']}: {how}."


def _cluster_cell(rates: cluster_results.Rates, key: str, who: str) -> str:
    got = rates[key].get(who)
    if not got:
        return "not run"
    text = _spread(got)
    base = cluster_bench.BASELINE
    over = cluster_results.ratio(rates, (key, who), (key, base))
    if who != base and over is not None:
        text += f"<br>x{over:.2f} of {base}"
    ahead = cluster_results.ratio(rates, (key, "troupe"), (key, who))
    if who != "troupe" and ahead is not None:
        text += f"<br>troupe x{ahead:.2f}"
    return text


def _rate_table(measured: Mapping[str, Any], cell: Callable[[str, str], str]) -> list[str]:
    """A row per workload of a run, a column per contender: ``cell(workload key, contender)``."""
    lines = _columns(list(measured["contenders"]))
    for work in measured["workloads"]:
        cells = [cell(work["key"], who) for who in measured["contenders"]]
        lines.append(f"| {work['title']} ({work['unit']}) | " + " | ".join(cells) + " |")
    return lines


class _Sides(Protocol):
    """What a target table reads of a benchmark's target (``cluster.Target``, ``dask_bench.Target``)."""

    @property
    def what(self) -> str: ...
    @property
    def ours(self) -> tuple[str, str]: ...
    @property
    def theirs(self) -> tuple[str, str]: ...


def _target_table(
    issue: int,
    bound: str,
    targets: Sequence[tuple[_Sides, str]],
    found: Iterable[Mapping[str, Any]],
    rates: cluster_results.Rates,
) -> list[str]:
    """A row per (target, its bound): the ratio measured and the verdict, or which side was not run.

    ``found`` is what the benchmark's ``verdicts`` made of ``rates``: a
    ``{"target", "value", "ok"}`` per target both sides of which ran.
    """
    by_what = {v["target"]: v for v in found}
    lines = [f"| target (issue {issue}) | measured | {bound} | verdict |", "|---|---:|---:|---|"]
    for t, limit in targets:
        v = by_what.get(t.what)
        if v is None:
            missing = [
                f"{who} on {key}" for key, who in (t.ours, t.theirs) if not rates.get(key, {}).get(who)
            ]
            lines.append(f"| {t.what} | n/a | {limit} | not measured: no {', no '.join(missing)} |")
        else:
            lines.append(f"| {t.what} | x{v['value']:.2f} | {limit} | {_verdict(v['ok'])} |")
    return lines


def cluster_table(measured: dict[str, Any]) -> list[str]:
    """Medians, min to max, the rate over raw nats-py's and troupe's lead: a row per workload."""
    rates = cluster_results.rates(measured["results"])
    return _rate_table(measured, partial(_cluster_cell, rates))


def cluster_scaling(measured: dict[str, Any]) -> list[str]:
    rates = cluster_results.rates(measured["results"])
    said = []
    for who in measured["contenders"]:
        rounds = cluster_results.scaling(rates, who)
        medians = cluster_results.ratio(rates, ("pool-2", who), ("pool-1", who))
        if rounds and medians is not None:
            share = cluster_results.of_ceiling(rates, who)
            of = f", {share:.0%} of bare's" if share is not None and who != cluster_results.CEILING else ""
            said.append(f"{who} x{medians:.2f} (rounds x{min(rounds):.2f} to x{max(rounds):.2f}{of})")
    if not said:
        return []
    lines = [
        "Pool scaling, 2 worker processes over 1, as the ratio of the medians (the target's measure; "
        "in brackets the range of each round's own ratio): " + "; ".join(said) + ".",
        "",
    ]
    if cluster_results.CEILING in measured["contenders"]:
        lines += [
            f"**{cluster_results.CEILING}** burns the same items in plain processes that share nothing and",
            "send nothing: its scaling is what this machine's cores give by themselves, the ceiling of any",
            "pool's. A pool that reaches 100% of it loses nothing to its messaging.",
            "",
        ]
    return lines


def cluster_targets(measured: dict[str, Any]) -> list[str]:
    """Issue 19's targets (bench/cluster.py's ``TARGETS``), computed from the runs as the run printed them."""
    rates = cluster_results.rates(measured["results"])
    found = cluster_results.verdicts(rates, cluster_bench.TARGETS)
    return _target_table(
        19, "at least", [(t, f"x{t.at_least:g}") for t in cluster_bench.TARGETS], found, rates
    )


def cluster_chart(measured: dict[str, Any], path: Path) -> None:
    """The median rate of every contender on every workload; a log scale if they spread wide."""
    rates = cluster_results.rates(measured["results"])
    works = measured["workloads"]
    series: dict[str, list[float | None]] = {
        who: [statistics.median(got) if (got := rates[w["key"]].get(who)) else None for w in works]
        for who in measured["contenders"]
    }
    drawn = [x for got in series.values() for x in got if x is not None]
    repeat = measured["repeat"]
    log = bool(drawn) and max(drawn) > LOG_SPREAD * min(drawn)
    bars(
        path,
        [f"{w['key']} ({w['unit']})" for w in works],
        series,
        xlabel=f"median rate per second{' (log scale)' if log else ''}; longer is faster",
        title=f"troupe.cluster across processes, medians of {_rounds(repeat)} ({measured['when']})",
        log=log,
        formatter=mpl.ticker.FuncFormatter(lambda x, _pos=None: _num(x)),
        legend="best",
        annotate=True,
    )


def _cluster_load(measured: dict[str, Any]) -> list[str]:
    cpu, load = measured.get("cpu_seconds"), measured.get("load_average")
    if not cpu or not load:
        return []
    capacity = cpu["cores"] * cpu["wall"]
    return [
        f"Other work on the machine took {cpu['others']:,.0f} of the run's {capacity:,.0f} CPU seconds",
        f"({cpu['others'] / capacity:.0%}); the benchmark's own processes {cpu['ours']:,.0f}. Load average",
        f"{load['before'][0]:.2f} before, {load['after'][0]:.2f} after.",
    ]


def _who_and_what(
    measured: dict[str, Any], contenders: str, work_said: Callable[[dict[str, Any], dict[str, Any]], str]
) -> list[str]:
    """Where and when a run was made, its contenders (under the heading ``contenders``) and its workloads."""
    return [
        *_measured_on(measured),
        *_cluster_load(measured),
        "",
        contenders,
        "",
        *(f"- **{who}**: {title}" for who, title in measured["contenders"].items()),
        "",
        "The workloads:",
        "",
        *(work_said(measured, w) for w in measured["workloads"]),
        "",
    ]


def _cluster_reading(measured: dict[str, Any]) -> list[str]:
    base = cluster_bench.BASELINE
    said = [
        "How to read these figures: the tell stream measures throughput and the ask round trips",
        "latency, both through one local nats-server: every message crosses two sockets and the",
        f"server's process, which shares the machine's {measured['machine']['cores']} cores with the",
        "contenders' processes. Raw NATS request/reply on this machine bounds any ask over NATS: a",
        "troupe ask is one such round trip plus the actors' work at both ends, so it can at best",
        f"match the fastest raw client, and where it beats {base} it is by a cheaper client, not",
        "a shorter path.",
    ]
    if "thespian" in measured["contenders"]:
        said += [
            "Thespian (`multiprocTCPBase`) uses its own TCP transport between its processes, no",
            "NATS server in between: its column compares whole stacks, not NATS clients.",
        ]
        rates = cluster_results.rates(measured["results"])
        thespian, raw = rates.get("ask", {}).get("thespian"), rates.get("ask", {}).get(base)
        if thespian and raw:
            three = 3 * statistics.median(thespian)
            over = three / statistics.median(raw)
            said += [
                f"Three times Thespian's asks would be {_num(three)} round trips/s, x{over:.2f} of raw",
                f"{base}'s request/reply on the same server: more than any client over NATS reaches here.",
            ]
    return said


def _cluster_body(measured: dict[str, Any]) -> list[str]:
    """The section on bench/cluster.py's run, below its title."""
    base = cluster_bench.BASELINE
    return [
        "`bench/cluster.py` runs every workload across OS processes, through one local nats-server",
        "started for the run (Thespian, with its own transport, uses none), on troupe.cluster and the",
        "contenders below, in one run.",
        f"Figures are medians of {_rounds(measured['repeat'], 'interleaved ')}: each round runs every",
        "workload on every contender once, so a machine that slows down for a while slows everyone.",
        f"Each cell shows the **median** rate, the min to max, the rate over raw {base}'s",
        f'("x0.83 of {base}") and troupe\'s lead over that contender ("troupe x1.20": above 1, troupe',
        "is faster). Every run's count was checked: a run that lost a message, or an answer,",
        "would have stopped the benchmark.",
        "",
        *_who_and_what(measured, "The contenders (`bench/clusterkit/on_<name>.py`):", _cluster_work_said),
        *cluster_table(measured),
        "",
        f"![median rates across processes]({CLUSTER_CHART_NAME})",
        "",
        *cluster_scaling(measured),
        *cluster_targets(measured),
        "",
        *_cluster_reading(measured),
    ]


# -- task bodies on Dask: bench/dask_bench.py --json ---------------------------------------------


def _dask_work_said(measured: dict[str, Any], work: dict[str, Any]) -> str:
    """What one of the Dask benchmark's workloads does, in a line (its title is the JSON's)."""
    if work["key"] == "cpu":
        how = (
            f"each task is {measured['cost']:,} multiply-adds of pure Python; troupe makes a task per body "
            "(`run_task(burn, i, executor=dask)`) then awaits each result, raw distributed runs "
            "`client.map` then `client.gather`, serial is a plain loop in one process"
        )
    elif work["key"] == "tiny":
        how = (
            "each task adds 1 to a number; troupe makes a task per body then awaits each result, "
            "raw distributed runs `client.map` then `client.gather`"
        )
    else:
        how = (
            "the next task is submitted when the last one's result is in: troupe's "
            "`await (await run_task(tiny, i, executor=dask)).result()`, raw "
            "`client.submit(tiny, i).result()`"
        )
    return f"- **{work['key']}**: {work['title']}: {how}."


def _dask_cell(measured: dict[str, Any], rates: dask_bench.Rates, key: str, who: str) -> str:
    got = rates[key].get(who)
    if not got:
        return "not run"
    median = statistics.median(got)
    runs = measured["results"][key][who]
    cpu = statistics.median(r["cpu_seconds"] / r["count"] for r in runs) * 1e3
    text = f"{_spread(got)}<br>{1e3 / median:.2f} ms/task<br>CPU here {cpu:.2f} ms/task"
    for base in (dask_bench.BASELINE, "serial"):
        over = dask_bench.ratio(rates, (key, who), (key, base))
        if who != base and over is not None:
            text += f"<br>x{over:.2f} of {base}"
    return text


def dask_table(measured: dict[str, Any]) -> list[str]:
    """Medians, min to max, time and this process's CPU per task, ratios to raw distributed and serial."""
    rates = dask_bench.rates(measured["results"])
    return _rate_table(measured, partial(_dask_cell, measured, rates))


def dask_targets(measured: dict[str, Any]) -> list[str]:
    """Issue 20's targets (bench/dask_bench.py's ``TARGETS``), computed from the runs as it printed them."""
    rates = dask_bench.rates(measured["results"])
    bounds = [(t, f"{t.sign} x{t.bound:g}") for t in dask_bench.TARGETS]
    return _target_table(20, "bound", bounds, dask_bench.verdicts(rates), rates)


def _dask_reading(measured: dict[str, Any]) -> list[str]:
    """What the figures say beyond the targets: Dask's own ceiling here, troupe's cost per task."""
    rates = dask_bench.rates(measured["results"])
    base = dask_bench.BASELINE
    said: list[str] = []
    raw_cpu = dask_bench.ratio(rates, ("cpu", base), ("cpu", "serial"))
    if raw_cpu is not None:
        said += [
            f"Raw {base} itself runs the cpu tasks at x{raw_cpu:.2f} of the serial loop here: the",
            f"machine's {measured['machine']['cores']} cores run the two workers, their nannies, the",
            "scheduler and both clients (in the benchmark's process), and every task costs Dask's",
            "machinery CPU time in several of them on top of its body. No client of the same",
            "cluster can scale better than raw Dask's own figure; troupe's is to be read against it.",
        ]
    extra = []
    for work in measured["workloads"]:
        runs = measured["results"][work["key"]]
        if "troupe" in runs and base in runs:
            ours, theirs = (
                statistics.median(r["cpu_seconds"] / r["count"] for r in runs[who]) * 1e3
                for who in ("troupe", base)
            )
            extra.append(f"{work['key']} {ours - theirs:+.2f} ms")
    if extra:
        said += [
            "",
            '"CPU here" is the benchmark process\'s CPU time per task, all its threads together',
            "(trio's, both clients' event loops, the cluster's scheduler): troupe's over raw",
            f"{base}'s, per task: {'; '.join(extra)}. That is what troupe adds: a task actor",
            "per `run_task` (HPC-GAP's tasks are actors with a handle, a record and a result),",
            "and more work for the Dask client and the scheduler: the bodies go in one `client.map`",
            "per trio scheduler pass rather than one for all, each future is watched on its own,",
            "and results come in one `gather` for the futures done at the time rather than one for",
            "all, each handed back to trio. On 2 cores that CPU time is taken from the workers.",
        ]
    return said


def _dask_body(measured: dict[str, Any]) -> list[str]:
    """The section on bench/dask_bench.py's run, below its title."""
    base, cluster = dask_bench.BASELINE, measured["cluster"]
    return [
        "`bench/dask_bench.py` runs task bodies on one `distributed.LocalCluster` for the whole run",
        f"({cluster['workers']} worker processes of {cluster['threads_per_worker']} thread, no dashboard),",
        "shared by raw `distributed` (a `Client` of its own) and troupe",
        "(`troupe.DaskExecutor(cluster.scheduler_address)`, in one actor system), so both pay for the",
        "same scheduler and workers. Both send the same functions, by reference, with fresh keys",
        "(`pure=False`), and each side runs a few tasks before the clock starts.",
        f"Figures are medians of {_rounds(measured['repeat'], 'interleaved ')}: each round runs every",
        "workload on every contender once. Each cell shows the **median** rate, the min to max, the",
        f"median time per task, this process's CPU per task, and the rate over raw {base}'s and",
        "over the serial loop's. Every run's results were checked value by value: a lost or wrong",
        "result would have stopped the benchmark.",
        "",
        *_who_and_what(measured, "The contenders:", _dask_work_said),
        *dask_table(measured),
        "",
        *dask_targets(measured),
        "",
        *_dask_reading(measured),
        "",
        "Measure again with `make bench-dask`, then `make bench-report` for this page.",
    ]


def _explore_body(measured: dict[str, Any]) -> list[str]:
    """The section on bench/explore.py's run, below its title."""
    body = measured["body"]
    rates = explore_bench.rates(measured["results"])
    plain = rates.get("plain")
    rows = [
        "| contender | schedules/s | trio steps per schedule | distinct interleavings | time over plain |"
    ]
    rows.append("|---|---:|---:|---:|---:|")
    for who, got in rates.items():
        rounds = measured["results"][who]
        med = statistics.median(got)
        cells = [_spread(got)]
        if who == "plain":
            cells += ["", "", ""]
        else:
            steps = statistics.median(r["steps"] / r["schedules"] for r in rounds)
            seen = statistics.median(r["interleavings"] for r in rounds)
            over = f"x{statistics.median(plain) / med:.2f}" if plain else "n/a"
            cells += [_num(steps), f"{_num(seen)} of {_num(rounds[0]['schedules'])}", over]
        rows.append(f"| {who} | " + " | ".join(cells) + " |")
    reading = []
    if plain and rates.get("random"):
        share = statistics.median(rates["random"]) / statistics.median(plain)
        reading = [
            f"A plain run of the body is {share:.0%} of an explored schedule's time (a fresh `trio.run`,",
            "opening and closing the system, the messages); the rest is exploration's own: a scheduler",
            "pass per message (an actor may yield before each, as the seed decides), the shuffle or",
            "priority sort of each batch, a trace line per message, the mock clock and the watchdog.",
            "",
            "When exploration is off, the runtime's hooks for it cost +0.08% instructions per message",
            "on a tell stream, +0.4% per `await tell` and +0.13% per ask (callgrind, before and after",
            "they were added, 27bec1b and 885b822), and 16 bytes per actor: within noise on the wall",
            "clock (`bench/core.py`, 4 interleaved rounds: x1.005, x0.993, x0.990).",
            "",
        ]
    targets = [
        f"- {v['target']}: {_num(v['value'])} (>= {v['bound']:g}: {'met' if v['ok'] else '**missed**'})"
        for v in measured["targets"]
    ]
    return [
        f"`bench/explore.py` runs `troupe.testing.explore` on a body of {body['actors']} actors and",
        f"{body['messages']} messages: the body tells a dispatcher jobs, the dispatcher fans them out",
        "to 3 workers, each worker asks a collector to add the job's square; the body syncs with",
        "each and checks the collector's total. Each round runs",
        f"{_num(measured['schedules'])} schedules per contender, from the same seeds: **random** and",
        "**pct** are the two strategies (pct's calibration run counted), **plain** the same body in a",
        "plain `trio.run` per schedule, no exploration. Figures are medians of",
        f"{_rounds(measured['repeat'], 'interleaved ')}; a distinct interleaving is a distinct trace of",
        "which actor took which message.",
        "",
        *_measured_on(measured),
        "",
        *rows,
        "",
        "Targets (issue 21):",
        "",
        *targets,
        "",
        *reading,
        "Measure again with `python bench/explore.py --json bench/results/explore.json`, then",
        "`make bench-report` for this page.",
    ]


# -- with a dashboard watching: bench/dashboard.py --json ------------------------------------------

_WATCHERS = {
    "browser": (
        "starts: here the real page in headless Chromium (selenium, from a worker thread). In the",
        "table, `clients` is the event streams the server had open when the workload ended, and",
        "`rate shown` 1 if the page was showing a message rate then.",
    ),
    "httpx": (
        "starts: here an httpx client in the same trio run that does the page's work. In the table,",
        "`batches` and `events` are what it took off the event stream, `lagged` the notices that it",
        "fell behind, `reads` its requests to the API.",
    ),
}
"""bench/dashboard.py's ``--client``: who watched, and what the counts it keeps of each run are."""


def _watched(seen: Sequence[Mapping[str, int]]) -> str:
    """What the client got in the dashboard arm's runs: each count, as min to max where they differ."""
    said = []
    for name in seen[0] if seen else ():
        low, high = min(s[name] for s in seen), max(s[name] for s in seen)
        said.append(f"{name.replace('_', ' ')} {_num(low)}" + (f" to {_num(high)}" if high != low else ""))
    return ", ".join(said) or "n/a"


def _dashboard_command(measured: Mapping[str, Any]) -> str:
    """The command that measures the run again: bench/dashboard.py and the options not at their defaults."""
    made = measured["summary"]
    full = {w.key: w.size for w in dashboard_bench.workloads(1.0)}
    said = ["python bench/dashboard.py"]
    if measured["client"] != "browser":  # bench/dashboard.py's default
        said.append(f"--client {measured['client']}")
    if measured["repeat"] != dashboard_bench.REPEAT:
        said.append(f"--repeat {measured['repeat']}")
    largest = max(made, key=lambda key: full.get(key, 0))  # the size least clamped to the minimum
    if largest in full and made[largest]["size"] != full[largest]:
        said.append(f"--scale {made[largest]['size'] / full[largest]:g}")
    if list(made) != list(full):
        said.append("--only " + " ".join(made))
    return " ".join([*said, "--json bench/results/dashboard.json"])


def dashboard_table(measured: Mapping[str, Any]) -> list[str]:
    """A row per workload: bare and dashboard rates (median, min to max), their ratio, cost and verdict."""
    least = f"at least {measured['target']:.2f}"
    lines = [
        f"| workload | bare | dashboard | dashboard/bare | cost | {least} | the client got |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for key, row in measured["summary"].items():
        runs = measured["runs"][key]
        cells = [
            _spread(runs["bare"]),
            _spread(runs["dashboard"]),
            f"{row['ratio']:.3f}",
            f"{1 - row['ratio']:.1%}",
            _verdict(row["ok"]),
            _watched(runs.get("seen", [])),
        ]
        lines.append(f"| {row['title']} ({row['unit']}) | " + " | ".join(cells) + " |")
    return lines


def _dashboard_body(measured: dict[str, Any]) -> list[str]:
    """The section on bench/dashboard.py's run, below its title."""
    target, summary = measured["target"], measured["summary"]
    missed = [f"{key} ({row['ratio']:.3f})" for key, row in summary.items() if not row["ok"]]
    command = _dashboard_command(measured)
    if command == "python bench/dashboard.py --json bench/results/dashboard.json":
        command = "make bench-dashboard"
    return [
        "`bench/dashboard.py` runs troupe's core workloads in two arms, in one process: **bare**, the",
        "workload as it is, and **dashboard**, where `troupe.open_system` also serves the system's",
        "dashboard (`troupe.web.serve`) on a free port and a client is connected before the workload",
        *_WATCHERS[measured["client"]],
        "The client reads `/api/events` and re-reads `/api/system`, `/api/actors` and `/api/tasks`",
        f"on events (at most every {dashboard_bench.THROTTLE:g} s) and every {dashboard_bench.POLL:g} s.",
        "Actors' lives reach it summed up (a `troupe.lifecycle` item, on its own at most every 0.5 s).",
        f"Figures are medians of {_rounds(measured['repeat'], 'interleaved ')} after a warm-up round",
        "(the arms' order flips every round, so a machine that slows down slows both; each arm's",
        "workload starts just after a full garbage collection, so that where the collector's",
        "counts stand after the dashboard's set-up does not decide the ratio). Each cell",
        "shows the **median** rate, then the min to max; dashboard/bare is the ratio of the medians,",
        "and the cost is what the dashboard takes of the bare rate.",
        "",
        *_measured_on(measured),
        "",
        *dashboard_table(measured),
        "",
        f"Target (issue 22): with a client connected, every workload keeps at least {target:.0%} of",
        f"its bare throughput: {'**missed** on ' + ', '.join(missed) if missed else 'met'}.",
        "",
        f"Measure again with `{command}`, then `make bench-page` for this page.",
    ]


# -- the page ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """One benchmark's section of the page, from the JSON its script writes with ``--json``."""

    option: str
    """This report's option for the JSON, and the file's name in bench/results/."""
    title: str
    script: str
    takes: str
    """How long the script runs, for a page that says how to measure."""
    body: Callable[[dict[str, Any]], list[str]]
    """The section below its title, from the JSON."""

    @property
    def results(self) -> str:
        """Where ``make`` keeps the JSON."""
        return f"bench/results/{self.option}.json"

    def render(self, measured: dict[str, Any] | None) -> list[str]:
        """The section from the run ``measured``; ``None`` (not measured): how to measure it."""
        if measured is None:
            said = [
                f"Not measured in this report: run `python {self.script} --json {self.results}`",
                f"({self.takes}), then this report again with `--{self.option} {self.results}`.",
            ]
        else:
            said = self.body(measured)
        return [f"## {self.title}", "", *said]


CLUSTER = Section(
    "cluster", "Across processes: troupe.cluster", "bench/cluster.py", "a few minutes", _cluster_body
)
DASK = Section("dask", "Task bodies on Dask", "bench/dask_bench.py", "a few minutes", _dask_body)
EXPLORE = Section("explore", "Schedule exploration", "bench/explore.py", "about 10 seconds", _explore_body)
DASHBOARD = Section(
    "dashboard", "With a dashboard watching", "bench/dashboard.py", "about 2 minutes", _dashboard_body
)
SECTIONS = (CLUSTER, DASK, EXPLORE, DASHBOARD)
"""The optional sections, in the page's order."""


def page(
    report: dict[str, Any],
    million: dict[str, Any] | None,
    measured: Mapping[str, dict[str, Any] | None] | None = None,
) -> str:
    """The whole page.

    ``measured`` maps a section's option to its run (None: not run, the
    section says how to measure): the sections not in it are left out.
    """
    measured = measured or {}
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
        *_measured_on(report),
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
        *(line for s in SECTIONS if s.option in measured for line in [*s.render(measured[s.option]), ""]),
        "## Reproduce",
        "",
        "```console",
        "make bench-peers     # the table, printed",
        "make bench-report    # measure again and rewrite this page and its chart",
        "make bench-page      # rewrite this page from bench/results/*.json, measuring nothing",
        "make bench-million   # a million idle actors (not in CI)",
        "make bench-cluster   # troupe.cluster across processes (then bench-page for this page)",
        "make bench-dask      # DaskExecutor against raw distributed (then bench-page)",
        "make bench-explore   # schedule exploration's schedules/s (then bench-page)",
        "make bench-dashboard # what a watching dashboard costs (then bench-page)",
        "```",
        "",
        "The peers come from the `bench` extra (`pip install -e '.[bench]'`), never from the",
        "library itself. `python bench/peers.py --help` lists the options (`--repeat`, `--scale`,",
        "`--only`).",
        "",
    ]
    return "\n".join(lines)


def _load(path: Path | None) -> dict[str, Any] | None:
    """A benchmark's JSON; ``None`` for a file not given or not yet written."""
    return json.loads(path.read_text()) if path is not None and path.exists() else None


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("results", type=Path, help="the JSON written by bench/peers.py --json")
    parser.add_argument("--million", type=Path, help="the JSON written by bench/million.py --json, if any")
    for s in SECTIONS:
        chart_too = f" and its chart, {CLUSTER_CHART_NAME}" if s is CLUSTER else ""
        parser.add_argument(
            f"--{s.option}",
            type=Path,
            help=f"the JSON written by {s.script} --json: adds the section '{s.title}'{chart_too} "
            "(a file that does not exist: the section says how to measure)",
        )
    parser.add_argument("--page", type=Path, default=Path("docs/performance.md"), help="the page to write")
    args = parser.parse_args()
    report = json.loads(args.results.read_text())
    million = _load(args.million)
    measured = {s.option: _load(path) for s in SECTIONS if (path := getattr(args, s.option)) is not None}
    args.page.parent.mkdir(parents=True, exist_ok=True)
    chart(report, args.page.parent / CHART_NAME)
    wrote = [args.page, args.page.parent / CHART_NAME]
    if (across := measured.get(CLUSTER.option)) is not None:
        cluster_chart(across, args.page.parent / CLUSTER_CHART_NAME)
        wrote.append(args.page.parent / CLUSTER_CHART_NAME)
    args.page.write_text(page(report, million, measured))
    print(f"wrote {', '.join(map(str, wrote[:-1]))} and {wrote[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
