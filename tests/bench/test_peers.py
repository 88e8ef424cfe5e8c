"""The benchmark's workloads, tiny, on every contender: every message arrives, counts match.

Correctness only (timing never goes into tests): these keep bench/peers.py,
bench/report.py and bench/million.py from rotting.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import peerkit
from peerkit.common import Unsupported, lead, thread_limit

BENCH = Path(__file__).parents[2] / "bench"


@pytest.mark.parametrize("name", peerkit.CONTENDERS)
def test_tell_counts_every_message(name: str) -> None:
    run = peerkit.contender(name).tell(600)  # more than two bursts of 256
    assert run.count == 600
    assert run.seconds > 0


@pytest.mark.parametrize("name", peerkit.CONTENDERS)
def test_ask_answers_every_request_in_turn(name: str) -> None:
    run = peerkit.contender(name).ask(50)
    assert run.count == 50  # the 50th answer is the 50th count


@pytest.mark.parametrize("name", peerkit.CONTENDERS)
def test_spawn_starts_every_actor_and_reads_memory(name: str) -> None:
    run = peerkit.contender(name).spawn(40)
    assert run.count == 40
    assert run.bytes_per_actor is not None
    assert run.bytes_per_actor >= 0


@pytest.mark.parametrize("name", peerkit.CONTENDERS)
def test_fanout_gets_every_answer(name: str) -> None:
    run = peerkit.contender(name).fanout(203, 8)  # not a multiple of the pool
    assert run.count == 203


def test_pykka_refuses_more_actors_than_the_machine_has_threads() -> None:
    with pytest.raises(Unsupported, match="one OS thread per actor"):
        peerkit.contender("pykka").spawn(thread_limit() + 1)


def test_unknown_contender_is_named() -> None:
    with pytest.raises(ValueError, match="unknown contender 'akka'"):
        peerkit.contender("akka")


def test_peers_command_runs_writes_json_and_the_report_renders_it(tmp_path: Path) -> None:
    results = tmp_path / "peers.json"
    out = subprocess.run(
        [sys.executable, BENCH / "peers.py", "--scale", "0.0005", "--repeat", "1", "--json", results],
        check=False,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, f"bench/peers.py failed:\n{out.stdout}\n{out.stderr}"
    assert "targets (issue 7)" in out.stdout
    report = json.loads(results.read_text())
    assert report["contenders"][0] == "troupe"
    for key, cells in report["results"].items():
        size = next(w["size"] for w in report["workloads"] if w["key"] == key)
        for name, cell in cells.items():
            assert cell["unsupported"] is None, (key, name)
            assert [run["count"] for run in cell["runs"]] == [size], (key, name)

    million = tmp_path / "million.json"
    subprocess.run(
        [sys.executable, BENCH / "million.py", "--count", "300", "--probes", "30", "--json", million],
        check=True,
        capture_output=True,
    )
    assert json.loads(million.read_text())["alive_after"] == 0

    page = tmp_path / "docs" / "performance.md"
    subprocess.run(
        [sys.executable, BENCH / "report.py", results, "--million", million, "--page", page],
        check=True,
        capture_output=True,
    )
    text = page.read_text()
    assert "| ask round trips" in text
    # the targets' bounds as peers.py's TARGETS wrote them into the results
    assert "| >= 100,000 trips/s: " in text
    assert "| <= 3,000 B: " in text
    assert "| >= 5x lighter: " in text
    assert "300 actors spawned" in text
    assert (page.parent / "performance.png").read_bytes().startswith(b"\x89PNG")


def test_the_core_benchmark_runs_on_the_same_workloads() -> None:
    # bench/core.py (make bench) takes its tell and ask workloads from peerkit
    out = subprocess.run(
        [
            sys.executable,
            BENCH / "core.py",
            "--repeat",
            "1",
            "--messages",
            "2000",
            "--asks",
            "300",
            "--actors",
            "300",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows = [line for line in out.splitlines() if line.startswith("(")]
    assert [row.split()[0] for row in rows] == ["(a)", "(b)", "(c)", "(d)", "(d)"]
    assert "targets met" in out


def test_a_lead_over_a_zero_median_cannot_be_told_and_is_none() -> None:
    """A tiny run may grow no memory at all (0 B/actor): no lead, not a ZeroDivisionError (CI broke on it)."""
    assert lead([0.0], [512.0], lower_is_better=True) is None  # troupe grew nothing
    assert lead([100.0], [0.0]) is None
    assert lead([256.0], [512.0], lower_is_better=True) == 2.0
    assert lead([300.0], [100.0]) == 3.0
    assert lead([], [1.0]) is None
