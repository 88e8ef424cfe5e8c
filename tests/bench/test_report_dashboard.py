"""bench/report.py --dashboard: the section on bench/dashboard.py's run, real (tiny) and made up.

The committed page is what the Makefile's bench-report command makes of the
committed results, byte for byte; without ``--dashboard`` it is that page
without the section. The made-up runs go through bench/dashboard.py's own
``table`` and ``run_header``, so they have the schema its ``main`` writes, with
round figures that can be checked to the digit; the tiny real run checks the
page reads what the script actually writes.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import dashboard
import pytest
import report

from kit import run_python
from peerkit.common import run_header, versions

BENCH = Path(__file__).parents[2] / "bench"
ROOT = BENCH.parent


def _makefile_report() -> list[str]:
    """bench/report.py's arguments as the Makefile's bench-report target gives them."""
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    recipe = text[text.index("\nbench-report:") :]
    words = shlex.split(next(line for line in recipe.splitlines() if "bench/report.py" in line))
    return [str(ROOT / w) if w.startswith(("bench/", "docs/")) else w for w in words[2:]]


def _report(tmp: Path, *, dashboard_json: Path | None = None, leave_out: bool = False) -> str:
    """The page the Makefile's command makes, under ``tmp``; its dashboard JSON swapped or left out."""
    args = _makefile_report()
    at = args.index("--dashboard")
    if leave_out:
        del args[at : at + 2]
    elif dashboard_json is not None:
        args[at + 1] = str(dashboard_json)
    page = tmp / "docs" / "performance.md"
    args[args.index("--page") + 1] = str(page)
    run_python(BENCH / "report.py", *args)
    return page.read_text()


def _block(measured: dict[str, Any] | None) -> str:
    """The section as it stands on the page, with the blank line after it."""
    return "\n".join([*report.DASHBOARD.render(measured), ""]) + "\n"


def _committed() -> tuple[str, dict[str, Any]]:
    """The committed page and the committed results it shows."""
    page = (ROOT / "docs" / "performance.md").read_text()
    return page, json.loads((BENCH / "results" / "dashboard.json").read_text())


def _row(section: str, title: str) -> str:
    return next(line for line in section.splitlines() if line.startswith(f"| {title} ("))


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny bench/dashboard.py run with the httpx client, one round (a few seconds)."""
    out = tmp_path_factory.mktemp("dashboard") / "dashboard.json"
    tiny = ["--client", "httpx", "--scale", "0.0001", "--repeat", "1"]
    ran = subprocess.run(
        [sys.executable, str(BENCH / "dashboard.py"), *tiny, "--json", str(out)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # 1: some workload over the 10% (at this size, noise decides); anything else is a failure
    assert ran.returncode in (0, 1), f"bench/dashboard.py failed:\n{ran.stdout}\n{ran.stderr}"
    return out


def _seen(client: str, i: int) -> dict[str, int]:
    """What a client counts in its ``i``th run, as bench/dashboard.py's viewers keep it."""
    if client == "browser":
        return {"clients": 1, "rate_shown": 1}
    return {"batches": 10 + i, "events": 1000 * (i + 1), "lagged": 0, "reads": 5}


def _made_up(
    rates: dict[str, tuple[list[float], list[float]]], *, client: str = "browser", scale: float = 1.0
) -> dict[str, Any]:
    """A run as bench/dashboard.py writes it: workload key -> (bare rates, dashboard rates), a round each."""
    works = {w.key: w for w in dashboard.workloads(scale)}
    runs = {
        key: {"bare": bare, "dashboard": dash, "seen": [_seen(client, i) for i in range(len(bare))]}
        for key, (bare, dash) in rates.items()
    }
    ok, summary = dashboard.table([works[key] for key in rates], runs)
    made = run_header(len(next(iter(rates.values()))[0]), versions("trio", "starlette"))
    made |= {"when": "2031-01-02 03:04", "machine": {"cpu": "Test CPU", "cores": "2", "system": "Linux 9"}}
    return made | {"client": client, "target": dashboard.TARGET, "ok": ok, "summary": summary, "runs": runs}


EVEN = ([100.0, 90.0, 110.0], [96.0, 95.0, 99.0])  # 0.96 of the bare median: within the target
ALL_WITHIN = dict.fromkeys(("tell", "tell-await", "ask", "spawn", "churn"), EVEN)


def test_the_committed_page_is_what_the_makefile_command_makes_byte_for_byte(tmp_path: Path) -> None:
    assert _report(tmp_path) == _committed()[0]


def test_the_committed_section_shows_every_workload_and_its_verdict() -> None:
    page, measured = _committed()
    section = _block(measured)
    assert page.count(section) == 1
    assert page.index("## Schedule exploration") < page.index(section) < page.index("## Reproduce")
    for row in measured["summary"].values():
        line = _row(section, row["title"])
        assert (
            f"| {row['ratio']:.3f} | {1 - row['ratio']:.1%} | {'ok' if row['ok'] else '**MISSED**'} |" in line
        )
    verdict = "met" if measured["ok"] else "**missed** on "
    assert f"every workload keeps at least 90% of\nits bare throughput: {verdict}" in section
    assert f"Measured {measured['when']} on " in section


def test_without_dashboard_the_page_is_the_committed_one_without_its_section(tmp_path: Path) -> None:
    page, measured = _committed()
    assert _report(tmp_path, leave_out=True) == page.replace(_block(measured), "")
    assert report.DASHBOARD.title not in report.page(
        json.loads((BENCH / "results" / "peers.json").read_text()), None
    )


def test_the_section_reads_a_real_dashboard_run(tmp_path: Path, real_run: Path) -> None:
    measured = json.loads(real_run.read_text())
    page, committed = _committed()
    section = _block(measured)
    assert _report(tmp_path, dashboard_json=real_run) == page.replace(_block(committed), section)
    assert "here an httpx client in the same trio run" in section
    assert "Figures are medians of 1 interleaved round after a warm-up round" in section
    for key, row in measured["summary"].items():
        line = _row(section, row["title"])
        assert line.count("**") == 4 + 2 * (not row["ok"])  # two medians, and a missed verdict
        assert f"| {'ok' if row['ok'] else '**MISSED**'} | batches " in line
        assert (f"{key} ({row['ratio']:.3f})" in section) != row["ok"]  # named in the target line if missed
    assert (
        "Measure again with `python bench/dashboard.py --client httpx --repeat 1 --scale 0.0001 "
        "--json bench/results/dashboard.json`, then `make bench-page` for this page."
    ) in section


def test_a_made_up_run_has_every_figure_and_verdict() -> None:
    made = _made_up(ALL_WITHIN | {"spawn": ([200.0, 180.0, 220.0], [100.0, 90.0, 120.0])})
    section = "\n".join(report.DASHBOARD.render(made))
    lines = section.splitlines()
    assert "| workload | bare | dashboard | dashboard/bare | cost | at least 0.90 | the client got |" in lines
    assert (
        "| spawn idle actors (20,000) (actors/s) | **200**<br>180 to 220 | **100**<br>90 to 120"
        " | 0.500 | 50.0% | **MISSED** | clients 1, rate shown 1 |"
    ) in lines
    assert (
        "| ask round trips (80,000) (trips/s) | **100**<br>90 to 110 | **96**<br>95 to 99"
        " | 0.960 | 4.0% | ok | clients 1, rate shown 1 |"
    ) in lines
    assert "its bare throughput: **missed** on spawn (0.500)." in section
    assert "Figures are medians of 3 interleaved rounds after a warm-up round" in section
    assert "Measured 2031-01-02 03:04 on Test CPU (2 cores, Linux 9)." in lines
    assert "Measure again with `python bench/dashboard.py --repeat 3 --json" in section


def test_a_run_within_the_target_at_the_defaults_says_met_and_make() -> None:
    rounds = dashboard.REPEAT  # the default
    defaults = ([100.0, 90.0, 110.0] * rounds)[:rounds], ([96.0, 95.0, 99.0] * rounds)[:rounds]
    made = _made_up(dict.fromkeys(ALL_WITHIN, defaults))
    assert made["ok"]
    section = "\n".join(report.DASHBOARD.render(made))
    assert "its bare throughput: met." in section
    assert "Measure again with `make bench-dashboard`, then `make bench-page` for this page." in section


def test_the_verdicts_are_against_the_target_the_run_had(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashboard, "TARGET", 0.97)
    section = "\n".join(report.DASHBOARD.render(_made_up({"ask": EVEN})))
    assert "| cost | at least 0.97 | the client got |" in section
    assert "| 0.960 | 4.0% | **MISSED** |" in section
    assert "keeps at least 97% of\nits bare throughput: **missed** on ask (0.960)." in section


def test_the_command_names_the_client_scale_and_workloads_the_run_had() -> None:
    made = _made_up({"tell": EVEN, "churn": EVEN}, client="httpx", scale=0.01)
    section = "\n".join(report.DASHBOARD.render(made))
    assert [
        line.split(" (")[0] for line in section.splitlines() if line.startswith("| ") and "<br>" in line
    ] == [
        "| tell_nowait stream",
        "| spawn/stop churn",
    ]
    assert "batches 10 to 12, events 1,000 to 3,000, lagged 0, reads 5 |" in section
    assert (
        "`python bench/dashboard.py --client httpx --repeat 3 --scale 0.01 --only tell churn "
        "--json bench/results/dashboard.json`"
    ) in section


def test_a_dashboard_file_not_yet_measured_says_how_to_measure_it(tmp_path: Path) -> None:
    page, committed = _committed()
    section = _block(None)
    assert _report(tmp_path, dashboard_json=tmp_path / "absent.json") == page.replace(
        _block(committed), section
    )
    assert section.splitlines()[2:4] == [
        "Not measured in this report: run `python bench/dashboard.py --json bench/results/dashboard.json`",
        "(about 2 minutes), then this report again with `--dashboard bench/results/dashboard.json`.",
    ]
