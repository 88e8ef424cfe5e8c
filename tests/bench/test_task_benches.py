"""bench/tasks.py and bench/jobs.py (make bench) run end to end, tiny: every row is printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parent.parent.parent / "bench"


def _run(script: str, *args: str) -> str:
    return subprocess.run(
        [sys.executable, BENCH / script, "--repeat", "1", *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout


def test_the_tasks_benchmark_prints_every_row() -> None:
    out = _run("tasks.py", "--tasks", "500", "--cpu", "20000", "--calls", "5", "--messages", "500")
    rows = [line.split()[0] for line in out.splitlines() if line.startswith("(")]
    assert rows == ["(1)", "(2)", "(3)", "(4)"]
    assert "same workers" in out
    assert "default context's workers" in out
    assert "of 3 targets met" in out


def test_the_jobs_benchmark_prints_every_row() -> None:
    out = _run("jobs.py", "--jobs", "128", "--tasks", "100")
    assert out.count("transitions, synchronous=") == 4
    assert "tasks submitted concurrently" in out
    assert "tasks submitted one after another" in out
    assert "of 2 targets met" in out
