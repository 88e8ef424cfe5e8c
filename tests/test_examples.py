"""Every example runs, through ``troupe run`` as a newcomer would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import trio

import troupe

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))


def test_there_are_examples() -> None:
    assert [p.name for p in EXAMPLES] == ["gap_tasks.py", "grassroots_jobs.py", "pipeline.py"]


def run_example(name: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "troupe.cli", "run", str(EXAMPLES[0].parent / name)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_gap_tasks_reproduces_the_document() -> None:
    out = run_example("gap_tasks.py")
    for line in [
        "sorted list: [1, 2, 3]",
        "factorial(10000) from two worker processes matches math.factorial: True",
        "delayed tasks started before waiting? False False",
        "scheduled on both: 3*3 + 4*4 = 25",
        "wait_any(slow, fast) -> 1",
        "cancelled loop returned 314 and succeeded() is False",
        "after one contribution, started? False",
        "milestone: both halves are in",
    ]:
        assert line in out


def test_grassroots_jobs_signals_once_and_reports_commands() -> None:
    out = run_example("grassroots_jobs.py")
    assert out.count("the counter reached its limit (5 workers finished)") == 1
    assert "python prints its version: succeeded: Python" in out
    assert "a command that fails: failed: CalledProcessError" in out
    assert "command not found: 'no-such-program-for-the-demo'" in out


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_through_the_cli(path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "troupe.cli", "run", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "summary:" in result.stdout


def test_pipeline_does_what_it_says() -> None:
    out = run_example("pipeline.py")
    assert "crashing on purpose" in out
    assert "crashed and was restarted by its supervisor" in out
    assert "Sum of squares of 1..20 without 7: 2821 (expected 2821)." in out
    assert "restarts       : 1" in out
    assert "dead letters   : 1" in out


async def test_pipeline_in_virtual_time(autojump_clock: trio.testing.MockClock) -> None:
    sys.path.insert(0, str(EXAMPLES[-1].parent))
    try:
        import pipeline  # noqa: PLC0415 - the example is not a package
    finally:
        sys.path.pop(0)
    async with troupe.open_system() as system:
        assert await pipeline.main(system) == 2821
        assert system.statistics().restarts == 1
