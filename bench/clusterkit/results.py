"""The cluster benchmark's figures, computed from its runs: one code for the printout and the page.

``bench/cluster.py`` prints them as it measures; ``bench/report.py --cluster``
reads them back from ``bench/cluster.py --json`` output. Both go through these
functions, over a [`Rates`][clusterkit.results.Rates] table, so a target's
value and verdict on the page are the ones the run printed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from clusterkit.common import Run
from peerkit.common import lead

Rates = dict[str, dict[str, list[float]]]
"""Workload key -> contender name -> each run's rate (count per second), in the order of the rounds.

Only the contenders that ran a workload have an entry under it.
"""


def run_of(row: Mapping[str, Any]) -> Run:
    """One run as ``bench/cluster.py --json`` wrote it (``{"seconds", "count", "shares"}``)."""
    return Run(float(row["seconds"]), int(row["count"]), tuple(int(x) for x in row.get("shares", ())))


def rates(results: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]]) -> Rates:
    """The rates of every run in the JSON's ``"results"`` (workload key -> contender -> runs)."""
    return {
        key: {who: [run_of(row).rate for row in runs] for who, runs in cells.items()}
        for key, cells in results.items()
    }


def ratio(table: Rates, ours: tuple[str, str], theirs: tuple[str, str]) -> float | None:
    """The median rate of ``ours`` over the median rate of ``theirs``, each a (workload, contender).

    None if either was not measured.
    """
    return lead(table.get(ours[0], {}).get(ours[1], []), table.get(theirs[0], {}).get(theirs[1], []))


def scaling(table: Rates, who: str) -> list[float]:
    """Per round: ``who``'s 2-worker pool rate over its 1-worker pool rate (rounds paired in order)."""
    one, two = table.get("pool-1", {}).get(who), table.get("pool-2", {}).get(who)
    if one is None or two is None:
        return []
    return [b / a for a, b in zip(one, two, strict=True)]


CEILING = "bare"
"""The contender that runs the pool's work in plain processes, no messaging: the machine's ceiling."""


def of_ceiling(table: Rates, who: str) -> float | None:
    """``who``'s pool scaling over the bare processes' (ratios of medians): 1.0 is all the machine gives.

    None if either was not measured.
    """
    ours = ratio(table, ("pool-2", who), ("pool-1", who))
    bare = ratio(table, ("pool-2", CEILING), ("pool-1", CEILING))
    return None if ours is None or not bare else ours / bare


class TargetLike(Protocol):
    """What [`verdicts()`][clusterkit.results.verdicts] reads of a target (``cluster.Target``)."""

    @property
    def what(self) -> str:
        """The target, in words."""

    @property
    def ours(self) -> tuple[str, str]:
        """(workload, contender) of the rate on top: troupe's."""

    @property
    def theirs(self) -> tuple[str, str]:
        """(workload, contender) of the rate below."""

    @property
    def at_least(self) -> float:
        """The bound the ratio must reach."""


def verdicts(table: Rates, targets: Iterable[TargetLike]) -> list[dict[str, Any]]:
    """Each target both sides of which were measured: ``{"target", "at_least", "value", "ok"}``.

    ``value`` is the ratio of the medians (for the pool, 2 workers' over 1
    worker's); ``ok`` is ``value >= at_least``. Targets with a side not
    measured are left out (none before troupe has rows).
    """
    found: list[dict[str, Any]] = []
    for t in targets:
        value = ratio(table, t.ours, t.theirs)
        if value is None:
            continue
        found.append({"target": t.what, "at_least": t.at_least, "value": value, "ok": value >= t.at_least})
    return found
