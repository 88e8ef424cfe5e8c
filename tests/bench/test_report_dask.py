"""bench/report.py --dask: the section on bench/dask_bench.py's run, from a real tiny run and a made-up one.

The made-up run has round figures, so every median, ratio and target verdict
in the section can be checked to the digit; the tiny real run checks the page
reads what bench/dask_bench.py actually writes. The committed page's section
is what the committed results make; without ``--dask`` the page has none.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dask_bench
import pytest
import report

from kit import run_python

BENCH = Path(__file__).parents[2] / "bench"
ROOT = BENCH.parent
TITLE = "## Task bodies on Dask"


def _report(tmp: Path, *extra: object) -> str:
    page = tmp / "docs" / "performance.md"
    run_python(
        BENCH / "report.py",
        BENCH / "results" / "peers.json",
        "--million",
        BENCH / "results" / "million.json",
        "--cluster",
        BENCH / "results" / "cluster.json",
        "--explore",  # the committed page has the exploration section too
        BENCH / "results" / "explore.json",
        "--dashboard",  # and the dashboard's (tests/bench/test_report_dashboard.py)
        BENCH / "results" / "dashboard.json",
        *extra,
        "--page",
        page,
    )
    return page.read_text()


def _section(text: str) -> str:
    start = text.index(TITLE)
    return text[start : text.index("\n## ", start + 1) + 1]


def _committed() -> str:
    return (ROOT / "docs" / "performance.md").read_text()


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny bench/dask_bench.py run, every contender (a few seconds: the cluster's start)."""
    out = tmp_path_factory.mktemp("dask") / "dask.json"
    run_python(BENCH / "dask_bench.py", "--scale", "0.002", "--repeat", "1", "--cost", "2000", "--json", out)
    return out


def _runs(rates: Sequence[float], count: int, cpu_ms: float) -> list[dict[str, Any]]:
    return [{"seconds": count / r, "count": count, "cpu_seconds": count * cpu_ms / 1e3} for r in rates]


def _made_up() -> dict[str, Any]:
    """A run with every contender and round figures (3 rounds)."""
    rows = [("cpu", 2000), ("tiny", 10_000), ("latency", 500)]
    rates = {
        "cpu": {"troupe": [300, 320, 310], "distributed": [330, 350, 340], "serial": [200, 190, 210]},
        "tiny": {"troupe": [400, 420, 380], "distributed": [500, 450, 550]},
        "latency": {"troupe": [80, 75, 85], "distributed": [100, 90, 110]},
    }
    cpu_ms = {"troupe": 2.5, "distributed": 1.25, "serial": 5.0}
    sizes = dict(rows)
    return {
        "when": "2031-01-02 03:04",
        "repeat": 3,
        "machine": {"cpu": "Test CPU", "cores": "2", "system": "Linux 9"},
        "versions": {"python": "3.11.7", "distributed": "2026.8.0"},
        "cluster": {"workers": 2, "threads_per_worker": 1, "processes": True},
        "cost": 60_000,
        "contenders": {c.name: c.title for c in dask_bench.CONTENDERS},
        "workloads": [
            {"key": key, "size": size, "title": f"{key} title", "unit": "tasks/s"} for key, size in rows
        ],
        "results": {
            key: {who: _runs(got, sizes[key], cpu_ms[who]) for who, got in cells.items()}
            for key, cells in rates.items()
        },
        "load_average": {"before": [1.5, 1.0, 0.5], "after": [2.25, 1.0, 0.5]},
        "cpu_seconds": {"wall": 100.0, "cores": 2, "others": 50.0, "ours": 120.0},
        "targets": [],
    }


def test_the_committed_section_is_what_the_committed_results_make() -> None:
    measured = json.loads((BENCH / "results" / "dask.json").read_text())
    committed = _committed()
    assert _section(committed) == "\n".join([*report.DASK.render(measured), ""]) + "\n"
    rates = dask_bench.rates(measured["results"])
    assert measured["targets"] == dask_bench.verdicts(rates)  # what the run printed is what the page says
    assert [w["size"] for w in measured["workloads"]] == [2000, 10_000, 500]  # the sizes


def test_without_dask_the_page_has_no_such_section(tmp_path: Path) -> None:
    assert TITLE not in _report(tmp_path)
    made = report.page(json.loads((BENCH / "results" / "peers.json").read_text()), None)
    assert TITLE not in made


def test_the_section_reads_a_real_dask_run(tmp_path: Path, real_run: Path) -> None:
    measured = json.loads(real_run.read_text())
    text = _report(tmp_path, "--dask", real_run)
    section = _section(text)
    committed = _committed()
    assert text.replace(section, "") == committed.replace(_section(committed), "")  # the rest is untouched
    assert text.index("## Across processes") < text.index(TITLE) < text.index("## Reproduce")
    assert f"Measured {measured['when']} on " in section
    assert "Figures are medians of 1 interleaved round: " in section
    assert "| workload | troupe | distributed | serial |" in section
    for work in measured["workloads"]:
        assert f"- **{work['key']}**: {work['title']}: " in section
        row = next(line for line in section.splitlines() if line.startswith(f"| {work['title']} ("))
        assert row.count("**") == 2 * len(measured["results"][work["key"]])  # a median per contender run
    tiny = next(line for line in section.splitlines() if line.startswith("| tiny tasks"))
    assert tiny.endswith("| not run |")
    over = dask_bench.ratio(
        dask_bench.rates(measured["results"]), ("tiny", "troupe"), ("tiny", "distributed")
    )
    assert over is not None
    assert f"<br>x{over:.2f} of distributed |" in tiny
    for t in dask_bench.TARGETS:
        assert f"| {t.what} | x" in section


def test_the_section_on_a_made_up_run_has_every_figure_and_verdict(tmp_path: Path) -> None:
    made = tmp_path / "dask.json"
    made.write_text(json.dumps(_made_up()))
    lines = _section(_report(tmp_path, "--dask", made)).splitlines()
    assert (
        "| cpu title (tasks/s) | **310**<br>300 to 320<br>3.23 ms/task<br>CPU here 2.50 ms/task"
        "<br>x0.91 of distributed<br>x1.55 of serial"
        " | **340**<br>330 to 350<br>2.94 ms/task<br>CPU here 1.25 ms/task<br>x1.70 of serial"
        " | **200**<br>190 to 210<br>5.00 ms/task<br>CPU here 5.00 ms/task<br>x0.59 of distributed |"
    ) in lines
    latency = next(line for line in lines if line.startswith("| latency title"))
    assert latency.endswith("| **100**<br>90 to 110<br>10.00 ms/task<br>CPU here 1.25 ms/task | not run |")
    assert "| 2,000 CPU-bound tasks on 2 workers over serial | x1.55 | >= x1.7 | **MISSED** |" in lines
    assert "| tiny tasks over raw client.map + gather | x0.80 | >= x0.8 | ok |" in lines
    assert "| time per task, one at a time, over raw submit + result | x1.25 | <= x1.3 | ok |" in lines
    section = "\n".join(lines)
    assert "Raw distributed itself runs the cpu tasks at x1.70 of the serial loop here" in section
    assert "per task: cpu +1.25 ms; tiny +1.25 ms; latency +1.25 ms." in section
    assert "Other work on the machine took 50 of the run's 200 CPU seconds\n(25%)" in section
    assert "Figures are medians of 3 interleaved rounds: " in section


def test_a_target_with_a_side_not_measured_says_which() -> None:
    made = _made_up()
    del made["results"]["cpu"]["serial"]
    lines = report.dask_targets(made)
    assert (
        "| 2,000 CPU-bound tasks on 2 workers over serial | n/a | >= x1.7 | not measured: no serial on cpu |"
        in lines
    )


def test_a_dask_file_not_yet_measured_says_how_to_measure_it(tmp_path: Path) -> None:
    section = _section(_report(tmp_path, "--dask", tmp_path / "absent.json"))
    assert "Not measured in this report: run `python bench/dask_bench.py --json" in section
