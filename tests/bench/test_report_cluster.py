"""bench/report.py --cluster: the section on bench/cluster.py's run, from a real tiny run and a made-up one.

The made-up run has troupe rows with round figures, so every median, ratio
and target verdict on the page can be checked to the digit; the tiny real run
checks the page reads what bench/cluster.py actually writes. The committed
page is what the committed results make, byte for byte; without
``--cluster`` it is that page without its section.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cluster
import pytest
import report

from clusterkit import results
from clusterkit.common import Run
from kit import run_python

BENCH = Path(__file__).parents[2] / "bench"
ROOT = BENCH.parent


def _report(tmp: Path, *extra: object) -> Path:
    page = tmp / "docs" / "performance.md"
    run_python(
        BENCH / "report.py",
        BENCH / "results" / "peers.json",
        "--million",
        BENCH / "results" / "million.json",
        "--dask",  # the committed page has the Dask section too (tests/bench/test_report_dask.py)
        BENCH / "results" / "dask.json",
        "--explore",  # and the exploration section
        BENCH / "results" / "explore.json",
        "--dashboard",  # and the dashboard's (tests/bench/test_report_dashboard.py)
        BENCH / "results" / "dashboard.json",
        *extra,
        "--page",
        page,
    )
    return page


def _section(text: str) -> str:
    start = text.index("## Across processes: troupe.cluster")
    return text[start : text.index("\n## ", start + 1) + 1]


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny bench/cluster.py run of the contenders that need no troupe.cluster actors (about 10 s)."""
    out = tmp_path_factory.mktemp("cluster") / "cluster.json"
    run_python(
        BENCH / "cluster.py",
        "--scale",
        "0.0002",  # 40 messages, 8 round trips, 8 pool items
        "--repeat",
        "1",
        "--cost",
        "2000",
        "--only",
        "nats-py",
        "native",
        "thespian",
        "--json",
        out,
    )
    return out


def _runs(rates: Sequence[float], count: int) -> list[dict[str, Any]]:
    return [{"seconds": count / r, "count": count, "shares": []} for r in rates]


def _made_up() -> dict[str, Any]:
    """A run with every contender and round figures (3 rounds)."""
    names = ["troupe", "nats-py", "bridge", "native", "thespian"]
    rows = [("tell", "tell", 1000, "msg/s", 0), ("ask", "ask", 100, "trips/s", 0)]
    rows += [(f"pool-{k}", "pool", 40, "items/s", k) for k in (1, 2)]
    rates = {
        "tell": {
            "troupe": [110_000, 100_000, 120_000],
            "nats-py": [150_000, 140_000, 160_000],
            "bridge": [50_000, 50_000, 50_000],
            "native": [200_000, 190_000, 210_000],
        },
        "ask": {
            "troupe": [2500, 2400, 2600],
            "nats-py": [2000, 1900, 2100],
            "bridge": [1000, 1000, 1000],
            "native": [3000, 3000, 3000],
            "thespian": [1000, 900, 1100],
        },
        "pool-1": {"troupe": [50, 52, 48], "nats-py": [60, 60, 60]},
        "pool-2": {"troupe": [92, 90, 94], "nats-py": [100, 110, 120]},
    }
    sizes = {key: size for key, _, size, _, _ in rows}
    return {
        "when": "2031-01-02 03:04",
        "repeat": 3,
        "machine": {"cpu": "Test CPU", "cores": "2", "system": "Linux 9"},
        "versions": {"python": "3.11.7", "nats-py": "2.16.0"},
        "payload_bytes": 58,
        "pool": {"cost": 200_000, "window": 32},
        "contenders": {n: f"the {n} contender" for n in names},
        "workloads": [
            {"key": key, "kind": kind, "size": size, "title": f"{key} title", "unit": unit, "workers": k}
            for key, kind, size, unit, k in rows
        ],
        "results": {
            key: {who: _runs(got, sizes[key]) for who, got in cells.items()} for key, cells in rates.items()
        },
        "load_average": {"before": [1.5, 1.0, 0.5], "after": [2.25, 1.0, 0.5]},
        "cpu_seconds": {"wall": 100.0, "cores": 2, "others": 50.0, "ours": 120.0},
        "targets": [],
    }


def _committed() -> str:
    return (ROOT / "docs" / "performance.md").read_text()


def test_the_committed_page_is_what_the_committed_results_make_byte_for_byte(tmp_path: Path) -> None:
    page = _report(tmp_path, "--cluster", BENCH / "results" / "cluster.json")
    assert page.read_text() == _committed()
    assert (page.parent / report.CLUSTER_CHART_NAME).read_bytes().startswith(b"\x89PNG")


def test_without_cluster_the_page_is_the_committed_one_without_its_section(tmp_path: Path) -> None:
    page = _report(tmp_path)
    committed = _committed()
    assert page.read_text() == committed.replace(_section(committed), "")
    assert not (page.parent / report.CLUSTER_CHART_NAME).exists()
    made = report.page(json.loads((BENCH / "results" / "peers.json").read_text()), None)
    assert "Across processes" not in made


def test_the_section_reads_a_real_cluster_run(tmp_path: Path, real_run: Path) -> None:
    measured = json.loads(real_run.read_text())
    page = _report(tmp_path, "--cluster", real_run)
    text = page.read_text()
    section = _section(text)
    committed = _committed()
    assert text.replace(section, "") == committed.replace(_section(committed), "")  # the rest is untouched
    assert text.index("## A million idle actors") < text.index("## Across") < text.index("## Reproduce")
    assert f"Measured {measured['when']} on " in section
    assert "nats-py 2.16.0" in section
    assert "Figures are medians of 1 interleaved round: " in section
    assert "Every run's count was checked" in section
    assert "| workload | nats-py | native | thespian |" in section
    for work in measured["workloads"]:
        assert f"- **{work['key']}**: {work['title']}: " in section
        row = next(line for line in section.splitlines() if line.startswith(f"| {work['title']} ("))
        assert row.count("**") == 2 * len(measured["results"][work["key"]])  # a median per contender run
    ask = next(line for line in section.splitlines() if line.startswith("| ask round trips"))
    rates = results.rates(measured["results"])
    native = results.ratio(rates, ("ask", "native"), ("ask", "nats-py"))
    assert native is not None
    assert f"<br>x{native:.2f} of nats-py |" in ask
    pool = next(line for line in section.splitlines() if line.startswith("| CPU-bound pool on 2"))
    assert pool.endswith("| not run | not run |")
    assert "troupe x" not in section.replace('"troupe x1.20"', "")  # troupe did not run
    assert "| ask over Thespian | n/a | x3 | not measured: no troupe on ask |" in section
    assert "Pool scaling, 2 worker processes over 1" in section
    assert "Thespian (`multiprocTCPBase`) uses its own TCP transport" in section
    assert f"![median rates across processes]({report.CLUSTER_CHART_NAME})" in section
    png = page.parent / report.CLUSTER_CHART_NAME
    assert png.read_bytes().startswith(b"\x89PNG")
    # what the run printed and wrote as its targets is what the page computes (none without troupe)
    assert measured["targets"] == results.verdicts(rates, cluster.TARGETS) == []


def test_the_section_on_a_run_with_troupe_has_every_ratio_and_target(tmp_path: Path) -> None:
    made = tmp_path / "cluster.json"
    made.write_text(json.dumps(_made_up()))
    page = _report(tmp_path, "--cluster", made)
    section = _section(page.read_text())
    lines = section.splitlines()
    assert "| workload | troupe | nats-py | bridge | native | thespian |" in lines
    assert (
        "| tell title (msg/s) | **110,000**<br>100,000 to 120,000<br>x0.73 of nats-py"
        " | **150,000**<br>140,000 to 160,000<br>troupe x0.73"
        " | **50,000**<br>50,000 to 50,000<br>x0.33 of nats-py<br>troupe x2.20"
        " | **200,000**<br>190,000 to 210,000<br>x1.33 of nats-py<br>troupe x0.55"
        " | not run |"
    ) in lines
    ask = next(line for line in lines if line.startswith("| ask title"))
    assert ask.endswith("| **1,000**<br>900 to 1,100<br>x0.50 of nats-py<br>troupe x2.50 |")
    assert "| tell stream over raw nats-py | x0.73 | x0.7 | ok |" in lines
    assert "| ask over raw nats-py | x1.25 | x1 | ok |" in lines
    assert "| ask over Thespian | x2.50 | x3 | **MISSED** |" in lines
    assert "| pool on 2 workers over 1 | x1.84 | x1.8 | ok |" in lines
    assert "troupe x1.84 (rounds x1.73 to x1.96); nats-py x1.83 (rounds x1.67 to x2.00)" in section
    assert "Figures are medians of 3 interleaved rounds: " in section
    assert "Other work on the machine took 50 of the run's 200 CPU seconds\n(25%)" in section
    assert "1.50 before, 2.25 after." in section
    assert (
        "- **pool-2**: pool-2 title: a client process keeps 32 items unanswered, spread over 2 worker"
        in section
    )
    assert (tmp_path / "docs" / report.CLUSTER_CHART_NAME).stat().st_size > 10_000


def test_the_targets_are_the_ones_bench_cluster_prints(capsys: pytest.CaptureFixture[str]) -> None:
    made = _made_up()
    table: cluster.Table = {
        key: {
            who: cluster.Cell([Run(r["seconds"], r["count"], tuple(r["shares"])) for r in runs])
            for who, runs in cells.items()
        }
        for key, cells in made["results"].items()
    }
    printed = cluster.print_targets(table)
    assert f"{'ask over Thespian':<30} x 2.50  (>= 3.0: MISSED)" in capsys.readouterr().out
    assert results.verdicts(results.rates(made["results"]), cluster.TARGETS) == printed
    assert [v["ok"] for v in printed] == [True, True, False, True]


def test_a_cluster_file_not_yet_measured_says_how_to_measure_it(tmp_path: Path) -> None:
    page = _report(tmp_path, "--cluster", tmp_path / "absent.json")
    section = _section(page.read_text())
    assert "Not measured in this report: run `python bench/cluster.py --json" in section
    assert not (page.parent / report.CLUSTER_CHART_NAME).exists()


def test_the_chart_goes_to_a_log_scale_only_when_the_rates_spread_wide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scales: list[bool] = []
    monkeypatch.setattr(report, "bars", lambda *_a, **kw: scales.append(kw["log"]))
    wide = _made_up()
    report.cluster_chart(wide, tmp_path / "wide.png")
    narrow = _made_up()
    narrow["workloads"] = narrow["workloads"][1:2]  # ask only: 900 to 3,000 trips/s
    report.cluster_chart(narrow, tmp_path / "narrow.png")
    assert scales == [True, False]
